"""``ipsecdiag explain`` for notify numbers and names that IKEv1 and IKEv2 use differently
(RFC 7296 §3.10.1 against RFC 2408 §3.14.1 and the IPsec DOI, RFC 2407 §4.6.3)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from ipsecdiag.cli import app
from ipsecdiag.diagnosis.knowledge import CATALOGUE, NOTIFY_HELP
from ipsecdiag.diagnosis.notify_explain import V1_NOTIFY_HELP
from ipsecdiag.wire.registry import NotifyType, V1NotifyType

runner = CliRunner()


def explain(key: str) -> str:
    res = runner.invoke(app, ["explain", key], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    return res.stdout


def test_ikev1_doi_status_number_is_not_described_as_ikev2() -> None:
    out = explain("24578")  # RFC 2407 §4.6.3.3 INITIAL-CONTACT
    assert "INITIAL_CONTACT" in out and "IKEv1 notify message type 24578" in out
    assert "IKEv2" not in out and "16384" not in out


@pytest.mark.parametrize(
    ("number", "v2", "v1"),
    [
        ("1", "UNSUPPORTED_CRITICAL_PAYLOAD", "INVALID_PAYLOAD_TYPE"),
        ("7", "INVALID_SYNTAX", "INVALID_EXCHANGE_TYPE"),
        ("17", "INVALID_KE_PAYLOAD", "INVALID_KEY_INFORMATION"),
        ("16384", "INITIAL_CONTACT", "CONNECTED"),
    ],
)
def test_number_with_two_meanings_shows_both_labelled(number: str, v2: str, v1: str) -> None:
    out = explain(number)
    lines = out.splitlines()
    i2 = next(i for i, line in enumerate(lines) if line.startswith("IKEv2") and v2 in line)
    i1 = next(i for i, line in enumerate(lines) if line.startswith("IKEv1") and v1 in line)
    assert i2 < i1
    assert f"IKEv2 notify message type {number} " in out and f"IKEv1 notify message type {number} " in out


def test_number_with_one_meaning_in_both_is_shown_once() -> None:
    out = explain("14")
    assert out.count("NO_PROPOSAL_CHOSEN") == 1 and "same meaning in both" in out
    assert "ike-no-proposal-chosen" in out


@pytest.mark.parametrize("key", ["INVALID_ID_INFORMATION", "INVALID-ID-INFORMATION", "invalid-id-information", "18"])
def test_ikev1_invalid_id_information_points_to_its_finding(key: str) -> None:
    out = explain(key)
    assert "IKEv1 notify message type 18" in out
    assert "ts-unacceptable" in out and "no catalogue entry" not in out


def test_rfc2408_hyphen_spelling_and_name_in_both_versions() -> None:
    out = explain("INITIAL-CONTACT")
    assert "type 16384 in IKEv2, 24578 in IKEv1" in out


def test_v1_help_uses_registry_names_and_real_findings() -> None:
    for name, info in V1_NOTIFY_HELP.items():
        assert name in V1NotifyType.__members__, name
        # a name IKEv2 shares with the same number means the same there: NOTIFY_HELP has it
        assert name not in NotifyType.__members__ or NotifyType[name] != V1NotifyType[name], name
        assert info.finding == "" or info.finding in CATALOGUE, name
    for info in NOTIFY_HELP.values():
        assert info.finding in CATALOGUE


def test_unknown_number_is_a_usage_error() -> None:
    res = runner.invoke(app, ["explain", "99999"])
    assert res.exit_code == 2
