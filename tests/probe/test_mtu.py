"""``probe mtu``: the search (pure), the IKE size search against a loopback peer that loses
messages above a size, and the tunnel search through a real CHILD SA on loopback whose echo
responder loses inner packets above a size. The real path (DF, ICMP, fragments) is tested
against strongSwan in tests/interop/test_mtu_strongswan.py."""

from __future__ import annotations

import errno
import pathlib
import socket
import time

import pytest
from echo_peer import responder_engine
from loopback import loopback_peer
from typer.testing import CliRunner

from ipsecdiag.cli import app
from ipsecdiag.crypto.rng import DeterministicRandom
from ipsecdiag.engine.config import Endpoint
from ipsecdiag.probe import mtu as mtu_mod
from ipsecdiag.probe.connect import ConnectOptions, ConnectResult, connect
from ipsecdiag.probe.mtu import (
    PAD_VENDOR_ID,
    IkeMtuResult,
    IkeSizeSearch,
    MtuOptions,
    Probe,
    TunnelMtuResult,
    bisect,
    judge_ike,
    judge_tunnel,
    tunnel_search,
)
from ipsecdiag.probe.mtu_cmd import fragments_saved, succeeded
from ipsecdiag.probe.narrate import finding
from ipsecdiag.probe.record import Datagram as RecDatagram
from ipsecdiag.probe.record import SessionRecord
from ipsecdiag.probe.transport import Counters
from ipsecdiag.reconstruction.model import Severity


@pytest.mark.parametrize("limit", [300, 301, 1000, 1471, 1472])
def test_bisect_finds_the_exact_limit_in_log2_attempts(limit: int) -> None:
    tried: list[int] = []

    def attempt(size: int) -> tuple[bool, int | None]:
        tried.append(size)
        return size <= limit, None

    assert bisect(300, 1472, attempt, lambda: True) == (limit, None if limit == 1472 else limit + 1)
    assert len(tried) <= 12 and len(set(tried)) == len(tried)


def test_bisect_uses_a_true_hint_and_survives_a_lying_one() -> None:
    def honest(size: int) -> tuple[bool, int | None]:
        return size <= 1252, 1252

    tried: list[int] = []

    def logged(size: int) -> tuple[bool, int | None]:
        tried.append(size)
        return honest(size)

    assert bisect(300, 1472, logged, lambda: True) == (1252, 1253)
    assert tried == [1472, 1252, 1253]  # the ICMP-reported MTU settles it in two probes

    def liar(size: int) -> tuple[bool, int | None]:
        return size <= 900, 1400  # an ICMP message claiming more than the path carries

    assert bisect(300, 1472, liar, lambda: True) == (900, 901)


def test_bisect_stops_when_time_is_up() -> None:
    calls = iter([True, True])
    lo, hi = bisect(300, 1472, lambda s: (s <= 700, None), lambda: next(calls, False))
    assert lo >= 300 and hi is not None and hi - lo > 1


def _search(limit: int | None, **kw: object) -> tuple[object, list[bytes], list[str], float]:
    def reply(d: bytes) -> list[bytes]:
        return [d[:28]] if limit is not None and len(d) <= limit else []

    lines: list[str] = []
    with loopback_peer(reply, max_datagrams=200) as (port, got):
        opts = MtuOptions("127.0.0.1", remote_port=port, local_addr="127.0.0.1", wait=0.05, tries=1, rate=1000, max_size=4000, **kw)  # type: ignore[arg-type]
        t0 = time.monotonic()
        s = IkeSizeSearch(opts, rng=DeterministicRandom("m"), emit=lambda st: lines.append(st.text), record=SessionRecord())
        r = s.run()
        elapsed = time.monotonic() - t0
        judge_ike(r, opts)
    return r, list(got), lines, elapsed


def test_ike_search_finds_the_largest_answered_message() -> None:
    r, got, lines, elapsed = _search(1200)
    assert r.df_max == 1200 and r.df_min_failed == 1201  # type: ignore[attr-defined]
    # without DF nothing larger got through either: what a fragment-dropping path looks like
    assert r.frag_max == 1200 and r.fragments_pass is False  # type: ignore[attr-defined]
    assert [f.id for f in r.findings] == ["ike-fragment-loss"]  # type: ignore[attr-defined]
    # review 3 item 7: the bisection tries the top first, so the unanswered sizes run up to 4000
    assert "never answered (tried 1201 to 4000 bytes)" in r.findings[0].evidence[1]  # type: ignore[attr-defined]
    assert r.path_mtu == 1228 and r.stateless  # type: ignore[attr-defined]
    # every request: an IKE_SA_INIT (exchange 34) padded by our Vendor ID, a new SPI each time
    assert all(d[18] == 34 and PAD_VENDOR_ID in d for d in got)
    assert len({d[:8] for d in got}) == len(got) == r.packets_sent  # type: ignore[attr-defined]
    assert len(got) <= 30 and elapsed < 10
    assert any("1200 bytes (1228 on the wire), DF: answered" in line for line in lines)


