"""Problems with the capture or its packets: malformed packets, truncation."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from ...capture.model import raw_seconds, utc_datetime
from ...reconstruction.model import Finding
from ..base import Check, CheckContext

MAX_LINES = 20


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
        from .certs import sent_chains

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


class TimestampCheck(Check):
    """Record times no date can show (a pcapng may claim any 64-bit time): say so once, with
    the frames, since every time in the report for them is shown as raw seconds."""

    name = "timestamps"
    finding_ids = ("capture-health",)

    def run(self, ctx: CheckContext) -> Iterable[Finding]:
        r = ctx.report
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
