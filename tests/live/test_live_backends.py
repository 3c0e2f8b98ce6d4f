"""Capture back ends against fake tcpdump/dumpcap processes: frames, drops, failures, filter."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from fakecap import make_tool

from ipsecdiag.capture import live
from ipsecdiag.capture.bpf import build_filter, default_filter
from ipsecdiag.capture.feed import FrameFeed
from ipsecdiag.capture.live import (
    DropCounts,
    DumpcapBackend,
    LiveCaptureError,
    TcpdumpBackend,
    check_interface,
    missing_capabilities,
    open_backend,
    parse_dumpcap_stats,
    parse_tcpdump_stats,
    permission_message,
)
from ipsecdiag.capture.reader import open_capture
from ipsecdiag.capture.writer import PcapNgWriter

SAMPLES = Path(__file__).resolve().parents[2] / "sample_pcaps"
PSK_OK = SAMPLES / "ikev2-psk-ok.pcap"


def _frames(path: Path) -> list[tuple]:
    with open_capture(path) as c:
        return list(c.frames())


def _drain(feed: FrameFeed, *, stop_after: float = 0.0, timeout: float = 20.0) -> list[tuple]:
    """Collect batches until the feed ends; ask it to stop once ``stop_after`` seconds passed."""
    got: list[tuple] = []
    t0 = time.monotonic()
    stopped = False
    while time.monotonic() - t0 < timeout:
        batch = feed.get(0.1)
        if batch is None:
            return got
        got.extend(batch)
        if not stopped and time.monotonic() - t0 >= stop_after:
            feed.stop()
            stopped = True
    raise AssertionError("the feed did not end in time")


@pytest.mark.parametrize("kind", ["tcpdump", "dumpcap"])
def test_pipe_backend_yields_the_tools_frames_and_final_drops(tmp_path: Path, kind: str) -> None:
    src = PSK_OK
    if kind == "dumpcap":  # dumpcap writes pcapng
        src = tmp_path / "in.pcapng"
        with PcapNgWriter(src) as w:
            for _n, ts, lt, data, orig in _frames(PSK_OK):
                w.write(ts, data, linktype=lt, orig_len=orig)
    tool = make_tool(tmp_path, kind, capture=src, pieces=7, pause=0.01, drops=3)
    cls = TcpdumpBackend if kind == "tcpdump" else DumpcapBackend
    b = cls("lo", "udp port 500", tool=str(tool))
    b.start()
    feed = FrameFeed(b).start()
    got = _drain(feed, stop_after=0.5)
    feed.close()
    want = _frames(PSK_OK)
    assert [f[0] for f in got] == list(range(1, len(want) + 1))
    assert [(f[1], f[2], f[3], f[4]) for f in got] == [(f[1], f[2], f[3], f[4]) for f in want]
    assert b.drops.final and b.drops.kernel == 3
    if kind == "dumpcap":
        assert (b.drops.capture_process, b.drops.interface) == (2, 1)
        assert b.drops.total == 6


def test_tcpdump_reports_running_drops_on_sigusr1(tmp_path: Path) -> None:
    tool = make_tool(tmp_path, "tcpdump", capture=PSK_OK, drops=5)
    b = TcpdumpBackend("lo", "udp", tool=str(tool))
    b.start()
    try:
        b.request_stats()
        deadline = time.monotonic() + 5
        while b.drops.kernel is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert b.drops.kernel == 5 and not b.drops.final
    finally:
        b.close()
    assert b.drops.final


def test_backend_arguments_carry_interface_filter_and_pipe(tmp_path: Path) -> None:
    args = tmp_path / "argv"
    tool = make_tool(tmp_path, "tcpdump", capture=PSK_OK, args_file=args)
    b = TcpdumpBackend("lo", "udp port 500 or ip proto 50", tool=str(tool))
    b.start()
    b.close()
    argv = args.read_text().split("\n")
    assert argv[argv.index("-i") + 1] == "lo"
    assert argv[-1] == "udp port 500 or ip proto 50"
    assert "--immediate-mode" in argv and argv[argv.index("-w") + 1] == "-"


@pytest.mark.parametrize("kind", ["tcpdump", "dumpcap"])
@pytest.mark.parametrize(
    ("fail", "expect"),
    [
        ("no-device", "does not exist"),
        ("permission", "permission denied capturing on eth0"),
        ("filter", "invalid capture filter"),
    ],
)
def test_tool_failures_become_one_line_errors(tmp_path: Path, kind: str, fail: str, expect: str) -> None:
    tool = make_tool(tmp_path, kind, fail=fail)
    cls = TcpdumpBackend if kind == "tcpdump" else DumpcapBackend
    b = cls("eth0" if fail != "no-device" else "eth9", "udp", tool=str(tool))
    with pytest.raises(LiveCaptureError) as exc:
        b.start(timeout=10)
    msg = str(exc.value)
    assert expect in msg and "\n" not in msg
    if fail == "permission":
        assert "CAP_NET_RAW" in msg and "setcap" in msg


def test_permission_message_names_the_missing_capability(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live, "_effective_caps", lambda: 1 << live.CAP_NET_ADMIN)
    monkeypatch.setattr(live, "_file_caps", lambda path: 0)
    assert missing_capabilities("/usr/bin/tcpdump") == ["CAP_NET_RAW"]
    msg = permission_message("eth0", "/usr/bin/tcpdump")
    assert "tcpdump lacks CAP_NET_RAW " in msg
    # the tool's own file capabilities count (what Wireshark's installer gives dumpcap)
    monkeypatch.setattr(live, "_effective_caps", lambda: 0)
    monkeypatch.setattr(live, "_file_caps", lambda path: 1 << live.CAP_NET_RAW)
    assert missing_capabilities("/usr/bin/dumpcap") == ["CAP_NET_ADMIN"]


def test_file_capabilities_are_read_from_the_xattr(monkeypatch: pytest.MonkeyPatch) -> None:
    # struct vfs_cap_data revision 2: magic_etc, then (permitted, inheritable) x 2
    raw = (0x02000001).to_bytes(4, "little") + (1 << 13 | 1 << 12).to_bytes(4, "little") + bytes(12)
    monkeypatch.setattr(live.os, "getxattr", lambda path, name: raw)
    assert live._file_caps("/x") == 1 << 13 | 1 << 12


def test_missing_interface_and_missing_tool_are_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(LiveCaptureError, match="interface 'nosuch0' does not exist"):
        check_interface("nosuch0")
    check_interface("lo")
    check_interface("any")
    monkeypatch.setattr(live.shutil, "which", lambda *a, **k: None)
    with pytest.raises(LiveCaptureError, match="no capture tool found: install tcpdump"):
        open_backend("lo", "udp", "tcpdump")
    with pytest.raises(LiveCaptureError, match="unknown capture back end"):
        open_backend("lo", "udp", "pyshark")


def test_statistics_lines_of_both_tools() -> None:
    d = DropCounts()
    assert parse_tcpdump_stats("12 packets captured, 15 packets received by filter, 3 packets dropped by kernel", d)
    assert (d.received, d.kernel) == (15, 3)
    assert parse_tcpdump_stats("1 packet dropped by interface", d) and d.interface == 1
    assert not parse_tcpdump_stats("tcpdump: listening on eth0", d)
    d = DropCounts()
    line = "Packets received/dropped on interface 'eth0': 100/7 (pcap:4/dumpcap:2/flushed:0/ps_ifdrop:1) (93.0%)"
    assert parse_dumpcap_stats(line, d)
    assert (d.received, d.kernel, d.capture_process, d.interface, d.total) == (100, 4, 2, 1, 7)
    assert "7 dropped" in d.describe() and "2 by the capture process" in d.describe()
    assert DropCounts().describe() == "drops not reported yet"


def test_default_filter_covers_ipsec_fragments_and_icmp_errors() -> None:
    f = default_filter((500, 1500), (4500,))
    for part in ("udp port 500", "udp port 1500", "udp port 4500", "tcp port 4500", "ip proto 50", "ip6 proto 51"):
        assert part in f
    assert "ip[6:2] & 0x1fff != 0" in f  # non-first IPv4 fragments (no UDP header to match)
    assert "ip6[6] == 44" in f
    assert "icmp-unreach" in f and "icmp6type" in f
    assert "vlan" not in f and "vlan and" in default_filter(vlan=True)
    narrowed = build_filter("lo", extra="host 192.0.2.1")
    assert narrowed.endswith(") and (host 192.0.2.1)")


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="needs tcpdump to compile the filter")
@pytest.mark.parametrize("vlan", [False, True])
def test_default_filter_compiles(vlan: bool) -> None:
    expr = build_filter("lo", extra="host 192.0.2.1") if not vlan else default_filter(vlan=True)
    res = subprocess.run(
        ["tcpdump", "-y", "EN10MB", "-d", expr], capture_output=True, text=True, timeout=20, check=False
    )
    assert res.returncode == 0, res.stderr


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="needs tcpdump")
def test_default_filter_matches_ike_fragments_and_not_other_traffic(tmp_path: Path) -> None:
    """Run the filter over a capture holding a fragmented IKE_AUTH, ESP (also behind IPv6
    extension headers), AH, IKE behind a destination options header, and noise."""
    from scapy.layers.inet import ICMP, IP, TCP, UDP, fragment
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw
    from scapy.utils import wrpcap

    big = Ether() / IP(src="192.0.2.2", dst="198.51.100.2") / UDP(sport=4500, dport=4500) / Raw(bytes(3000))
    frags = fragment(big[IP], fragsize=1400)
    pkts = [Ether() / f for f in frags]
    pkts.append(Ether() / IP(src="192.0.2.2", dst="198.51.100.2", proto=50) / Raw(bytes(64)))
    # ESP behind IPv6 extension headers: Next Header 50 is not in the fixed header
    v6 = IPv6(src="2001:db8::1", dst="2001:db8::2")
    pkts.append(Ether() / v6 / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt(nh=50) / Raw(bytes(64)))
    pkts.append(Ether() / v6 / IPv6ExtHdrRouting(nh=51) / Raw(bytes(24)))
    pkts.append(Ether() / v6 / IPv6ExtHdrDestOpt() / UDP(sport=500, dport=500) / Raw(bytes(28)))
    pkts.append(Ether() / IP(src="192.0.2.9", dst="192.0.2.10") / TCP(dport=443))  # noise
    pkts.append(Ether() / v6 / IPv6ExtHdrDestOpt() / TCP(dport=443))  # noise behind an extension
    pkts.append(Ether() / IP(src="192.0.2.9", dst="192.0.2.10") / ICMP(type=8))  # echo: not an error
    pkts.append(Ether() / IP(src="192.0.2.1", dst="192.0.2.2") / ICMP(type=3, code=4) / bytes(28))
    cap = tmp_path / "mix.pcap"
    wrpcap(str(cap), pkts)
    out = tmp_path / "kept.pcap"
    res = subprocess.run(
        ["tcpdump", "-r", str(cap), "-w", str(out), build_filter("lo")],
        capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    kept = _frames(out)
    assert len(frags) == 3 and len(kept) == len(frags) + 5  # all fragments, ESP x2, AH, IKE, ICMP error


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("tcpdump") is None or shutil.which("ip") is None,
    reason="needs root, tcpdump and iproute2 (a veth in a private network namespace)",
)
@pytest.mark.parametrize("vlan", [False, True])
def test_kernel_accepts_the_default_filter(vlan: bool) -> None:
    """The filter must run in the kernel: a filter the kernel refuses (a backward jump, as
    ``ip6 protochain`` compiles to) makes libpcap filter every packet in user space, and libpcap
    refuses protochain behind VLAN tags outright."""
    ns = f"ipd-bpf-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True, timeout=10)
    try:
        run = ["ip", "netns", "exec", ns]
        subprocess.run([*run, "ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1"], check=True, timeout=10)
        subprocess.run([*run, "ip", "link", "set", "v0", "up"], check=True, timeout=10)
        expr = default_filter(vlan=vlan)
        res = subprocess.run(
            [*run, "timeout", "2", "tcpdump", "-i", "v0", "-c", "1", expr],
            capture_output=True, text=True, timeout=20, check=False,
        )  # fmt: skip
        assert "listening on v0" in res.stderr, res.stderr
        assert "Kernel filter failed" not in res.stderr and "not supported" not in res.stderr
    finally:
        subprocess.run(["ip", "netns", "del", ns], timeout=10, check=False)