def test_ike_search_when_everything_passes() -> None:
    r, got, _lines, _elapsed = _search(100000)
    # loopback's MTU is 65536: the search stops at its cap, unfragmented, in two requests
    assert r.df_max == 65000 and r.df_min_failed is None and len(got) == 2  # type: ignore[attr-defined]
    assert r.fragments_pass is None and not r.findings  # type: ignore[attr-defined]
    assert judge_ike(r, MtuOptions("127.0.0.1"))[0].startswith("unfragmented (DF): IKE messages up to 65000 bytes")  # type: ignore[arg-type]


def test_silent_gateway_is_ike_unanswered_within_the_bound() -> None:
    r, got, _lines, elapsed = _search(None)
    assert r.df_max is None and [f.id for f in r.findings] == ["ike-unanswered"]  # type: ignore[attr-defined]
    assert len(got) == 1 and elapsed < 2  # one request (tries=1), no fallback offer configured


def test_tunnel_search_through_a_child_sa() -> None:
    with responder_engine(True, max_inner=1000) as (p500, _p4500, ci):
        copts = ConnectOptions(
            gateway="127.0.0.1", config=ci, offered_ike="aes256gcm16-prfsha256-ecp256", offered_esp="aes256gcm16",
            remote_port=p500, local_addr="127.0.0.1", local_port=0, timeout=8.0, rate=1000.0, max_sends=400,
        )  # fmt: skip
        mopts = MtuOptions("127.0.0.1", remote_port=p500, wait=0.1, tries=1, max_time=12)
        got = []
        rng = DeterministicRandom("t")
        result = connect(copts, rng=rng, data_plane=lambda sa, d, n: got.append(tunnel_search(sa, d, n, "10.2.0.10", mopts, rng)))
    assert got, [s.text for s in result.steps]
    t = got[0]
    assert t.inner_max == 1000 and t.inner_min_failed == 1001 and t.mss == 960, (t.probes, t.problem)
    assert t.outer_at_max == 1000 + 2 + 2 + 8 + 8 + 16 + 28  # trailer + padding to 4, ESP header, IV, ICV; IP + UDP
    lines = judge_tunnel(t)
    assert lines[0].startswith("tunnel MTU: 1000") and "clamp the TCP MSS to 960" in lines[1]
    assert result.deleted


def test_cli_usage_errors() -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["probe", "mtu", "127.0.0.1", "--ping", "10.0.0.1"])
    assert res.exit_code == 2 and "needs credentials" in res.output
    res = runner.invoke(app, ["probe", "mtu", "127.0.0.1", "--tries", "0"])
    assert res.exit_code == 2 and "--tries" in res.output


def test_gateway_that_ignores_unacceptable_offers_is_probed_with_the_ike_proposals() -> None:
    """Our private-use encryption id (0x211a) unanswered: the search falls back to --ike."""
    from ipsecdiag.protocol.proposal_strings import parse_proposals

    private = (0x211A).to_bytes(2, "big")

    def reply(d: bytes) -> list[bytes]:
        return [] if private in d[28:80] or len(d) > 900 else [d[:28]]

    lines: list[str] = []
    with loopback_peer(reply, max_datagrams=200) as (port, got):
        ike = parse_proposals("aes256gcm16-prfsha256-ecp256", protocol="ike")
        opts = MtuOptions("127.0.0.1", remote_port=port, local_addr="127.0.0.1", ike_proposals=ike, wait=0.05, tries=1, rate=1000, max_size=2000)
        r = IkeSizeSearch(opts, rng=DeterministicRandom("f"), emit=lambda st: lines.append(st.text), record=SessionRecord()).run()
    assert not r.stateless and r.df_max == 900 and r.frag_max == 900
    assert private in got[0][28:80] and all(private not in d[28:80] for d in got[1:])
    assert any("probing with the --ike proposals" in line for line in lines)


