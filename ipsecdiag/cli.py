"""The ``ipsecdiag`` command line (typer, Annotated style).

Every user-facing failure (unreadable capture, bad key file, bad option) ends as one line on
stderr and exit status 2; no traceback reaches the user.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from .analysis.model import Report, Severity
from .exitcodes import ExitStatus, status_for

app = typer.Typer(
    name="ipsecdiag",
    no_args_is_help=True,
    add_completion=False,
    help="IPsec troubleshooting: analyse IKEv1/IKEv2/ESP captures, decrypt them, diagnose failures.",
    pretty_exceptions_enable=False,
)
keys_app = typer.Typer(no_args_is_help=True, help="Convert and inspect key material.")
app.add_typer(keys_app, name="keys")


class UserError(Exception):
    """A problem with the user's input: printed as one line, exit 2."""


def _stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _fail(msg: str) -> None:
    _stderr().print(f"ipsecdiag: error: {msg}", markup=False)
    raise typer.Exit(ExitStatus.ERROR)


def _stdout() -> Console:
    tty = sys.stdout.isatty()
    return Console(
        highlight=False,
        no_color=not tty,
        emoji=False,
        width=None,
        force_terminal=tty if tty else False,
    )


def _parse_fail_on(text: str) -> Severity | None:
    if text.strip().lower() == "never":
        return None
    try:
        return Severity.parse(text)
    except ValueError as e:
        raise UserError(f"--fail-on: {e}") from None


def _load_keys(paths: list[Path] | None):  # -> KeyStore
    from .keys.model import KeyStore

    store = KeyStore()
    if not paths:
        return store
    from .keys.load import KeyFileError, load_keys

    for p in paths:
        try:
            store.extend(load_keys(p))
        except KeyFileError as e:
            raise UserError(str(e)) from None
    return store


def _progress_for(path: Path):
    """A byte-based progress bar on stderr for big files when stderr is a terminal."""
    if not sys.stderr.isatty():
        return None, None
    try:
        size = path.stat().st_size
    except OSError:
        return None, None
    if size < 50 * 1024 * 1024:
        return None, None
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    prog = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=_stderr(),
        transient=True,
    )
    task = prog.add_task(path.name, total=size)

    def update(done: int, total: int) -> None:
        prog.update(task, completed=done)

    return prog, update


def run_analysis(captures: list[Path], key_paths: list[Path] | None, options: dict) -> list[Report]:
    from .analysis.decrypt import install_decryption
    from .analysis.reconstruct import analyze_capture
    from .capture.model import CaptureError

    store = _load_keys(key_paths)
    reports = []
    for cap in captures:
        prog, update = _progress_for(cap)
        try:
            if prog is not None:
                with prog:
                    r = analyze_capture(
                        cap, keys=store, options=options, progress=update, setup=install_decryption
                    )
            else:
                r = analyze_capture(cap, keys=store, options=options, setup=install_decryption)
        except CaptureError as e:
            raise UserError(str(e)) from None
        reports.append(r)
    return reports


@app.command()
def analyze(
    captures: Annotated[list[Path], typer.Argument(help="pcap/pcapng files to analyse.", show_default=False)],
    keys: Annotated[
        list[Path] | None,
        typer.Option(
            "--keys",
            "-k",
            help=(
                "Key material (repeatable): strongSwan charon log, `ip xfrm state` output, Wireshark "
                "ikev2/ikev1_decryption_table or esp_sa, a Wireshark profile dir, or an ipsecdiag TOML key file."
            ),
        ),
    ] = None,
    json_out: Annotated[
        str | None,
        typer.Option(
            "--json",
            metavar="FILE|-",
            help=("Write the JSON report (schema ipsecdiag/report-1) to FILE, or to stdout with '-'."),
        ),
    ] = None,
    fail_on: Annotated[
        str,
        typer.Option(help="Exit 1 if a finding has at least this severity: info, warning, error or never."),
    ] = "error",
    ike_port: Annotated[
        list[int] | None,
        typer.Option(
            "--ike-port", help=("Extra UDP port carrying IKE (repeatable; 500 is always included).")
        ),
    ] = None,
    natt_port: Annotated[
        list[int] | None,
        typer.Option(
            "--natt-port",
            help=(
                "Extra UDP port carrying NAT-T (IKE with non-ESP marker and ESP-in-UDP; 4500 always included)."
            ),
        ),
    ] = None,
    no_ladder: Annotated[bool, typer.Option("--no-ladder", help="Do not draw the exchange ladders.")] = False,
    replay_window: Annotated[int, typer.Option(help="Anti-replay window size to model for ESP.")] = 64,
) -> None:
    """Analyse captures: IKE SAs and exchanges, ESP flows, and findings with evidence and fixes."""
    try:
        sev = _parse_fail_on(fail_on)
        if replay_window < 1:
            raise UserError("--replay-window must be at least 1")
        options = {
            "ike_ports": sorted({500, *(ike_port or [])}),
            "natt_ports": sorted({4500, *(natt_port or [])}),
            "replay_window": replay_window,
        }
        reports = run_analysis(captures, keys, options)
    except UserError as e:
        _fail(str(e))
        return
    if json_out is not None:
        from .report.json import dumps

        text = dumps(reports)
        if json_out == "-":
            sys.stdout.write(text + "\n")
        else:
            try:
                Path(json_out).write_text(text + "\n")
            except OSError as e:
                _fail(f"cannot write {json_out}: {e.strerror}")
    if json_out != "-":
        from .report.render import report_renderable

        out = _stdout()
        for r in reports:
            out.print(report_renderable(r, ladders=not no_ladder))
    worst = max((status_for(r, sev) for r in reports), default=ExitStatus.OK)
    raise typer.Exit(int(worst))


@app.command()
def explain(
    key: Annotated[
        str,
        typer.Argument(help="A finding id (e.g. ike-unanswered) or a notify name (e.g. TS_UNACCEPTABLE)."),
    ],
) -> None:
    """Print the catalogue entry for a finding id or an IKE notify name."""
    from rich.table import Table

    from .analysis.knowledge import CATALOGUE, explain_text

    res = explain_text(key)
    if res is None:
        _fail(f"unknown finding id or notify name {key!r}; known finding ids: {', '.join(sorted(CATALOGUE))}")
        return
    title, rows = res
    out = _stdout()
    out.print(title, style="bold", markup=False)
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold", no_wrap=True)
    t.add_column(overflow="fold")
    for label, text in rows:
        t.add_row(label, text)
    out.print(t)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        _stderr().print("ipsecdiag: interrupted", markup=False)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)


if __name__ == "__main__":
    main()
