"""A libreswan pluto log never holds IKEv1 IKE SA keys (pluto keeps them inside NSS): given for
an IKEv1 capture, the key findings say so and point at a source that has them, instead of the
strongSwan-only advice (diagnosis/keyadvice.py)."""

from __future__ import annotations

import lzma
from pathlib import Path

from checks_keyed import SAMPLES
from corpus import REPO_ROOT

from ipsecdiag.keys.load import load_key_sources
from ipsecdiag.pipeline import analyze_capture
from ipsecdiag.reconstruction.model import Finding, Report

KEYS = REPO_ROOT / "tests" / "keys" / "data"


def _pluto_log(tmp_path: Path) -> Path:
    out = tmp_path / "pluto.log"  # libreswan 4.10, plutodebug="crypt private", an IKEv2 tunnel
    out.write_bytes(lzma.decompress((KEYS / "pluto-4.10-gcm.log.xz").read_bytes()))
    return out


def _analyze(pcap: Path, *keys: Path) -> Report:
    loaded = load_key_sources(keys)
    return analyze_capture(pcap, keys=loaded.store)


def _by_id(r: Report, fid: str) -> Finding:
    return next(f for f in r.findings if f.id == fid)


def test_a_pluto_log_for_an_ikev1_capture_is_named_as_the_reason(tmp_path: Path) -> None:
    log = _pluto_log(tmp_path)
    r = _analyze(SAMPLES / "ikev1-main-psk.pcap", log)
    assert r.key_formats == {str(log): "pluto"}
    for fid in ("missing-keys", "keys-unmatched"):
        f = _by_id(r, fid)
        said = " ".join(f.evidence)
        assert f"{log}: a libreswan pluto log, and pluto logs no IKEv1 IKE SA keys" in said, fid
        assert "libreswan's pluto cannot give the IKEv1 IKE SA keys" in f.remediation
        assert "pluto log" in f.cause


def test_no_pluto_advice_for_ikev2_or_other_key_sources(tmp_path: Path) -> None:
    r = _analyze(KEYS / "charon-vs-pluto-gcm.pcap", _pluto_log(tmp_path))  # pluto, IKEv2: its keys fit
    assert all("pluto logs no IKEv1" not in " ".join(f.evidence) for f in r.findings)
    r = _analyze(SAMPLES / "ikev1-main-psk.pcap", SAMPLES / "ikev1-main-psk.charon.log")
    assert r.key_formats[str(SAMPLES / "ikev1-main-psk.charon.log")] == "strongswan"
    assert all("pluto" not in f.remediation for f in r.findings if f.id != "missing-keys")
    r = _analyze(SAMPLES / "ikev1-main-psk.pcap")  # no keys at all: the catalogue's advice
    f = _by_id(r, "missing-keys")
    assert "pluto logs no IKEv1" not in " ".join(f.evidence) and "charon log at level 4" in f.remediation
