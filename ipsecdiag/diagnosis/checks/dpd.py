"""Dead peer detection: liveness checks that go unanswered until the SA is given up.

IKEv2 (RFC 7296 §2.4): a liveness check is an INFORMATIONAL request with no payloads inside
SK. Decrypted, that is certain; without keys an INFORMATIONAL request whose SK payload has
the size of an empty one for the negotiated cipher is *probably* one. IKEv1 (RFC 3706) sends
R_U_THERE notifies (36136) that the peer acknowledges with R_U_THERE_ACK (36137) carrying the
same sequence number; both travel in encrypted INFORMATIONAL messages.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ...protocol.notify_data import parse_dpd_sequence
from ...reconstruction.model import ExchangeRecord, Finding, IkeSaRecord, MessageRecord, Report
from ...reconstruction.sa_state import sk_message_size
from ...wire import ikev1 as v1
from ...wire.registry import ExchangeType
from ..base import Check, CheckContext
from ..common import payloads_of, peer, role, same_peers
from ..timeorder import sent_times

IN_FLIGHT_SECONDS = 2.0  # a lone request this close to the capture end may still be answered
V1_PROBABLE_MIN = 3  # encrypted one-way IKEv1 INFORMATIONALs in a row that look like R_U_THERE


def empty_sk_size(sa: IkeSaRecord) -> int | None:
    """Length of an IKEv2 message whose SK payload holds nothing (RFC 7296 §3.14)."""
    return sk_message_size(sa.proposal, 0)


@dataclass
class _Probe:
    ex: ExchangeRecord
    certain: bool


def liveness_requests(sa: IkeSaRecord) -> list[_Probe]:
    empty = empty_sk_size(sa)
    out = []
    for ex in sa.exchanges:
        req = ex.request
        if ex.exchange_type != ExchangeType.INFORMATIONAL or req is None:
            continue
        if req.decrypted:
            if not req.inner:
                out.append(_Probe(ex, True))
        elif req.encrypted and req.payloads == ["SK"] and empty is not None and req.size == empty:
            out.append(_Probe(ex, False))
    return out


class DpdCheck(Check):
    name = "dpd"
    finding_ids = ("dpd-timeout",)

    def run(self, ctx: CheckContext) -> Iterable[Finding]:
        r = ctx.report
        for sa in r.ike_sas:
            f = self._v2(r, sa) if sa.version == 2 else self._v1(r, sa)
            if f is not None:
                yield f

    # -- IKEv2 ---------------------------------------------------------------------------
    def _v2(self, r: Report, sa: IkeSaRecord) -> Finding | None:
        end = r.source.last_ts or 0.0
        probes = liveness_requests(sa)
        dead = [p for p in probes if p.ex.response is None]
        if not dead:
            return None
        first = dead[0].ex
        assert first.request is not None
        sender_is_init = first.initiated_by_initiator
        # Answered exchanges the same side asked for after the first lost probe: the peer lives.
        later_ok = [
            e
            for e in sa.exchanges
            if e.response is not None and e.request is not None and e.request.ts > first.request.ts
        ]
        if later_ok:
            return None
        lost = [p for p in dead if p.ex.initiated_by_initiator == sender_is_init]
        last = lost[-1].ex.request
        assert last is not None
        # A dead peer is a liveness request retransmitted without answer (RFC 7296 §2.4): one
        # transmission is only an unanswered request (ike-unanswered says so), not a verdict; nor
        # is one transmission captured twice (two interfaces, a mirror port).
        dup = r.options.dup_seconds
        reqs = [p.ex.request for p in lost if p.ex.request is not None]
        if not any(len(sent_times(m, dup)) > 1 for m in reqs):
            return None
        frames = sorted(f for m in reqs for f in m.frames)
        certain = all(p.certain for p in lost)
        times = sorted(t for m in reqs for t in sent_times(m, dup))  # time order, not frame order
        ev = [
            f"{len(lost)} liveness check(s) from the {role(first.request)} ({peer(first.request)}), "
            f"{len(times)} transmission(s) between frames {frames[0]} and {frames[-1]} over {times[-1] - times[0]:.1f} s, "
            "none answered"
        ]
        if not certain:
            ev.append(
                f"the INFORMATIONAL requests carry an SK payload of the size of an empty one ({last.size} bytes "
                "for the negotiated cipher): probably liveness checks; supply keys to confirm"
            )
        ending = _giving_up(r, sa, last, end)
        ev.append(ending)
        gone = last.dst
        # "given up" only when the capture shows it (a new IKE SA, a DELETE); otherwise the
        # capture ended while the sender was still retransmitting.
        until = "until the capture ended" if ending.startswith("the capture ends") else "until the SA was given up"
        expl = (
            f"{'Liveness checks' if certain else 'What are probably liveness checks'} (empty INFORMATIONAL "
            f"requests, RFC 7296 §2.4) from {last.src} went unanswered and were retransmitted {until}: "
            f"{gone} is gone (crashed, restarted, lost its SA) or the path between the peers broke."
        )
        return self.finding(
            "dpd-timeout",
            frames=frames,
            evidence=ev,
            ike_sa=sa.key,
            explanation=expl,
            remediation=(
                f"Check whether {gone} is up and still has this IKE SA (`swanctl --list-sas`), and whether UDP "
                "500/4500 passes in both directions; set a DPD action so the tunnel is re-established "
                "(strongSwan `dpd_action = restart`, libreswan `dpdaction=restart`)."
            ),
            data={"probes": len(lost), "transmissions": len(times), "certain": certain, "peer": gone},
            explains=("ike-unanswered",),
        )

    # -- IKEv1 ---------------------------------------------------------------------------
    def _v1(self, r: Report, sa: IkeSaRecord) -> Finding | None:
        end = r.source.last_ts or 0.0
        infos = [(e, m) for e in sa.exchanges if e.type == "INFORMATIONAL" for m in e.messages]
        probes: list[tuple[MessageRecord, int]] = []
        acked: set[tuple[bool, int]] = set()
        for _, m in infos:
            for n in payloads_of(m, v1.V1NotifyPayload):
                seq = parse_dpd_sequence(n.data)
                seq = -1 if seq is None else seq
                if n.name == "R_U_THERE":
                    probes.append((m, seq))
                elif n.name == "R_U_THERE_ACK":
                    acked.add((not m.from_initiator, seq))  # acknowledges the other side's probe
        if probes:
            lost = [(m, s) for m, s in probes if (m.from_initiator, s) not in acked]
            if not lost:
                return None
            first = lost[0][0]
            tail = [(m, s) for m, s in probes if m.ts >= first.ts]
            if any((m.from_initiator, s) in acked for m, s in tail):
                return None  # a later probe was acknowledged: transient loss
            # IKEv1 has no retransmission of a liveness check: each R_U_THERE carries a new sequence
            # number (RFC 3706 §5.5). One unacknowledged probe is an unanswered request, not a
            # dead peer: the verdict needs the sender to have asked again.
            if len(lost) < 2:
                return None
            return self._v1_finding(r, sa, [m for m, _ in lost], certain=True, end=end)
        # Without keys: a run of encrypted INFORMATIONALs from one side, nothing from the other after.
        hidden = [m for _, m in infos if m.encrypted and not m.decrypted]
        if len(hidden) < V1_PROBABLE_MIN:
            return None
        side = hidden[-1].from_initiator
        run = []
        for m in reversed(hidden):
            if m.from_initiator != side:
                break
            run.append(m)
        run.reverse()
        after = [
            m for e in sa.exchanges for m in e.all_messages() if m.from_initiator != side and m.ts > run[0].ts
        ]
        if len(run) < V1_PROBABLE_MIN or after:
            return None
        return self._v1_finding(r, sa, run, certain=False, end=end)

    def _v1_finding(
        self, r: Report, sa: IkeSaRecord, msgs: list[MessageRecord], *, certain: bool, end: float
    ) -> Finding:
        last = msgs[-1]
        ev = [
            f"{len(msgs)} {'R_U_THERE notifies' if certain else 'encrypted INFORMATIONAL messages'} from the "
            f"{role(last)} ({peer(last)}) between frames {msgs[0].first_frame} and {last.first_frame} "
            f"({last.ts - msgs[0].ts:.1f} s), no R_U_THERE_ACK"
            + ("" if certain else " (probably RFC 3706 liveness checks: supply keys to confirm)")
        ]
        ev.append(_giving_up(r, sa, last, end))
        return self.finding(
            "dpd-timeout",
            frames=[f for m in msgs for f in m.frames],
            evidence=ev,
            ike_sa=sa.key,
            explanation=(
                f"{'Dead peer detection' if certain else 'What is probably dead peer detection'} (IKEv1 "
                f"R_U_THERE, RFC 3706) from {last.src} got no acknowledgement: {last.dst} is gone or the path broke."
            ),
            data={"probes": len(msgs), "certain": certain, "peer": last.dst},
            explains=("ike-unanswered",),
        )


def _giving_up(r: Report, sa: IkeSaRecord, last: MessageRecord, end: float) -> str:
    """How the SA ended after the last probe: a new IKE SA, a DELETE, or the end of the capture."""
    t = last.transmissions[-1].ts
    for other in r.ike_sas:
        if other is sa or not same_peers(other, sa):
            continue
        starts = [e for e in other.exchanges if e.request is not None and e.request.ts > t]
        starts += [e for e in other.exchanges if e.version == 1 and e.messages and e.messages[0].ts > t]
        init = [
            e
            for e in starts
            if e.type in ("IKE_SA_INIT", "MAIN_MODE", "AGGRESSIVE_MODE") and e.all_messages()
        ]
        if init:
            m = init[0].all_messages()[0]
            return (
                f"{m.src} gave up and started a new IKE SA at frame {m.first_frame}, {m.ts - t:.1f} s later"
            )
    for e in sa.exchanges:
        for m in e.all_messages():
            if m.ts > t and "D" in m.payloads:
                return f"{m.src} deleted the SA at frame {m.first_frame}"
    return f"the capture ends {max(0.0, end - t):.1f} s after the last transmission"
