"""``probe mtu`` against Debian's strongSwan in namespaces, with the path MTU set by the test.

The MTU is set on the router's veth towards the gateway (``rtg``): DF packets larger than it
get an ICMP "fragmentation needed" from the router, others are fragmented there. The
fragment-dropping rule sits at prerouting priority -450 (before conntrack reassembles, as
../shared/lab/README.md shows) on the gateway host, where the router's fragments arrive. The
probe must find the MTU within a few bytes, say whether fragments pass, and, with credentials,
the tunnel MTU and MSS through a CHILD SA to the host behind the gateway. Needs root and charon.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Lab, PeerConfig, missing_prerequisites, run
from probelab import IPSECDIAG, ROOT, analyze, identities, psk_file, start_gateway
from swanconf import INNER_HOST, RESPONDER_ADDR, ROUTER_CL_ADDR, ROUTER_GW_ADDR

_missing = missing_prerequisites(need_nft=True)
pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(bool(_missing), reason="strongSwan lab needs " + ", ".join(_missing)),
]

FAST = ["--wait", "0.4", "--tries", "1", "--rate", "40", "--max-time", "40"]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with Lab(tmp_path_factory.mktemp("mtu-lab")) as lab:
        start_gateway(lab, "gw-mtu", PeerConfig())
        yield lab


def _set_path(lab: Lab, mtu: int, drop_fragments: bool, black_hole: bool = False) -> None:
    run(["ip", "-n", lab.ns["rt"], "link", "set", "rtg", "mtu", str(mtu)])
    # the client's PMTU cache from an earlier case must not decide this one
    run(["ip", "-n", lab.ns["cl"], "route", "flush", "cache"], check=False)
    run(["ip", "netns", "exec", lab.ns["gw"], "nft", "delete", "table", "ip", "ipd_frag"], check=False)
    run(["ip", "netns", "exec", lab.ns["rt"], "nft", "delete", "table", "ip", "ipd_icmp"], check=False)
    if drop_fragments:
        lab.nft(lab.ns["gw"], "ipd_frag", "type filter hook prerouting priority -450", "ip frag-off & 0x3fff != 0 counter drop")
    if black_hole:  # the router sends no "fragmentation needed": a PMTU black hole
        lab.nft(lab.ns["rt"], "ipd_icmp", "type filter hook output priority 0", "icmp type destination-unreachable icmp code frag-needed counter drop")


def _mtu(lab: Lab, out: Path, *args: str, timeout: float = 90) -> tuple[int, dict, str]:
    out.mkdir(parents=True, exist_ok=True)
    js = out / "mtu.json"
    argv = ["ip", "netns", "exec", lab.ns["cl"], *IPSECDIAG, "probe", "mtu", RESPONDER_ADDR, *FAST, "--write", str(out / "mtu.pcapng"), "--json", str(js), *args]
    res = run(argv, timeout=timeout, check=False, env={"PYTHONPATH": str(ROOT)})
    return res.rc, (json.loads(js.read_text()) if js.exists() else {}), res.output


@pytest.mark.parametrize(("mtu", "drop"), [(1400, False), (1280, True), (1100, False), (1000, True)])
def test_ike_path_mtu_found(lab: Lab, tmp_path: Path, mtu: int, drop: bool) -> None:
    _set_path(lab, mtu, drop)
    try:
        rc, doc, out = _mtu(lab, tmp_path)
    finally:
        _set_path(lab, 1500, False)
    assert rc == (1 if drop else 0), out[-3000:]  # dropped fragments: an error finding
    ike = doc["ike"]
    assert abs(ike["path_mtu"] - mtu) <= 4, (ike["path_mtu"], mtu, out[-2000:])
    assert ike["stateless"] is True  # charon answered NO_PROPOSAL_CHOSEN: no half-open SAs left
    assert ike["fragments_pass"] is (not drop), ike
    ids = [f["id"] for f in doc["findings"]]
    assert ("ike-fragment-loss" in ids) is drop
    if drop:  # without credentials RFC 7383 support is unknown: said, not assumed absent
        loss = next(f for f in doc["findings"] if f["id"] == "ike-fragment-loss")
        assert loss["severity"] == "error" and any("was not checked" in e for e in loss["evidence"]), loss
    assert doc["packets_sent"] <= 40 and "packets sent" in out
    # the router's ICMP fragmentation needed set the limit, and the router is named (review #11)
    assert ike["limit"] == "icmp" and ike["local_mtu"] is None, ike
    assert ike["icmp_reported_mtu"] == mtu and ike["icmp_reported_by"] in (ROUTER_CL_ADDR, ROUTER_GW_ADDR), ike
    if not drop:
        assert ike["largest_fragmented"] == 8192


def test_tunnel_mtu_and_mss(lab: Lab, tmp_path: Path) -> None:
    mtu = 1300
    _set_path(lab, mtu, False)
    try:
        rc, doc, out = _mtu(lab, tmp_path, "--psk-file", str(psk_file(tmp_path)), *identities(), "--ping", INNER_HOST, timeout=120)
    finally:
        _set_path(lab, 1500, False)
    assert rc == 0, out[-4000:]
    t = doc["tunnel"]
    # AES-GCM-16 in ESP-in-UDP over IPv4: 20 IP + 8 UDP + 8 ESP + 8 IV + 16 ICV, trailer padded to 4
    expected = (mtu - 20 - 8 - 8 - 8 - 16) // 4 * 4 - 2
    assert abs(t["inner_mtu"] - expected) <= 4, (t, expected, out[-3000:])
    assert t["outer_at_mtu"] <= mtu and t["tcp_mss"] == t["inner_mtu"] - 40
    assert f"clamp the TCP MSS to {t['tcp_mss']}" in out
    # one pcapng for both parts, decrypted by analyze with the keys beside it
    report = analyze(tmp_path / "mtu.pcapng", tmp_path / "mtu.keys.toml")
    flows = report["esp_flows"]
    assert flows and all(f["decrypted"] == f["packets"] for f in flows), flows


def test_pmtu_black_hole_is_measured_without_icmp(lab: Lab, tmp_path: Path) -> None:
    """No ICMP from the router: the search still finds the MTU by what gets answered."""
    _set_path(lab, 1200, False, black_hole=True)
    try:
        rc, doc, out = _mtu(lab, tmp_path)
    finally:
        _set_path(lab, 1500, False)
    assert rc == 0, out[-3000:]
    assert doc["ike"]["path_mtu"] == 1200 and doc["ike"]["icmp_reported_mtu"] is None, doc["ike"]
    assert "PMTU black hole" in out


def test_our_interface_mtu_is_reported_as_ours(lab: Lab, tmp_path: Path) -> None:
    """Review #11: cl0 at MTU 1400, the path wider: the kernel refuses larger DF sends. The probe
    must say our own interface is the limit, never that a router reported it."""
    run(["ip", "-n", lab.ns["cl"], "link", "set", "cl0", "mtu", "1400"])
    try:
        rc, doc, out = _mtu(lab, tmp_path)
    finally:
        run(["ip", "-n", lab.ns["cl"], "link", "set", "cl0", "mtu", "1500"])
    assert rc == 0, out[-3000:]
    ike = doc["ike"]
    assert ike["path_mtu"] == 1400 and ike["limit"] == "local" and ike["local_mtu"] == 1400, ike
    assert ike["icmp_reported_mtu"] is None and ike["icmp_reported_by"] is None, ike
    assert "our own interface MTU is 1400" in out and "reported MTU" not in out


def test_fragment_drop_with_ikev2_fragmentation_is_a_warning(lab: Lab, tmp_path: Path) -> None:
    """Review #12/#13: fragments dropped, but the gateway does IKEv2 fragmentation and the CHILD
    SA comes up: a warning, exit 0; the tunnel MTU is still measured."""
    _set_path(lab, 1400, True)
    try:
        rc, doc, out = _mtu(lab, tmp_path, "--psk-file", str(psk_file(tmp_path)), *identities(), "--ping", INNER_HOST, timeout=120)
    finally:
        _set_path(lab, 1500, False)
    loss = [f for f in doc["findings"] if f["id"] == "ike-fragment-loss"]
    assert loss and loss[0]["severity"] == "warning", doc["findings"]
    assert "Enable IKEv2 fragmentation" not in loss[0]["remediation"]
    assert rc == 0 and doc["tunnel"]["inner_mtu"], out[-3000:]


def test_child_sa_not_up_exits_1(lab: Lab, tmp_path: Path) -> None:
    """Review #13: with --ping the CHILD SA is part of what was asked; a wrong PSK means exit 1."""
    _set_path(lab, 1500, False)
    rc, doc, out = _mtu(lab, tmp_path, "--psk-file", str(psk_file(tmp_path, "not-the-key")), *identities(), "--ping", INNER_HOST, "--timeout", "10", timeout=120)
    assert rc == 1, out[-3000:]
    assert doc["ike"]["path_mtu"] and "tunnel MTU: not measured" in out
