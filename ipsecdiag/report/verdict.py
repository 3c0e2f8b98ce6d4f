"""The one-line verdict per capture, shown before everything else.

Failing: the first error finding (findings are ranked, root causes first) with the IKE SA it
concerns and the notify that says why, e.g. ``IKE SA 10.0.0.1 -> 10.0.0.2 failed:
NO_PROPOSAL_CHOSEN (ike-no-proposal-chosen), see finding 1``. Healthy: what came up and
whether traffic flowed, e.g. ``2 tunnels up, ESP both ways, no problem found``. Warnings are
named too, so a capture with only warnings does not read as clean.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..reconstruction.model import Finding, IkeSaRecord, Report, Severity
from .childsa import child_sa_rows


@dataclass(frozen=True)
class Verdict:
    text: str
    severity: Severity | None  # worst finding shown in the report, None when there is none
    finding: int | None  # 1-based number of the finding it points at


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _sa_of(report: Report, f: Finding) -> IkeSaRecord | None:
    return next((sa for sa in report.ike_sas if sa.key == f.ike_sa), None) if f.ike_sa else None


def _failure(report: Report, f: Finding, n: int) -> str:
    sa = _sa_of(report, f)
    if sa is None:
        return f"{f.title} ({f.id}), see finding {n}"
    who = f"IKE SA {sa.initiator[0]} -> {sa.responder[0]}"
    # The notify that says why, when the finding is about it (an SA can carry several).
    said = " ".join([f.title, f.explanation, *f.evidence])
    why = next((x for x in sa.error_notifies if x in said), f.title)
    if sa.state in ("failed", "incomplete"):
        return f"{who} failed: {why} ({f.id}), see finding {n}"
    if f.id.startswith(("child-", "ts-")):
        return f"CHILD SA of {who} failed: {why} ({f.id}), see finding {n}"
    return f"{who}: {why} ({f.id}), see finding {n}"


def _inferred(report: Report) -> str:
    """How many of the tunnels up were concluded without reading their AUTH payloads (no keys),
    and from what when it is one: the verdict must not read as if it had seen them."""
    up = [sa for sa in report.ike_sas if sa.state in ("established", "deleted")]
    guessed = [sa for sa in up if sa.state_basis == "inferred"]
    if not guessed:
        return ""
    if len(guessed) == 1:
        ev = guessed[0].state_evidence
        what = " from its ESP" if ev.startswith("ESP") else ": " + ev.split(";")[0].split(" (")[0]
        return f" (inferred{what})" if len(up) == 1 else " (1 inferred without keys)"
    return f" ({'all' if len(guessed) == len(up) else len(guessed)} inferred without keys)"


def _traffic(report: Report) -> str:
    """Tunnels up and how ESP flowed: the healthy half of the verdict."""
    up = sum(1 for sa in report.ike_sas if sa.state == "established")
    closed = sum(1 for sa in report.ike_sas if sa.state == "deleted")
    parts = []
    # First requests never answered that a flood or scan summary counts instead of IKE SAs.
    summarised = sum(h.requests for h in report.half_open)
    if not report.ike_sas and not summarised:
        parts.append("no IKE in capture")
    elif up or closed:
        count = up + closed
        gone = " (closed by DELETE)" if closed == count else f" ({closed} closed)" if closed else ""
        parts.append(_plural(count, "tunnel") + " up" + gone + _inferred(report))
    others = len(report.ike_sas) - up - closed
    if others == len(report.ike_sas) and others:
        parts.append(_plural(others, "IKE SA") + " not established")
    elif others:
        parts.append(f"{others} of {_plural(len(report.ike_sas), 'IKE SA')} not established")
    if summarised:
        parts.append(f"{_plural(summarised, 'unanswered IKE request')} summarised")
    rows = [r for r in child_sa_rows(report) if r.packets_in or r.packets_out]
    if not rows:
        parts.append("no ESP" if not report.ah_flows else "AH only")
    else:
        one_way = sum(1 for r in rows if not (r.packets_in and r.packets_out))
        if not one_way:
            parts.append("ESP both ways")
        else:
            parts.append(f"ESP one way only on {one_way} of {_plural(len(rows), 'CHILD SA')}")
    return ", ".join(parts)


def verdict(report: Report) -> Verdict:
    """The verdict over the findings of ``report`` as they are numbered in the report."""
    fs = report.findings
    errors = [i for i, f in enumerate(fs, 1) if f.severity == Severity.ERROR]
    warnings = [i for i, f in enumerate(fs, 1) if f.severity == Severity.WARNING]
    if not report.ike_sas and not report.esp_flows and not report.ah_flows and not report.half_open:
        head = "no IPsec traffic found"
        if not fs:
            return Verdict(head, None, None)
    else:
        head = _traffic(report)
    if errors:
        n = errors[0]
        text = _failure(report, fs[n - 1], n)
        if len(errors) > 1:
            text += f" (+{_plural(len(errors) - 1, 'more error')})"
        up = any(sa.state in ("established", "deleted") for sa in report.ike_sas)
        return Verdict(f"{text}; {head}" if up or report.esp_flows else text, Severity.ERROR, n)
    if warnings:
        n = warnings[0]
        f = fs[n - 1]
        more = f", +{len(warnings) - 1} more" if len(warnings) > 1 else ""
        return Verdict(f"{head}; {_plural(len(warnings), 'warning')}: {f.id}{more}, see finding {n}", Severity.WARNING, n)
    unexplained = any(sa.state in ("failed", "incomplete") for sa in report.ike_sas)
    tail = "no finding explains why" if unexplained else "no problem found"
    nokeys = next((i for i, f in enumerate(fs, 1) if f.id == "missing-keys"), None)
    if nokeys is not None:  # an honest clean bill needs the encrypted part read
        tail += f" (encrypted data not read: no keys, see finding {nokeys})"
    return Verdict(f"{head}, {tail}", Severity.INFO if fs else None, None)
