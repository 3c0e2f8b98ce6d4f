"""``probe connect`` and ``responder``: bad usage is one line on stderr and exit status 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from ipsecdiag.cli import app

runner = CliRunner()


@pytest.fixture
def psk(tmp_path: Path) -> Path:
    p = tmp_path / "psk.txt"
    p.write_text("secret\n")
    return p


def _run(*args: str) -> tuple[int, str]:
    res = runner.invoke(app, list(args))
    assert "Traceback" not in res.output
    return res.exit_code, res.output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ((), "credentials needed"),
        (("--ike", "aes256-bogus42"), "--ike"),
        (("--esp", ""), "--esp"),
        (("--ts", "10.0.0.0/33"), "--ts"),
        (("--local-ts", "nonsense"), "--local-ts"),
        (("--id", "C=XX, QQ=nope"), "--id"),
        (("--port", "70000"), "--port"),
        (("--timeout", "0"), "--timeout"),
        (("--cert", "/nonexistent.pem", "--key", "/nonexistent.key"), "--cert"),
        (("--source", "192.0.2.250"), "not an address of this host"),
        (("--source", "::1"), "different address families"),
    ],
)
def test_connect_bad_usage(psk: Path, extra: tuple[str, ...], message: str) -> None:
    args = ["probe", "connect", "127.0.0.1", "--port", "0", *extra]
    if message != "credentials needed" and "--cert" not in extra:
        args += ["--psk-file", str(psk)]
    code, out = _run(*args)
    assert code == 2, out
    assert out.startswith("ipsecdiag: error: ") and message in out
    assert out.count("\n") == 1


def test_psk_and_cert_together_are_refused(psk: Path, tmp_path: Path) -> None:
    code, out = _run("probe", "connect", "127.0.0.1", "--psk-file", str(psk), "--cert", str(psk), "--key", str(psk))
    assert code == 2 and "either --psk-file or --cert" in out


def test_write_must_not_overwrite_an_input(psk: Path) -> None:
    code, out = _run("probe", "connect", "127.0.0.1", "--psk-file", str(psk), "--write", str(psk))
    assert code == 2 and "refusing to overwrite an input" in out


def test_unresolvable_gateway(psk: Path) -> None:
    code, out = _run("probe", "connect", "no-such-gateway.invalid", "--psk-file", str(psk))
    assert code == 2 and "cannot resolve" in out


def test_responder_bad_usage(psk: Path) -> None:
    code, out = _run("responder", "--listen", "127.0.0.1", "--psk-file", str(psk), "--pool", "x/y")
    assert code == 2 and "--pool" in out
    code, out = _run("responder", "--listen", "192.0.2.250", "--psk-file", str(psk), "--port", "0")
    assert code == 2 and "not an address of this host" in out
