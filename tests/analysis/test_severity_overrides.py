"""Severity in the report equals the catalogue's unless the check documents why (issue 11).

Every check declares the finding ids it may report at another severity, with the reason; this
test holds that list to the documented allowlist below, and ``Check.finding`` refuses any other
severity, so an undocumented override fails loudly instead of reaching a report."""

from __future__ import annotations

from pathlib import Path

import pytest

from ipsecdiag.diagnosis.base import Check
from ipsecdiag.diagnosis.checks import default_checks
from ipsecdiag.diagnosis.knowledge import CATALOGUE
from ipsecdiag.pipeline import analyze_capture
from ipsecdiag.reconstruction.model import Severity

ROOT = Path(__file__).resolve().parents[2]

# check -> finding ids it may report at a severity other than the catalogue's. Adding one here
# needs the reason in the check's severity_overrides and in the finding's own words.
ALLOWLIST = {
    "certs": {"cert-not-yet-valid", "cert-expired", "cert-id-mismatch", "cert-untrusted"},
    "esp-flows": {"esp-one-way", "esp-missing"},
    "natt": {"nat-detected", "natt-not-used"},
    "notify": {"error-notify"},
    "posture": {"weak-crypto"},
    "proposals": {"ke-group-mismatch", "ike-no-proposal-chosen"},
    "replay": {"esp-replay", "esp-seq-exhaustion"},
    "unanswered": {"ike-unanswered"},
}


def test_overrides_are_the_documented_ones() -> None:
    declared = {c.name: set(c.severity_overrides) for c in default_checks() if c.severity_overrides}
    assert declared == ALLOWLIST
    for c in default_checks():
        for fid, why in c.severity_overrides.items():
            assert fid in c.finding_ids, (c.name, fid)
            assert len(why) > 40, (c.name, fid)  # a reason, not a token


def test_undocumented_override_is_refused() -> None:
    class Quiet(Check):
        name = "quiet"
        finding_ids = ("ike-unanswered",)

    assert CATALOGUE["ike-unanswered"].severity == Severity.ERROR
    with pytest.raises(ValueError, match="documents no reason"):
        Quiet().finding("ike-unanswered", severity=Severity.INFO)
    assert Quiet().finding("ike-unanswered", severity=Severity.ERROR).severity == Severity.ERROR


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "sample_pcaps").glob("*.pcap")))
def test_report_severities_follow_the_catalogue(name: str) -> None:
    allowed = {fid for ids in ALLOWLIST.values() for fid in ids}
    for f in analyze_capture(ROOT / "sample_pcaps" / name).findings:
        assert f.severity == CATALOGUE[f.id].severity or f.id in allowed, (f.id, f.severity)
