"""NAT detection (NAT-D hashes recomputed, RFC 7296 §2.23 / RFC 3947 §3.2), forced UDP
encapsulation, NAT mapping changes, ESP not encapsulated through a NAT, missing keepalives."""

from __future__ import annotations

import hashlib
import importlib.util
import random
import sys
from pathlib import Path
from types import ModuleType

import pytest
from corpus import CORPUS, REPO_ROOT, needs_corpus

from ipsecdiag.diagnosis.checks.esp_flows import EspFlowCheck
from ipsecdiag.diagnosis.checks.natt import NatCheck
from ipsecdiag.diagnosis.natd import natd_checks
from ipsecdiag.pipeline import analyze_capture
from ipsecdiag.reconstruction.model import Finding, Report, Severity
from ipsecdiag.reconstruction.options import AnalysisOptions

SYNTH = REPO_ROOT / "sample_pcaps" / "synth"
SAMPLES = REPO_ROOT / "sample_pcaps"
NATT_LAB = CORPUS / "lab" / "ikev2-natt"
NAT_IDS = {"nat-detected", "natt-not-used", "natt-keepalive-missing"}


def _load_synth() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_synth", SYNTH / "make_synth.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["make_synth"] = mod
    spec.loader.exec_module(mod)
    return mod


ms = _load_synth()


def analyse(path: Path, **options: object) -> Report:
    return analyze_capture(path, checks=[NatCheck(), EspFlowCheck()], options=AnalysisOptions(**options))


def of(r: Report, fid: str) -> list[Finding]:
    return [f for f in r.findings if f.id == fid]


def write(cap: object, tmp_path: Path) -> Path:
    p = tmp_path / "cap.pcap"
    cap.write(p)  # type: ignore[attr-defined]
    return p


# -- the hash itself --------------------------------------------------------------------------
def test_natd_hash_is_sha1_of_spis_address_and_port() -> None:
    # RFC 7296 §2.23: SHA-1(SPIi | SPIr | IP | port), port in network order.
    spi_i, spi_r = bytes.fromhex("0102030405060708"), bytes(8)
    want = hashlib.sha1(spi_i + spi_r + bytes([192, 0, 2, 1]) + b"\x01\xf4").digest()
    assert ms.natd_hash(spi_i, spi_r, ("192.0.2.1", 500)) == want


def test_hashes_match_when_nothing_translates(tmp_path: Path) -> None:
    r = analyse(SYNTH / "esp-one-way.pcap")
    (sa,) = r.ike_sas
    checks = natd_checks(sa)
    assert [(c.sender, c.src_ok, c.dst_ok) for c in checks] == [
        ("initiator", True, True),
        ("responder", True, True),
    ]
    assert not of(r, "nat-detected")


# -- strongSwan captures ------------------------------------------------------------------------
@needs_corpus
def test_lab_nat_captured_on_the_private_side() -> None:
    r = analyse(NATT_LAB / "capture.pcap")
    (f,) = of(r, "nat-detected")
    assert f.severity == Severity.INFO
    assert f.data["behind_nat"] == ["initiator"]
    assert f.data["capture_point"] == {"initiator": "inside"}
    # kernel-libipsec: the initiator randomises its source hash although seen from inside its NAT
    assert f.data["forcing_encap"] == ["initiator"]
    assert f.data["nat_or_forced"] == ["responder"]
    assert f.data["float_frame"] == 3
    assert [(d["frame"], d["source_ok"], d["destination_ok"]) for d in f.data["natd"]] == [
        (1, False, True),
        (2, False, False),
    ]
    assert not of(r, "natt-not-used") and not of(r, "natt-keepalive-missing")  # keepalives every 5 s


@needs_corpus
def test_lab_nat_captured_on_the_public_side() -> None:
    r = analyse(NATT_LAB / "capture-gwside.pcap")
    (f,) = of(r, "nat-detected")
    assert f.data["behind_nat"] == ["initiator"]
    assert f.data["capture_point"] == {"initiator": "outside"}
    assert "131" in f.explanation and "34505" in f.explanation
    assert not of(r, "natt-not-used") and not of(r, "natt-keepalive-missing")


