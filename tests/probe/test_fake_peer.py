"""A hostile or broken "gateway" on loopback: the probe ends within its timeout with a finding.

The fake peer answers every datagram the probe sends with what the script says: nothing,
garbage, a truncated IKE header, an IKE header with huge length fields, a flood of datagrams,
or a well-formed header whose payload chain lies. Whatever it does, ``probe connect`` must end
within ``--timeout`` (plus its short cleanup) with exit status 1, a catalogue finding and no
traceback. Runs the real engine (``ipsecdiag.engine.IkeSa``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from loopback import Reply, loopback_peer
from typer.testing import CliRunner

from ipsecdiag.cli import app

_engine = importlib.util.find_spec("ipsecdiag.engine.ike_sa") is not None
pytestmark = pytest.mark.skipif(not _engine, reason="the IKEv2 engine (ipsecdiag.engine.ike_sa) is not there yet")

runner = CliRunner()
TIMEOUT = 2.0


def _hdr(req: bytes, *, length: int, next_payload: int = 0, spi_r: bytes = b"\x42" * 8) -> bytes:
    """An IKE_SA_INIT response header to ``req`` (its SPIi, flags R, message id 0)."""
    return req[:8] + spi_r + bytes([next_payload, 0x20, 34, 0x20]) + bytes(4) + struct.pack("!I", length)


SCRIPTS: dict[str, Reply] = {
    "silent": lambda req: [],
    "garbage": lambda req: [b"\x00", b"hello gateway", os.urandom(300)],
    "truncated": lambda req: [_hdr(req, length=28)[:20]],
    "huge-length": lambda req: [_hdr(req, length=0xFFFFFFFF) + b"\x00" * 40],
    # SA payload announced with a length far beyond the datagram
    "lying-payload": lambda req: [
        _hdr(req, length=28 + 8, next_payload=33) + b"\x00\x00\xff\xf0" + b"\x00" * 4
    ],
    # a valid-looking header but the payload chain is garbage of the declared size
    "payload-garbage": lambda req: [_hdr(req, length=28 + 64, next_payload=33) + os.urandom(64)],
    "flood": lambda req: [os.urandom(64) for _ in range(200)],
    "zero-spi-response": lambda req: [_hdr(req, length=28, spi_r=bytes(8))],
}


@pytest.fixture
def fake_peer(request: pytest.FixtureRequest) -> Iterator[tuple[int, list[bytes]]]:
    with loopback_peer(SCRIPTS[request.param]) as peer:
        yield peer


@pytest.mark.parametrize("fake_peer", list(SCRIPTS), indirect=True)
def test_broken_gateway_gets_a_clear_outcome(
    fake_peer: tuple[int, list[bytes]], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    port, got = fake_peer
    psk = tmp_path / "psk"
    psk.write_text("secret\n")
    out = tmp_path / "s.pcapng"
    t0 = time.monotonic()
    res = runner.invoke(
        app,
        ["probe", "connect", "127.0.0.1", "--remote-port", str(port), "--port", "0", "--psk-file", str(psk),
         "--timeout", str(TIMEOUT), "--json", "-", "--write", str(out)],
    )  # fmt: skip
    elapsed = time.monotonic() - t0
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output
    assert res.exit_code == 1, res.output[-2000:]
    assert elapsed < TIMEOUT + 4  # the bound, the cleanup and interpreter noise
    doc = json.loads(res.output[res.output.index("{\n") :])
    ids = [f["id"] for f in doc["findings"]]
    assert ids and ids[0] in ("ike-unanswered", "malformed-packet"), ids
    if request.node.callspec.params["fake_peer"] == "flood":
        # Random datagrams never carry our SPI: the gateway never answered. What ended the probe
        # is the unanswered IKE_SA_INIT; the garbage is a note after it, never a peer's notify.
        assert ids[0] == "ike-unanswered" and "error-notify" not in ids, ids
    assert doc["result"] == "failed" and 1 <= doc["packets_sent"] <= 20
    assert got, "the probe sent nothing"
    assert out.is_file()


def test_nothing_listening_is_told_by_icmp_port_unreachable(tmp_path: Path) -> None:
    """A closed port answers with ICMP port unreachable: the finding says so instead of
    leaving the user with silence (IP_RECVERR, probe/icmperr.py)."""
    import socket

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    psk = tmp_path / "psk"
    psk.write_text("secret\n")
    res = runner.invoke(
        app,
        ["probe", "connect", "127.0.0.1", "--remote-port", str(port), "--port", "0", "--psk-file", str(psk),
         "--timeout", str(TIMEOUT), "--json", "-", "--write", str(tmp_path / "u.pcapng")],
    )  # fmt: skip
    assert res.exit_code == 1, res.output[-2000:]
    doc = json.loads(res.output[res.output.index("{\n") :])
    (f,) = [f for f in doc["findings"] if f["id"] == "ike-unanswered"]
    # the cause is settled by the ICMP error, not the generic list
    assert f["cause"].startswith(f"Nothing listens on UDP {port} at 127.0.0.1"), f["cause"]
    # and the error is in the pcapng, quoting our datagram (read back with scapy, independently)
    from scapy.layers.inet import ICMP, UDP, IPerror, UDPerror
    from scapy.utils import rdpcap

    pkts = rdpcap(str(tmp_path / "u.pcapng"))
    errs = [p for p in pkts if p.haslayer(ICMP) and p[ICMP].type == 3 and p[ICMP].code == 3]
    assert errs and len(errs) + sum(1 for p in pkts if p.haslayer(UDP) and not p.haslayer(ICMP)) == len(pkts)
    assert errs[0][IPerror].dst == "127.0.0.1" and errs[0][UDPerror].dport == port
    assert any(f"ICMP port unreachable from 127.0.0.1 for our datagram to 127.0.0.1:{port}" in e for e in f["evidence"])
    assert any("nothing listens on that UDP port" in e for e in f["evidence"])
