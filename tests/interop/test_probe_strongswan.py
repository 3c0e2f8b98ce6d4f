"""ipsecdiag's IKEv2 endpoint against Debian's strongSwan (charon, kernel-libipsec) in namespaces.

``probe connect`` in the initiator namespace against a charon gateway: a CHILD SA comes up with
PSK and certificates, AES-GCM and AES-CBC+HMAC-SHA2, ECP-256, MODP-2048 and Curve25519, forced
UDP encapsulation, and IKEv2 fragmentation of an RSA-4096 certificate across a router that drops
IP fragments; it fails with the catalogue's finding id when the gateway is configured so. The
session files decrypt in ``ipsecdiag analyze`` and in tshark. The other way round, a charon
initiator brings a tunnel up against ``ipsecdiag responder``.

Needs root, charon, swanctl, pki, nft (skipped with the reason otherwise). Every command has a
timeout; the probe's own ``--timeout`` bounds each negotiation.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Lab, NetOptions, PeerConfig, Pki, make_pki, missing_prerequisites
from probelab import (
    NO_BIND_SERVICE,
    ProbeRun,
    Responder,
    analyze,
    identities,
    probe,
    psk_file,
    start_gateway,
    start_initiator,
    tshark_decrypted_ids,
)
from swanconf import (
    INITIATOR_ADDR,
    INITIATOR_ID,
    INITIATOR_NET,
    RESPONDER_ADDR,
    RESPONDER_ID,
    RESPONDER_NET,
    ROUTER_GW_ADDR,
)

_missing = missing_prerequisites(need_pki=True, need_nft=True)
pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(bool(_missing), reason="strongSwan lab needs " + ", ".join(_missing)),
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with Lab(tmp_path_factory.mktemp("probe-lab")) as lab:
        yield lab


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("probe-pki"), bits=2048)


def _ok(run_: ProbeRun) -> None:
    assert run_.result.rc == 0, run_.result.output[-3000:]
    assert run_.doc["result"] == "child-sa-up"


def _free_gateway_namespace(lab: Lab) -> None:
    """Stop the gateway charon: its ports are free for ipsecdiag responder, or for nothing."""
    old = lab.peers.pop("responder", None)
    if old is not None:
        old.stop()


def _same_words_as_analyze(run_: ProbeRun, fid: str) -> dict[str, object]:
    """The probe's finding ``fid`` says what ``analyze`` of its own pcapng says (issue 8)."""
    ours = next(f for f in run_.doc["findings"] if f["id"] == fid)
    theirs = next(f for f in analyze(run_.pcapng, run_.keys)["findings"] if f["id"] == fid and f["severity"] == "error")
    assert (ours["title"], ours["explanation"]) == (theirs["title"], theirs["explanation"])
    assert ours["remediation"].startswith(theirs["remediation"])  # (+ what only the probe knows)
    assert all(e in ours["evidence"] for e in theirs["evidence"])
    return ours


def _analyze_ids(run_: ProbeRun) -> list[str]:
    """The finding ids ``analyze`` gives for the session the probe wrote (the same wording)."""
    return [f["id"] for f in analyze(run_.pcapng, run_.keys if run_.keys.exists() else None)["findings"]]


def _psk_args(tmp: Path, psk: str | None = None) -> list[str]:
    return ["--psk-file", str(psk_file(tmp, psk) if psk else psk_file(tmp)), *identities()]


# ----------------------------------------------------------------- CHILD SA up


