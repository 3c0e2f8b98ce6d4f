"""Real strongSwan peers in network namespaces: record scenarios and check what is on the wire.

The recording tests need root, charon and friends and are skipped otherwise (the reason names
what is missing). Each recording takes a few seconds; every subprocess in the harness has its
own timeout, so a hung charon fails the test instead of hanging it.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from harness import missing_prerequisites
from pcapcheck import BACKENDS, Summary
from recordings import SCENARIOS, Expectation, Recording, pcap_frame_count, record
from swanconf import INITIATOR_ADDR, RESPONDER_ADDR, PeerConfig, strongswan_conf, swanctl_conf

SAMPLES = Path(__file__).resolve().parents[2] / "sample_pcaps"

_missing = missing_prerequisites(need_nft=True)
needs_lab = pytest.mark.skipif(bool(_missing), reason="strongSwan lab needs " + ", ".join(_missing))
# ipsecdiag's own capture layer where it exists, scapy always: the two cross-check each other
_have_decoder = importlib.util.find_spec("ipsecdiag.capture.decode") is not None
backends = pytest.mark.parametrize(
    "backend",
    [
        pytest.param(
            "ipsecdiag", marks=pytest.mark.skipif(not _have_decoder, reason="no ipsecdiag.capture.decode")
        ),
        "scapy",
    ],
)


def _summaries(pcap: Path) -> dict[str, Summary]:
    names = ["ipsecdiag", "scapy"] if _have_decoder else ["scapy"]
    return {name: BACKENDS[name](pcap) for name in names}


# ------------------------------------------------------------------ recordings (root)


@pytest.fixture(scope="module")
def healthy(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    return record("ikev2-psk-ok", tmp_path_factory.mktemp("psk-ok"))


@pytest.mark.interop
@needs_lab
@backends
def test_healthy_tunnel_has_ike_and_esp_both_ways(healthy: Recording, backend: str) -> None:
    assert healthy.initiate.ok, healthy.initiate.output
    assert healthy.ping is not None and " 0% packet loss" in healthy.ping.output
    summary = BACKENDS[backend](healthy.pcap)
    requests, responses = summary.exchanges(response=False), summary.exchanges(response=True)
    for exchange in ("IKE_SA_INIT", "IKE_AUTH"):
        assert exchange in requests and exchange in responses
    # the lab's terminate at the end
    assert "INFORMATIONAL" in requests and "INFORMATIONAL" in responses
    # IKE floats to 4500 after IKE_SA_INIT (forced UDP encapsulation)
    assert {m.dport for m in summary.ike if m.exchange == "IKE_AUTH"} == {4500}
    assert summary.esp_directions() == {(INITIATOR_ADDR, RESPONDER_ADDR), (RESPONDER_ADDR, INITIATOR_ADDR)}
    assert sorted(summary.esp.values()) == [10, 10]  # one echo request and reply per ping


@pytest.mark.interop
@needs_lab
def test_healthy_recording_logs_keys_and_sas(healthy: Recording) -> None:
    log = healthy.initiator_log.read_text()
    for marker in ("Sk_ei secret", "Sk_er secret", "encryption initiator key", "adding inbound ESP SA"):
        assert marker in log
    assert "ipd-lab-" not in log  # the lab's temp dir is replaced by <run>
    assert "ESTABLISHED" in healthy.sas_initiator and "INSTALLED" in healthy.sas_initiator
    assert healthy.responder_log is not None and "Sk_ei secret" in healthy.responder_log.read_text()
    assert healthy.seconds < 20


@pytest.mark.interop
@needs_lab
def test_no_proposal_chosen_in_ike_sa_init(tmp_path: Path) -> None:
    rec = record("ikev2-no-proposal", tmp_path)
    assert not rec.initiate.ok
    for name, summary in _summaries(rec.pcap).items():
        assert [(m.exchange, m.response) for m in summary.ike] == [
            ("IKE_SA_INIT", False),
            ("IKE_SA_INIT", True),
        ], name
        assert summary.ike[1].notifies == ("NO_PROPOSAL_CHOSEN",), name
        assert summary.esp == {}, name
    assert "NO_PROPOSAL_CHOSEN" in rec.initiator_log.read_text()


@pytest.mark.interop
@needs_lab
def test_unanswered_ike_sa_init_is_retransmitted_then_abandoned(tmp_path: Path) -> None:
    rec = record("ikev2-unanswered", tmp_path)
    assert not rec.initiate.ok
    assert rec.responder_log is None
    for name, summary in _summaries(rec.pcap).items():
        # retransmit_tries = 3: the request and three retransmissions, same SPI and message id
        assert summary.exchanges() == ["IKE_SA_INIT"] * 4, name
        assert not any(m.response for m in summary.ike), name
        assert len({(m.spi_i, m.message_id) for m in summary.ike}) == 1, name
    assert "giving up after 3 retransmits" in rec.initiator_log.read_text()
    assert rec.seconds < 20


# ------------------------------------------------------------------ no root needed


def test_swanctl_conf_roles_and_secrets() -> None:
    init = swanctl_conf(PeerConfig(psk='p"s\\k', remote_ts="10.3.0.0/24", dpd_delay=5), "initiator")
    assert f"remote_addrs = {RESPONDER_ADDR}" in init
    assert "remote_ts = 10.3.0.0/24" in init and "dpd_delay = 5s" in init
    assert 'secret = "p\\"s\\\\k"' in init
    resp = swanctl_conf(PeerConfig(auth="pubkey", version=1), "responder")
    assert "remote_addrs = %any" in resp and "certs = responder.crt" in resp
    assert "version = 1" in resp and "secrets" not in resp
    assert resp.count("{") == resp.count("}")


def test_strongswan_conf_logs_keys_to_instance_dir(tmp_path: Path) -> None:
    conf = strongswan_conf(PeerConfig(retransmit_tries=2), tmp_path)
    assert f"path = {tmp_path}/charon.log" in conf
    assert "ike = 4" in conf and "chd = 4" in conf and "kernel-libipsec" in conf
    assert "retransmit_tries = 2" in conf
    assert conf.count(f"unix://{tmp_path}/run/charon.vici") == 2


def test_expectation_check() -> None:
    exp = Expectation(required=(("ike-no-proposal-chosen", "error"),), allowed=("weak-crypto",))
    assert (
        exp.check([("ike-no-proposal-chosen", "error"), ("weak-crypto", "warning"), ("nat-detected", "info")])
        == []
    )
    assert exp.check([("ike-no-proposal-chosen", "warning")]) == ["missing ike-no-proposal-chosen (error)"]
    assert exp.check([("ike-no-proposal-chosen", "error"), ("esp-one-way", "error")]) == [
        "unexpected esp-one-way (error)"
    ]


def test_committed_samples_match_catalogue() -> None:
    manifest = json.loads((SAMPLES / "samples.json").read_text())
    assert set(manifest) <= set(SCENARIOS)
    for name in (
        "ikev2-psk-ok",
        "ikev2-no-proposal",
        "ikev2-invalid-ke",
        "ikev2-unanswered",
        "ikev1-main-psk",
    ):
        assert name in manifest
    readme = (SAMPLES / "README.md").read_text()
    for name, entry in manifest.items():
        pcap = SAMPLES / entry["pcap"]
        assert pcap.stat().st_size == entry["bytes"] < 100_000
        assert pcap_frame_count(pcap) == entry["frames"]
        assert entry["established"] == SCENARIOS[name].established
        log = (SAMPLES / entry["keys"]).read_text()
        # keys exist once IKE_SA_INIT completed; these two never got that far
        if name not in ("ikev2-no-proposal", "ikev2-unanswered"):
            marker = "encryption key Ka" if SCENARIOS[name].initiator.version == 1 else "Sk_ei secret"
            assert marker in log, name
        assert "[DMN] Starting IKE charon daemon" in log.splitlines()[0] and "ipd-lab-" not in log
        assert f"`{name}.pcap`" in readme
