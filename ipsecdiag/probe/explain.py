"""The probe's verdict in ``analyze``'s words: run the analyser over the probe's own session.

The probe knows which Notify ended the negotiation; ``analyze`` of the written pcapng with its
keys knows more (it decrypts IKE_AUTH: the identities, the AUTH method, the selectors offered)
and words it per check (diagnosis/checks/). Running the same pipeline over the datagrams the
probe recorded, with the keys it negotiated, makes the live finding and ``analyze`` of the
``--write`` output agree word for word, without a second copy of the explanation code.
"""

from __future__ import annotations

import dataclasses

from ipsecdiag.keys.model import KeyStore
from ipsecdiag.probe.record import SessionRecord
from ipsecdiag.reconstruction.model import Finding, Severity

# Findings whose analyze check says more than the probe can from the Notify alone.
ANALYZED = frozenset({"auth-failed", "ts-unacceptable", "child-no-proposal-chosen"})


def analyze_findings(record: SessionRecord) -> list[Finding]:
    """``analyze``'s findings for the recorded session (decrypted with the session's keys)."""
    from ipsecdiag.pipeline import analyze_frames

    report = analyze_frames(record.frames(), keys=KeyStore(list(record.keys)), source_name="probe session")
    return list(report.findings)


def _merge(ours: Finding, theirs: Finding) -> Finding:
    """``analyze``'s texts and evidence, plus the probe's own evidence lines it lacks."""
    evidence = list(theirs.evidence) + [e for e in ours.evidence if e not in theirs.evidence]
    cause = theirs.cause
    if "peer config" in ours.cause and "peer config" not in cause:
        cause = f"{cause} {ours.cause}"  # strongSwan: AUTHENTICATION_FAILED also for unknown IDs
    # what only the probe knows: the IDr it asked for (strongSwan refuses unknown IDs the same way)
    extra = [part.strip() for part in ours.remediation.split(";") if "--remote-id" in part]
    remediation = theirs.remediation + (f" Also {extra[0]}." if extra and "--remote-id" not in theirs.remediation else "")
    return dataclasses.replace(
        ours,
        title=theirs.title,
        explanation=theirs.explanation,
        cause=cause,
        remediation=remediation,
        evidence=evidence,
        frames=sorted(set(ours.frames) | set(theirs.frames)),
    )


def explain(findings: list[Finding], record: SessionRecord) -> list[Finding]:
    """``findings`` with those in :data:`ANALYZED` worded as ``analyze`` words them.

    A finding the analyser does not reproduce (no keys, nothing decryptable) stays the probe's;
    an analyser failure never costs the probe its verdict.
    """
    if not any(f.id in ANALYZED for f in findings):
        return findings
    try:
        theirs = analyze_findings(record)
    except Exception:  # noqa: BLE001 - the probe's own finding stands; analyze of the file will say more
        return findings
    out = []
    for f in findings:
        match = [t for t in theirs if t.id == f.id and t.severity >= Severity.ERROR]
        keep_mode = any("transport mode" in e for e in f.evidence)  # the probe knows the mode asked
        out.append(_merge(f, match[0]) if f.id in ANALYZED and match and not keep_mode else f)
    return out


__all__ = ["ANALYZED", "analyze_findings", "explain"]