def test_psk_child_sa_up_matches_the_gateway_and_decrypts(lab: Lab, tmp_path: Path) -> None:
    gw = start_gateway(lab, "gw-psk", PeerConfig())
    run_ = probe(lab, tmp_path, [*_psk_args(tmp_path), "--keep"])
    _ok(run_)
    child = run_.doc["child_sa"]
    assert child["ts_i"] == [INITIATOR_NET] and child["ts_r"] == [RESPONDER_NET]
    sas = gw.list_sas()
    assert "ESTABLISHED" in sas and "INSTALLED" in sas, sas
    # the gateway's SPIs are ours crossed over
    assert child["spi_in"] in sas and child["spi_out"] in sas, (child, sas)
    assert run_.doc["ike_sa"]["spi_i"] in sas.replace("_i", "")
    report = analyze(run_.pcapng, run_.keys)
    assert [sa["state"] for sa in report["ike_sas"]] == ["established"]
    assert report["ike_sas"][0]["keys"] is True
    assert tshark_decrypted_ids(run_.pcapng, run_.wireshark) == {INITIATOR_ID, RESPONDER_ID}


def test_psk_cleanup_deletes_the_sas_on_the_gateway(lab: Lab, tmp_path: Path) -> None:
    gw = start_gateway(lab, "gw-psk-del", PeerConfig())
    run_ = probe(lab, tmp_path, _psk_args(tmp_path))
    _ok(run_)
    assert run_.doc["deleted"] is True
    assert "ESTABLISHED" not in gw.list_sas()
    report = analyze(run_.pcapng, run_.keys)
    assert [sa["state"] for sa in report["ike_sas"]] == ["deleted"]


def test_unprivileged_source_port(lab: Lab, tmp_path: Path) -> None:
    """Without CAP_NET_BIND_SERVICE port 500 is refused in one line; any other source port
    works, NAT-T from a second free port (the gateway sees what a NAT would produce)."""
    start_gateway(lab, "gw-port", PeerConfig())
    denied = probe(lab, tmp_path / "500", _psk_args(tmp_path), wrapper=NO_BIND_SERVICE)
    assert denied.result.rc == 2, denied.result.output[-2000:]
    assert "ports below 1024 need root or CAP_NET_BIND_SERVICE; use --port 0" in denied.result.output
    assert "Traceback" not in denied.result.output and not denied.pcapng.exists()
    run_ = probe(lab, tmp_path / "any", [*_psk_args(tmp_path), "--port", "0"], wrapper=NO_BIND_SERVICE)
    _ok(run_)
    assert not run_.doc["local"].endswith(":500")


@pytest.mark.parametrize(
    ("ike", "esp"),
    [
        ("aes256gcm16-prfsha256-ecp256", "aes256gcm16"),
        ("aes128-sha256-ecp256", "aes128-sha256"),
        ("aes256-sha384-modp2048", "aes256-sha512"),
        ("aes256gcm16-prfsha384-curve25519", "aes128gcm16"),
    ],
    ids=["gcm-ecp256", "cbc-sha256-ecp256", "cbc-sha384-modp2048", "gcm-curve25519"],
)
def test_suites(lab: Lab, tmp_path: Path, ike: str, esp: str) -> None:
    start_gateway(lab, f"gw-{ike}", PeerConfig(proposals=ike, esp_proposals=esp))
    run_ = probe(lab, tmp_path, [*_psk_args(tmp_path), "--ike", ike, "--esp", esp])
    _ok(run_)
    report = analyze(run_.pcapng, run_.keys)
    assert report["ike_sas"][0]["keys"] is True and report["ike_sas"][0]["state"] == "deleted"
    assert tshark_decrypted_ids(run_.pcapng, run_.wireshark) == {INITIATOR_ID, RESPONDER_ID}


def test_gateway_narrows_the_default_selectors(lab: Lab, tmp_path: Path) -> None:
    """Without --ts/--local-ts we ask for everything and the gateway narrows (RFC 7296 §2.9)."""
    start_gateway(lab, "gw-narrow", PeerConfig())
    args = ["--psk-file", str(psk_file(tmp_path)), "--id", INITIATOR_ID, "--remote-id", RESPONDER_ID]
    run_ = probe(lab, tmp_path, args)
    _ok(run_)
    assert run_.doc["child_sa"]["ts_i"] == [INITIATOR_NET] and run_.doc["child_sa"]["ts_r"] == [RESPONDER_NET]


