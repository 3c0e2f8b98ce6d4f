"""Acceptance: every lab capture and every sample yields the diagnosis its ground truth names.

Lab scenarios (``../shared/corpus/lab/*/truth.json``): the first error finding must match the
failure the truth describes (the error notify, where it was sent, and the root cause text for
certificate problems); healthy scenarios must yield no error and no warning. Each scenario is
analysed with the initiator's charon log and, separately, with its Wireshark key tables.
Samples (``sample_pcaps/samples.json``): the required findings are present, the first error is
the required error, nothing else exceeds the allowed severity.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from checks_keyed import LAB, SAMPLES, analyze, first_error, needs_decryption

pytestmark = needs_decryption

_RANK = {"info": 0, "warning": 1, "error": 2}


def expected_first_error(truth: dict[str, Any]) -> str | None:
    """The finding id a scenario's ground truth calls for (None: no fault)."""
    outcome = truth.get("outcome", {})
    if not outcome.get("failure"):
        return None
    cause = (truth.get("root_cause") or "").lower()
    if "not yet valid" in cause or "not valid before" in cause:
        return "cert-not-yet-valid"
    if "expired" in cause:
        return "cert-expired"
    for n in outcome.get("error_notifies") or ():
        name = n.get("notify")
        if name == "NO_PROPOSAL_CHOSEN":
            return (
                "ike-no-proposal-chosen" if n.get("exchange") == "IKE_SA_INIT" else "child-no-proposal-chosen"
            )
        if name == "AUTHENTICATION_FAILED":
            return "auth-failed"
        if name in ("TS_UNACCEPTABLE", "SINGLE_PAIR_REQUIRED"):
            return "ts-unacceptable"
        if name == "INVALID_KE_PAYLOAD":
            return "ke-group-mismatch"
    if "fragment" in cause:
        return "ike-fragment-loss"
    if "dpd" in cause or "dead peer" in cause or "liveness" in cause:
        return "dpd-timeout"
    if "never answered" in cause or "no response" in cause:
        return "ike-unanswered"
    return "unmapped"


def _lab_cases() -> list[Any]:
    if not LAB.is_dir():
        return [
            pytest.param(
                None, None, marks=pytest.mark.skip(reason="shared corpus folder ../shared/corpus not present")
            )
        ]
    cases = []
    for d in sorted(p for p in LAB.iterdir() if (p / "truth.json").is_file()):
        for keys in ("charon-initiator.log", "wireshark-keys"):
            if (d / keys).exists():
                cases.append(pytest.param(d, keys, id=f"{d.name}-{keys.split('-')[0]}"))
    return cases


@pytest.mark.parametrize(("scenario", "keys"), _lab_cases())
def test_lab_scenario_matches_truth(scenario: Path, keys: str) -> None:
    truth = json.loads((scenario / "truth.json").read_text())
    want = expected_first_error(truth)
    if want == "unmapped":
        pytest.skip(f"no finding mapped for this root cause yet: {truth.get('root_cause')}")
    report = analyze(scenario / truth.get("capture", {}).get("file", "capture.pcap"), scenario / keys)
    shown = [(f.id, f.severity.label) for f in report.findings]
    if want is None:
        bad = [s for s in shown if s[1] != "info"]
        assert not bad, f"healthy scenario reports {bad}"
        return
    first = first_error(report)
    assert first is not None and first.id == want, f"expected {want} first, got {shown}"


def _sample_cases() -> list[Any]:
    table = json.loads((SAMPLES / "samples.json").read_text())
    return [pytest.param(name, spec, id=name) for name, spec in table.items()]


@pytest.mark.parametrize(("name", "spec"), _sample_cases())
def test_sample_matches_its_expectation(name: str, spec: dict[str, Any]) -> None:
    report = analyze(SAMPLES / spec["pcap"], SAMPLES / spec["keys"])
    exp = spec["expect"]
    got = [(f.id, f.severity.label) for f in report.findings]
    for req in exp["required"]:
        assert (req["id"], req["severity"]) in got, f"{name}: missing {req}, got {got}"
    errors = [r["id"] for r in exp["required"] if r["severity"] == "error"]
    if errors:
        assert first_error(report).id in errors, f"{name}: first error is {first_error(report).id}, got {got}"
    allowed = {r["id"] for r in exp["required"]} | set(exp["allowed"])
    limit = _RANK[exp["max_other_severity"]]
    extra = [(fid, sev) for fid, sev in got if fid not in allowed and _RANK[sev] > limit]
    assert not extra, f"{name}: unexpected {extra}"


def test_mapping_follows_the_truth_fields() -> None:
    t = {
        "outcome": {
            "failure": "x",
            "error_notifies": [{"notify": "NO_PROPOSAL_CHOSEN", "exchange": "IKE_AUTH"}],
        }
    }
    assert expected_first_error(t) == "child-no-proposal-chosen"
    t = {
        "root_cause": "The responder's certificate is not yet valid",
        "outcome": {
            "failure": "AUTHENTICATION_FAILED",
            "error_notifies": [{"notify": "AUTHENTICATION_FAILED"}],
        },
    }
    assert expected_first_error(t) == "cert-not-yet-valid"
    assert expected_first_error({"outcome": {"failure": None}}) is None
