"""``ipsecdiag responder`` on loopback: the demultiplexer, and ``probe connect`` against it."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import threading
import time
from pathlib import Path

import pytest

from ipsecdiag.diagnosis.knowledge import CATALOGUE
from ipsecdiag.probe.connect import ConnectOptions, connect
from ipsecdiag.probe.narrate import Step
from ipsecdiag.probe.options import Credentials, build_config, build_responder_config
from ipsecdiag.probe.responder import Responder, ResponderOptions, ResponderResult, collect_keys, ike_spi_i
from ipsecdiag.probe.rng import SystemRandom

_engine = importlib.util.find_spec("ipsecdiag.engine.ike_sa") is not None
needs_engine = pytest.mark.skipif(not _engine, reason="the IKEv2 engine is not there yet")

SPI = bytes(range(1, 9))


def _ike(spi_r: bytes = bytes(8), exchange: int = 34, flags: int = 0x08) -> bytes:
    return SPI + spi_r + bytes([33, 0x20, exchange, flags]) + bytes(4) + (28).to_bytes(4, "big")


def test_demultiplexing_header_peek() -> None:
    assert ike_spi_i(_ike()) == (SPI, True)
    assert ike_spi_i(b"\x00\x00\x00\x00" + _ike()) == (SPI, True)  # non-ESP marker
    assert ike_spi_i(_ike(spi_r=b"\x01" * 8, exchange=35)) == (SPI, False)
    assert ike_spi_i(_ike(flags=0x20)) == (SPI, False)  # a response never opens a session
    assert ike_spi_i(b"\xff") is None  # NAT keepalive
    assert ike_spi_i(b"\x12\x34\x56\x78" + bytes(40)) is None  # ESP-in-UDP
    assert ike_spi_i(_ike()[:20]) is None


def _psk() -> Credentials:
    from ipsecdiag.engine.config import PskAuth
    from ipsecdiag.keys.model import SecretBytes

    return Credentials(PskAuth(SecretBytes(b"loopback-psk")))


def _serve(
    ike: str, *, addr: str = "127.0.0.1", pool: str | None = None, remote_ts: str = "10.1.0.0/24",
    creds: Credentials | None = None, half_open_timeout: float | None = None, **kw: object,
) -> tuple[Responder, threading.Thread, list[ResponderResult]]:  # fmt: skip
    cfg = build_responder_config(
        ike=ike, esp="aes256gcm16", creds=creds or _psk(), local_id="gw.test", remote_id=None,
        local_ts="10.2.0.0/24", remote_ts=remote_ts, listen=addr, pool=pool,
    )  # fmt: skip
    if half_open_timeout is not None:
        cfg = dataclasses.replace(cfg, half_open_timeout=half_open_timeout)
    ports: dict[str, object] = {"port": 0, "natt_port": 0, **kw}
    opts = ResponderOptions(listen=addr, config=cfg, accepted=(ike, "aes256gcm16"), **ports)  # type: ignore[arg-type]
    r = Responder(opts, rng=SystemRandom(), emit=lambda s: None)
    out: list[ResponderResult] = []
    failed: list[BaseException] = []

    def serve() -> None:
        try:
            out.append(r.run())
        except BaseException as e:  # noqa: BLE001 - handed to the test below
            failed.append(e)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    deadline = time.monotonic() + 5
    while r.driver is None and not failed and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not failed, f"responder did not start: {failed[0]!r}"
    assert r.local is not None
    return r, t, out


def _probe(
    port: int, ike: str, tmp: Path, *, addr: str = "127.0.0.1", vip: bool = False, creds: Credentials | None = None
) -> object:
    cfg = build_config(
        ike=ike, esp="aes256gcm16", creds=creds or _psk(), local_id="client.test", remote_id="gw.test",
        ts="10.2.0.0/24", local_ts=None if vip else "10.1.0.0/24", local_addr=addr, encap=False, timeout=5,
        virtual_ip=vip,
    )  # fmt: skip
    opts = ConnectOptions(
        gateway=addr, config=cfg, offered_ike=ike, offered_esp="aes256gcm16", remote_port=port,
        local_addr=addr, local_port=0, timeout=5,
    )  # fmt: skip
    return connect(opts, rng=SystemRandom())


@needs_engine
def test_probe_brings_a_child_sa_up_against_the_responder(tmp_path: Path) -> None:
    r, t, out = _serve("aes256gcm16-prfsha256-ecp256", once=True, linger=5.0, timeout=10.0)
    res = _probe(r.local.port, "aes256gcm16-prfsha256-ecp256", tmp_path)  # type: ignore[union-attr]
    t.join(timeout=15)
    assert not t.is_alive() and out
    assert res.ok and res.deleted, [s.text for s in res.steps]  # type: ignore[attr-defined]
    result = out[0]
    assert result.children_up == 1 and result.findings == []
    (client,) = result.clients
    assert client.narrator.deleted is not None and client.narrator.deleted.by_peer
    # the two ends agree on the CHILD SA's SPIs, crossed over
    assert (client.narrator.child.spi_in, client.narrator.child.spi_out) == (  # type: ignore[union-attr]
        int(res.child["spi_out"], 16), int(res.child["spi_in"], 16)  # type: ignore[attr-defined]
    )
    collect_keys(result)
    files = result.record.write(tmp_path / "r.pcapng")
    assert files.key_records == 3  # the IKE SA and both ESP directions


@needs_engine
def test_mismatched_proposal_is_reported_on_both_ends(tmp_path: Path) -> None:
    r, t, out = _serve("aes128-sha256-modp3072", timeout=4.0)
    res = _probe(r.local.port, "aes256gcm16-prfsha256-ecp256", tmp_path)  # type: ignore[union-attr]
    t.join(timeout=10)
    assert not res.ok and [f.id for f in res.findings] == ["ike-no-proposal-chosen"]  # type: ignore[attr-defined]
    assert [f.id for f in out[0].findings] == ["ike-no-proposal-chosen"]
    assert out[0].findings[0].title == CATALOGUE["ike-no-proposal-chosen"].title
    # the responder says what the client offered against what it accepts
    evidence = out[0].findings[0].evidence
    assert "the client offered IKE proposals: aes256gcm16-prfsha256-ecp256" in evidence
    assert "we accept IKE proposals: aes128-sha256-modp3072" in evidence
    # both lists are known here: the fix names what differs, not the catalogue's example proposal
    fix = out[0].findings[0].remediation
    assert "offers only aes256gcm16, ecp256, prfsha256 where we accept aes128-sha256-modp3072" in fix, fix
    assert "proposals = aes256gcm16-prfsha384-ecp384" not in fix


@needs_engine
def test_virtual_ip_from_the_pool(tmp_path: Path) -> None:
    """A configuration payload round trip (RFC 7296 §3.15): TSi narrowed to the assigned address."""
    r, t, out = _serve(
        "aes256gcm16-prfsha256-ecp256", pool="10.3.0.0/28", remote_ts="10.3.0.0/28",
        once=True, linger=5.0, timeout=10.0,
    )  # fmt: skip
    res = _probe(r.local.port, "aes256gcm16-prfsha256-ecp256", tmp_path, vip=True)  # type: ignore[union-attr]
    t.join(timeout=15)
    assert res.ok, [s.text for s in res.steps]  # type: ignore[attr-defined]
    (vip,) = res.child["virtual_ips"]  # type: ignore[attr-defined]
    assert vip.startswith("10.3.0.") and res.child["ts_i"] == [f"{vip}/32"]  # type: ignore[attr-defined]
    assert out[0].children_up == 1


@needs_engine
def test_ike_over_ipv6(tmp_path: Path) -> None:
    r, t, out = _serve("aes256gcm16-prfsha256-curve25519", addr="::1", once=True, linger=5.0, timeout=10.0)
    res = _probe(r.local.port, "aes256gcm16-prfsha256-curve25519", tmp_path, addr="::1")  # type: ignore[union-attr]
    t.join(timeout=15)
    assert res.ok and res.local.host == "::1", [s.text for s in res.steps]  # type: ignore[attr-defined]
    assert out[0].children_up == 1
    files = res.record.write(tmp_path / "v6.pcapng")  # type: ignore[attr-defined]
    assert files.frames == len(res.record.datagrams) >= 6  # type: ignore[attr-defined]


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_ctrl_c_ends_the_responder_cleanly(tmp_path: Path, signame: str) -> None:
    """Ctrl-C, and SIGTERM (``timeout``, systemd, ``docker stop``) alike: clean up, write, 130."""
    import os
    import signal
    import subprocess
    import sys

    psk = tmp_path / "psk"
    psk.write_text("x\n")
    out = tmp_path / "r.pcapng"
    argv = [sys.executable, "-m", "ipsecdiag", "responder", "--listen", "127.0.0.1", "--port", "0", "--natt-port", "0"]
    argv += ["--psk-file", str(psk), "--timeout", "30", "--write", str(out)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        assert "listening" in proc.stdout.readline().decode()
        proc.send_signal(getattr(signal, signame))
        rc = proc.wait(timeout=10)
        text = proc.stdout.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
    assert rc == 130 and "interrupted" in text and "Traceback" not in text
    assert out.is_file()


@needs_engine
@pytest.mark.skipif(os.geteuid() != 0, reason="the gateway side needs UDP 500/4500 (root) to be dissected as IKE")
def test_the_session_files_decrypt_in_analyze_and_tshark(tmp_path: Path) -> None:
    """What ``--write`` produces: analyze shows the IKE SA established (``--keep``: no Delete),
    tshark decrypts IKE_AUTH with the Wireshark tables written beside the capture. The
    responder listens on 127.0.0.2:500/4500: analyze and tshark recognise IKE by those ports."""
    import json
    import shutil
    import subprocess

    from typer.testing import CliRunner

    from ipsecdiag.cli import app

    r, t, _ = _serve(
        "aes256gcm16-prfsha256-ecp256", addr="127.0.0.2", port=500, natt_port=4500, once=True, linger=0.5,
        timeout=10.0, keep=True,
    )  # fmt: skip
    cfg = build_config(
        ike="aes256gcm16-prfsha256-ecp256", esp="aes256gcm16", creds=_psk(), local_id="client.test",
        remote_id="gw.test", ts="10.2.0.0/24", local_ts="10.1.0.0/24", local_addr="127.0.0.1", encap=False, timeout=5,
    )  # fmt: skip
    opts = ConnectOptions(
        gateway="127.0.0.2", config=cfg, offered_ike="", offered_esp="", remote_port=500,
        local_addr="127.0.0.1", local_port=0, timeout=5, keep=True,
    )  # fmt: skip
    res = connect(opts, rng=SystemRandom())
    t.join(timeout=15)
    assert res.ok
    files = res.record.write(tmp_path / "s.pcapng")
    out = CliRunner().invoke(app, ["analyze", str(files.pcapng), "--keys", str(files.keyfile), "--json", "-"])
    report = json.loads(out.output)
    (sa,) = report["ike_sas"]
    assert sa["state"] == "established" and sa["keys"] is True
    assert sa["spi_i"] == res.ike["spi_i"] and [c["mode"] for c in sa["child_sas"]] == ["tunnel"]
    tshark = shutil.which("tshark")
    if tshark is None:
        pytest.skip("tshark not installed")
    env = {**os.environ, "WIRESHARK_CONFIG_DIR": str(files.wireshark_dir), "HOME": str(tmp_path)}
    ids = subprocess.run(
        [tshark, "-n", "-r", str(files.pcapng), "-Y", "isakmp.id.data", "-T", "fields", "-E", "aggregator=,",
         "-e", "isakmp.id.data.fqdn"],
        capture_output=True, text=True, env=env, timeout=60, check=True,
    ).stdout.split()  # fmt: skip
    # IDi and IDr in the request, IDr in the response: visible only after decryption
    assert ids == ["client.test,gw.test", "gw.test"], ids


@needs_engine
def test_finished_clients_free_their_slot(tmp_path: Path) -> None:
    r, t, out = _serve("aes256gcm16-prfsha256-ecp256", max_clients=1, timeout=4.0)
    results = [_probe(r.local.port, "aes256gcm16-prfsha256-ecp256", tmp_path) for _ in range(3)]  # type: ignore[union-attr]
    t.join(timeout=10)
    assert all(res.ok and res.deleted for res in results)  # type: ignore[attr-defined]
    assert out[0].refused == 0 and out[0].children_up == 3 and len(out[0].clients) == 3


@needs_engine
def test_a_half_open_client_is_dropped_after_the_timeout(tmp_path: Path) -> None:
    """One slot, taken by a client that never sends IKE_AUTH: after half_open_timeout a new
    client gets it."""
    import socket

    from ipsecdiag.engine import IkeSa
    from ipsecdiag.engine.config import Endpoint, Role

    r, t, out = _serve("aes256gcm16-prfsha256-ecp256", max_clients=1, half_open_timeout=0.3, timeout=5.0)
    cfg = build_config(
        ike="aes256gcm16-prfsha256-ecp256", esp="aes256gcm16", creds=_psk(), local_id="half.open", remote_id=None,
        ts=None, local_ts=None, local_addr="127.0.0.1", encap=False, timeout=5,
    )  # fmt: skip
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(3)
        half = IkeSa(cfg, role=Role.INITIATOR, rng=SystemRandom(), now=0.0,
                     local=Endpoint("127.0.0.1", s.getsockname()[1]), remote=Endpoint("127.0.0.1", r.local.port))  # type: ignore[union-attr]  # fmt: skip
        half.initiate(0.0)
        for d in half.datagrams_to_send(0.0):
            s.sendto(d.payload, ("127.0.0.1", r.local.port))  # type: ignore[union-attr]
        s.recvfrom(2048)  # the IKE_SA_INIT response: now half-open, and we go quiet
    time.sleep(0.5)
    res = _probe(r.local.port, "aes256gcm16-prfsha256-ecp256", tmp_path)  # type: ignore[union-attr]
    t.join(timeout=10)
    assert res.ok, [s.text for s in res.steps]  # type: ignore[attr-defined]
    assert out[0].refused == 0 and len(out[0].clients) == 2
    assert any(s.kind == "expired" for s in out[0].clients[0].narrator.steps)


@needs_engine
def test_above_the_half_open_threshold_new_clients_must_return_a_cookie(tmp_path: Path) -> None:
    """cookie_threshold=0: every new client is asked for a COOKIE (RFC 7296 §2.6) without state
    kept for it; its retry with the cookie is accepted and the CHILD SA comes up."""
    r, t, out = _serve("aes256gcm16-prfsha256-ecp256", cookie_threshold=0, once=True, linger=0.2, timeout=10.0)
    res = _probe(r.local.port, "aes256gcm16-prfsha256-ecp256", tmp_path)  # type: ignore[union-attr]
    t.join(timeout=15)
    assert res.ok, [s.text for s in res.steps]  # type: ignore[attr-defined]
    assert any(s.kind == "cookie" for s in res.steps)  # type: ignore[attr-defined]
    result = out[0]
    assert result.cookies_demanded == 1 and result.children_up == 1
    assert len(result.clients) == 1  # the stateless COOKIE answer left no client behind


@needs_engine
def test_below_the_threshold_no_cookie_is_asked(tmp_path: Path) -> None:
    r, t, out = _serve("aes256gcm16-prfsha256-ecp256", cookie_threshold=1, once=True, linger=0.2, timeout=10.0)
    res = _probe(r.local.port, "aes256gcm16-prfsha256-ecp256", tmp_path)  # type: ignore[union-attr]
    t.join(timeout=15)
    assert res.ok and not any(s.kind == "cookie" for s in res.steps)  # type: ignore[attr-defined]
    assert out[0].cookies_demanded == 0


@needs_engine
def test_once_linger_stops_that_long_after_the_child_sa_came_up(tmp_path: Path) -> None:
    """The client keeps its SAs (no Delete wakes the loop): the responder must still stop
    ``linger`` seconds after the CHILD SA came up, not at its --timeout."""
    r, t, out = _serve("aes256gcm16-prfsha256-ecp256", once=True, linger=0.5, timeout=20.0, keep=True)
    cfg = build_config(
        ike="aes256gcm16-prfsha256-ecp256", esp="aes256gcm16", creds=_psk(), local_id="client.test",
        remote_id="gw.test", ts="10.2.0.0/24", local_ts="10.1.0.0/24", local_addr="127.0.0.1", encap=False, timeout=5,
    )  # fmt: skip
    opts = ConnectOptions(
        gateway="127.0.0.1", config=cfg, offered_ike="", offered_esp="", remote_port=r.local.port,  # type: ignore[union-attr]
        local_addr="127.0.0.1", local_port=0, timeout=5, keep=True,
    )  # fmt: skip
    res = connect(opts, rng=SystemRandom())
    up = time.monotonic()
    t.join(timeout=10)
    stopped = time.monotonic() - up
    assert res.ok and not t.is_alive() and out[0].children_up == 1
    assert stopped < 3.0, stopped  # 0.5 s linger, not the 20 s timeout


@needs_engine
def test_transport_mode_is_asked_and_granted(tmp_path: Path) -> None:
    cfg_r = build_responder_config(
        ike="aes256gcm16-prfsha256-ecp256", esp="aes256gcm16", creds=_psk(), local_id="gw.test", remote_id=None,
        local_ts="127.0.0.1/32", remote_ts="127.0.0.1/32", listen="127.0.0.1", mode="transport",
    )  # fmt: skip
    opts_r = ResponderOptions(listen="127.0.0.1", config=cfg_r, port=0, natt_port=0, once=True, linger=0.2, timeout=10.0)
    r = Responder(opts_r, rng=SystemRandom(), emit=lambda s: None)
    out: list[ResponderResult] = []
    t = threading.Thread(target=lambda: out.append(r.run()), daemon=True)
    t.start()
    deadline = time.monotonic() + 5
    while r.driver is None and time.monotonic() < deadline:
        time.sleep(0.01)
    cfg = build_config(
        ike="aes256gcm16-prfsha256-ecp256", esp="aes256gcm16", creds=_psk(), local_id="client.test",
        remote_id="gw.test", ts="127.0.0.1/32", local_ts="127.0.0.1/32", local_addr="127.0.0.1", encap=False,
        timeout=5, mode="transport",
    )  # fmt: skip
    opts = ConnectOptions(
        gateway="127.0.0.1", config=cfg, offered_ike="", offered_esp="", remote_port=r.local.port,  # type: ignore[union-attr]
        local_addr="127.0.0.1", local_port=0, timeout=5,
    )  # fmt: skip
    res = connect(opts, rng=SystemRandom())
    t.join(timeout=10)
    assert res.ok and res.child["mode"] == "transport", [s.text for s in res.steps]



@needs_engine
def test_the_responder_reports_what_a_successful_client_offered(tmp_path: Path) -> None:
    """Issue 9 / review 15: proposals, IDs and selectors before narrowing, on success too."""
    r, t, out = _serve("aes256gcm16-prfsha256-ecp256", once=True, linger=0.2, timeout=10.0)
    res = _probe(r.local.port, "aes256gcm16-prfsha256-ecp256", tmp_path)  # type: ignore[union-attr]
    t.join(timeout=15)
    assert res.ok  # type: ignore[attr-defined]
    texts = [s.text.split("] ", 1)[1] for s in out[0].clients[0].narrator.steps if s.kind == "offer"]
    assert "the client offered IKE proposals: aes256gcm16-prfsha256-ecp256" in texts
    assert "the client sent IDi client.test and asked for IDr gw.test" in texts
    assert "the client offered ESP proposals: aes256gcm16" in texts[2]
    assert "the client proposed TSi 10.1.0.0/24 and TSr 10.2.0.0/24" in texts


@needs_engine
def test_steps_about_our_answer_cite_the_response_frame_in_time_order(tmp_path: Path) -> None:
    """Review 3 item 12: "chosen" and "child-sa-up" cited the client's request frames (1, 3)
    instead of our responses that carry them, and "client" printed after a later "received"."""
    r, t, out = _serve("aes256gcm16-prfsha256-ecp256", once=True, linger=0.2, timeout=10.0)
    printed: list[Step] = []
    r.emit = printed.append  # type: ignore[method-assign]
    res = _probe(r.local.port, "aes256gcm16-prfsha256-ecp256", tmp_path)  # type: ignore[union-attr]
    t.join(timeout=15)
    assert res.ok and out  # type: ignore[attr-defined]
    dgrams = out[0].record.datagrams
    cited = {s.kind: s.frame for s in printed if s.kind in ("chosen", "authenticated", "child-sa-up")}
    assert set(cited) == {"chosen", "authenticated", "child-sa-up"}
    for kind, frame in cited.items():
        assert frame is not None and dgrams[frame - 1].outgoing, (kind, frame)  # our response
    assert cited["chosen"] == 2 and cited["child-sa-up"] == cited["authenticated"] == 4
    got = [s.frame for s in printed if s.kind == "received"]
    assert got[:2] == [1, 3] and not dgrams[0].outgoing
    times = [s.t for s in printed if s.kind != "listening"]
    assert times == sorted(times), [(s.kind, s.t) for s in printed]
