"""Help text survives rich markup, and the --fail-on error lists every accepted value (review 3,
items 11 and 15)."""

from __future__ import annotations

import re
from typing import Any

import typer
from typer.testing import CliRunner

from ipsecdiag.cli import app

runner = CliRunner()
# What rich reads as a markup tag, e.g. the "[dask]" of pip install 'ipsecdiag[dask]'.
_TAG = re.compile(r"(?<!\\)\[[a-z][^\]\s]*\]")


def _commands(cmd: Any, path: str = "ipsecdiag") -> list[tuple[str, Any]]:
    # Duck-typed: typer 0.28 vendors its own click, whose Group is not click.Group.
    out = [(path, cmd)]
    for name, sub in (getattr(cmd, "commands", None) or {}).items():
        out += _commands(sub, f"{path} {name}")
    return out


def test_no_help_text_holds_an_unescaped_markup_tag() -> None:
    commands = _commands(typer.main.get_command(app))
    assert len(commands) > 10, [p for p, _ in commands]  # the walk reached the subcommands
    bad = []
    for path, cmd in commands:
        texts = [cmd.help or ""] + [getattr(p, "help", None) or "" for p in cmd.params]
        bad += [f"{path}: {t}" for t in texts if _TAG.search(t)]
    assert not bad, "help text rich would eat (escape '[' as '\\['):\n" + "\n".join(bad)


def test_scheduler_help_names_the_dask_extra() -> None:
    res = runner.invoke(app, ["analyze", "--help"], env={"COLUMNS": "250"})
    assert res.exit_code == 0
    text = " ".join(res.stdout.replace("│", " ").split())  # the help panel wraps lines
    assert "pip install 'ipsecdiag[dask]'" in text


def test_fail_on_error_lists_never() -> None:
    res = runner.invoke(app, ["analyze", "sample_pcaps/ikev2-psk-ok.pcap", "--fail-on", "bogus"])
    assert res.exit_code == 2
    assert res.stderr.strip() == (
        "ipsecdiag: error: --fail-on: unknown value 'bogus' (expected info, warning, error or never)"
    )
