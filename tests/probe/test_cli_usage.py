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


@pytest.mark.parametrize(
    ("extra", "message", "not_named"),
    [
        (("--rate", "0"), "--rate 0: must be", "--timeout"),
        (("--timeout", "0"), "--timeout 0: must be", "--rate"),
        (("--mode", "bogus"), "--mode bogus: must be tunnel or transport", "--rate"),
        (("--ping", "10.0.0.1", "--ping-size", "10"), "--ping-size 10: must be", "--count"),
        (("--ping", "10.0.0.1", "--interval", "0"), "--interval 0: must be", "--ping-size"),
        (("--remote-port", "0"), "--remote-port 0: must be", "--port must"),
    ],
)
def test_a_range_error_names_only_the_option_at_fault(psk: Path, extra: tuple[str, ...], message: str, not_named: str) -> None:
    code, out = _run("probe", "connect", "127.0.0.1", "--port", "0", "--psk-file", str(psk), *extra)
    assert code == 2 and out.startswith("ipsecdiag: error: ") and message in out and not_named not in out, out


def test_responder_range_errors_name_one_option(psk: Path) -> None:
    code, out = _run("responder", "--listen", "127.0.0.1", "--psk-file", str(psk), "--linger", "-1")
    assert code == 2 and "--linger -1: must be >= 0" in out and "--timeout" not in out
    code, out = _run("responder", "--listen", "127.0.0.1", "--psk-file", str(psk), "--cookie-threshold", "-1")
    assert code == 2 and "--cookie-threshold" in out


def test_an_unreadable_psk_file_is_one_line(tmp_path: Path) -> None:
    """Our own reader reports it (click's readable check would draw a box)."""
    code, out = _run("probe", "connect", "127.0.0.1", "--port", "0", "--psk-file", str(tmp_path))  # a directory
    assert code == 2 and out.startswith("ipsecdiag: error: --psk-file") and out.count("\n") == 1, out


@pytest.mark.parametrize("command", [("probe", "connect"), ("responder",)])
def test_help_shows_flags_without_a_value_placeholder(command: tuple[str, ...]) -> None:
    res = CliRunner(env={"COLUMNS": "200", "TERM": "dumb"}).invoke(app, [*command, "--help"])
    assert res.exit_code == 0
    # (--help itself is typer's, declared in ipsecdiag/cli.py for every command)
    text = "\n".join(line for line in res.output.splitlines() if "Show this message" not in line)
    assert "<bool>" not in text and "<list[" not in text and "{gateway}" not in text
    assert "--mode" in res.output and "tunnel|transport" in res.output
    if command == ("probe", "connect"):
        assert "GATEWAY" in res.output and "[proto/port] allowed" in res.output


def test_encap_is_a_flag_not_a_value(psk: Path) -> None:
    code, out = _run("probe", "connect", "127.0.0.1", "--port", "0", "--psk-file", str(psk), "--encap", "true")
    assert code == 2  # "true" is an extra argument: --encap takes none


def test_selectors_take_strongswans_bracket_syntax() -> None:
    from ipsecdiag.probe.options import UsageError, selectors

    (web, any_udp, plain) = selectors("10.0.0.0/24[tcp/443], 192.0.2.7[udp/500-510],10.1.0.0/16", "--ts", 4)
    assert (web.ip_protocol, web.start_port, web.end_port) == (6, 443, 443)
    assert (any_udp.ip_protocol, any_udp.start_port, any_udp.end_port) == (17, 500, 510)
    assert (plain.ip_protocol, plain.start_port, plain.end_port) == (0, 0, 0xFFFF)
    assert web.display() == "10.0.0.0/24[tcp/443]"
    (icmp,) = selectors("10.0.0.0/8[1/%any]", "--ts", 4)
    assert icmp.ip_protocol == 1 and (icmp.start_port, icmp.end_port) == (0, 0xFFFF)
    for bad in ("10.0.0.0/24[tcp/99999]", "10.0.0.0/24[bogus/80]", "10.0.0.0/24[tcp/90-80]", "10.0.0.0/33[tcp]"):
        with pytest.raises(UsageError, match="--ts"):
            selectors(bad, "--ts", 4)
