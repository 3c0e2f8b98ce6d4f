"""The one-line verdict per capture, shown before everything else.

Failing: the first error finding (findings are ranked, root causes first) with the IKE SA it
concerns and the notify that says why, e.g. ``IKE SA 10.0.0.1 -> 10.0.0.2 failed:
NO_PROPOSAL_CHOSEN (ike-no-proposal-chosen), see finding 1``. Healthy: what came up and
whether traffic flowed, e.g. ``2 tunnels up, ESP both ways, no problem found``. Warnings are
named too, so a capture with only warnings does not read as clean.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ..reconstruction.model import Finding, IkeSaRecord, Report, Severity
from ..reconstruction.sa_state import CHILD_EXCHANGES, child_setup_times, last_auth
from ..wire.registry import ExchangeType
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


def _explained(f: Finding, fs: list[Finding]) -> bool:
    """``f`` is a consequence another finding explains (``explains``, same IKE SA when both
    name one: the rule the ranking groups them by)."""
    return any(
        g is not f and f.id in g.explains and (g.ike_sa is None or f.ike_sa is None or g.ike_sa == f.ike_sa)
        for g in fs
    )


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


def _inferred(sas: list[IkeSaRecord]) -> str:
    """How many of these IKE SAs were concluded up without reading their AUTH payloads (no keys),
    and from what when it is the only one: the verdict must not read as if it had seen them."""
    guessed = [sa for sa in sas if sa.state_basis == "inferred"]
    if not guessed:
        return ""
    if len(sas) == 1:
        ev = guessed[0].state_evidence
        return "inferred from its ESP" if ev.startswith("ESP") else "inferred: " + ev.split(";")[0].split(" (")[0]
    return f"{'all' if len(guessed) == len(sas) else len(guessed)} inferred without keys"


def _childless(sa: IkeSaRecord, owned: set[str]) -> bool:
    """The capture shows that this IKE SA set up no CHILD SA (a tunnel is a CHILD SA): IKEv2
    with its IKE_AUTH response read (a refused CHILD SA, RFC 7296 §2.21.2, leaves the IKE SA
    up) and no CREATE_CHILD_SA left unread; IKEv1 without a completed Quick Mode (its exchange
    type is in the clear header). No ESP of its own either."""
    if sa.child_sas or sa.key in owned:
        return False
    if sa.version == 1:
        p1 = any(e.message_id == 0 for e in sa.exchanges)
        return p1 and not child_setup_times(sa)  # no Quick Mode the responder answered
    auth = [e for e in sa.exchanges if e.exchange_type == ExchangeType.IKE_AUTH and e.response is not None]
    unread = [
        e
        for e in sa.exchanges
        if e.exchange_type == ExchangeType.CREATE_CHILD_SA and e.response is not None and not e.response.decrypted
    ]
    return bool(auth) and all(e.response is not None and e.response.decrypted for e in auth) and not unread


def _has_child(sa: IkeSaRecord, owned: set[str]) -> bool:
    """A CHILD SA of this IKE SA is in the capture: read from its exchanges, carrying ESP, or
    (IKEv1) a Quick Mode the responder answered, whose only outcome is IPsec SAs."""
    if sa.child_sas or sa.key in owned:
        return True
    return sa.version == 1 and bool(child_setup_times(sa))


def _lineage(sa: IkeSaRecord, by_key: dict[str, IkeSaRecord]) -> Iterator[IkeSaRecord]:
    """``sa`` and the IKE SAs it was rekeyed from: their CHILD SAs moved to it (RFC 7296 §2.18)."""
    seen: set[str] = set()
    cur: IkeSaRecord | None = sa
    while cur is not None and cur.key not in seen:
        seen.add(cur.key)
        yield cur
        cur = by_key.get(cur.rekeyed_from) if cur.rekeyed_from else None


def _child_exchange_in_capture(sa: IkeSaRecord) -> bool:
    """Whether an exchange that sets up CHILD SAs (IKE_AUTH, CREATE_CHILD_SA; IKEv1 Quick Mode)
    is in the capture, so that a CHILD SA not seen was there but encrypted."""
    if sa.version == 1:
        return any(e.type == "QUICK_MODE" for e in sa.exchanges)
    return any(e.exchange_type in CHILD_EXCHANGES for e in sa.exchanges)


def _auth_unread(sa: IkeSaRecord) -> bool:
    auth = last_auth(sa) if sa.version == 2 else None
    return auth is not None and auth.response is not None and not auth.response.decrypted


_SETUP = (ExchangeType.IKE_SA_INIT, ExchangeType.IKE_AUTH)  # IKEv2's initial exchanges


def _predates(sa: IkeSaRecord) -> bool:
    """Set up before the capture began: none of its initial exchanges (IKE_SA_INIT and IKE_AUTH,
    IKEv1 phase 1) is in the capture, only later ones. Left ``incomplete``, no answered later
    exchange showed it up (sa_state.py), and nothing in the capture shows it failed either."""
    if sa.version == 2:
        return bool(sa.exchanges) and not any(e.exchange_type in _SETUP for e in sa.exchanges)
    return bool(sa.exchanges) and not any(e.message_id == 0 for e in sa.exchanges)


def _open(report: Report, sa: IkeSaRecord) -> bool:
    """An incomplete IKE SA whose outcome the capture does not hold: still negotiating at its
    end, or set up before its start. Neither is a failure."""
    return sa.state == "incomplete" and (_pending(report, sa) or _predates(sa))


def _pending(report: Report, sa: IkeSaRecord) -> bool:
    """Still setting up: its last request (IKE_SA_INIT, IKE_AUTH, IKEv1 phase 1) was sent just
    before the capture ended, so it is in flight, not failed."""
    end = report.source.last_ts
    return end is not None and any(
        (e.exchange_type in _SETUP if e.version == 2 else e.message_id == 0) and e.unanswered and not e.unanswered_at(end)
        for e in sa.exchanges[-1:]
    )


def _closed(n: int, closed: int) -> str:
    return " (closed by DELETE)" if closed == n else f" ({closed} closed)" if closed else ""


def _traffic(report: Report) -> str:
    """Tunnels up and how ESP flowed: the healthy half of the verdict. A tunnel is an IKE SA
    with a CHILD SA: one whose CHILD SA was refused is "IKE SA up, no CHILD SA"; one whose
    liveness checks went unanswered (dpd-timeout) is lost, not up."""
    lost = {f.ike_sa for f in report.findings if f.id == "dpd-timeout" and f.ike_sa}
    owned = {r.ike_sa for r in child_sa_rows(report) if r.ike_sa}
    live = [sa for sa in report.ike_sas if sa.state in ("established", "deleted")]
    bare = [sa for sa in live if sa.key not in lost and _childless(sa, owned)]
    # an IKE SA rekeyed into one still here is the same tunnel: its CHILD SAs move to the new
    # IKE SA (RFC 7296 §2.18)
    keys = {sa.key for sa in live}
    tunnels = [sa for sa in live if sa.key not in lost and sa not in bare and not keys & set(sa.rekeyed_to)]
    # No CHILD SA read (its exchange encrypted, no keys) and no ESP of its own, nor of the IKE
    # SAs it was rekeyed from: the IKE SA is up, but whether it carries a tunnel the capture
    # does not say (RFC 6023 allows none).
    by_key = {sa.key: sa for sa in report.ike_sas}
    unseen = [sa for sa in tunnels if not any(_has_child(a, owned) for a in _lineage(sa, by_key))]
    tunnels = [sa for sa in tunnels if sa not in unseen]
    parts = []
    # First requests never answered that a flood or scan summary counts instead of IKE SAs.
    summarised = sum(h.requests for h in report.half_open)
    if not report.ike_sas and not summarised:
        parts.append("no IKE in capture")
    if tunnels:
        closed = sum(1 for sa in tunnels if sa.state == "deleted")
        guessed = _inferred(tunnels)
        parts.append(
            _plural(len(tunnels), "tunnel") + " up" + _closed(len(tunnels), closed) + (f" ({guessed})" if guessed else "")
        )
    if unseen:
        closed = sum(1 for sa in unseen if sa.state == "deleted")
        guessed = _inferred(unseen)
        what = "IKE SA up" if len(unseen) == 1 else f"{len(unseen)} IKE SAs up"
        read = {any(_child_exchange_in_capture(a) for a in _lineage(sa, by_key)) for sa in unseen}
        why = "encrypted" if read == {True} else "not in the capture" if read == {False} else "encrypted or not captured"
        parts.append(what + _closed(len(unseen), closed) + (f" ({guessed})" if guessed else "") + f", CHILD SA not seen ({why})")
    if bare:
        closed = sum(1 for sa in bare if sa.state == "deleted")
        what = "IKE SA up, no CHILD SA" if len(bare) == 1 else f"{len(bare)} IKE SAs up, no CHILD SA"
        parts.append(what + _closed(len(bare), closed))
    if lost & {sa.key for sa in live}:
        n = len(lost & {sa.key for sa in live})
        guessed = _inferred([sa for sa in live if sa.key in lost])
        parts.append(f"{_plural(n, 'tunnel')} lost (peer stopped answering{'; up ' + guessed if guessed else ''})")
    rest = [sa for sa in report.ike_sas if sa not in live]
    # answered IKE_AUTH that could not be read: the capture shows no outcome (sa_state.py)
    unknown = [sa for sa in rest if sa.state == "incomplete" and _auth_unread(sa)]
    pending = [sa for sa in rest if sa.state == "incomplete" and sa not in unknown and _pending(report, sa)]
    before = [sa for sa in rest if sa.state == "incomplete" and sa not in unknown + pending and _predates(sa)]
    redirected = [sa for sa in rest if sa.state == "redirected"]
    failed = len(rest) - len(unknown) - len(pending) - len(before) - len(redirected)
    for n, what in (
        (failed, "not established"),
        (len(unknown), "outcome unknown (IKE_AUTH answered, encrypted)"),
        (len(before), "set up before the capture, state unknown (no answered exchange seen)"),
        (len(pending), "still negotiating when the capture ended"),
        (len(redirected), "redirected to another gateway"),
    ):
        if n:
            of = "" if n == len(report.ike_sas) else f"{n} of "
            parts.append(f"{of}{_plural(len(report.ike_sas) if of else n, 'IKE SA')} {what}")
    if summarised:
        parts.append(f"{_plural(summarised, 'unanswered IKE request')} summarised")
    rows = [r for r in child_sa_rows(report) if r.packets_in or r.packets_out]
    if not rows:
        parts.append("no ESP" if not report.ah_flows else "AH only")
    else:
        one_way = sum(1 for r in rows if not (r.packets_in and r.packets_out))
        if not one_way:
            parts.append("ESP both ways")
        elif any(f.id == "esp-one-way" for f in report.findings):
            parts.append(f"ESP one way only on {one_way} of {_plural(len(rows), 'CHILD SA')}")
        else:
            # esp-one-way declined to judge (too few packets, or too little capture after them
            # for the replies): say what was seen, not that it is a problem no finding carries
            parts.append(f"ESP seen one way on {one_way} of {_plural(len(rows), 'CHILD SA')} (too little to judge)")
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
        # a consequence another finding explains is listed, but is not another problem
        more = [i for i in errors[1:] if not _explained(fs[i - 1], fs)]
        if more:
            text += f" (+{_plural(len(more), 'more error')})"
        up = any(sa.state in ("established", "deleted") for sa in report.ike_sas)
        return Verdict(f"{text}; {head}" if up or report.esp_flows else text, Severity.ERROR, n)
    if warnings:
        n = warnings[0]
        f = fs[n - 1]
        more = f", +{len(warnings) - 1} more" if len(warnings) > 1 else ""
        return Verdict(f"{head}; {_plural(len(warnings), 'warning')}: {f.id}{more}, see finding {n}", Severity.WARNING, n)
    # an SA still negotiating at the capture end, or set up before its start, needs no explanation
    unexplained = any(
        sa.state == "failed" or (sa.state == "incomplete" and not _open(report, sa)) for sa in report.ike_sas
    )
    tail = "no finding explains why" if unexplained else "no problem found"
    nokeys = next((i for i, f in enumerate(fs, 1) if f.id == "missing-keys"), None)
    if nokeys is not None:  # an honest clean bill needs the encrypted part read
        tail += f" (encrypted data not read: no keys, see finding {nokeys})"
    return Verdict(f"{head}, {tail}", Severity.INFO if fs else None, None)