def test_forced_encapsulation(lab: Lab, tmp_path: Path) -> None:
    start_gateway(lab, "gw-encap", PeerConfig())
    run_ = probe(lab, tmp_path, [*_psk_args(tmp_path), "--encap"])
    _ok(run_)
    assert run_.doc["ike_sa"]["encap"] is True and run_.doc["child_sa"]["encap"] is True
    nat_steps = [s["text"] for s in run_.doc["steps"] if s["step"] == "nat"]
    assert nat_steps and "4500" in nat_steps[0]


def _cert_args(pki: Pki) -> list[str]:
    args = ["--cert", str(pki.cert("initiator")), "--key", str(pki.key("initiator")), "--ca", str(pki.cert("ca"))]
    return args + ["--id", INITIATOR_ID, "--remote-id", RESPONDER_ID, "--ts", RESPONDER_NET, "--local-ts", INITIATOR_NET]


def test_certificates(lab: Lab, pki: Pki, tmp_path: Path) -> None:
    start_gateway(lab, "gw-cert", PeerConfig(auth="pubkey"), pki)
    run_ = probe(lab, tmp_path, _cert_args(pki))
    _ok(run_)
    auth = [s["text"] for s in run_.doc["steps"] if s["step"] == "authenticated"]
    assert auth and "certificate" in auth[0]
    assert tshark_decrypted_ids(run_.pcapng, run_.wireshark) == {INITIATOR_ID, RESPONDER_ID}


def test_ecdsa_certificates(lab: Lab, tmp_path: Path) -> None:
    ec = make_pki(tmp_path / "pki-ec", bits=256, key_type="ecdsa")
    start_gateway(lab, "gw-ecdsa", PeerConfig(auth="pubkey"), ec)
    run_ = probe(lab, tmp_path / "probe", _cert_args(ec))
    _ok(run_)
    auth = [s["text"] for s in run_.doc["steps"] if s["step"] == "authenticated"]
    assert auth and "certificate" in auth[0]


def test_gateway_certificate_from_an_untrusted_ca_is_refused(lab: Lab, pki: Pki, tmp_path: Path) -> None:
    """Our side of AUTH: the gateway's certificate does not chain to our --ca, so we refuse it."""
    other = make_pki(tmp_path / "other-ca", bits=2048)
    start_gateway(lab, "gw-cert-other", PeerConfig(auth="pubkey"), pki)
    args = _cert_args(pki)
    args[args.index("--ca") + 1] = str(other.cert("ca"))
    run_ = probe(lab, tmp_path / "probe", args)
    assert run_.result.rc == 1, run_.result.output[-2000:]
    assert run_.finding_ids[0] == "auth-failed", run_.result.output[-2000:]


def _dropped_fragments(lab: Lab) -> int:
    m = re.search(r"frag-off .* counter packets (\d+)", lab.nft_ruleset())
    assert m is not None, lab.nft_ruleset()
    return int(m.group(1))


def test_fragmentation_of_a_large_certificate(tmp_path: Path) -> None:
    """RSA-4096 certificates make IKE_AUTH larger than one IP packet and the router drops every
    IP fragment: with IKEv2 fragmentation (RFC 7383) the CHILD SA comes up and no IP fragment is
    dropped; with it off on the gateway, the probe names the fragmentation black hole."""
    big = make_pki(tmp_path / "pki4096", bits=4096, initiator_padding_sans=8)
    args = _cert_args(big)
    with Lab(tmp_path / "lab", NetOptions(drop_ip_fragments=True)) as lab:
        start_gateway(lab, "gw-frag", PeerConfig(auth="pubkey", fragmentation="yes"), big)
        run_ = probe(lab, tmp_path / "probe", args, timeout=20)
        _ok(run_)
        sent = [s["text"] for s in run_.doc["steps"] if s["step"] == "sent" and "IKE_AUTH" in s["text"]]
        m = re.search(r"(\d+) bytes in (\d+) fragments", sent[0]) if sent else None
        assert m is not None and int(m.group(1)) > 1500 and int(m.group(2)) >= 2, sent
        assert _dropped_fragments(lab) == 0
        assert analyze(run_.pcapng, run_.keys)["ike_sas"][0]["keys"] is True
        assert tshark_decrypted_ids(run_.pcapng, run_.wireshark) == {INITIATOR_ID, RESPONDER_ID}

        start_gateway(lab, "gw-nofrag", PeerConfig(auth="pubkey", fragmentation="no"), big)
        run_ = probe(lab, tmp_path / "probe-nofrag", args, timeout=6)
        assert run_.result.rc == 1, run_.result.output[-2000:]
        assert run_.finding_ids[0] == "ike-fragment-loss", run_.result.output[-2000:]
        assert _dropped_fragments(lab) > 0


