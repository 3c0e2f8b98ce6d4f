"""Issue 11's states and causes on real strongSwan exchanges recorded here (root, namespaces).

Each test records one failure between two charons of the harness (tcpdump on the router, the
initiator's level-4 log as the key file) and reads ``ipsecdiag analyze --json`` as a network
engineer would: is the IKE SA's state true, does the first error name the cause and the side?
Every recording takes 1-4 s; the whole module well under a minute.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from analysis.checks_lab import make_ec_pki
from failure_lab import EAP_PLUGINS, Rec, analyze_json, eap_edits, plugin_available, record
from harness import Lab, make_pki, missing_prerequisites, run
from swanconf import INITIATOR_ID, PeerConfig

_missing = missing_prerequisites(need_pki=True, need_nft=True)
pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(bool(_missing), reason="strongSwan lab needs " + ", ".join(_missing)),
]
SAMPLES = Path(__file__).resolve().parents[2] / "sample_pcaps"


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("states")


def _report(rec: Rec, *extra: str) -> dict[str, Any]:
    rc, doc, err = analyze_json(rec.pcap, "--keys", str(rec.initiator_log), *extra)
    assert rc in (0, 1) and doc, err[-2000:]
    return doc


def _first_error(doc: dict[str, Any]) -> dict[str, Any]:
    return next(f for f in doc["findings"] if f["severity"] == "error")


def _state(doc: dict[str, Any]) -> str:
    [sa] = doc["ike_sas"]
    return sa["state"]


def test_psk_mismatch_is_a_failed_ike_sa_rejected_by_the_responder(out: Path) -> None:
    rec = record(out, "psk-mismatch", initiator=PeerConfig(), responder=PeerConfig(psk="not-the-same-psk"))
    assert not rec.initiated
    doc = _report(rec)
    assert _state(doc) == "failed"
    f = _first_error(doc)
    assert f["id"] == "auth-failed", f
    assert (f["data"]["rejecting"], f["data"]["rejected"], f["data"]["kind"]) == ("responder", "initiator", "psk")
    assert "pre-shared key" in f["explanation"] and "198.51.100.2" in f["explanation"]
    assert "secrets" in f["remediation"]  # where the PSK lives


def test_initiator_rejecting_the_responders_certificate_fails_the_ike_sa(out: Path) -> None:
    """The responder's certificate comes from a CA the initiator does not trust: the responder
    established, the initiator sends AUTHENTICATION_FAILED in a new INFORMATIONAL (§2.21.2)."""
    pki = make_ec_pki(out / "pki-foreign", foreign_ca="responder")
    cfg = PeerConfig(auth="pubkey")
    rec = record(out, "responder-untrusted", initiator=cfg, responder=cfg, pki=pki)
    assert not rec.initiated
    doc = _report(rec)
    assert _state(doc) == "failed"
    [auth] = [f for f in doc["findings"] if f["id"] == "auth-failed"]
    assert (auth["data"]["rejecting"], auth["data"]["rejected"]) == ("initiator", "responder")
    assert any("INFORMATIONAL" in e and "AUTHENTICATION_FAILED" in e for e in auth["evidence"])
    assert any("2.21.2" in e for e in auth["evidence"])
    # the CHILD SA negotiated in that IKE_AUTH is not reported as installed
    _, text, _ = _text(rec.pcap, "--keys", str(rec.initiator_log))
    children = text.split("\nCHILD SAs", 1)[-1].split("\n\n", 1)[0]
    assert "IKE SA not authenticated" in children and "installed" not in children, text
    # with the CA files the untrusted issuer is named and explains the AUTHENTICATION_FAILED
    doc = _report(rec, "--ca", str(pki.cert("ca")), "--ca", str(pki.cert("foreign-ca")))
    f = _first_error(doc)
    assert f["id"] == "cert-untrusted" and f["data"]["anchor"].endswith("CN=foreign CA"), f


def _text(pcap: Path, *args: str) -> tuple[int, str, str]:
    argv = [sys.executable, "-m", "ipsecdiag", "analyze", str(pcap), *args, "--no-pager"]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False, env=_env())
    return p.returncode, p.stdout, p.stderr


def _env() -> dict[str, str]:
    return {**os.environ, "COLUMNS": "120"}


needs_mschapv2 = pytest.mark.skipif(
    not plugin_available("eap-mschapv2"),
    reason="strongSwan eap-mschapv2 plugin missing (Debian package libcharon-extauth-plugins)",
)


def _eap(out: Path, name: str, password: str) -> Rec:
    pki = make_pki(out / f"pki-{name}", key_type="ecdsa", bits=256)  # CA + server cert with `pki`
    cfg = PeerConfig(auth="pubkey", charon_extra=(("load", EAP_PLUGINS),))
    return record(out, name, initiator=cfg, responder=cfg, pki=pki, edits=eap_edits(password))


@needs_mschapv2
def test_eap_mschapv2_wrong_password_is_said_as_such(out: Path) -> None:
    rec = _eap(out, "eap-wrong", "not-the-password")
    assert not rec.initiated
    doc = _report(rec)
    assert _state(doc) == "failed"
    f = _first_error(doc)
    assert f["id"] == "auth-failed", f
    assert f["data"]["eap_error"] == 691 and f["data"]["eap_user"] == INITIATOR_ID
    # the EAP server (responder) rejected the client, although the client sent the notify
    assert (f["data"]["rejecting"], f["data"]["rejected"]) == ("responder", "initiator")
    assert "wrong password" in f["title"] and INITIATOR_ID in f["title"]
    assert "198.51.100.2" in f["explanation"] and "DIGITAL_SIGNATURE" not in f["explanation"]
    assert "not a certificate" in f["cause"]
    assert not [x for x in doc["findings"] if x["id"].startswith("cert-")]
    # EAP dissected in the JSON and the ladder
    packets = [
        p
        for ex in doc["ike_sas"][0]["exchanges"]
        for m in (ex["request"], ex["response"])
        if m
        for p in m.get("details", {}).get("eap_packets", [])
    ]
    assert [p["type"] for p in packets][:3] == ["IDENTITY", "IDENTITY", "MSCHAPV2"], packets
    assert any(p.get("mschapv2_opcode") == "Failure" and "E=691" in p["summary"] for p in packets), packets
    _, text, _ = _text(rec.pcap, "--keys", str(rec.initiator_log), "--ladder")
    assert "EAP Request/MSCHAPV2 Failure E=691" in text and f"Response/IDENTITY '{INITIATOR_ID}'" in text


@needs_mschapv2
def test_eap_mschapv2_right_password_is_established(out: Path) -> None:
    from failure_lab import EAP_RIGHT_PASSWORD

    rec = _eap(out, "eap-ok", EAP_RIGHT_PASSWORD)
    assert rec.initiated, rec.initiate_output[-2000:]
    doc = _report(rec)
    assert _state(doc) == "established"
    assert not [f for f in doc["findings"] if f["severity"] == "error"], doc["findings"]


_TRANSPORT = PeerConfig(mode="transport", local_ts="dynamic", remote_ts="dynamic")
# a second child `host` in transport mode beside the tunnel-mode `net` (both peers)
_HOST_CHILD = (
    "    children {\n",
    "    children {\n      host {\n        local_ts = dynamic\n        remote_ts = dynamic\n"
    "        esp_proposals = aes256gcm16\n        mode = transport\n      }\n",
)


def test_transport_mode_refused_after_a_tunnel_is_said_to_be_the_mode(out: Path) -> None:
    """The tunnel CHILD SA comes up in IKE_AUTH; a transport-mode CHILD SA with the same ESP
    algorithms is refused in CREATE_CHILD_SA (kernel-libipsec: "IPsec SA: unsupported mode")."""

    def second_child(lab: Lab) -> dict[str, Any]:
        res = lab.peer("initiator").swanctl("--initiate", "--ike", "c", "--child", "host", "--timeout", "5", timeout=10)
        return {"rc": res.rc}

    edits = {"initiator": [_HOST_CHILD], "responder": [_HOST_CHILD]}
    rec = record(out, "mode-refused", initiator=PeerConfig(), responder=PeerConfig(), edits=edits, action=second_child)
    assert rec.initiated and rec.extra["rc"] != 0
    assert "unsupported mode" in rec.responder_log.read_text()
    doc = _report(rec)
    assert _state(doc) == "established"
    f = _first_error(doc)
    assert f["id"] == "child-no-proposal-chosen" and f["data"]["refused_options"] == ["USE_TRANSPORT_MODE"], f
    assert "transport mode" in f["title"]
    assert "mode = tunnel" in f["remediation"] and "esp_proposals" not in f["remediation"]
    assert not any("different connection" in e for e in f["evidence"])


def test_transport_mode_alone_keeps_the_ike_sa_and_names_the_mode(out: Path) -> None:
    """The only CHILD SA asks for transport mode in IKE_AUTH: NO_PROPOSAL_CHOSEN next to the
    responder's AUTH, so the IKE SA is established (RFC 7296 §2.21.2); nothing in the capture
    shows what the responder accepts, so the mode is named as the suspect."""
    rec = record(out, "transport-only", initiator=_TRANSPORT, responder=_TRANSPORT)
    assert not rec.initiated
    doc = _report(rec)
    assert _state(doc) == "established"
    f = _first_error(doc)
    assert f["id"] == "child-no-proposal-chosen", f
    assert "The IKE SA itself was set up" in f["explanation"]
    assert any("transport mode" in e and "mode = tunnel" in e for e in f["evidence"]), f["evidence"]
    assert "mode = tunnel" in f["remediation"]


def test_transport_mode_against_a_tunnel_responder(out: Path) -> None:
    """Initiator transport mode, responder tunnel mode, both with the peers' own addresses as
    selectors: charon answers TS_UNACCEPTABLE ("conflicts with IKE traffic"), keeping the IKE SA."""
    tunnel = PeerConfig(local_ts="dynamic", remote_ts="dynamic")
    rec = record(out, "transport-vs-tunnel", initiator=_TRANSPORT, responder=tunnel)
    assert not rec.initiated and "conflicts with IKE traffic" in rec.responder_log.read_text()
    doc = _report(rec)
    assert _state(doc) == "established"
    f = _first_error(doc)
    assert f["id"] == "ts-unacceptable", f
    assert any("host-to-host" in e and "USE_TRANSPORT_MODE" in e for e in f["evidence"]), f["evidence"]
    assert "mode = transport" in f["remediation"] and "kernel-libipsec" in f["remediation"]


def test_sample_child_no_proposal_keeps_its_ike_sa() -> None:
    """The committed sample (ESP algorithms disjoint): the IKE SA was set up, then deleted."""
    rc, doc, err = analyze_json(
        SAMPLES / "ikev2-child-no-proposal.pcap", "--keys", str(SAMPLES / "ikev2-child-no-proposal.charon.log")
    )
    assert doc, err
    assert [sa["state"] for sa in doc["ike_sas"]] == ["deleted"]


_REJECT_ESP = (
    "table ip ipd_esp {{\n chain c {{\n  type filter hook input priority 0; policy accept;\n"
    "  udp dport 4500 @th,64,32 != 0 counter reject with icmp type {kind}\n }}\n}}\n"
)


@pytest.mark.parametrize(
    ("kind", "words"),
    [("admin-prohibited", "administratively prohibited"), ("port-unreachable", "port unreachable")],
)
def test_esp_one_way_answered_by_icmp(out: Path, kind: str, words: str) -> None:
    """The responder host rejects ESP-in-UDP (not IKE on 4500) with ICMP: 3 pings, a short capture."""

    def reject_and_ping(lab: Lab) -> dict[str, Any]:
        run(["ip", "netns", "exec", lab.ns["gw"], "nft", "-f", "-"], stdin=_REJECT_ESP.format(kind=kind))
        return {"ping": lab.ping(count=3, interval=0.2).output}

    rec = record(out, f"esp-icmp-{kind}", initiator=PeerConfig(), responder=PeerConfig(), action=reject_and_ping)
    assert rec.initiated and "0 received" in rec.extra["ping"]
    for args in (("--keys", str(rec.initiator_log)), ()):
        rc, doc, err = analyze_json(rec.pcap, *args)
        assert rc == 1 and doc, err
        f = _first_error(doc)
        assert f["id"] == "esp-one-way" and f["data"]["icmp_errors"] == 3, f
        assert any(words in e and "x3" in e for e in f["evidence"]), f["evidence"]
        assert "answers the ESP with ICMP errors" in f["explanation"]
        text = " ".join([f["explanation"], *f["evidence"]])
        assert "holds no IPsec packet" not in text and "does not send" not in text
