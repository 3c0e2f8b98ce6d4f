"""IP-fragmented IKE: fragmentation black holes and IKE fragmentation left unused.

A large IKE message (IKE_AUTH with certificates) that exceeds the path MTU travels in IP
fragments unless both peers negotiated IKEv2 fragmentation (RFC 7383:
IKEV2_FRAGMENTATION_SUPPORTED in IKE_SA_INIT) or IKEv1 fragmentation (the FRAGMENTATION
vendor ID). Many firewalls and NATs drop IP fragments, so the message is retransmitted and
never answered while the small IKE_SA_INIT was: the ``ike-unanswered`` finding for that SA
is then a consequence of this one.
"""

from __future__ import annotations

from collections.abc import Iterable

from ...reconstruction.model import Finding, IkeSaRecord, MessageRecord, Report
from ...wire import ikev1 as v1
from ...wire.registry import ExchangeType
from ...wire.vendors import identify_vendor
from ..base import Check, CheckContext

MAX_LINES = 10


def _sent_by(m: MessageRecord) -> str:
    return "initiator" if m.from_initiator else "responder"


def _fragment_support(sa: IkeSaRecord) -> dict[str, bool]:
    """Which side announced IKE fragmentation (IKEv2 notify in IKE_SA_INIT, IKEv1 vendor ID)."""
    out = {"initiator": False, "responder": False}
    for ex in sa.exchanges:
        for m in ex.all_messages():
            if sa.version == 2:
                if (
                    ex.exchange_type == ExchangeType.IKE_SA_INIT
                    and "IKEV2_FRAGMENTATION_SUPPORTED" in m.notifies
                ):
                    out[_sent_by(m)] = True
            else:
                for p in m.all_payloads():
                    if isinstance(p, v1.V1VendorIdPayload) and (identify_vendor(p.data) or "").startswith(
                        "FRAGMENTATION"
                    ):
                        out[_sent_by(m)] = True
    return out


def _transmissions_text(m: MessageRecord) -> str:
    how = (
        f"in {m.ikev2_fragments} IKE fragments"
        if m.ikev2_fragments
        else "in "
        + "/".join(map(str, sorted({t.ip_fragments for t in m.transmissions})))
        + " IP fragments each"
    )
    return (
        f"{m.size} bytes, sent {len(m.transmissions)}x {how}, frames {', '.join(map(str, m.frames[:12]))}"
        + ("…" if len(m.frames) > 12 else "")
    )