@pytest.fixture(scope="module")
def nat_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """The router masquerades the initiator (random source ports): a real NAT on the path."""
    with Lab(tmp_path_factory.mktemp("probe-nat-lab"), NetOptions(nat=True)) as lab:
        yield lab


def test_probe_behind_a_nat(nat_lab: Lab, tmp_path: Path) -> None:
    start_gateway(nat_lab, "gw-nat", PeerConfig())
    run_ = probe(nat_lab, tmp_path, _psk_args(tmp_path))
    _ok(run_)
    assert run_.doc["ike_sa"]["nat_local"] is True  # the gateway saw another address than ours
    nat = [s["text"] for s in run_.doc["steps"] if s["step"] == "nat"]
    assert nat and "in front of us" in nat[0]


def test_strongswan_behind_a_nat_against_ipsecdiag_responder(nat_lab: Lab, tmp_path: Path) -> None:
    _free_gateway_namespace(nat_lab)
    args = ["--psk-file", str(psk_file(tmp_path)), "--id", RESPONDER_ID, "--remote-id", INITIATOR_ID]
    args += ["--ts", RESPONDER_NET, "--remote-ts", INITIATOR_NET, "--once", "--linger", "10"]
    responder = Responder(nat_lab, tmp_path, args, timeout=40)
    try:
        start_initiator(nat_lab, "cl-nat", PeerConfig())
        up = nat_lab.initiate(timeout=15)
        down = nat_lab.terminate(timeout=10)
        rc = responder.wait(timeout=20)
    finally:
        responder.stop()
        nat_lab.peers.pop("initiator").stop()
    out = responder.output()
    assert up.ok and down.ok and rc == 0, up.output[-1500:] + "\n--- responder:\n" + out[-2000:]
    # the client is seen at the router's address: the NAT translated it, and NAT-T still works
    assert f"[{ROUTER_GW_ADDR}:" in out and "a NAT in front of the client, or it forces UDP encapsulation" in out


def test_lost_requests_are_retransmitted(tmp_path: Path) -> None:
    """The router drops every second datagram we send to UDP 4500: the first IKE_AUTH is lost,
    its retransmission (RFC 7296 §2.1, driven by the driver's timers) gets through."""
    with Lab(tmp_path / "lab") as lab:
        lab.nft(
            lab.ns["rt"], "ipd_loss", "type filter hook forward priority 0",
            f"ip saddr {INITIATOR_ADDR} udp dport 4500 numgen inc mod 2 == 0 counter drop",
        )  # fmt: skip
        start_gateway(lab, "gw-loss", PeerConfig())
        run_ = probe(lab, tmp_path / "probe", _psk_args(tmp_path), timeout=10)
        _ok(run_)
        kinds = [(s["step"], s["text"].split(" ")[0]) for s in run_.doc["steps"]]
        assert ("retransmitted", "IKE_AUTH") in kinds, kinds
        assert re.search(r"counter packets [1-9]", lab.nft_ruleset())


# ----------------------------------------------------------------- failures with the right finding


