"""Sequence-number diagnoses from the ESP tracker's per-flow model (``EspFlow.seq``):
replays, capture duplicates, packets outside the anti-replay window, resets without rekey,
and sequence numbers nearing 2^32 without ESN (RFC 4303 §3.3.3, §3.4.3, Appendix A)."""

from __future__ import annotations

from collections.abc import Iterable

from ...reconstruction.model import EspFlow, Finding, Report, Severity
from ..base import Check, CheckContext
from ..common import child_spis
from ..timeorder import time_order

# The ESP tracker reads sequence numbers in capture order: out of time order, what it saw as
# reordered, replayed or restarted may be the capture's order, not the network's.
OUT_OF_ORDER = (
    "the capture is not in time order (see capture-health): the sequence numbers were read in the "
    "order captured, so this may be the capture's order, not the network's; sort the capture to judge"
)

# Warn when a flow without ESN got this close to 2^32: at 100k packets/s, 2^24 packets are
# under three minutes of traffic, about the time a rekey needs to be triggered and completed.
MAX_LINES = 10


def _flow(f: EspFlow) -> str:
    return f"SPI 0x{f.spi:08x} {f.src} -> {f.dst}"


def _more(n: int, shown: int) -> list[str]:
    return [f"… and {n - shown} more"] if n > shown else []


def _apart(dt: float) -> str:
    return f"+{dt * 1e6:.0f} µs" if dt >= 0 else f"stamped {-dt * 1e6:.0f} µs earlier"


def _esn(report: Report) -> dict[int, bool | None]:
    return {spi: c.esn for spi, (_, c) in child_spis(report).items()}