@needs_corpus
def test_windows_client_behind_nat() -> None:
    r = analyse(CORPUS / "external" / "zeek-spicy-ipsec" / "traces" / "ipsec_client.pcap")
    (f,) = of(r, "nat-detected")
    assert f.data["behind_nat"] == ["initiator"] and f.data["forcing_encap"] == []


@pytest.mark.parametrize("name", ["ikev2-psk-ok", "ikev2-cbc-sha256-ok", "ikev1-main-psk"])
def test_forced_encapsulation_without_nat_is_info_only(name: str) -> None:
    r = analyse(SAMPLES / f"{name}.pcap")
    (f,) = of(r, "nat-detected")
    assert f.severity == Severity.INFO
    assert f.data["forced_encap"] is True and f.data["behind_nat"] == []
    assert "no NAT" in f.title
    # IKEv1 (RFC 3947): the destination NAT-D recomputed with the negotiated SHA2-256 matches
    assert all(d["destination_ok"] for d in f.data["natd"])
    assert all(x.severity == Severity.INFO for x in r.findings)


# -- synthesized scenarios ----------------------------------------------------------------------
def test_nat_with_plain_esp_is_natt_not_used() -> None:
    r = analyse(SYNTH / "natt-not-used.pcap")
    (nat,) = of(r, "nat-detected")
    assert nat.data["capture_point"] == {"initiator": "inside"}
    (f,) = of(r, "natt-not-used")
    assert f.severity == Severity.ERROR
    assert f.data["spis"] == ["c11e0002", "6a7e0002"]
    assert any("never moved to the NAT-T port" in e for e in f.evidence)


def test_nat_with_udp_encapsulated_esp_is_fine(tmp_path: Path) -> None:
    cap = ms.Capture("x", "", [])
    rng = random.Random(1)
    priv, pub, gw = ("192.168.1.10", 500), ("203.0.113.5", 500), ("198.51.100.20", 500)
    ms._ike_handshake(
        cap, rng, priv, gw, priv, gw, gw, pub, float_ports=(("192.168.1.10", 4500), ("198.51.100.20", 4500))
    )
    ms._esp_flow(cap, rng, priv[0], gw[0], 0x11, list(range(1, 11)), 0.5, 0.2, ports=(4500, 4500))
    ms._esp_flow(
        cap, rng, gw[0], priv[0], 0x22, list(range(1, 11)), 0.55, 0.2, ports=(4500, 4500), outbound=False
    )
    r = analyse(write(cap, tmp_path))
    assert of(r, "nat-detected")[0].data["behind_nat"] == ["initiator"]
    assert not of(r, "natt-not-used") and not of(r, "natt-keepalive-missing")


def test_mapping_change_after_idle_period() -> None:
    r = analyze_capture(SYNTH / "nat-mapping-change.pcap")
    change = [f for f in of(r, "nat-detected") if f.data.get("mapping_change")]
    (c,) = change
    # The responder kept sending to the old mapping and never to the new one (review 2, item 10):
    # the mapping change is the root cause of the one-way ESP and leads the report.
    assert c.severity == Severity.ERROR and c.explains == ["esp-one-way"]
    assert (c.data["old"], c.data["new"]) == ("203.0.113.5:40501", "203.0.113.5:40777")
    (k,) = of(r, "natt-keepalive-missing")
    assert k.data["side"] == "initiator" and k.data["idle_gaps"][0][1] - k.data["idle_gaps"][0][0] == 90.0
    assert set(k.explains) == {"nat-detected", "esp-one-way"}
    assert r.findings[0] is c and r.findings[1].id == "esp-one-way"
    # esp-one-way does not claim the responder is silent or filtered: it sent to the old port
    (one,) = of(r, "esp-one-way")
    assert "does not send" not in one.explanation and "filtered" not in one.cause
    assert one.data["stale_mapping"] == "203.0.113.5:40501" and "keepalive" in one.remediation
    assert "RFC 7296 §2.23" in one.cause and "RFC 3948 §4" in one.cause