def test_no_proposal_chosen(lab: Lab, tmp_path: Path) -> None:
    start_gateway(lab, "gw-nopro", PeerConfig(proposals="aes128-sha256-modp3072"))
    run_ = probe(lab, tmp_path, [*_psk_args(tmp_path), "--ike", "aes256gcm16-prfsha256-ecp256"])
    assert run_.result.rc == 1, run_.result.output[-2000:]
    assert run_.finding_ids[0] == "ike-no-proposal-chosen"
    # the gateway revealed nothing (RFC 7296 §2.7): point to the scan, invent no proposal
    fix = run_.doc["findings"][0]["remediation"]
    assert "ipsecdiag probe scan" in fix and "proposals =" not in fix
    report = analyze(run_.pcapng, None)  # no keys: IKE_SA_INIT failed
    assert "ike-no-proposal-chosen" in [f["id"] for f in report["findings"]]


def test_no_ike_daemon_on_the_gateway(lab: Lab, tmp_path: Path) -> None:
    """Nothing listens on UDP 500: the kernel's ICMP port unreachable is the evidence."""
    _free_gateway_namespace(lab)
    run_ = probe(lab, tmp_path, _psk_args(tmp_path), timeout=3)
    assert run_.result.rc == 1, run_.result.output[-2000:]
    (f,) = [f for f in run_.doc["findings"] if f["id"] == "ike-unanswered"]
    assert any("ICMP port unreachable from 198.51.100.2" in e for e in f["evidence"]), f["evidence"]


def test_wrong_psk_is_auth_failed(lab: Lab, tmp_path: Path) -> None:
    start_gateway(lab, "gw-auth", PeerConfig())
    run_ = probe(lab, tmp_path, _psk_args(tmp_path, "not-the-gateways-psk"))
    assert run_.result.rc == 1, run_.result.output[-2000:]
    assert run_.finding_ids[0] == "auth-failed"
    f = _same_words_as_analyze(run_, "auth-failed")
    assert any(e.startswith("we sent IDi ") and "SHARED_KEY_MIC" in e for e in f["evidence"]), f["evidence"]


def test_wrong_remote_id_is_auth_failed_with_the_ids_we_sent(lab: Lab, tmp_path: Path) -> None:
    start_gateway(lab, "gw-rid", PeerConfig())
    args = ["--psk-file", str(psk_file(tmp_path)), "--id", INITIATOR_ID, "--remote-id", "wrong.example"]
    run_ = probe(lab, tmp_path, args)
    assert run_.result.rc == 1 and run_.finding_ids[0] == "auth-failed", run_.result.output[-2000:]
    f = run_.doc["findings"][0]
    assert any("IDr wrong.example (FQDN)" in e for e in f["evidence"]), f["evidence"]
    assert "peer config" in f["cause"] and "--remote-id" in f["remediation"]


def test_selectors_the_gateway_refuses(lab: Lab, tmp_path: Path) -> None:
    start_gateway(lab, "gw-ts", PeerConfig())
    args = ["--psk-file", str(psk_file(tmp_path)), "--id", INITIATOR_ID, "--remote-id", RESPONDER_ID]
    run_ = probe(lab, tmp_path, [*args, "--ts", "10.9.0.0/24", "--local-ts", INITIATOR_NET])
    assert run_.result.rc == 1, run_.result.output[-2000:]
    assert run_.finding_ids[0] == "ts-unacceptable"
    assert f"we asked for TSi {INITIATOR_NET} and TSr 10.9.0.0/24" in run_.doc["findings"][0]["evidence"]
    _same_words_as_analyze(run_, "ts-unacceptable")


def test_transport_mode_the_gateway_refuses_names_the_mode(lab: Lab, tmp_path: Path) -> None:
    """kernel-libipsec has no transport mode: charon answers NO_PROPOSAL_CHOSEN to our
    USE_TRANSPORT_MODE request (RFC 7296 §3.10.1) although the ESP proposals match."""
    host = f"{RESPONDER_ADDR}/32"
    start_gateway(lab, "gw-transport", PeerConfig(mode="transport", local_ts=host, remote_ts=f"{INITIATOR_ADDR}/32"))
    args = [*_psk_args(tmp_path), "--mode", "transport", "--ts", host, "--local-ts", f"{INITIATOR_ADDR}/32"]
    run_ = probe(lab, tmp_path, args)
    assert run_.result.rc == 1, run_.result.output[-2000:]
    f = run_.doc["findings"][0]
    assert f["id"] == "child-no-proposal-chosen" and "transport mode" in f["explanation"], f