def test_ike_search_against_the_projects_responder() -> None:
    """ipsecdiag responder answers the unacceptable offer with NO_PROPOSAL_CHOSEN, like charon."""
    import threading

    from echo_peer import configs

    from ipsecdiag.probe.responder import Responder, ResponderOptions

    _ci, cr = configs()
    responder = Responder(ResponderOptions(listen="127.0.0.1", config=cr, port=0, natt_port=0, timeout=4), rng=DeterministicRandom("r"), emit=lambda s: None)
    t = threading.Thread(target=responder.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 5
    while responder.local is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert responder.local is not None
    opts = MtuOptions("127.0.0.1", remote_port=responder.local.port, local_addr="127.0.0.1", wait=1.0, tries=1, rate=100, max_size=4000)
    r = IkeSizeSearch(opts, rng=DeterministicRandom("m"), emit=lambda s: None, record=SessionRecord()).run()
    assert r.stateless and r.df_max == 65000 and not judge_ike(r, opts)[0].startswith("127.0.0.1 answered no")
    steps = [s.text for c in responder.clients.values() for s in c.narrator.steps]
    assert sum("[ike-no-proposal-chosen]" in s for s in steps) == len(responder.clients) == r.packets_sent
    t.join(timeout=8)  # the responder's own --timeout ends it
    assert not t.is_alive()


def test_ike_search_over_ipv6_loopback() -> None:
    """The IPv6 socket options (IPV6_MTU_DISCOVER, IPV6_MTU) and the 48-byte IPv6+UDP header."""
    import socket
    import threading

    try:
        peer = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        peer.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    peer.settimeout(0.05)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, addr = peer.recvfrom(65535)
            except TimeoutError:
                continue
            if len(data) <= 1000:
                peer.sendto(data[:28], addr)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        opts = MtuOptions("::1", remote_port=peer.getsockname()[1], local_addr="::1", wait=0.05, tries=1, rate=1000, max_size=2000)
        r = IkeSizeSearch(opts, rng=DeterministicRandom("6"), emit=lambda s: None, record=SessionRecord()).run()
    finally:
        stop.set()
        t.join(timeout=2)
        peer.close()
    assert r.header == 48 and r.df_max == 1000 and r.path_mtu == 1048 and r.frag_max == 1000


class _SmallInterface(socket.socket):
    """A socket whose 'interface' refuses DF datagrams above 1372 octets of payload, as the
    kernel does (EMSGSIZE on send, nothing leaves the host) on a 1400-byte interface."""

    def send(self, data, flags=0):  # type: ignore[no-untyped-def,override]
        if len(data) > 1372:
            raise OSError(errno.EMSGSIZE, "Message too long")
        return super().send(data, flags)


def test_our_own_interface_mtu_is_not_a_router(monkeypatch: pytest.MonkeyPatch) -> None:
    # review #11: with cl0 at MTU 1400 the kernel refused the larger DF probes (EMSGSIZE, no
    # packet sent, no ICMP), and the probe said "a router reported MTU 1400".
    def reply(d: bytes) -> list[bytes]:
        return [d[:28]]

    lines: list[str] = []
    with loopback_peer(reply, max_datagrams=200) as (port, _got):
        opts = MtuOptions("127.0.0.1", remote_port=port, local_addr="127.0.0.1", wait=0.05, tries=1, rate=1000, max_size=4000)
        monkeypatch.setattr(mtu_mod.socket, "socket", _SmallInterface)
        r = IkeSizeSearch(opts, rng=DeterministicRandom("m"), emit=lambda st: lines.append(st.text), record=SessionRecord()).run()
        monkeypatch.undo()
    out = judge_ike(r, opts)
    assert r.df_max == 1372 and r.df_limit == "local"
    assert r.icmp_mtu is None and r.icmp_from is None and r.local_mtu  # the kernel's value, never "a router"
    assert any("our own interface MTU" in line for line in out), out
    assert not any("router" in line for line in out), out
    assert not any("black hole" in line for line in out), out
    refused = [p for p in r.probes if p.outcome == "too big (local)"]
    assert refused and all(p.sends == 0 and p.icmp_mtu is None for p in refused)


def _judged(outcome: str, **probe: object) -> tuple[IkeMtuResult, list[str]]:
    r = IkeMtuResult("198.51.100.2", 28, df_max=1252, df_min_failed=1253, frag_max=4000)
    r.probes = [Probe(1252, True, "answered", rtt=0.001, sends=1), Probe(1253, True, outcome, **probe)]  # type: ignore[arg-type]
    if outcome == "too big (ICMP)":
        r.icmp_mtu, r.icmp_from = probe.get("icmp_mtu"), probe.get("router")  # type: ignore[assignment]
    return r, judge_ike(r, MtuOptions("198.51.100.2"))


def test_the_three_limits_are_told_apart() -> None:
    r, out = _judged("too big (ICMP)", icmp_mtu=1280, router="198.51.100.1", sends=1)
    assert r.df_limit == "icmp" and "router 198.51.100.1 reported MTU 1280 (ICMP fragmentation needed); that agrees" in out
    r, out = _judged("no answer", sends=2)
    assert r.df_limit == "silence" and any("PMTU black hole" in line for line in out)
    assert not any("router" in line for line in out)
    r, out = _judged("too big (local)", local_mtu=1280)
    assert r.df_limit == "local" and "our own interface MTU is 1280" in out[0] and not any("router" in line for line in out)


def _connected(fragmentation: bool, established: bool, skf: int) -> ConnectResult:
    gw, me = Endpoint("198.51.100.2", 4500), Endpoint("192.0.2.2", 4500)
    rec = SessionRecord()
    for i in range(skf):  # non-ESP marker + IKE header whose first payload is SKF (53)
        hdr = bytes(8) + bytes(8) + bytes([53, 0x20, 35, 0x08]) + (1).to_bytes(4, "big") + (100).to_bytes(4, "big")
        rec.add(RecDatagram(float(i), ("192.0.2.2", 4500), ("198.51.100.2", 4500), bytes(4) + hdr + bytes(72), True))
    ike: dict[str, object] = {"fragmentation": fragmentation, "established": established}
    return ConnectResult(established, gw, me, [], [], Counters(), rec, ike=ike, child={"spi_in": "1"} if established else {})


def test_fragment_loss_is_not_an_error_when_ikev2_fragmentation_carried_ike_auth() -> None:
    # review #12: fragmentation=yes on both sides, the certificate IKE_AUTH went through in RFC
    # 7383 fragments, and the probe still said ERROR "Enable IKEv2 fragmentation".
    loss = finding("ike-fragment-loss", evidence=["larger requests without DF were never answered"])
    assert loss.severity == Severity.ERROR
    saved = fragments_saved(loss, _connected(True, True, skf=2))
    assert saved.severity == Severity.WARNING
    assert "IP fragments are dropped" in saved.title and "Enable IKEv2 fragmentation" not in saved.remediation
    assert any("2 IKEv2 fragments" in e for e in saved.evidence)
    # not negotiated, or the IKE SA did not come up: still the error with its fix
    assert fragments_saved(loss, _connected(False, True, skf=0)).severity == Severity.ERROR
    assert fragments_saved(loss, _connected(True, False, skf=2)).severity == Severity.ERROR


def test_exit_status_zero_only_when_everything_asked_for_succeeded() -> None:
    # review #13: --ping with the CHILD SA not up exited 0; so did an error finding
    ok = IkeMtuResult("198.51.100.2", 28, df_max=1372)
    tunnel = TunnelMtuResult("10.2.0.10", 28, inner_max=1338)
    warn = finding("ike-fragment-loss", evidence=[], severity=Severity.WARNING)
    assert succeeded(ok, False, False, None, [])
    assert succeeded(ok, True, True, tunnel, [warn])
    assert not succeeded(ok, True, False, None, [])  # the CHILD SA did not come up
    assert not succeeded(ok, True, True, TunnelMtuResult("10.2.0.10", 28), [])  # no echo through it
    assert not succeeded(ok, False, False, None, [finding("ike-fragment-loss", evidence=[])])  # an error
    assert not succeeded(IkeMtuResult("198.51.100.2", 28), False, False, None, [])  # IKE unanswered


def test_cli_fragment_loss_evidence_sentences_are_whole(tmp_path: pathlib.Path) -> None:
    # review 3 item 7: the "was not checked" evidence stopped at "... brings an IKE SA up and sees"
    import json

    def reply(d: bytes) -> list[bytes]:
        return [d[:28]] if len(d) <= 1200 else []

    out = tmp_path / "mtu.json"
    with loopback_peer(reply, max_datagrams=200) as (port, _got):
        argv = ["probe", "mtu", "127.0.0.1", "--remote-port", str(port), "--source", "127.0.0.1", "--wait", "0.05",
                "--tries", "1", "--rate", "100", "--max-size", "4000", "--max-time", "20", "--json", str(out)]  # fmt: skip
        res = CliRunner().invoke(app, argv)
    assert res.exit_code == 1, res.output
    loss = next(f for f in json.loads(out.read_text())["findings"] if f["id"] == "ike-fragment-loss")
    assert any("tried 1201 to 4000 bytes" in e for e in loss["evidence"])
    unchecked = next(e for e in loss["evidence"] if "was not checked" in e)
    assert unchecked.endswith("carries IKE_AUTH in fragments"), unchecked
