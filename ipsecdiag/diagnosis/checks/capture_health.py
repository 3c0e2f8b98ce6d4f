"""Problems with the capture or its packets: malformed packets, truncation, data the analysis
could not use as recorded and floods it summarised."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable

from ...reconstruction.model import Finding, Report, raw_seconds, utc_datetime
from ..base import Check, CheckContext
from ..certificates import sent_chains
from ..timeorder import TOLERANCE, TimeOrder, time_order

MAX_LINES = 20
FRAGMENT_LINES = 5  # host pairs shown for summarised fragments and ESP flows


class MalformedCheck(Check):
    name = "malformed"
    finding_ids = ("malformed-packet",)

    def run(self, ctx: CheckContext) -> Iterable[Finding]:
        by_layer: dict[str, list[tuple[int, str, int, str]]] = defaultdict(list)
        for item in ctx.report.malformed:
            by_layer[item[1]].append(item)
        for layer, items in sorted(by_layer.items()):
            ev = [f"frame {fr}: {layer} offset {off}: {why}" for fr, _, off, why in items[:MAX_LINES]]
            if len(items) > MAX_LINES:
                ev.append(f"… and {len(items) - MAX_LINES} more")
            yield self.finding(
                "malformed-packet",
                frames=[i[0] for i in items],
                evidence=ev,
                title=f"Malformed {layer.upper()} packet{'s' if len(items) > 1 else ''} ({len(items)})",
                explanation=(
                    f"{len(items)} {layer.upper()} packet(s) violate their RFC at the offset and field "
                    "shown; they were counted and skipped, not analysed further."
                ),
                data={"layer": layer, "count": len(items)},
            )
        yield from self._certificates(ctx)

    def _certificates(self, ctx: CheckContext) -> Iterable[Finding]:
        """Certificates in (decrypted) CERT payloads that cryptography cannot read."""
        bad = [(c, e) for sa in ctx.report.ike_sas for c in sent_chains(sa) for e in c.errors]
        if not bad:
            return
        ev = [
            f"frame {c.m.first_frame}: {c.ex.type} from the {c.sender} (IKE SA {c.sa.key}): {e}"
            for c, e in bad[:MAX_LINES]
        ]
        if len(bad) > MAX_LINES:
            ev.append(f"… and {len(bad) - MAX_LINES} more")
        yield self.finding(
            "malformed-packet",
            frames=[f for c, _ in bad for f in c.m.frames],
            evidence=ev,
            title=f"Malformed certificate{'s' if len(bad) > 1 else ''} in CERT payloads ({len(bad)})",
            explanation=(
                f"{len(bad)} certificate(s) sent in IKE could not be decoded (the field named in each "
                "line is damaged); they were skipped by the certificate checks."
            ),
            data={"layer": "cert", "count": len(bad)},
        )


class TruncationCheck(Check):
    name = "truncation"
    finding_ids = ("capture-truncated",)

    def run(self, ctx: CheckContext) -> Iterable[Finding]:
        r = ctx.report
        ev = list(r.source.truncated_files)
        frames = list(r.truncated_frames)
        n_trunc = r.source.skipped.get("truncated", 0)
        if frames:
            ev.append(
                f"{len(frames)} frame(s) cut by the snap length before the data needed"
                + (f" ({n_trunc} could not be analysed at all)" if n_trunc else "")
            )
        if not ev:
            return
        yield self.finding("capture-truncated", frames=frames, evidence=ev)


END_GRACE = 2.0  # as checks/fragmentation.py: a datagram this close to the end may still be arriving


def _fragment_reasons(r: Report) -> tuple[int, int, int, list[int]]:
    """Of the incomplete datagrams kept one by one: (IKE between the peers of an IKE SA, lost
    on the path; begun within END_GRACE s of the capture's end; evicted by the limits; the
    frames of the first ones lost)."""
    end = r.source.last_ts or 0.0
    ports = {*r.options.ike_ports, *r.options.natt_ports}
    peers = {frozenset((sa.initiator[0], sa.responder[0])) for sa in r.ike_sas}
    lost = at_end = evicted = 0
    frames: list[int] = []
    for g in r.fragment_groups:
        if g.complete:
            continue
        if g.reason == "evicted":
            evicted += 1
        elif end - g.ts_last < END_GRACE:
            at_end += 1
        elif frozenset((g.src, g.dst)) in peers and g.proto in (17, -1) and (
            g.sport is None or {g.sport, g.dport} & ports
        ):
            lost += 1
            if len(frames) < FRAGMENT_LINES:
                frames.append(g.first_frame)
    return lost, at_end, evicted, frames


class CaptureHealthCheck(Check):
    """What the analysis could not use as recorded, and floods it summarised (issue 14):
    record times no date can show, IP datagrams whose fragments never all arrived, ESP flows
    beyond the tracked ones (half-open IKE floods: checks/half_open.py)."""

    name = "capture-health"
    finding_ids = ("capture-health",)

    def run(self, ctx: CheckContext) -> Iterable[Finding]:
        order = time_order(ctx.report)
        yield from self._timestamps(ctx.report)
        yield from self._time_order(order, ctx.report)
        yield from self._fragments(ctx.report)
        yield from self._esp_overflow(ctx.report)

    def _timestamps(self, r: Report) -> Iterable[Finding]:
        """Record times no date can show (a pcapng may claim any 64-bit time): say so once,
        with the frames, since every time in the report for them is shown as raw seconds."""
        odd: dict[int, float] = {}
        for sa in r.ike_sas:
            for ex in sa.exchanges:
                for m in ex.all_messages():
                    if utc_datetime(m.ts) is None:
                        odd[m.first_frame] = m.ts
        for fl in r.esp_flows:
            for fr, ts in ((fl.first_frame, fl.first_ts), (fl.last_frame, fl.last_ts)):
                if utc_datetime(ts) is None:
                    odd[fr] = ts
        for ts in (r.source.first_ts, r.source.last_ts):
            if ts is not None and utc_datetime(ts) is None:
                odd.setdefault(0, ts)
        if not odd:
            return
        frames = sorted(f for f in odd if f)
        shown = ", ".join(f"frame {f} at {raw_seconds(odd[f])}" for f in frames[:MAX_LINES])
        yield self.finding(
            "capture-health",
            frames=frames,
            evidence=[
                "record times outside the years 1-9999 are shown as raw seconds since 1970: "
                + (shown or f"capture bounds {raw_seconds(odd[0])}")
                + (f" and {len(frames) - MAX_LINES} more" if len(frames) > MAX_LINES else "")
            ],
            title="Record times outside any date",
            data={"kind": "timestamps-out-of-range", "count": len(frames) or 1},
        )

    def _time_order(self, order: TimeOrder, r: Report) -> Iterable[Finding]:
        """Frames older than a frame captured before them: said once, with what the analysis
        judged on time and what it could not (see diagnosis.timeorder)."""
        if order.ordered:
            return
        # IKEv1 decryption chains its CBC IV from message to message as they are read
        # (RFC 2409 Appendix B): out of order, messages may not decrypt.
        v1_keyed = any(sa.version == 1 and sa.keys_available for sa in r.ike_sas)
        shown = "; ".join(
            f"frame {i.frame} is {i.back:.3f} s older than frame {i.before_frame} before it" for i in order.first
        )
        # Read in one pass, every frame was compared; otherwise only those the report keeps a time for.
        what = "frame(s)" if order.every_frame else "of the IKE and ESP frames compared"
        yield self.finding(
            "capture-health",
            frames=[f for i in order.first for f in (i.before_frame, i.frame)],
            evidence=[
                f"{order.inversions} {what} carry a time earlier than a frame captured before them, by up to "
                f"{order.largest:.3f} s (steps back under {TOLERANCE * 1000:.0f} ms, the jitter between "
                "interfaces, are not counted)",
                f"first: {shown}",
                "judged on time, not frame order: the capture's span, IKE messages and their "
                "retransmissions, unanswered requests, liveness checks, rekey order",
                "not judged (they follow frame order): ESP sequence reordering and replays, ESP idle gaps, "
                "each ESP flow's first and last packet time"
                + (
                    "; IKEv1 decryption within phase 1 and within each exchange, whose IV chain (RFC 2409 "
                    "Appendix B) runs in the order captured (messages captured before their phase 1 are "
                    "decrypted after it, in time order)"
                    if v1_keyed
                    else ""
                ),
            ],
            title=f"Capture not in time order ({order.inversions} {what} out of order)",
            explanation=(
                "The capture's frames are not in time order: it was probably merged from several files "
                "(mergecap -a) or taken on several interfaces at once. The analysis orders IKE by time; what "
                "it reads from the ESP packets in the order captured is not judged."
            ),
            cause=(
                "Files merged in the order given rather than by time (mergecap -a, cat of pcaps), a capture "
                "on several interfaces whose queues are written out of order, or a clock stepped back "
                "during the capture."
            ),
            remediation=(
                "Sort the capture by time (`reordercap in.pcap sorted.pcap`, or merge with `mergecap` "
                "without -a) and analyse the sorted file."
            ),
            data={
                "kind": "time-order",
                "inversions": order.inversions,
                "every_frame": order.every_frame,
                "largest_step_back": round(order.largest, 6),
                "first_frames": [i.frame for i in order.first],
            },
        )

    def _fragments(self, r: Report) -> Iterable[Finding]:
        counts = r.incomplete_fragments
        if not counts:
            return
        total = sum(counts.values())
        by_payload: Counter[str] = Counter()
        for (_s, _d, what), n in counts.items():
            by_payload[what] += n
        ev = [
            f"{n} datagram(s) {src} -> {dst} carrying {what}" if dst else f"{n} datagram(s) between {src}, {what}"
            for (src, dst, what), n in counts.most_common(FRAGMENT_LINES)
        ]
        if len(counts) > FRAGMENT_LINES:
            ev.append(f"… and {len(counts) - FRAGMENT_LINES} more host pairs")
        kinds = ", ".join(f"{n} {what}" for what, n in by_payload.most_common())
        lost, at_end, evicted, frames = _fragment_reasons(r)
        why = []
        if lost:
            why.append(
                f"{lost} carried IKE between the peers of an IKE SA and the rest of their fragments never "
                "came: fragments lost on the path (see the ike-fragment-loss finding, which names the "
                "IKE messages, if one is reported)"
            )
        if at_end:
            why.append(f"{at_end} ended within {END_GRACE:.0f} s of the capture's end: the rest may have come after it stopped")
        if evicted:
            why.append(f"{evicted} were dropped by the analysis's reassembly limits (a fragment flood)")
        if why:
            ev.append("of them: " + "; ".join(why))
        yield self.finding(
            "capture-health",
            frames=frames,
            evidence=ev,
            title=f"IP datagrams whose fragments never all arrived ({total})",
            explanation=(
                f"{total} fragmented IP datagram(s) never completed before the capture ended or the "
                f"reassembly limits evicted them ({kinds}); what they carried was not analysed."
            ),
            # not the clock, a damaged file or the limits of the catalogue's text: fragments go missing
            cause=(
                "Fragments lost on the path (a firewall, NAT or ISP dropping IP fragments, often all but the "
                "first), fragments that took another path than the capture point's or were filtered from "
                "the capture, the capture ending before the rest arrived, or a flood of fragments."
            ),
            remediation=(
                "For IKE, follow the ike-fragment-loss finding (IKEv2 fragmentation, RFC 7383; a smaller MTU "
                "or certificates; the device dropping fragments); otherwise find the device on the path "
                "that drops fragments or capture where all of them pass; for a flood, filter the capture "
                "to the peers of interest (`tcpdump -r in.pcap -w out.pcap host A and host B`)."
            ),
            data={"kind": "incomplete-fragments", "count": total, "by_payload": dict(by_payload)},
        )

    def _esp_overflow(self, r: Report) -> Iterable[Finding]:
        if not r.esp_overflow:
            return
        spis = sum(d["spis"] for d in r.esp_overflow)
        exact = all(d["spis_exact"] for d in r.esp_overflow)
        packets = sum(d["packets"] for d in r.esp_overflow)
        ev = [
            f"{d['src']} -> {d['dst']}: {'' if d['spis_exact'] else 'at least '}{d['spis']} SPI(s), "
            f"{d['packets']} packet(s), {d['bytes']} bytes, from frame {d['first_frame']}"
            for d in r.esp_overflow[:FRAGMENT_LINES]
        ]
        if len(r.esp_overflow) > FRAGMENT_LINES:
            ev.append(f"… and {len(r.esp_overflow) - FRAGMENT_LINES} more address pairs")
        yield self.finding(
            "capture-health",
            frames=[d["first_frame"] for d in r.esp_overflow],
            evidence=ev,
            title=f"ESP flows beyond the first {len(r.esp_flows)} summarised ({'' if exact else 'at least '}{spis} SPIs)",
            explanation=(
                f"The capture holds more ESP SPIs than are tracked one by one; {packets} packet(s) of "
                f"{'' if exact else 'at least '}{spis} further SPI(s) were counted per address pair, "
                "without sequence analysis or decryption."
            ),
            data={"kind": "esp-flows-summarised", "spis": spis, "packets": packets},
        )