def test_ke_group_mismatch_then_retry_succeeds(lab: Lab, tmp_path: Path) -> None:
    start_gateway(lab, "gw-ke", PeerConfig(proposals="aes256gcm16-prfsha256-modp2048"))
    run_ = probe(lab, tmp_path, [*_psk_args(tmp_path), "--ike", "aes256gcm16-prfsha256-ecp256-modp2048"])
    _ok(run_)
    assert run_.finding_ids == ["ke-group-mismatch"]
    assert [f["severity"] for f in run_.doc["findings"]] == ["warning"]
    assert "MODP_2048" in run_.doc["ike_sa"]["ke_group"]
    assert "ke-group-mismatch" in _analyze_ids(run_)


# ----------------------------------------------------------------- strongSwan initiates


@pytest.mark.parametrize("auth", ["psk", "pubkey"])
def test_strongswan_initiator_against_ipsecdiag_responder(lab: Lab, pki: Pki, tmp_path: Path, auth: str) -> None:
    _free_gateway_namespace(lab)
    if auth == "psk":
        args = ["--psk-file", str(psk_file(tmp_path))]
    else:
        args = ["--cert", str(pki.cert("responder")), "--key", str(pki.key("responder")), "--ca", str(pki.cert("ca"))]
    args += ["--id", RESPONDER_ID, "--remote-id", INITIATOR_ID]
    args += ["--ts", RESPONDER_NET, "--remote-ts", INITIATOR_NET, "--once", "--linger", "10"]
    responder = Responder(lab, tmp_path, args, timeout=40)
    try:
        start_initiator(lab, f"cl-{auth}", PeerConfig(auth=auth), pki)
        up = lab.initiate(timeout=15)
        sas = lab.list_sas("initiator")
        down = lab.terminate(timeout=10)
        rc = responder.wait(timeout=20)
    finally:
        responder.stop()
        lab.peers.pop("initiator").stop()
    out = responder.output()
    assert up.ok, up.output[-2000:] + "\n--- responder:\n" + out[-2000:]
    assert "ESTABLISHED" in sas and "INSTALLED" in sas, sas
    assert down.ok and rc == 0, out[-2000:]
    assert "child-sa-up" in out and "1 CHILD SA(s) up" in out
    report = analyze(responder.pcapng, responder.pcapng.with_name("responder.keys.toml"))
    assert report["ike_sas"][0]["state"] == "deleted"


def test_strongswan_initiator_with_a_proposal_the_responder_refuses(lab: Lab, tmp_path: Path) -> None:
    _free_gateway_namespace(lab)
    args = ["--psk-file", str(psk_file(tmp_path)), "--id", RESPONDER_ID, "--ike", "aes128-sha256-modp3072"]
    responder = Responder(lab, tmp_path, args, timeout=6)
    try:
        start_initiator(lab, "cl-nopro", PeerConfig(proposals="aes256gcm16-prfsha256-ecp256", retransmit_tries=0))
        up = lab.initiate(timeout=5)
        rc = responder.wait(timeout=15)
    finally:
        responder.stop()
        lab.peers.pop("initiator").stop()
    out = responder.output()
    assert not up.ok and "NO_PROPOSAL_CHOSEN" in up.output, up.output[-2000:]
    assert rc == 1 and "[ike-no-proposal-chosen]" in out and "0 CHILD SA(s) up" in out, out[-2000:]
    flat = " ".join(out.split())  # the findings are wrapped to the terminal width
    assert "the client offered IKE proposals: aes256gcm16-prfsha256-ecp256" in flat, out[-2000:]
    assert "we accept IKE proposals: aes128-sha256-modp3072" in flat
