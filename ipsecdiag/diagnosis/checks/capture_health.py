"""Problems with the capture or its packets: malformed packets, truncation."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

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
