"""Repeated attempts: one finding per failure between the same peers, not one per IKE SA.

An initiator that retries, a gateway that keeps rejecting, a scanner, or the same posture problem
on every rekeyed IKE SA makes the checks report the same thing once per IKE SA. After the checks
have run, findings with the same id, the same two peers (addresses of the IKE SA they name) and
the same cause are merged into one that says how many attempts there were, which IKE SAs, their
frames and the first and last time (``data["attempts"]``). A finding whose words are about one
side only (an initiator behind NAT, whichever gateway it talks to) merges over that side, with the
same explanation. This step is generic: no check needs to know about it. Findings that name no IKE SA are left alone (they are already per flow or global).
"""

from __future__ import annotations

import re
from dataclasses import replace

from ..reconstruction.model import Finding, IkeSaRecord, Report, utc_datetime

# How many attempts the evidence line names one by one before it says "and N more".
SHOWN = 5


def _peers(sa: IkeSaRecord) -> tuple[str, str]:
    return (sa.initiator[0], sa.responder[0])


def _names(text: str, addr: str) -> bool:
    return re.search(rf"(?<![\w.:]){re.escape(addr)}(?![\w])", text) is not None


def _about(f: Finding, sa: IkeSaRecord) -> tuple[str, str]:
    """The peers a finding speaks of: both, or one side only when its words name that side's
    address and not the other's (the initiator behind NAT, whichever gateway it talks to). A
    one-sided finding repeats across the other side's peers only with the same explanation."""
    ini, resp = _peers(sa)
    text = " ".join((f.title, f.explanation, f.remediation))
    if _names(text, ini) and not _names(text, resp) and ini != resp:
        return (ini, "")
    if _names(text, resp) and not _names(text, ini) and ini != resp:
        return ("", resp)
    return (ini, resp)


def _span(sa: IkeSaRecord) -> tuple[float, float]:
    times = [t.ts for e in sa.exchanges for m in e.all_messages() for t in m.transmissions]
    if not times:
        return (sa.first_ts, sa.first_ts)
    return (min(times), max(times))


def _time(ts: float) -> str:
    d = utc_datetime(ts)
    return d.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC" if d else f"{ts:.6f} s"


def merge_repeats(report: Report, findings: list[Finding]) -> list[Finding]:
    """Merge the findings that repeat one failure across IKE SAs between the same peers."""
    sas = {sa.key: sa for sa in report.ike_sas}
    groups: dict[tuple[str, tuple[str, str], str, str], list[Finding]] = {}
    order: list[Finding | tuple[str, tuple[str, str], str, str]] = []
    aliases: dict[tuple[str, tuple[str, str], str, str], tuple[str, tuple[str, str], str, str]] = {}
    for f in findings:
        sa = sas.get(f.ike_sa) if f.ike_sa is not None else None
        if sa is None:
            order.append(f)
            continue
        key = (f.id, _peers(sa), f.cause, f.title)
        about = _about(f, sa)
        if about != _peers(sa) and key not in groups:
            # one-sided: joins the same words said of the same side with another peer
            key = aliases.setdefault((f.id, about, f.cause, f.title + "\0" + f.explanation), key)
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(f)
    out: list[Finding] = []
    for item in order:
        if isinstance(item, Finding):
            out.append(item)
            continue
        group = groups[item]
        per_sa = {f.ike_sa for f in group}
        if len(per_sa) < 2:
            out.extend(group)
        else:
            out.append(_merged(group, sas))
    return out


def _merged(group: list[Finding], sas: dict[str, IkeSaRecord]) -> Finding:
    # Time order (not frame order: a merged capture need not be in time order).
    group = sorted(group, key=lambda f: (_span(sas[f.ike_sa or ""])[0], f.frames[:1]))
    first = group[0]
    spans = [_span(sas[f.ike_sa or ""]) for f in group]
    t0, t1 = min(s for s, _ in spans), max(e for _, e in spans)
    ini, resp = _peers(sas[first.ike_sa or ""])
    keys = list(dict.fromkeys(f.ike_sa or "" for f in group))
    inis = list(dict.fromkeys(_peers(sas[k])[0] for k in keys))
    resps = list(dict.fromkeys(_peers(sas[k])[1] for k in keys))
    if len(resps) > 1:  # one-sided (see _about): the initiator with each of the responders
        between = f"of {ini} (with {', '.join(resps)})"
    elif len(inis) > 1:
        between = f"of {resp} (with {', '.join(inis)})"
    else:
        between = f"between {ini} and {resp}"
    attempts = [
        {"ike_sa": f.ike_sa, "frames": f.frames, "first_time": _time(s), "severity": f.severity.label}
        for f, (s, _) in zip(group, spans, strict=True)
    ]
    shown = ", ".join(
        f"{k.split('/')[0][:8]} (frame {f.frames[0]})" if f.frames else k.split("/")[0][:8]
        for k, f in zip(keys[:SHOWN], group, strict=False)
    )
    more = f" and {len(keys) - SHOWN} more" if len(keys) > SHOWN else ""
    summary = (
        f"repeated in {len(keys)} IKE SAs {between}, first {_time(t0)}, last {_time(t1)}: "
        f"{shown}{more}"
    )
    data = dict(first.data)
    data["attempts"] = {
        "count": len(keys),
        "ike_sas": keys,
        "first_time": _time(t0),
        "last_time": _time(t1),
        "attempts": attempts,
    }
    return replace(
        first,
        severity=max(f.severity for f in group),
        frames=sorted({n for f in group for n in f.frames}),
        evidence=[summary, *first.evidence],
        data=data,
        explains=list(dict.fromkeys(e for f in group for e in f.explains)),
    )
