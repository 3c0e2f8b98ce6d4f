"""Usage errors are one line on stderr and exit 2 for every command (README 'Usage'),
never click's usage block and boxed panel."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ipsecdiag.cli import app

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = str(next((ROOT / "sample_pcaps").glob("*.pcap*")))
runner = CliRunner()
BOX = set("╭╮╰╯│─")

# (argv, the command named in the hint, a word the message must hold)
BAD = [
    (["analyze", "--bogus", SAMPLE], "ipsecdiag analyze", "--bogus"),  # unknown option
    (["analyze"], "ipsecdiag analyze", "CAPTURE"),  # missing argument
    (["analyze", "--jobs", "abc", SAMPLE], "ipsecdiag analyze", "--jobs"),  # bad int
    (["decrypt", SAMPLE], "ipsecdiag decrypt", "--keys"),  # missing option
    (["decrypt", "--ike-port", "x", "-k", "k", "-o", "o", SAMPLE], "ipsecdiag decrypt", "--ike-port"),
    (["keys", "nosuch"], "ipsecdiag keys", "nosuch"),  # unknown sub-command
    (["nosuch"], "ipsecdiag", "nosuch"),
    (["show", SAMPLE, "notanumber"], "ipsecdiag show", "frames"),
    (["probe", "connect"], "ipsecdiag probe connect", "GATEWAY"),
    (["probe", "connect", "--port", "abc", "192.0.2.1"], "ipsecdiag probe connect", "--port"),
    (["probe", "scan", "--bogus"], "ipsecdiag probe scan", "--bogus"),
    (["responder", "--bogus"], "ipsecdiag responder", "--bogus"),
    (["live", "--bogus"], "ipsecdiag live", "--bogus"),
]


@pytest.mark.parametrize(("argv", "command", "word"), BAD, ids=[f"{i}-{a[0]}" for i, (a, _, _) in enumerate(BAD)])
def test_usage_error_is_one_line_exit_2(argv: list[str], command: str, word: str) -> None:
    res = runner.invoke(app, argv)
    assert res.exit_code == 2, (res.exit_code, res.stderr)
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr
    line = lines[0]
    assert line.startswith("ipsecdiag: error: ") and line.endswith(f"(see '{command} -h')"), line
    assert word in line, line
    assert not BOX & set(res.stderr), res.stderr
    assert res.stdout == ""


def test_bad_choice_is_one_line() -> None:
    res = runner.invoke(app, ["analyze", "--fail-on", "bogus", SAMPLE])
    assert res.exit_code == 2 and len(res.stderr.splitlines()) == 1, res.stderr
    assert res.stderr.startswith("ipsecdiag: error: ") and "bogus" in res.stderr


def test_installed_command_probe_and_file_command_one_line() -> None:
    """Through the console script, where the active commands are registered lazily."""
    exe = Path(sys.executable).parent / "ipsecdiag"
    for argv in (["probe", "connect", "--port", "abc", "192.0.2.1"], ["analyze", "--bogus", SAMPLE]):
        p = subprocess.run([str(exe), *argv], capture_output=True, text=True, timeout=60)
        assert p.returncode == 2 and len(p.stderr.splitlines()) == 1, p.stderr
        assert p.stderr.startswith("ipsecdiag: error: ") and p.stdout == ""


def test_success_and_exit_codes_unchanged() -> None:
    assert runner.invoke(app, ["--version"]).exit_code == 0
    assert runner.invoke(app, ["explain", "R_U_THERE"]).exit_code == 0
    res = runner.invoke(app, [])  # no arguments: the help, exit 2 as before
    assert res.exit_code == 2 and "analyze" in res.stdout + res.stderr
