"""Certificate failures recorded from real strongSwan peers (root, network namespaces).

Each scenario records a few seconds of a failing IKE_AUTH; the analysis with the initiator's
charon log must rank the certificate problem first, above the AUTHENTICATION_FAILED it caused.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from checks_keyed import analyze, first_error, needs_decryption
from checks_lab import LabRun, make_ec_pki, needs_lab, record_lab
from swanconf import PeerConfig

from ipsecdiag.reconstruction.model import Severity

pytestmark = [pytest.mark.interop, needs_lab, needs_decryption]
PUBKEY = PeerConfig(auth="pubkey")


@pytest.fixture(scope="module")
def outdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("certlab")


def _record(outdir: Path, name: str, **pki_options) -> LabRun:
    return record_lab(
        outdir, name, initiator=PUBKEY, responder=PUBKEY, pki=lambda d: make_ec_pki(d, **pki_options)
    )


def test_responder_certificate_not_yet_valid(outdir: Path) -> None:
    run = _record(
        outdir, "notyetvalid", validity={"responder": (dt.timedelta(hours=2), dt.timedelta(days=30))}
    )
    assert not run.initiated
    r = analyze(run.pcap, run.initiator_log)
    f = first_error(r)
    assert f.id == "cert-not-yet-valid" and f.explains == ["auth-failed"]
    assert f.data["sender"] == "responder" and f.data["verifier"] == "initiator"
    assert 7100 < f.data["skew_seconds"] <= 7200
    auth = next(x for x in r.findings if x.id == "auth-failed")
    # strongSwan's initiator reports the failure in a new INFORMATIONAL request
    assert auth.data["rejecting"] == "initiator"
    assert r.findings.index(auth) > r.findings.index(f)


def test_initiator_certificate_expired(outdir: Path) -> None:
    run = _record(outdir, "expired", validity={"initiator": (dt.timedelta(days=-400), dt.timedelta(days=-3))})
    r = analyze(run.pcap, run.initiator_log)
    f = first_error(r)
    assert (f.id, f.severity, f.data["verifier"]) == ("cert-expired", Severity.ERROR, "responder")
    assert 3 * 86400 - 60 < f.data["expired_seconds"] < 3 * 86400 + 60
    auth = next(x for x in r.findings if x.id == "auth-failed")
    assert auth.data["rejecting"] == "responder"


def test_certificate_from_a_foreign_ca(outdir: Path) -> None:
    run = _record(outdir, "untrusted", foreign_ca="initiator")
    r = analyze(run.pcap, run.initiator_log, ca_files=[str(p) for p in run.cas])
    f = first_error(r)
    assert f.id == "cert-untrusted" and f.explains == ["auth-failed"]
    assert f.data["anchor"].endswith("CN=foreign CA")
    # without the CA files the check cannot tell which CA the CERTREQ hash names
    plain = analyze(run.pcap, run.initiator_log)
    assert first_error(plain).id == "auth-failed"
