"""``probe scan`` against Debian's strongSwan (charon) gateways in namespaces the lab creates.

Each gateway gets its own swanctl ``proposals``; the scan (run in the initiator namespace)
must report exactly those transforms, and the proposals it reconstructs must be the
configured ones. The rate limit is measured on the pcapng the scan writes. Needs root,
charon, swanctl, nft (skipped with the reason otherwise); every command has a timeout.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import Lab, PeerConfig, missing_prerequisites, run
from probelab import IPSECDIAG, ROOT, start_gateway
from swanconf import INITIATOR_ADDR, INITIATOR_ID, RESPONDER_ADDR

from ipsecdiag.capture.reader import open_capture
from ipsecdiag.engine.scan_plan import algos_of
from ipsecdiag.protocol.proposal_strings import parse_proposals

_missing = missing_prerequisites(need_nft=True)
pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(bool(_missing), reason="strongSwan lab needs " + ", ".join(_missing)),
]

GATEWAYS = {
    "single": "aes256gcm16-prfsha256-ecp256",
    "two-proposals": "aes128-aes256-sha256-sha1-modp2048-ecp384, aes128gcm16-prfsha384-curve25519",
    "legacy": "3des-sha1-modp1024, aes256-sha512-prfsha512-modp3072-ecp521",
}
RATE = 8.0


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with Lab(tmp_path_factory.mktemp("scan-lab")) as lab:
        yield lab


def scan(lab: Lab, out: Path, *extra: str, max_time: float = 90.0) -> tuple[dict[str, Any], Path, str]:
    out.mkdir(parents=True, exist_ok=True)
    pcapng, js = out / "scan.pcapng", out / "scan.json"
    argv = ["ip", "netns", "exec", lab.ns["cl"], *IPSECDIAG, "probe", "scan", RESPONDER_ADDR, "--rate", f"{RATE:g}"]
    argv += ["--max-time", f"{max_time:g}", "--timeout", "1", "--write", str(pcapng), "--json", str(js), *extra]
    res = run(argv, timeout=max_time + 20, check=False, env={"PYTHONPATH": str(ROOT)})
    assert js.exists(), res.output[-3000:]
    return json.loads(js.read_text()), pcapng, res.output


def configured(text: str) -> tuple[set[str], set[frozenset[str]]]:
    props = parse_proposals(text, protocol="ike")
    labels = {a.label for p in props for a in algos_of(p)}
    return labels, {frozenset(a.label for a in algos_of(p)) for p in props}


def reported(doc: dict[str, Any]) -> tuple[set[str], set[frozenset[str]]]:
    labels = {a["name"] for a in doc["accepted"]}
    return labels, {frozenset(a.label for a in algos_of(p)) for p in parse_proposals(", ".join(doc["proposals"]), protocol="ike")}


def sent_times(pcapng: Path) -> list[float]:
    with open_capture(pcapng) as cap:
        # raw IPv4 (LINKTYPE_RAW): source address at bytes 12-16
        return [ts for _n, ts, _lt, data, _len in cap.frames() if data[12:16] == bytes(map(int, INITIATOR_ADDR.split(".")))]


@pytest.mark.parametrize("name", list(GATEWAYS))
def test_scan_reports_exactly_the_configured_proposals(lab: Lab, tmp_path: Path, name: str) -> None:
    proposals = GATEWAYS[name]
    start_gateway(lab, f"gw-{name}", PeerConfig(proposals=proposals))
    doc, pcapng, output = scan(lab, tmp_path, "--no-ikev1")
    assert doc["complete"], output[-3000:]
    want_labels, want_props = configured(proposals)
    got_labels, got_props = reported(doc)
    assert got_labels == want_labels, output[-3000:]
    assert got_props == want_props, doc["proposals"]
    # nothing configured shows up as rejected, the weak ones are flagged as analyze would
    assert not {a["name"] for a in doc["rejected"]} & want_labels
    if name == "legacy":
        weak = {a["name"] for a in doc["accepted"] if a["weak"]}
        assert {"ENCR_3DES", "AUTH_HMAC_SHA1_96", "PRF_HMAC_SHA1", "MODP_1024"} <= weak
    assert "strongSwan" in " ".join(str(v["name"]) for v in doc["vendor_ids"]) or doc["vendor_ids"] == []
    # no NAT on the lab's path; charon with kernel-libipsec fakes its source NAT-D to force
    # UDP encapsulation ("faking NAT situation" in its log). From our end that looks exactly like
    # a NAT in front of the gateway (RFC 7296 §2.23), so the scan says it cannot tell which.
    assert doc["nat"] == {"local": False, "remote": None, "remote_verdict": "nat-or-forced"}, output[-3000:]
    assert "IKEV2_FRAGMENTATION_SUPPORTED" in doc["notifies"]
    # the rate limit, from the capture's own timestamps
    times = sent_times(pcapng)
    assert len(times) == doc["packets_sent"] > 5
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert min(gaps) >= 1 / RATE - 0.005, min(gaps)
    # IKE_SA_INIT only: never an IKE_AUTH (exchange type 35 at IKE header byte 18, after IPv4+UDP)
    with open_capture(pcapng) as cap:
        assert all(data[28 + 18] == 34 for _n, _ts, _lt, data, _len in cap.frames())


def test_scan_stopped_by_max_time_lists_untested_not_rejected(lab: Lab, tmp_path: Path) -> None:
    """Review #17: --rate 2 --max-time 3 stopped the scan after a few queries, and the result
    called the cipher and PRF the gateway had just chosen rejected."""
    proposals = GATEWAYS["single"]
    start_gateway(lab, "gw-stopped", PeerConfig(proposals=proposals))
    doc, _pcapng, output = scan(lab, tmp_path, "--no-ikev1", "--rate", "2", max_time=3)
    assert doc["complete"] is False and doc["stopped"] == "--max-time reached", output[-2000:]
    want, _ = configured(proposals)
    rejected = {a["name"] for a in doc["rejected"]}
    untested = {a["name"] for a in doc["untested"]}
    accepted = {a["name"] for a in doc["accepted"]}
    assert not rejected & want, rejected & want  # nothing the gateway accepts is called rejected
    assert accepted <= want and untested, doc
    assert "not tested ENCR" in output


def test_ikev1_probes_and_time_bound(lab: Lab, tmp_path: Path) -> None:
    start_gateway(lab, "gw-v1", PeerConfig(proposals=GATEWAYS["single"]))
    doc, _pcapng, output = scan(lab, tmp_path, "--max-time", "30")
    assert set(doc["ikev1"]) == {"main", "aggressive"}, output[-2000:]
    # charon with an IKEv2-only connection answers IKEv1 (the daemon speaks both) with a refusal
    assert all(not v["reveals_hash"] for k, v in doc["ikev1"].items() if isinstance(v, dict))
    assert doc["elapsed"] <= 30 + 1


def test_ikev1_aggressive_psk_gateway_reveals_its_hash_and_retransmits(lab: Lab, tmp_path: Path) -> None:
    # charon refuses Aggressive Mode with PSK unless told it does not care (its option's name)
    insecure = (("i_dont_care_about_security_and_use_aggressive_mode_psk", "yes"),)
    cfg = PeerConfig(version=1, aggressive=True, proposals="aes256-sha256-modp2048", charon_extra=insecure)
    start_gateway(lab, "gw-v1-aggressive", cfg)
    doc, _pcapng, output = scan(lab, tmp_path, "--id", INITIATOR_ID, "--backoff", "6", max_time=40.0)
    v1 = doc["ikev1"]
    assert v1["main"]["chosen"] == "IKE:ENCR_AES_CBC_256/AUTH_HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048/PRE_SHARED_KEY", output[-3000:]
    assert v1["aggressive"]["reveals_hash"], output[-3000:]
    # the lab's charon resends its Aggressive Mode answer after 1 s, 2.4 s, ~4.4 s (timeout 1, base
    # 1.4, with jitter); it does not resend its Main Mode answer
    times = v1.get("retransmissions", {}).get("aggressive", [])
    assert len(times) >= 2 and 0.7 <= times[0] <= 1.3 and 1.9 <= times[1] <= 2.9, times
    fit = v1["retransmission_fit"]["aggressive"]
    assert abs(fit["timeout"] - 1.0) < 0.3 and abs(fit["base"] - 1.4) < 0.3, fit
    # an IKEv1-only gateway accepts no IKEv2 offer
    assert doc["accepted"] == [] and doc["complete"]


def test_large_policy_transforms_exact_pairing_skipped(lab: Lab, tmp_path: Path) -> None:
    # everything charon 5.9.8 accepts by default, written out: per-type results stay exact, the
    # per-cipher pairing (hundreds of round trips) is skipped and said so
    from probe.test_scan_plan import STRONGSWAN_DEFAULT

    start_gateway(lab, "gw-large", PeerConfig(proposals=STRONGSWAN_DEFAULT))
    doc, _pcapng, output = scan(lab, tmp_path, "--no-ikev1", "--rate", "20")
    assert doc["complete"], output[-3000:]
    assert {a["name"] for a in doc["accepted"]} == configured(STRONGSWAN_DEFAULT)[0]
    assert doc["pairing"].startswith("skipped") and doc["round_trips"] <= 100


def test_scan_against_ipsecdiag_responder(lab: Lab, tmp_path: Path) -> None:
    # the project's own responder as the gateway (it keeps a client slot per IKE_SA_INIT SPI, up
    # to 32, even for requests it refused statelessly: a policy small enough to scan in fewer)
    from probelab import Responder, psk_file

    proposals = "aes256gcm16-prfsha256-ecp256"
    if lab.peers.get("responder") is not None:
        lab.peers["responder"].stop()  # charon must not hold the gateway's port 500
    responder = Responder(lab, tmp_path / "responder", ["--psk-file", str(psk_file(tmp_path / "psk")), "--ike", proposals], timeout=60)
    try:
        doc, _pcapng, output = scan(lab, tmp_path, "--no-ikev1", "--rate", "20", max_time=40.0)
    finally:
        responder.stop()
    assert doc["complete"] and doc["round_trips"] <= 30, output[-3000:]
    assert reported(doc) == configured(proposals)
    # the engine does not fake its NAT-D: both hashes match, no NAT and no forced encapsulation
    assert doc["nat"] == {"local": False, "remote": False, "remote_verdict": "none"}


@pytest.mark.parametrize(
    ("extra", "check"),
    [
        # the initiator's order wins: the baseline shows our preference, the sets stay exact
        ((("prefer_configured_proposals", "no"),), "prefer"),
        # one half-open IKE SA (the baseline's) makes charon demand a COOKIE from then on
        ((("cookie_threshold", "1"),), "cookie"),
    ],
)
def test_gateway_behaviours(lab: Lab, tmp_path: Path, extra: tuple[tuple[str, str], ...], check: str) -> None:
    proposals = GATEWAYS["two-proposals"]
    start_gateway(lab, f"gw-{check}", PeerConfig(proposals=proposals, charon_extra=extra))
    doc, _pcapng, output = scan(lab, tmp_path, "--no-ikev1", "--rate", "20")
    assert doc["complete"], output[-3000:]
    assert reported(doc) == configured(proposals)
    if check == "cookie":
        assert doc["cookie_demanded"] and doc["packets_sent"] > doc["round_trips"]
    else:
        assert not doc["cookie_demanded"]
        # the initiator's order: our classic proposal comes first, in it aes256 before aes128,
        # sha256 before sha1, ecp384 before modp2048 (charon's own order picks aes128-sha256-modp2048)
        assert doc["chosen_from_full_offer"] == "aes256-sha256-ecp384"