class IkeFragmentationCheck(Check):
    name = "ike-fragmentation"
    finding_ids = ("ike-fragment-loss", "ike-fragmentation-unused")

    def run(self, ctx: CheckContext) -> Iterable[Finding]:
        r = ctx.report
        ports = set(ctx.options.ike_ports) | set(ctx.options.natt_ports)
        end = r.source.last_ts or 0.0
        for sa in r.ike_sas:
            f = self._loss(r, sa, end, ports)
            if f is not None:
                yield f
            f = self._unused(sa)
            if f is not None:
                yield f

    # -- ike-fragment-loss ---------------------------------------------------------------------
    def _loss(self, r: Report, sa: IkeSaRecord, end: float, ports: set[int]) -> Finding | None:
        pending = [e for e in sa.exchanges if e.unanswered_at(end)]
        big = [(e, m) for e in pending if (m := e.last_sent) is not None and m.ip_fragmented]
        answered = [
            (e, m)
            for e in sa.exchanges
            if e not in pending
            and (m := e.last_sent) is not None
            and (e.response is not None or sa.version == 1)
        ]
        smaller = [(e, m) for e, m in answered if not m.ip_fragmented]
        lost_groups = self._incomplete_groups(r, sa, end, ports)
        if not (big and smaller) and not lost_groups:
            return None
        ev: list[str] = []
        frames: list[int] = []
        for e, m in big:
            ev.append(
                f"{e.type} request (message id {e.message_id}) {m.src} -> {m.dst}: {_transmissions_text(m)}, never answered"
            )
            frames += m.frames
        if smaller:
            e, m = max(smaller, key=lambda em: em[1].size)
            ev.append(
                f"smaller messages were answered, e.g. {e.type} ({m.size} bytes, frame {m.first_frame})"
            )
        complete = [g for g in r.fragment_groups if g.complete and set(g.frames) & set(frames)]
        if big and complete:
            ev.append(
                "every IP fragment of these transmissions is in the capture: they are lost between the "
                "capture point and the peer (or the peer's host does not reassemble them)"
            )
        for g in lost_groups[:MAX_LINES]:
            ev.append(
                f"IP datagram {g.src} -> {g.dst} (id 0x{g.ident:04x}) incomplete in the capture: "
                + (
                    f"{g.bytes_seen} of {g.total_len} bytes"
                    if g.total_len is not None
                    else f"{g.bytes_seen} bytes seen"
                )
                + f", frames {', '.join(map(str, g.frames))} ({g.reason or 'fragments missing'})"
            )
            frames += list(g.frames)
        support = _fragment_support(sa)
        if not all(support.values()):
            lacking = [s for s, ok in support.items() if not ok]
            ev.append(
                f"IKE fragmentation ({'RFC 7383' if sa.version == 2 else 'FRAGMENTATION vendor ID'}) was not "
                f"announced by the {' and '.join(lacking)}"
            )
        if big:
            e0, m0 = big[0]
            expl = (
                f"The {e0.type} request ({m0.size} bytes) needed IP fragmentation and was never answered, "
                f"while smaller messages between {m0.src} and {m0.dst} were: a device on the path (firewall, "
                "NAT, ISP) drops IP fragments. The unanswered-request finding for this SA is a consequence."
            )
        else:
            g0 = lost_groups[0]
            expl = (
                f"IKE traffic between {g0.src} and {g0.dst} travelled in IP fragments and some fragments never "
                "reached the capture point, so the message could not be reassembled: fragments are lost on "
                "the path. Requests of this SA that went unanswered are a consequence."
            )
        return self.finding(
            "ike-fragment-loss",
            frames=frames,
            evidence=ev,
            ike_sa=sa.key,
            explanation=expl,
            explains=["ike-unanswered"],
            data={
                "exchanges": [f"{e.type}#{e.message_id}" for e, _ in big],
                "incomplete_datagrams": len(lost_groups),
                "fragmentation_supported": support,
            },
        )

    @staticmethod
    def _incomplete_groups(r: Report, sa: IkeSaRecord, end: float, ports: set[int]) -> list:
        hosts = {sa.initiator[0], sa.responder[0]} | {p[0] for p in sa.peers_seen}
        t0 = sa.first_ts
        out = []
        for g in r.fragment_groups:
            if g.complete or g.src not in hosts or g.dst not in hosts or g.ts_first < t0 - 1.0:
                continue
            if g.reason == "evicted" or (g.reason == "end-of-capture" and end - g.ts_last < 2.0):
                continue  # our buffer limit, or the capture simply stopped
            if g.proto not in (17, -1):
                continue
            if g.sport is not None and g.sport not in ports and g.dport not in ports:
                continue
            out.append(g)
        return out

    # -- ike-fragmentation-unused --------------------------------------------------------------
    def _unused(self, sa: IkeSaRecord) -> Finding | None:
        msgs = [
            (ex, m)
            for ex in sa.exchanges
            if not (sa.version == 2 and ex.exchange_type == ExchangeType.IKE_SA_INIT)
            for m in ex.all_messages()
            if m.ip_fragmented
        ]
        if not msgs:
            return None
        support = _fragment_support(sa)
        ev = [
            f"{ex.type} from the {_sent_by(m)} {m.src}: {_transmissions_text(m)}"
            for ex, m in msgs[:MAX_LINES]
        ]
        frames = [fr for _, m in msgs for fr in m.frames]
        kind = (
            "IKEv2 fragmentation (RFC 7383)"
            if sa.version == 2
            else "IKEv1 fragmentation (FRAGMENTATION vendor ID)"
        )
        if all(support.values()):
            used = any(m.ikev2_fragments or "FRAG" in m.payloads for _, m in msgs)
            ev.append(f"both peers announced {kind}")
            return self.finding(
                "ike-fragmentation-unused",
                frames=frames,
                evidence=ev,
                ike_sa=sa.key,
                title="IKE fragments still IP-fragmented"
                if used
                else "IKE fragmentation negotiated but not used",
                explanation=(
                    f"Both peers support {kind}, yet these messages were fragmented at the IP layer: "
                    + (
                        "the IKE fragments themselves are larger than the path MTU."
                        if used
                        else "the sender did not fragment them because they are below its configured fragment size."
                    )
                ),
                remediation="Lower the IKE fragment size below the path MTU (strongSwan `charon.fragment_size`, e.g. 1280).",
                data={"fragmentation_supported": support},
            )
        lacking = [s for s, ok in support.items() if not ok]
        ev.append(f"{kind} was not announced by the {' and '.join(lacking)}")
        return self.finding(
            "ike-fragmentation-unused",
            frames=frames,
            evidence=ev,
            ike_sa=sa.key,
            explanation=(
                f"{len(msgs)} IKE message(s) were fragmented at the IP layer because {kind} was not negotiated: "
                f"the {' and '.join(lacking)} did not announce it. IP fragments are dropped by many firewalls and "
                "NATs; IKE fragmentation avoids them."
            ),
            data={"fragmentation_supported": support},
        )