class ReplayCheck(Check):
    name = "replay"
    finding_ids = (
        "esp-replay",
        "capture-duplicate",
        "esp-out-of-window",
        "esp-seq-reset",
        "esp-seq-exhaustion",
    )
    severity_overrides = {
        "esp-replay": "warning when every repeat came too fast to compare with its original: the "
        "explanation says they may be capture duplicates",
        "esp-seq-exhaustion": "error once the counter wrapped without ESN (the title says it wrapped): "
        "receivers drop everything after it, no longer a warning of what is to come",
    }

    def run(self, ctx: CheckContext) -> Iterable[Finding]:
        r = ctx.report
        dup_s = ctx.options.dup_seconds
        yield from self._capture_duplicates(r, dup_s)
        esn = _esn(r)
        margin = ctx.options.seq_exhaustion_margin
        caveat = [] if time_order(r).ordered else [OUT_OF_ORDER]
        for f in r.esp_flows:
            x = f.seq
            found = []
            if x.replays:
                found.append(self._replay(f, dup_s))
            if x.out_of_window:
                found.append(self._out_of_window(f))
            if x.resets:
                found.append(self._reset(f))
            for g in found:
                g.evidence += caveat
                yield g
            g = self._exhaustion(f, esn.get(f.spi), margin)
            if g is not None:
                yield g

    def _replay(self, f: EspFlow, dup_s: float) -> Finding:
        x = f.seq
        events = x.replay_events
        n = int(x.replays)
        why_text = {
            "later": f"seen before, more than {dup_s * 1000:g} ms earlier",
            "different-bytes": "seen moments before with different bytes (the sender reused it)",
            "unverified": f"repeated within {dup_s * 1000:g} ms; the original was no longer in memory to compare",
        }
        ev = [
            f"frame {fr}: sequence number {seq} {why_text.get(why, why)}"
            for fr, _, seq, why in events[:MAX_LINES]
        ]
        ev += _more(n, min(len(events), MAX_LINES))
        unverified = int(x.dup_unverified)
        sev = Severity.WARNING if unverified and unverified == n else None
        return self.finding(
            "esp-replay",
            frames=[e[0] for e in events],
            evidence=ev,
            severity=sev,
            explanation=(
                f"{n} packet(s) of {_flow(f)} repeat a sequence number the SA already carried, and not as a "
                f"byte-identical copy within {dup_s * 1000:g} ms (which would be a capture artefact). A receiver "
                "with anti-replay enabled drops them (RFC 4303 §3.4.3)."
                + (
                    f" {unverified} of them came so fast that the original had left the duplicate memory: "
                    "they may be capture duplicates."
                    if unverified
                    else ""
                )
            ),
            data={"spi": f"{f.spi:08x}", "replays": n, "unverified": unverified},
        )

    def _capture_duplicates(self, r: Report, dup_s: float) -> Iterable[Finding]:
        ev: list[str] = []
        frames: list[int] = []
        total = 0
        worst = 0.0
        for f in r.esp_flows:
            n = int(f.seq.capture_duplicates)
            if not n:
                continue
            total += n
            evs = f.seq.dup_events
            # dt is negative when the copy was captured first but stamped earlier (out of time order)
            worst = max([worst, *(abs(e[3]) for e in evs)])
            frames += [e[0] for e in evs]
            ev.append(
                f"{_flow(f)}: {n} duplicate(s), e.g. "
                + ", ".join(f"frame {fr} = frame {orig} ({_apart(dt)})" for fr, orig, _, dt in evs[:3])
            )
        # Every frame stamped alike (crafted or converted captures): copies cannot be timed.
        untimed = r.source.frames > 1 and r.source.first_ts == r.source.last_ts
        if untimed and total:
            ev.append("all frames carry the same timestamp: these copies could also be replays")
        ike = 0
        for sa in [] if untimed else r.ike_sas:
            for ex in sa.exchanges:
                for m in ex.all_messages():
                    for a, b in zip(m.transmissions, m.transmissions[1:], strict=False):
                        if 0 <= b.ts - a.ts <= dup_s:  # transmissions are in time order
                            ike += 1
                            frames.append(b.frames[0])
                            if ike <= MAX_LINES:
                                ev.append(
                                    f"IKE {ex.type} frame {b.frames[0]} = frame {a.frames[0]} "
                                    f"(+{(b.ts - a.ts) * 1e6:.0f} µs; counted as a retransmission)"
                                )
        if not total and not ike:
            return
        yield self.finding(
            "capture-duplicate",
            frames=frames,
            evidence=ev[: MAX_LINES * 2],
            explanation=(
                f"{total + ike} frame(s) are byte-identical copies of a frame captured "
                f"at most {max(worst, 0.0) * 1e6:.0f} µs earlier: an artefact of the capture (mirror/SPAN port, the "
                "same packet seen on two interfaces), not replays. They are not counted as replayed ESP."
            ),
            data={"esp": total, "ike": ike},
        )

    def _out_of_window(self, f: EspFlow) -> Finding:
        x = f.seq
        w = int(x.replay_window)
        n = int(x.out_of_window)
        depth = int(x.max_reorder_depth)
        too_old = int(x.too_old)
        track = int(x.tracking_window)
        needed = depth + 1
        events = x.oow_events
        ev = [
            f"frame {fr}: sequence number {seq} arrived {d} behind the highest seen"
            for fr, seq, d in events[:MAX_LINES]
        ]
        ev += _more(n, min(len(events), MAX_LINES))
        need_text = f"a window of at least {needed}" if not too_old else f"a window larger than {track}"
        ev.append(
            f"deepest reordering: {depth} (frame {x.deepest_frame}); {need_text} would have accepted them"
        )
        return self.finding(
            "esp-out-of-window",
            frames=[e[0] for e in events],
            evidence=ev,
            explanation=(
                f"{n} packet(s) of {_flow(f)} arrived more than {w - 1} sequence numbers behind the highest one "
                f"seen so far: a receiver with a {w}-packet anti-replay window drops them although they were "
                f"never seen before; {need_text} would have been needed. The reordering happened before the "
                "capture point (or in the capture itself, when several interfaces or queues are merged)."
            ),
            data={
                "spi": f"{f.spi:08x}",
                "dropped": n,
                "window": w,
                "window_needed": needed if not too_old else None,
            },
        )

    def _reset(self, f: EspFlow) -> Finding:
        x = f.seq
        events = x.reset_events
        ev = [
            f"frame {fr}: sequence number fell from {old} to {new} on the same SPI"
            for fr, _, old, new in events[:MAX_LINES]
        ]
        ev += _more(int(x.resets), min(len(events), MAX_LINES))
        return self.finding(
            "esp-seq-reset",
            frames=[e[0] for e in events],
            evidence=ev,
            explanation=(
                f"{_flow(f)} started its sequence numbers again near 1 after reaching "
                f"{max(e[2] for e in events) if events else f.seq_max}, without a new SA (a rekey brings a new "
                "SPI). The receiver's anti-replay window is still at the old high value, so it drops the "
                "restarted packets as replays until they pass it: the sender lost its SA state (restart, HA "
                "failover without sequence sync) but kept the SPI."
            ),
            data={"spi": f"{f.spi:08x}", "resets": int(x.resets)},
        )

    def _exhaustion(self, f: EspFlow, esn: bool | None, margin: int) -> Finding | None:
        wraps = int(f.seq.esn_wraps)
        limit = (1 << 32) - margin
        if wraps and esn is False:
            ev = [
                f"frame {fr}: the 32-bit sequence number wrapped past 0xffffffff"
                for fr, _ in f.seq.wrap_events[:MAX_LINES]
            ]
            ev.append("the CHILD SA was negotiated without ESN")
            return self.finding(
                "esp-seq-exhaustion",
                frames=[e[0] for e in f.seq.wrap_events],
                severity=Severity.ERROR,
                title="ESP sequence number wrapped without ESN",
                evidence=ev,
                explanation=(
                    f"{_flow(f)} kept sending after sequence number 2^32 - 1 although ESN is off. RFC 4303 "
                    "§3.3.3 forbids the wrap; receivers with anti-replay drop everything after it."
                ),
                data={"spi": f"{f.spi:08x}", "seq_max": f.seq_max, "esn": False},
            )
        if wraps or esn is True or f.seq_max < limit:
            return None
        left = (1 << 32) - 1 - f.seq_max
        return self.finding(
            "esp-seq-exhaustion",
            frames=[f.last_frame],
            evidence=[
                f"highest sequence number {f.seq_max} (0x{f.seq_max:08x}) at frame {f.last_frame}: "
                f"{left} more before the 32-bit counter ends at 2^32 - 1",
                "ESN "
                + ("is off for this CHILD SA" if esn is False else "is not known (no decrypted IKE for it)"),
            ],
            explanation=(
                f"{_flow(f)} reached sequence number {f.seq_max}: only {left} more fit in 32 bits. Without extended "
                "sequence numbers the SA must be rekeyed before the counter wraps (RFC 4303 §3.3.3); if the "
                "rekey does not happen in time, traffic on it stops."
            ),
            data={"spi": f"{f.spi:08x}", "seq_max": f.seq_max, "esn": esn},
        )
