"""Process exit status: reflects the result (as httpie's ``--check-status``), not just success."""

from __future__ import annotations

from enum import IntEnum

from .reconstruction.model import Report, Severity


class ExitStatus(IntEnum):
    OK = 0  # no finding at or above --fail-on
    FINDINGS = 1  # at least one finding at or above --fail-on
    ERROR = 2  # bad usage or unreadable input


def status_for(report: Report, fail_on: Severity | None) -> ExitStatus:
    """``fail_on=None`` ("never") always gives OK when the analysis ran."""
    if fail_on is None:
        return ExitStatus.OK
    worst = report.worst_severity()
    if worst is not None and worst >= fail_on:
        return ExitStatus.FINDINGS
    return ExitStatus.OK
