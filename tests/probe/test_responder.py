"""``ipsecdiag responder`` on loopback: the demultiplexer, and ``probe connect`` against it."""

from __future__ import annotations

import importlib.util
import threading
import time
from pathlib import Path

import pytest

from ipsecdiag.diagnosis.knowledge import CATALOGUE
from ipsecdiag.probe.connect import ConnectOptions, connect
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


def _serve(ike: str, **kw: object) -> tuple[Responder, threading.Thread, list[ResponderResult]]:
    cfg = build_responder_config(
        ike=ike, esp="aes256gcm16", creds=_psk(), local_id="gw.test", remote_id=None,
        local_ts="10.2.0.0/24", remote_ts="10.1.0.0/24", listen="127.0.0.1",
    )  # fmt: skip
    opts = ResponderOptions(listen="127.0.0.1", config=cfg, port=0, natt_port=0, **kw)  # type: ignore[arg-type]
    r = Responder(opts, rng=SystemRandom(), emit=lambda s: None)
    out: list[ResponderResult] = []
    t = threading.Thread(target=lambda: out.append(r.run()), daemon=True)
    t.start()
    deadline = time.monotonic() + 5
    while r.driver is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert r.local is not None
    return r, t, out


def _probe(port: int, ike: str, tmp: Path) -> object:
    cfg = build_config(
        ike=ike, esp="aes256gcm16", creds=_psk(), local_id="client.test", remote_id="gw.test",
        ts="10.2.0.0/24", local_ts="10.1.0.0/24", local_addr="127.0.0.1", encap=False, timeout=5,
    )  # fmt: skip
    opts = ConnectOptions(
        gateway="127.0.0.1", config=cfg, offered_ike=ike, offered_esp="aes256gcm16", remote_port=port,
        local_addr="127.0.0.1", local_port=0, timeout=5,
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
