"""Path MTU and fragmentation: tunnel overhead arithmetic (RFC 4303 §2, RFC 3948 §2.1), ICMP
"too big" for IPsec traffic (RFC 1191), IP-fragmented IKE black holes and IKE fragmentation
(RFC 7383) left unused."""

from __future__ import annotations

from pathlib import Path

import pytest
from corpus import CORPUS, REPO_ROOT, needs_corpus

from ipsecdiag.diagnosis.checks.fragmentation import IkeFragmentationCheck
from ipsecdiag.diagnosis.checks.mtu import MtuCheck, Overhead, overhead_for
from ipsecdiag.diagnosis.checks.unanswered import UnansweredCheck
from ipsecdiag.pipeline import analyze_capture
from ipsecdiag.reconstruction.model import EspFlow, EspTransformInfo, Finding, Report, Severity
from ipsecdiag.reconstruction.options import AnalysisOptions

SYNTH = REPO_ROOT / "sample_pcaps" / "synth"
SAMPLES = REPO_ROOT / "sample_pcaps"
CLIENT = CORPUS / "external" / "zeek-spicy-ipsec" / "traces" / "ipsec_client.pcap"
MTU_IDS = {"icmp-too-big", "tunnel-mtu", "ike-fragment-loss", "ike-fragmentation-unused"}


def of(r: Report, fid: str) -> list[Finding]:
    return [f for f in r.findings if f.id == fid]


def _flow(src: str = "192.0.2.1", encap: str = "udp") -> EspFlow:
    return EspFlow(spi=1, src=src, dst="192.0.2.2", encap=encap)


def _outer(o: Overhead, inner: int) -> int:
    """Size on the wire of an ESP packet carrying ``inner`` bytes (padding to the alignment)."""
    body = inner + 2
    return o.fixed + -(-body // o.align) * o.align


# -- overhead arithmetic --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("proposal", "encap", "src", "fixed", "align", "inner_1500"),
    [
        # AES-GCM-16 (RFC 4106): 8-byte IV, 16-byte ICV, 4-byte alignment; ESP-in-UDP over IPv4
        ({"encr": "ENCR_AES_GCM_16"}, "udp", "192.0.2.1", 20 + 8 + 8 + 8 + 16, 4, 1438),
        # AES-CBC (RFC 3602, 16-byte IV and block) + HMAC-SHA1-96 (RFC 2404), plain ESP
        (
            {"encr": "ENCR_AES_CBC", "integ": "AUTH_HMAC_SHA1_96"},
            "none",
            "192.0.2.1",
            20 + 8 + 16 + 12,
            16,
            1438,
        ),
        # 3DES (RFC 2451, 8-byte IV and block) + HMAC-SHA2-256-128 (RFC 4868), IPv6 outer
        (
            {"encr": "ENCR_3DES", "integ": "AUTH_HMAC_SHA2_256_128"},
            "none",
            "2001:db8::1",
            40 + 8 + 8 + 16,
            8,
            1422,
        ),
        # ChaCha20-Poly1305 (RFC 7634): 8-byte IV, 16-byte tag
        ({"encr": "ENCR_CHACHA20_POLY1305"}, "udp", "192.0.2.1", 20 + 8 + 8 + 8 + 16, 4, 1438),
    ],
)
def test_overhead_and_largest_inner_packet(
    proposal: dict[str, str], encap: str, src: str, fixed: int, align: int, inner_1500: int
) -> None:
    o = overhead_for(_flow(src, encap), proposal)
    assert (o.fixed, o.align, o.assumed) == (fixed, align, False)
    inner = o.max_inner(1500)
    assert inner == inner_1500
    assert _outer(o, inner) <= 1500 < _outer(o, inner + 1)


def test_unknown_algorithm_is_assumed_and_said_so() -> None:
    o = overhead_for(_flow(), None)
    assert o.assumed and "assumed" in o.algorithm
    keyed = _flow()
    keyed.esp_transform = EspTransformInfo("ENCR_AES_GCM_16", iv=8, icv=16, align=4)
    assert overhead_for(keyed, None).fixed == 60


# -- icmp-too-big and tunnel-mtu ------------------------------------------------------------------
def test_icmp_too_big_for_esp_and_ike() -> None:
    r = analyze_capture(SYNTH / "icmp-too-big.pcap", checks=[MtuCheck()])
    esp, ike = of(r, "icmp-too-big")
    assert esp.data["mtu"] == 1400 and esp.data["count"] == 3 and esp.frames == [2, 5, 8]
    assert esp.data["inner_mtu"] == 1326 and esp.data["mss"] == 1286
    assert "ESP SPI 0xc0de0001" in esp.title and esp.severity == Severity.WARNING
    assert ike.data["quoted"].startswith("IKE SA with initiator SPI") and ike.frames == [25]
    (t,) = of(r, "tunnel-mtu")
    assert t.severity == Severity.INFO
    assert (t.data["path_mtu"], t.data["path_mtu_source"]) == (1400, "reported by ICMP")
    assert t.data["largest_outer"] == 1438 and t.data["inner_mtu"] == 1326