def test_ikev1_nat_d_is_worded_as_nat_d_payloads() -> None:
    # RFC 3947 §3.2: IKEv1 NAT-D payloads, not the IKEv2 NAT_DETECTION_*_IP notifies (item 17)
    (v1,) = of(analyse(SAMPLES / "ikev1-main-psk.pcap"), "nat-detected")
    text = " ".join([v1.explanation, *v1.evidence])
    assert "NAT_DETECTION" not in text and "the NAT-D hash of the sender's address does not match" in text
    assert any("RFC 3947 §3.2" in e for e in v1.evidence)
    (v2,) = of(analyse(SAMPLES / "ikev2-psk-ok.pcap"), "nat-detected")
    assert "NAT_DETECTION_SOURCE_IP does not match" in " ".join(v2.evidence)


def _natted_session(tmp_path: Path, keepalive_every: float | None, silence: float, new_port: int) -> Path:
    priv, pub, gw = ("192.168.1.10", 500), ("203.0.113.5", 500), ("198.51.100.20", 500)
    cap = ms.Capture("x", "", [])
    rng = random.Random(2)
    old, gw_t = ("203.0.113.5", 40501), ("198.51.100.20", 4500)
    ms._ike_handshake(cap, rng, priv, gw, pub, gw, gw, pub, float_ports=(old, gw_t))
    ms._esp_flow(cap, rng, old[0], gw[0], 0x31, list(range(1, 11)), 0.5, 0.5, ports=(old[1], 4500))
    ms._esp_flow(
        cap, rng, gw[0], old[0], 0x32, list(range(1, 11)), 0.55, 0.5, ports=(4500, old[1]), outbound=False
    )
    end = 5.0 + silence
    if keepalive_every:
        t = 5.0 + keepalive_every
        while t < end:
            cap.add(t, ms.ipv4(old[0], gw[0], 17, ms.udp(old[1], 4500, b"\xff")))
            t += keepalive_every
    ms._esp_flow(cap, rng, old[0], gw[0], 0x31, list(range(11, 16)), end, 0.5, ports=(new_port, 4500))
    ms._esp_flow(
        cap,
        rng,
        gw[0],
        old[0],
        0x32,
        list(range(11, 16)),
        end + 0.05,
        0.5,
        ports=(4500, new_port),
        outbound=False,
    )
    return write(cap, tmp_path)


def test_keepalives_across_the_silence_are_fine(tmp_path: Path) -> None:
    r = analyse(_natted_session(tmp_path, 20.0, 90.0, 40501))
    assert not of(r, "natt-keepalive-missing")
    assert not [f for f in of(r, "nat-detected") if f.data.get("mapping_change")]


def test_silence_without_keepalives_is_flagged_and_timeout_is_an_option(tmp_path: Path) -> None:
    path = _natted_session(tmp_path, None, 90.0, 40501)
    (k,) = of(analyse(path), "natt-keepalive-missing")
    assert k.explains == []  # no rebinding followed: nothing else to explain
    assert not of(analyse(path, natt_idle_timeout=120.0), "natt-keepalive-missing")


def test_short_pause_is_not_flagged(tmp_path: Path) -> None:
    assert not of(analyse(_natted_session(tmp_path, None, 20.0, 40501)), "natt-keepalive-missing")


def test_rebinding_that_the_peer_follows_is_info(tmp_path: Path) -> None:
    r = analyse(_natted_session(tmp_path, 20.0, 90.0, 40777))
    (c,) = [f for f in of(r, "nat-detected") if f.data.get("mapping_change")]
    assert c.severity == Severity.INFO  # the gateway answers on the new port
    assert not of(r, "esp-one-way")


