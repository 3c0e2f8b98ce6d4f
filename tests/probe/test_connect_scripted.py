"""``probe connect`` plumbing with a scripted engine and a loopback peer.

The engine is replaced by :class:`ScriptedSa`, which speaks the ``IkeSa`` interface and emits
the events of ENGINE_API.md from a script; the real engine runs against strongSwan in
tests/interop and against hostile peers in test_fake_peer.py. Checked here: the CLI's steps,
exit status, JSON, the pcapng and key files, cleanup, and the time bound.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from loopback import loopback_peer
from typer.testing import CliRunner

import ipsecdiag.engine
from ipsecdiag.cli import app
from ipsecdiag.engine import events as ev
from ipsecdiag.engine.config import Endpoint, Identity, selector_for
from ipsecdiag.engine.state import State
from ipsecdiag.keys.model import ChildSaKeys, IkeSaKeys, SecretBytes
from ipsecdiag.protocol.proposal_strings import parse_proposals
from ipsecdiag.wire.registry import AuthMethod, EncrId, IdType, KeGroup

runner = CliRunner()
SPI_I, SPI_R = bytes.fromhex("1122334455667788"), bytes.fromhex("99aabbccddeeff00")


class _Out:
    def __init__(self, payload: bytes, src: Endpoint, dst: Endpoint) -> None:
        self.payload, self.src, self.dst = payload, src, dst


class ScriptedSa:
    """Sends three requests (IKE_SA_INIT, IKE_AUTH, later the Delete) and reacts to answers."""

    script = "ok"  # "ok" | "no-proposal" | "ke-retry" | "crash" | "interrupt"

    def __init__(self, config, *, role, rng, now, local, remote, local_natt=None) -> None:
        self.local, self.remote = local, remote
        self.state = State.INITIAL
        self.keys: IkeSaKeys | None = None
        self._out: list[_Out] = []
        self._events: list[ev.Event] = []
        self._step = 0
        self._retried = False

    def _send(self, exchange: str, mid: int) -> None:
        hdr = SPI_I + (SPI_R if mid else bytes(8)) + bytes([33, 0x20, 34 if mid == 0 else 35, 0x08])
        body = hdr + mid.to_bytes(4, "big") + (28).to_bytes(4, "big")
        self._out.append(_Out(body, self.local, self.remote))
        self._events.append(ev.Sent(exchange, mid, False, 0, len(body)))

    def initiate(self, now: float) -> None:
        self.state = State.INIT_SENT
        self._send("IKE_SA_INIT", 0)

    def receive_datagram(self, payload: bytes, src: Endpoint, dst: Endpoint, now: float) -> None:
        if self.script == "crash":
            raise KeyError("engine bug")
        if self.script == "interrupt":
            raise KeyboardInterrupt
        if self.state is State.INIT_SENT:
            self._events.append(ev.Received("IKE_SA_INIT", 0, True, ("SA", "KE"), ()))
            if self.script == "no-proposal":
                self._events.append(ev.ProtocolError(14, "NO_PROPOSAL_CHOSEN", "ours", True, "", "IKE_SA_INIT", True))
                self.state = State.CLOSED
                return
            if self.script == "ke-retry" and not self._retried:
                self._retried = True
                self._events.append(ev.KeRetry(int(KeGroup.MODP_2048), int(KeGroup.ECP_256)))
                self._send("IKE_SA_INIT", 0)
                return
            self.keys = IkeSaKeys(SPI_I, SPI_R, int(EncrId.ENCR_AES_GCM_16), SecretBytes(bytes(36)), SecretBytes(bytes(36)))
            chosen = parse_proposals("aes256gcm16-prfsha256-ecp256", protocol="ike")[0]
            self._events.append(
                ev.IkeSaInitDone(chosen, 19, self.keys, False, False, True, True, (2,), (), ())
            )
            self.state = State.AUTH_SENT
            self._send("IKE_AUTH", 1)
        elif self.state is State.AUTH_SENT:
            self._events.append(ev.Received("IKE_AUTH", 1, True, ("IDr", "AUTH"), ()))
            self._events.append(
                ev.Authenticated(Identity(IdType.ID_FQDN, b"gw.example"), "gw.example", int(AuthMethod.SHARED_KEY_MIC), ())
            )
            k_in = ChildSaKeys(0xC1000001, int(EncrId.ENCR_AES_GCM_16), SecretBytes(bytes(36)), src=src.host, dst=dst.host)
            k_out = ChildSaKeys(0xC2000002, int(EncrId.ENCR_AES_GCM_16), SecretBytes(bytes(36)), src=dst.host, dst=src.host)
            self._events.append(
                ev.ChildSaUp(
                    0xC1000001, 0xC2000002, k_in, k_out, (selector_for("10.1.0.0/24"),),
                    (selector_for("10.2.0.0/24"),), "tunnel", True, False,
                    parse_proposals("aes256gcm16", protocol="esp")[0],
                )
            )  # fmt: skip
            self.state = State.ESTABLISHED
        elif self.state is State.DELETING:
            self._events.append(ev.IkeSaDeleted("deleted by us", False))
            self.state = State.CLOSED

    def delete(self, now: float) -> None:
        self.state = State.DELETING
        self._send("INFORMATIONAL", 2)

    def datagrams_to_send(self, now: float) -> list[_Out]:
        out, self._out = self._out, []
        return out

    def get_timer(self) -> float | None:
        return None

    def handle_timer(self, now: float) -> None:
        pass

    def next_event(self) -> ev.Event | None:
        return self._events.pop(0) if self._events else None


@pytest.fixture
def echo_peer() -> Iterator[tuple[int, list[bytes]]]:
    """A loopback 'gateway' that answers every datagram with one of its own."""
    with loopback_peer(lambda data: [b"answer" + data[:28]], max_datagrams=50) as peer:
        yield peer


@pytest.fixture
def psk(tmp_path: Path) -> Path:
    p = tmp_path / "psk"
    p.write_text("secret\n")
    return p


def _connect(port: int, psk: Path, *extra: str, script: str = "ok", monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    monkeypatch.setattr(ScriptedSa, "script", script)
    monkeypatch.setattr(ipsecdiag.engine, "IkeSa", ScriptedSa, raising=False)
    res = runner.invoke(
        app,
        ["probe", "connect", "127.0.0.1", "--remote-port", str(port), "--port", "0", "--psk-file", str(psk), *extra],
    )
    assert "Traceback" not in res.output, res.output
    return res.exit_code, res.output


def test_child_sa_up_json_pcapng_keys_and_cleanup(
    echo_peer: tuple[int, list[bytes]], psk: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port, got = echo_peer
    out = tmp_path / "s.pcapng"
    code, text = _connect(port, psk, "--write", str(out), "--json", "-", monkeypatch=monkeypatch)
    assert code == 0, text
    doc = json.loads(text[text.index("{") :])
    assert doc["result"] == "child-sa-up" and doc["findings"] == []
    kinds = [s["step"] for s in doc["steps"]]
    for k in ("start", "sent", "answered", "chosen", "nat", "authenticated", "child-sa-up", "cleanup", "deleted"):
        assert k in kinds, kinds
    assert doc["child_sa"]["spi_in"] == "c1000001" and doc["child_sa"]["ts_r"] == ["10.2.0.0/24"]
    assert doc["ike_sa"]["spi_i"] == SPI_I.hex() and doc["deleted"] is True
    assert doc["packets_sent"] == 3 and doc["packets_received"] == 3 and len(got) == 3
    assert doc["files"]["pcapng"] == str(out) and Path(doc["files"]["keys"]).is_file()
    assert (tmp_path / "s.wireshark" / "esp_sa").is_file()


def test_keep_skips_the_delete(echo_peer: tuple[int, list[bytes]], psk: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port, got = echo_peer
    code, text = _connect(port, psk, "--keep", monkeypatch=monkeypatch)
    assert code == 0 and "Result: CHILD SA up" in text and "cleanup" not in text
    assert len(got) == 2


def test_no_proposal_chosen_is_the_catalogue_finding(
    echo_peer: tuple[int, list[bytes]], psk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port, _ = echo_peer
    code, text = _connect(port, psk, "--ike", "aes128-sha256-modp2048", script="no-proposal", monkeypatch=monkeypatch)
    assert code == 1
    assert "[ike-no-proposal-chosen] IKE SA proposal mismatch (NO_PROPOSAL_CHOSEN)" in text
    assert "we offered IKE proposals: aes128-sha256-modp2048" in text
    assert "Result: failed: ike-no-proposal-chosen" in text


def test_ke_retry_is_a_warning_and_the_retry_succeeds(
    echo_peer: tuple[int, list[bytes]], psk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port, _ = echo_peer
    code, text = _connect(port, psk, "--json", "-", script="ke-retry", monkeypatch=monkeypatch)
    doc = json.loads(text[text.index("{") :])
    assert code == 0 and doc["result"] == "child-sa-up"
    assert [(f["id"], f["severity"]) for f in doc["findings"]] == [("ke-group-mismatch", "warning")]
    assert "MODP_2048" in doc["findings"][0]["evidence"][0]


def test_silent_gateway_ends_at_the_timeout(psk: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        t0 = time.monotonic()
        code, text = _connect(silent.getsockname()[1], psk, "--timeout", "1", monkeypatch=monkeypatch)
        elapsed = time.monotonic() - t0
    finally:
        silent.close()
    assert code == 1 and "[ike-unanswered]" in text and "within the --timeout of 1 s" in text
    assert elapsed < 3


def test_an_engine_exception_is_one_line_and_the_session_is_kept(
    echo_peer: tuple[int, list[bytes]], psk: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port, _ = echo_peer
    out = tmp_path / "s.pcapng"
    code, text = _connect(port, psk, "--write", str(out), script="crash", monkeypatch=monkeypatch)
    assert code == 2
    assert "internal-error" in text and "ipsecdiag: error: internal error in the IKEv2 engine (KeyError" in text
    assert out.is_file()


def test_ctrl_c_still_writes_the_session_and_exits_130(
    echo_peer: tuple[int, list[bytes]], psk: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port, _ = echo_peer
    out = tmp_path / "s.pcapng"
    code, text = _connect(port, psk, "--write", str(out), script="interrupt", monkeypatch=monkeypatch)
    assert code == 130 and "interrupted: cleaning up" in text and "Result: interrupted" in text
    assert out.is_file()
