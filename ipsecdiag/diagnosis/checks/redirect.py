"""IKEv2 redirects (RFC 5685): a gateway answering IKE_SA_INIT with N(REDIRECT) hands the client
to another gateway (a cluster balancing its load, a gateway going down for maintenance). The
redirected IKE SA is a deliberate hand-off, not a failure (its state is ``redirected``). A client
that supports it (it sent REDIRECT_SUPPORTED) starts again at the new gateway with an
IKE_SA_INIT carrying N(REDIRECTED_FROM) naming the gateway that sent it away (§3, §8.2): that
IKE SA is the one to look at next.
"""

from __future__ import annotations

from collections.abc import Iterable

from ...reconstruction.model import Finding, IkeSaRecord, MessageRecord, Report
from ...wire import ikev2 as v2
from ...wire.registry import ExchangeType, NotifyType
from ..base import Check, CheckContext
from ..common import payloads_of


def _gateway(m: MessageRecord | None, notify: int) -> str | None:
    """The gateway identity a REDIRECT / REDIRECTED_FROM notify of ``m`` names."""
    for n in payloads_of(m, v2.NotifyPayload):
        if n.notify_type == notify:
            info = n.redirect()
            return info.display() if info is not None else "(gateway identity not readable)"
    return None


def _init_request(sa: IkeSaRecord) -> MessageRecord | None:
    return next(
        (e.request for e in sa.exchanges if e.exchange_type == ExchangeType.IKE_SA_INIT and e.request is not None),
        None,
    )


class RedirectCheck(Check):
    name = "redirect"
    finding_ids = ("ike-redirected",)

    def run(self, ctx: CheckContext) -> Iterable[Finding]:
        r = ctx.report
        for sa in r.ike_sas:
            if sa.version == 2 and sa.state == "redirected":
                f = self._redirected(r, sa)
                if f is not None:
                    yield f

    def _redirected(self, r: Report, sa: IkeSaRecord) -> Finding | None:
        resp = next(
            (
                e.response
                for e in sa.exchanges
                if e.exchange_type == ExchangeType.IKE_SA_INIT and e.response is not None and "REDIRECT" in e.response.notifies
            ),
            None,
        )
        if resp is None:
            return None
        to = _gateway(resp, NotifyType.REDIRECT) or "(gateway identity not readable)"
        gw = f"{sa.responder[0]}:{sa.responder[1]}"
        ev = [f"frame {resp.first_frame}: {gw} answered IKE_SA_INIT with REDIRECT to {to}"]
        frames = [resp.first_frame]
        # The follow-up: a later IKE_SA_INIT of the same client naming this gateway in REDIRECTED_FROM.
        follow = None
        for n, other in enumerate(r.ike_sas, 1):
            req = _init_request(other)
            if other is sa or req is None or req.src != resp.dst or req.ts < resp.ts:
                continue
            if _gateway(req, NotifyType.REDIRECTED_FROM) == sa.responder[0]:
                follow = (n, other, req)
                break
        if follow is not None:
            n, other, req = follow
            ev.append(
                f"the initiator followed it: IKE SA #{n} to {other.responder[0]}:{other.responder[1]} (frame "
                f"{req.first_frame}) carries REDIRECTED_FROM {sa.responder[0]}, state {other.state}"
            )
            frames.append(req.first_frame)
            then = f" The initiator followed it: IKE SA #{n} with {other.responder[0]} is the one that carries on."
        else:
            ev.append(f"no IKE_SA_INIT carrying REDIRECTED_FROM {sa.responder[0]} follows in the capture")
            then = " The capture holds no IKE_SA_INIT that followed the redirect."
        return self.finding(
            "ike-redirected",
            frames=frames,
            ike_sa=sa.key,
            evidence=ev,
            explanation=(
                f"{gw} redirected {resp.dst} to {to} (RFC 5685): a deliberate hand-off to another gateway, "
                "so this IKE SA is not a failure." + then
            ),
            data={"gateway": to, "follow_up": follow[1].key if follow is not None else None},
        )