def test_single_forcing_peer_is_ambiguous(tmp_path: Path) -> None:
    cap = ms.Capture("x", "", [])
    rng = random.Random(3)
    i, r_ = ("192.0.2.10", 500), ("198.51.100.20", 500)
    spi_i, spi_r = rng.randbytes(8), rng.randbytes(8)
    cap.add(
        0.0, ms.ipv4(i[0], r_[0], 17, ms.udp(500, 500, ms.ike_init(rng, spi_i, spi_r, False, i, r_, True)))
    )
    cap.add(
        0.01, ms.ipv4(r_[0], i[0], 17, ms.udp(500, 500, ms.ike_init(rng, spi_i, spi_r, True, r_, i))), False
    )
    rep = analyse(write(cap, tmp_path))
    (f,) = of(rep, "nat-detected")
    assert f.data["nat_or_forced"] == ["initiator"] and f.data["behind_nat"] == []
    assert f.severity == Severity.INFO and "NAT or forced" in f.title


def test_translated_port_makes_it_a_nat(tmp_path: Path) -> None:
    cap = ms.Capture("x", "", [])
    rng = random.Random(4)
    priv, seen, gw = ("192.168.7.7", 500), ("203.0.113.9", 61001), ("198.51.100.20", 500)
    ms._ike_handshake(cap, rng, priv, gw, seen, gw, gw, seen, float_ports=None)
    (f,) = of(analyse(write(cap, tmp_path)), "nat-detected")
    assert f.data["capture_point"] == {"initiator": "outside"}


def test_synthesized_captures_are_reproducible(tmp_path: Path) -> None:
    """The committed files are exactly what make_synth.py builds (deterministic generator)."""
    for name in ms.SCENARIOS:
        cap = ms.build(name, tmp_path)
        assert (tmp_path / f"{name}.pcap").read_bytes() == (SYNTH / f"{name}.pcap").read_bytes(), name
        if cap.keys:
            assert (tmp_path / f"{name}.keys.toml").read_text() == (SYNTH / f"{name}.keys.toml").read_text()


@pytest.mark.parametrize("name", sorted(ms.SCENARIOS))
def test_synthesized_capture_expectations(name: str) -> None:
    """synth.json (written by the generator) is the README's table: what must and must not show."""
    import json

    table = json.loads((SYNTH / "synth.json").read_text())[name]
    if table["keys"]:
        from ipsecdiag.decryption.ikev2 import DecryptionSetup
        from ipsecdiag.keys.load import load_keys
        from ipsecdiag.keys.model import KeyStore

        store = KeyStore()
        store.extend(load_keys(SYNTH / table["keys"]))
        report = analyze_capture(SYNTH / table["pcap"], keys=store, decryption=DecryptionSetup())
    else:
        report = analyze_capture(SYNTH / table["pcap"])
    ids = {f.id for f in report.findings}
    assert set(table["expect"]) <= ids
    assert not set(table["must_not"]) & ids


def test_one_nat_finding_per_conclusion_for_the_same_peers(tmp_path: Path) -> None:
    """A retried IKE_SA_INIT nobody answered adds no second, vaguer NAT finding."""
    cap = ms.Capture("x", "", [])
    rng = random.Random(7)
    i, r_ = ("192.0.2.10", 500), ("198.51.100.20", 500)
    for t0 in (0.0, 10.0):
        spi_i, spi_r = rng.randbytes(8), rng.randbytes(8)
        req = ms.ike_init(rng, spi_i, spi_r, False, i, r_, True)
        cap.add(t0, ms.ipv4(i[0], r_[0], 17, ms.udp(500, 500, req)))
        if t0 == 0.0:
            resp = ms.ike_init(rng, spi_i, spi_r, True, r_, i, True)
            cap.add(t0 + 0.01, ms.ipv4(r_[0], i[0], 17, ms.udp(500, 500, resp)), False)
    rep = analyse(write(cap, tmp_path))
    assert len(rep.ike_sas) == 2
    (f,) = of(rep, "nat-detected")
    assert f.data["forced_encap"] is True
