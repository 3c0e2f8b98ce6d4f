"""``probe connect --ping`` against Debian's strongSwan (charon, kernel-libipsec) in namespaces.

Also against the project's own ``responder --answer-pings`` in the gateway namespace: our ping
gets answers from it, and so does the system's ``ping`` through a charon initiator's
kernel-libipsec tunnel. The echo requests leave the initiator namespace as userspace ESP-in-UDP, charon decrypts them
onto its TUN device and routes them to the host in namespace ``in`` (10.2.0.10), whose replies
come back through the same CHILD SA. When the gateway host drops UDP 4500 after the CHILD SA is
up, the probe reports the one-way failure with the catalogue's id. The session written decrypts
in ``ipsecdiag analyze`` (ESP included). Needs root and charon (skipped otherwise); bounded.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Lab, PeerConfig, missing_prerequisites, run
from probelab import Responder, analyze, identities, probe, psk_file, start_gateway
from swanconf import INITIATOR_ID, INITIATOR_NET, INNER_HOST, RESPONDER_ID, RESPONDER_NET

_missing = missing_prerequisites(need_nft=True)
pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(bool(_missing), reason="strongSwan lab needs " + ", ".join(_missing)),
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with Lab(tmp_path_factory.mktemp("dataplane-lab")) as lab:
        start_gateway(lab, "gw-ping", PeerConfig())
        yield lab


def _args(tmp: Path, *extra: str) -> list[str]:
    return ["--psk-file", str(psk_file(tmp)), *identities(), "--ping", INNER_HOST, *extra]


def test_ping_through_the_tunnel_gets_replies(lab: Lab, tmp_path: Path) -> None:
    run_ = probe(lab, tmp_path, _args(tmp_path, "--count", "5", "--interval", "0.2"))
    out = run_.result.output
    assert run_.result.rc == 0, out[-3000:]
    ping = run_.doc["ping"]
    assert ping["sent"] == 5 and ping["received"] == 5 and ping["loss"] == 0, ping
    assert ping["source"] == "10.1.0.1" and ping["host"] == INNER_HOST and INITIATOR_NET.startswith("10.1.0.")
    assert all(0 < r < 1000 for r in ping["rtt_ms"]), ping
    assert out.count("icmp_seq=") == 5 and f"bytes from {INNER_HOST}" in out
    assert run_.doc["child_sa"]["encap"] is True  # --ping forces ESP-in-UDP
    # the recording and keys open in analyze: the IKE SA established, ESP both ways decrypted
    report = analyze(run_.pcapng, run_.keys)
    assert [sa["state"] for sa in report["ike_sas"]] == ["deleted"]  # established, then our Delete
    flows = {(f["src"], f["encap"]): f for f in report["esp_flows"]}
    assert len(flows) == 2, report["esp_flows"]
    for f in flows.values():
        assert f["decrypted"] == f["packets"] == 5 and f["integrity_failed"] == 0, f
        assert f["inner_protocols"] == {"IPv4/ICMP": 5} and (f["seq_first"], f["seq_last"]) == (1, 5), f
    assert not [f for f in report["findings"] if f["id"].startswith("esp-")], report["findings"]
    # and Wireshark's ESP decryption with the tables written beside it shows the echoes
    tshark = shutil.which("tshark")
    if tshark is not None:
        env = {"WIRESHARK_CONFIG_DIR": str(run_.wireshark), "HOME": str(run_.wireshark)}
        out = run([tshark, "-n", "-r", str(run_.pcapng), "-Y", "icmp", "-T", "fields", "-e", "icmp.type"], env=env, timeout=60)
        types = [line.strip() for line in out.output.splitlines() if line.strip().isdigit()]  # not tshark's warnings
        assert sorted(types) == ["0"] * 5 + ["8"] * 5, out.output

def test_one_way_esp_is_reported(lab: Lab, tmp_path: Path) -> None:
    """The gateway host drops UDP 4500 from the CHILD SA's second packet on: IKE came through on
    4500 before, ESP does not get in -> esp-one-way, exit status 1."""
    gw_ns = lab.ns["gw"]
    # drop ESP-in-UDP only (first 4 UDP payload octets non-zero): IKE on 4500 still passes
    ruleset = (
        "table ip ipd_esp {\n chain c {\n  type filter hook input priority 0; policy accept;\n"
        "  udp dport 4500 @th,64,32 != 0 counter drop\n }\n}\n"
    )
    run(["ip", "netns", "exec", gw_ns, "nft", "-f", "-"], stdin=ruleset)
    try:
        run_ = probe(lab, tmp_path, _args(tmp_path, "--count", "3", "--interval", "0.2"))
    finally:
        run(["ip", "netns", "exec", gw_ns, "nft", "delete", "table", "ip", "ipd_esp"], check=False)
    assert run_.result.rc == 1, run_.result.output[-3000:]
    assert [f["id"] for f in run_.doc["findings"]] == ["esp-one-way"]
    assert run_.doc["ping"]["received"] == 0 and run_.doc["ping"]["esp_sent"] == 3
    assert run_.doc["deleted"] is True  # the IKE SA was still deleted cleanly


def _own_responder(lab: Lab, tmp_path: Path) -> Responder:
    """ipsecdiag responder --answer-pings instead of charon on the gateway host."""
    old = lab.peers.pop("responder", None)
    if old is not None:
        old.stop()
    args = ["--psk-file", str(psk_file(tmp_path)), "--id", RESPONDER_ID, "--remote-id", INITIATOR_ID]
    args += ["--ts", RESPONDER_NET, "--remote-ts", INITIATOR_NET, "--answer-pings", "--once", "--linger", "15"]
    return Responder(lab, tmp_path / "responder", args, timeout=40)


def test_ping_the_projects_own_responder(lab: Lab, tmp_path: Path) -> None:
    responder = _own_responder(lab, tmp_path)
    try:
        run_ = probe(lab, tmp_path, _args(tmp_path, "--count", "3", "--interval", "0.2"))
        rc = responder.wait(timeout=20)
    finally:
        responder.stop()
    assert run_.result.rc == 0, run_.result.output[-3000:] + "\n--- responder:\n" + responder.output()[-2000:]
    assert run_.doc["ping"]["received"] == 3, run_.doc["ping"]
    assert rc == 0, responder.output()[-2000:]


def test_system_ping_through_charon_initiator_to_the_projects_responder(lab: Lab, tmp_path: Path) -> None:
    """A charon initiator (kernel-libipsec) carries the system's ping; our responder answers it."""
    responder = _own_responder(lab, tmp_path)
    try:
        lab.start_peer("initiator", PeerConfig())
        up = lab.initiate(timeout=15)
        ping = lab.ping(count=4, interval=0.2)
        lab.terminate(timeout=10)
    finally:
        responder.stop()
        initiator = lab.peers.pop("initiator", None)
        if initiator is not None:
            initiator.stop()
    assert up.ok, up.output[-2000:] + "\n--- responder:\n" + responder.output()[-2000:]
    assert ping.ok and " 0% packet loss" in ping.output, ping.output + "\n--- responder:\n" + responder.output()[-2000:]
