"""The CLI side of the IKE-level checks: `explain` knows every id they emit; `analyze --ca`."""

from __future__ import annotations

import json

import pytest
from checks_keyed import EXTERNAL, LAB, analyze, needs_decryption, needs_v1_decryption
from corpus import needs_corpus
from typer.testing import CliRunner

from ipsecdiag.cli import app
from ipsecdiag.diagnosis.checks.auth import AuthCheck
from ipsecdiag.diagnosis.checks.certs import CertCheck, sent_chains
from ipsecdiag.diagnosis.checks.dpd import DpdCheck
from ipsecdiag.diagnosis.checks.notify import ErrorNotifyCheck
from ipsecdiag.diagnosis.checks.posture import PostureCheck
from ipsecdiag.diagnosis.checks.proposals import ProposalCheck
from ipsecdiag.diagnosis.checks.selectors import SelectorCheck
from ipsecdiag.diagnosis.knowledge import CATALOGUE

MY_CHECKS = (ProposalCheck, AuthCheck, SelectorCheck, CertCheck, PostureCheck, DpdCheck, ErrorNotifyCheck)
MY_IDS = sorted({fid for c in MY_CHECKS for fid in c.finding_ids})


@pytest.mark.parametrize("fid", MY_IDS)
def test_explain_every_emitted_id(fid: str) -> None:
    res = CliRunner().invoke(app, ["explain", fid])
    assert res.exit_code == 0, res.output
    entry = CATALOGUE[fid]
    assert f"{fid}: {entry.title}" in res.output
    assert "Severity" in res.output and entry.severity.label in res.output


def test_every_id_belongs_to_one_check() -> None:
    owners = [fid for c in MY_CHECKS for fid in c.finding_ids]
    assert len(owners) == len(set(owners))


def test_ca_option_rejects_missing_and_bogus_files(tmp_path) -> None:
    pcap = tmp_path / "x.pcap"
    pcap.write_bytes(b"")
    res = CliRunner().invoke(app, ["analyze", str(pcap), "--ca", str(tmp_path / "nope.pem")])
    assert res.exit_code == 2 and "--ca" in res.output
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("hello")
    res = CliRunner().invoke(app, ["analyze", str(pcap), "--ca", str(bogus)])
    assert res.exit_code == 2 and "not a certificate" in res.output


@needs_corpus
@needs_decryption
def test_analyze_with_ca_on_a_healthy_certificate_capture() -> None:
    lab = LAB / "ikev2-cert-ok"
    res = CliRunner().invoke(
        app,
        [
            "analyze",
            str(lab / "capture.pcap"),
            "--keys",
            str(lab / "charon-initiator.log"),
            "--ca",
            str(lab / "certs" / "ca.crt"),
            "--json",
            "-",
        ],
    )
    assert res.exit_code == 0, res.output
    findings = json.loads(res.output)["findings"]
    assert not [f for f in findings if f["id"].startswith("cert-") or f["severity"] != "info"]


@needs_corpus
@needs_v1_decryption
def test_ikev1_certificates_are_read_and_match_their_ids() -> None:
    ws = EXTERNAL / "wireshark-testsuite"
    r = analyze(ws / "ikev1-certs.pcap", ws / "ikev1_decryption_table")
    chains = [c for sa in r.ike_sas for c in sent_chains(sa)]
    assert [(c.sender, c.id_text) for c in chains] == [
        ("initiator", "ID 192.168.12.118"),
        ("responder", "ID 172.16.1.103"),
    ]
    assert all(len(c.certs) == 1 for c in chains)
    # both certificates were valid in 2012 and carry their IKE identity as an iPAddress SAN
    assert not [f for f in r.findings if f.id.startswith("cert-")]
