"""The verdict line: healthy and failing captures, over real samples (with their keys)."""

from __future__ import annotations

import pytest
from report_samples import IDS, sample_report

from ipsecdiag.reconstruction.model import Finding, Report, Severity
from ipsecdiag.report.verdict import verdict


@pytest.mark.parametrize(
    ("stem", "text"),
    [
        ("ikev2-psk-ok", "1 tunnel up (closed by DELETE), ESP both ways, no problem found"),
        (
            "ikev2-no-proposal",
            "IKE SA 192.0.2.2 -> 198.51.100.2 failed: NO_PROPOSAL_CHOSEN (ike-no-proposal-chosen), see finding 1",
        ),
        (
            "ikev2-auth-failed",
            "IKE SA 192.0.2.2 -> 198.51.100.2 failed: AUTHENTICATION_FAILED (auth-failed), see finding 1",
        ),
        (
            "ikev2-ts-unacceptable",
            "CHILD SA of IKE SA 192.0.2.2 -> 198.51.100.2 failed: TS_UNACCEPTABLE (ts-unacceptable), "
            "see finding 1; IKE SA up, no CHILD SA (closed by DELETE), no ESP",
        ),
        ("ikev2-invalid-ke", "1 tunnel up (closed by DELETE), ESP both ways; 1 warning: ke-group-mismatch, see finding 1"),
    ],
)
def test_verdict_text(stem: str, text: str) -> None:
    assert verdict(sample_report(stem)).text == text


def test_without_keys_the_clean_bill_says_what_was_not_read() -> None:
    v = verdict(sample_report("ikev2-psk-ok", keyed=False))
    assert v.text.startswith(
        "1 tunnel up (inferred from its ESP), ESP both ways, no problem found (encrypted data not read: no keys"
    )
    v = verdict(sample_report("ikev2-auth-failed", keyed=False))
    assert "no finding explains why" in v.text and "no problem found" not in v.text


@pytest.mark.parametrize("stem", IDS)
def test_verdict_points_at_the_first_error(stem: str) -> None:
    r = sample_report(stem)
    v = verdict(r)
    errors = [i for i, f in enumerate(r.findings, 1) if f.severity == Severity.ERROR]
    if errors:
        assert v.severity == Severity.ERROR and v.finding == errors[0]
        assert f"({r.findings[errors[0] - 1].id}), see finding {errors[0]}" in v.text
    else:
        assert v.severity != Severity.ERROR
    assert "\n" not in v.text and v.text == v.text.strip()


def test_empty_capture() -> None:
    assert verdict(Report()).text == "no IPsec traffic found"
    r = Report(findings=[Finding("capture-truncated", Severity.ERROR, "Capture file truncated", "", "")])
    assert verdict(r).text == "Capture file truncated (capture-truncated), see finding 1"


def test_a_summarised_half_open_flood_is_not_called_no_traffic(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Requests a flood summary counts instead of IKE SAs are IKE traffic the verdict names."""
    from regress.floods import half_open_flood

    from ipsecdiag.pipeline import analyze_capture

    cap = tmp_path / "flood.pcap"
    half_open_flood(cap, 3_000)
    r = analyze_capture(cap)
    text = verdict(r).text
    assert "no IPsec traffic" not in text and "no IKE in capture" not in text, text
    summarised = sum(h.requests for h in r.half_open)
    if summarised:
        assert f"{summarised} unanswered IKE requests summarised" in text
    else:  # kept one by one: named as IKE SAs
        assert "IKE SA" in text