def test_tunnel_mtu_only_when_informative() -> None:
    r = analyze_capture(SAMPLES / "ikev2-psk-ok.pcap", checks=[MtuCheck()])
    assert r.findings == []  # small pings, no ICMP, no --path-mtu
    r = analyze_capture(SAMPLES / "ikev2-psk-ok.pcap", checks=[MtuCheck()], options=AnalysisOptions(path_mtu=1400))
    assert len(of(r, "tunnel-mtu")) == 2  # one per direction
    assert all(f.data["path_mtu_source"] == "given with --path-mtu" for f in r.findings)


@pytest.mark.parametrize(
    "name", ["ikev2-psk-ok", "ikev2-cbc-sha256-ok", "ikev1-main-psk", "ikev2-unanswered"]
)
def test_healthy_and_unrelated_samples_have_no_mtu_findings(name: str) -> None:
    r = analyze_capture(SAMPLES / f"{name}.pcap")
    assert not {f.id for f in r.findings} & MTU_IDS


# -- ike-fragment-loss / ike-fragmentation-unused ---------------------------------------------------
def _frag_checks(path: Path) -> Report:
    return analyze_capture(path, checks=[UnansweredCheck(), IkeFragmentationCheck()])


def _assert_black_hole(r: Report) -> Finding:
    (loss,) = of(r, "ike-fragment-loss")
    (unanswered,) = of(r, "ike-unanswered")
    assert loss.severity == Severity.ERROR and loss.explains == ["ike-unanswered"]
    assert loss.ike_sa == unanswered.ike_sa
    ids = [f.id for f in r.findings]
    assert ids.index("ike-fragment-loss") < ids.index("ike-unanswered")
    return loss


def test_frag_blackhole_sample() -> None:
    r = _frag_checks(SAMPLES / "ikev2-frag-blackhole.pcap")
    loss = _assert_black_hole(r)
    assert loss.data["exchanges"] == ["IKE_AUTH#1"]
    assert any("IKE_SA_INIT" in e for e in loss.evidence)  # the smaller message that was answered
    (unused,) = of(r, "ike-fragmentation-unused")
    assert unused.data["fragmentation_supported"] == {"initiator": False, "responder": False}


@needs_corpus
def test_windows_client_three_fragment_ike_auth() -> None:
    r = _frag_checks(CLIENT)
    loss = _assert_black_hole(r)
    assert any("in 3 IP fragments each" in e for e in loss.evidence)
    assert any("sent 3x" in e for e in loss.evidence)


def test_fragments_missing_in_the_capture() -> None:
    r = _frag_checks(SYNTH / "ike-fragments-lost.pcap")
    (loss,) = of(r, "ike-fragment-loss")
    assert loss.data["incomplete_datagrams"] == 2  # the third one is cut by the end of the capture
    assert 3 in loss.frames and 4 in loss.frames


@needs_corpus
@pytest.mark.parametrize("scenario", ["ikev2-fragmentation", "ikev2-cert-ok", "ikev2-psk-ok"])
def test_ike_fragmentation_in_use_is_not_flagged(scenario: str) -> None:
    """RFC 7383 fragments are separate datagrams, not IP fragments."""
    r = _frag_checks(CORPUS / "lab" / scenario / "capture.pcap")
    assert r.findings == []


def _keyed(name: str, **options: object) -> Report:
    from ipsecdiag.decryption.ikev2 import DecryptionSetup
    from ipsecdiag.keys.load import load_keys
    from ipsecdiag.keys.model import KeyStore

    store = KeyStore()
    store.extend(load_keys(SAMPLES / f"{name}.charon.log"))
    return analyze_capture(
        SAMPLES / f"{name}.pcap", keys=store, decryption=DecryptionSetup(), options=AnalysisOptions(**options)
    )


@pytest.mark.parametrize(
    ("name", "algorithm", "inner"),
    [
        # ESP-in-UDP/IPv4: 20 + 8 + 8 + IV 8 + ICV 16 = 60 fixed, 4-byte alignment
        ("ikev2-psk-ok", "ENCR_AES_GCM_16", (1400 - 60) // 4 * 4 - 2),
        # 20 + 8 + 8 + IV 16 + ICV 16 = 68 fixed, 16-byte alignment
        ("ikev2-cbc-sha256-ok", "ENCR_AES_CBC/AUTH_HMAC_SHA2_256_128", (1400 - 68) // 16 * 16 - 2),
    ],
)
def test_tunnel_mtu_uses_the_negotiated_algorithm(name: str, algorithm: str, inner: int) -> None:
    r = _keyed(name, path_mtu=1400)
    found = of(r, "tunnel-mtu")
    assert len(found) == 2
    assert {(f.data["algorithm"], f.data["inner_mtu"], f.data["mss"]) for f in found} == {
        (algorithm, inner, inner - 40)
    }
    assert not {f.id for f in r.findings} & {"esp-one-way", "esp-missing", "esp-unknown-spi"}
