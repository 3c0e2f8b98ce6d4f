"""The check protocol: each diagnosis is a small class that owns its finding ids.

Checks run after reconstruction over the finished :class:`Report` (results are data), read
what they need from it and return findings. Options are the typed :class:`AnalysisOptions`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from ..reconstruction.model import Finding, Report, Severity
from ..reconstruction.options import DEFAULT_OPTIONS, AnalysisOptions
from ..wire.jsontypes import Json
from .knowledge import CATALOGUE


@dataclass
class CheckContext:
    report: Report
    options: AnalysisOptions = DEFAULT_OPTIONS


class Check:
    """Base class. Subclasses set ``name`` and ``finding_ids`` and implement :meth:`run`."""

    name: ClassVar[str] = ""
    finding_ids: ClassVar[tuple[str, ...]] = ()
    # Finding ids this check may report at a severity other than the catalogue's, each with the
    # reason, which the finding's own words must say too (issue 11: "severity in the report
    # equals the catalogue's unless the check documents why"). Any other severity is refused.
    severity_overrides: ClassVar[dict[str, str]] = {}

    def run(self, ctx: CheckContext) -> Iterable[Finding]:
        raise TypeError(f"{type(self).__name__} does not implement run()")

    def finding(
        self,
        fid: str,
        *,
        frames: Iterable[int] = (),
        evidence: Iterable[str] = (),
        explanation: str | None = None,
        remediation: str | None = None,
        severity: Severity | None = None,
        title: str | None = None,
        cause: str | None = None,
        data: Json | None = None,
        ike_sa: str | None = None,
        explains: Iterable[str] = (),
    ) -> Finding:
        if fid not in self.finding_ids:
            raise ValueError(f"check {self.name} does not own finding id {fid}")
        entry = CATALOGUE[fid]
        if severity is not None and severity != entry.severity and fid not in self.severity_overrides:
            raise ValueError(
                f"check {self.name} reports {fid} as {severity.label}, the catalogue says "
                f"{entry.severity.label}, and the check documents no reason (severity_overrides)"
            )
        return Finding(
            id=fid,
            severity=entry.severity if severity is None else severity,
            title=title or entry.title,
            explanation=explanation or entry.meaning,
            remediation=remediation or entry.remediation,
            frames=sorted(set(frames)),
            evidence=list(evidence),
            cause=cause if cause is not None else entry.causes,
            check=self.name,
            data=data or {},
            ike_sa=ike_sa,
            explains=list(explains),
        )
