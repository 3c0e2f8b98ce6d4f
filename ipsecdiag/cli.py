"""The ``ipsecdiag`` command line (typer, Annotated style).

Every user-facing failure (unreadable capture, bad key file, bad option) ends as one line on
stderr and exit status 2; no traceback reaches the user.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import typer._click.exceptions as _click_exc  # (typer >= 0.27 carries its own click: these are its classes)
from rich.console import Console
from typer.core import TyperGroup

from .exitcodes import ExitStatus, status_for
from .reconstruction.model import Report, Severity
from .reconstruction.options import AnalysisOptions

if TYPE_CHECKING:
    from .keys.model import KeyStore
    from .report.pcap import ExportSummary

class _OneLineErrors(TyperGroup):
    """The root group: a usage error (unknown option, missing argument, bad value) is one line
    on stderr and exit 2, as the README promises, for every command below it; typer's own
    handling prints the usage and a boxed multi-line panel."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except _click_exc.NoArgsIsHelpError:
            sys.exit(int(ExitStatus.ERROR))  # the help was printed; typer exits 2 here as well
        except _click_exc.UsageError as e:
            _stderr().print(_usage_line(e), markup=False)
            sys.exit(int(ExitStatus.ERROR))
        except _click_exc.ClickException as e:
            _stderr().print(f"ipsecdiag: error: {' '.join(e.format_message().split())}", markup=False)
            sys.exit(e.exit_code)
        except typer.Abort:
            _stderr().print("ipsecdiag: aborted", markup=False)
            sys.exit(1)
        # Without standalone mode typer returns a typer.Exit's code instead of exiting; no
        # command returns an int otherwise.
        sys.exit(rv if isinstance(rv, int) else 0)


def _usage_line(e: _click_exc.UsageError) -> str:
    """``ipsecdiag: error: <message> (see 'ipsecdiag COMMAND -h')``: click's messages can run
    over lines (a bad integer's explanation); they are joined."""
    msg = " ".join(e.format_message().split()).rstrip(".")
    ctx = e.ctx
    if ctx is None:
        return f"ipsecdiag: error: {msg}"
    path = " ".join(["ipsecdiag", *ctx.command_path.split()[1:]])
    return f"ipsecdiag: error: {msg} (see '{path} -h')"


app = typer.Typer(
    name="ipsecdiag",
    cls=_OneLineErrors,
    no_args_is_help=True,
    add_completion=False,
    help="IPsec troubleshooting: analyse IKEv1/IKEv2/ESP captures, decrypt them, diagnose failures.",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            v = version("ipsecdiag")
        except PackageNotFoundError:
            v = "unknown (not installed)"
        sys.stdout.write(f"ipsecdiag {v}\n")
        raise typer.Exit(0)


@app.callback()
def _main(
    show_version: Annotated[
        bool, typer.Option("--version", is_eager=True, callback=_version, help="Print the version and exit.")
    ] = False,
) -> None:
    """IPsec troubleshooting: analyse IKEv1/IKEv2/ESP captures, decrypt them, diagnose failures."""
keys_app = typer.Typer(no_args_is_help=True, help="Convert and inspect key material.")
app.add_typer(keys_app, name="keys")

# The active commands (probe, responder, live) import the IKE engine and the capture back
# ends: a third of a second of start-up that reading a small capture should not pay. When this
# process is the ipsecdiag command running one of the file commands, they are left out.
_FILE_COMMANDS = frozenset({"analyze", "decrypt", "show", "explain", "keys"})
_cli_file_command = (
    len(sys.argv) > 1
    and sys.argv[1] in _FILE_COMMANDS
    and Path(sys.argv[0]).name in ("ipsecdiag", "__main__.py")
    and Path(sys.argv[0]).parent.name in ("ipsecdiag", "bin")
)
if not _cli_file_command:
    from .probe.cli import probe_app, responder_cmd  # (active probing: ipsecdiag/probe/)

    app.add_typer(probe_app, name="probe")
    from .probe.mtu_cmd import mtu_cmd  # (here, not in probe/cli.py: mtu_cmd uses probe/cli's helpers)
    from .probe.scan import scan_cmd  # (the same: registering it in probe/cli.py made an import cycle)

    probe_app.command("scan")(scan_cmd)
    probe_app.command("mtu")(mtu_cmd)
    app.command("responder")(responder_cmd)

    from .live.command import live_cmd  # (live capture: ipsecdiag/live/)

    app.command("live")(live_cmd)


# Path parameters say readable=False: click's own check would print its multi-line usage box;
# the code that opens each file reports an unreadable one in one line instead.


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


def _table_box():  # -> rich.box.Box
    from .report.tables import ASCII_SIMPLE_HEAD

    if sys.stdout.isatty():
        from rich import box

        return box.SIMPLE_HEAD
    return ASCII_SIMPLE_HEAD


def _parse_fail_on(text: str) -> Severity | None:
    if text.strip().lower() == "never":
        return None
    try:
        return Severity.parse(text)
    except ValueError:
        # Severity.parse knows the severities only; --fail-on also takes "never".
        raise UserError(f"--fail-on: unknown value {text!r} (expected info, warning, error or never)") from None


def _load_keys(paths: list[Path] | None):  # -> KeyStore
    from .keys.model import KeyStore

    store = KeyStore()
    if not paths:
        return store
    from .keys.load import KeyFileError, load_key_sources

    try:
        loaded = load_key_sources(paths)
    except KeyFileError as e:
        raise UserError(str(e)) from None
    for warning in loaded.user_warnings:
        _stderr().print(warning, markup=False)
    return loaded.store


def _check_ca_files(paths: list[Path]) -> list[str]:
    """Every --ca file must hold at least one certificate; checks read them again by name."""
    if not paths:
        return []  # the X.509 stack is 45 ms of imports: a run without --ca never loads it
    from .crypto.x509 import CertificateDecodeError, load_certificates

    for p in paths:
        try:
            if not load_certificates(p.read_bytes()):
                raise UserError(f"--ca {p}: no certificate found")
        except OSError as e:
            raise UserError(f"--ca {p}: {e.strerror}") from None
        except CertificateDecodeError as e:
            raise UserError(f"--ca {p}: not a certificate ({e})") from None
    return [str(p) for p in paths]


def _ports(option: str, default: int, extra: list[int] | None) -> list[int]:
    for port in extra or []:
        if not 1 <= port <= 65535:
            raise UserError(f"{option} {port}: a UDP port is 1..65535")
    return sorted({default, *(extra or [])})


def _refuse_inputs(outputs: list[tuple[str, Path]], inputs: list[Path]) -> None:
    from .outputs import OutputError, refuse_inputs

    try:
        refuse_inputs(outputs, inputs)
    except OutputError as e:
        raise UserError(str(e)) from None


def _convert_outputs(to: str, output: Path) -> list[tuple[str, Path]]:
    """The files ``keys convert`` may write: the file itself, or the tables of a directory."""
    if to != "wireshark":
        return [("--output", output)]
    from .keys.wireshark import ESP_TABLE, IKEV1_TABLE, IKEV2_TABLE

    names = (IKEV2_TABLE, IKEV1_TABLE, ESP_TABLE, "preferences")
    return [("--output", output)] + [("--output", output / n) for n in names]


def run_analysis(
    captures: list[Path],
    key_paths: list[Path] | None,
    options: AnalysisOptions,
    *,
    separate: bool = False,
    jobs: int | None = 1,
    progress: bool = True,
    scheduler: str | None = None,
) -> list[Report]:
    """``progress``: a bar on stderr (if a terminal) for a capture that takes over a second."""
    from .capture.model import CaptureError
    from .capture.multi import series_runs
    from .pipeline import analyze_capture
    from .report.progress import progress_for

    store = _load_keys(key_paths)
    runs = list(series_runs(captures, separate=separate))
    if sum(_file_size(p) for run in runs for p in run) >= 32 << 20:
        from .capture.reader import steady_buffers

        steady_buffers()  # no page faults for every chunk: ~0.5 s of system time on 1M packets
    if scheduler is not None:  # on a Dask cluster; workers load the key files themselves
        from .distributed import SchedulerError, analyze_runs

        try:
            return analyze_runs(scheduler, runs, key_paths, options, _analyze_run_in_worker, jobs=jobs, store=store)
        except SchedulerError as e:
            raise UserError(str(e)) from None
    if jobs is None:
        from .parallel import auto_jobs

        jobs = auto_jobs(len(runs), sum(_file_size(p) for run in runs for p in run))
    if jobs > 1 and len(runs) > 1:  # whole captures in worker processes: the serial reports
        from .parallel import map_in_order

        shared = (store, options)
        return [r for rs in map_in_order(_analyze_run_in_worker, shared, runs, jobs) for r in rs]
    reports = []
    for run in runs:
        if len(run) > 1:  # a numbered series (ring, split): files that continue are one capture
            reports += _analyze_series(run, store, options)
            continue
        cap = Path(run[0])
        prog = progress_for(cap, enabled=progress)
        try:
            if jobs > 1:  # one capture in byte ranges on several cores: the serial report (parallel.py)
                from .parallel import analyze_split

                with prog or contextlib.nullcontext():
                    update = prog.update if prog is not None else None
                    r = analyze_split(cap, jobs, keys=store, options=options, progress=update)
            elif prog is not None:
                with prog:
                    r = analyze_capture(cap, keys=store, options=options, progress=prog.update)
            else:
                r = analyze_capture(cap, keys=store, options=options)
        except CaptureError as e:
            raise UserError(str(e)) from None
        reports.append(r)
    return reports


def _file_size(path: str | Path) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0  # the analysis names the file in its own error


def _analyze_run_in_worker(shared: tuple[KeyStore, AnalysisOptions], run: list[str | Path]) -> list[Report]:
    """One run of ``run_analysis`` in a worker process (no progress bar there)."""
    from .capture.model import CaptureError
    from .pipeline import analyze_capture

    store, options = shared
    if len(run) > 1:
        return _analyze_series(run, store, options)
    try:
        return [analyze_capture(Path(run[0]), keys=store, options=options)]
    except CaptureError as e:
        raise UserError(str(e)) from None


def _analyze_series(paths: list[str | Path], store: KeyStore, options: AnalysisOptions) -> list[Report]:
    """One report per run of files that continue one another (capture/multi.py), frames
    numbered on across the files; the checks run once the files' facts are in the source."""
    from .capture.model import CaptureError
    from .capture.multi import capture_groups
    from .diagnosis.checks import default_checks
    from .pipeline import analyze_frames, run_checks

    out = []
    try:
        for group in capture_groups(paths):
            r = analyze_frames(group.frames(), keys=store, options=options, checks=())
            group.fill_source(r.source)
            run_checks(r, default_checks(), options)
            out.append(r)
    except CaptureError as e:
        raise UserError(str(e)) from None
    return out


@app.command()
def analyze(
    captures: Annotated[
        list[Path],
        typer.Argument(metavar="CAPTURE", help="pcap/pcapng files to analyse.", show_default=False, readable=False),
    ],
    keys: Annotated[
        list[Path] | None,
        typer.Option(
            "--keys",
            "-k",
            metavar="KEYFILE",
            readable=False,
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
    ladder: Annotated[
        bool, typer.Option("--ladder", help="Draw the exchange ladders (default: only for up to 3 IKE SAs).")
    ] = False,
    brief: Annotated[
        bool, typer.Option("--brief", help="The verdict and one line per finding (severity, id, title, frames).")
    ] = False,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Every finding's evidence and every SA and flow, one per row "
            "(default: a busy capture's findings condensed and its tables grouped by address pair).",
        ),
    ] = False,
    severity: Annotated[
        str, typer.Option("--severity", metavar="LEVEL", help="Show findings of this level and above: info, warning or error.")
    ] = "info",
    html_out: Annotated[
        Path | None,
        typer.Option("--html", metavar="FILE", readable=False, help="Also write a self-contained HTML report (ladders, ESP plots)."),
    ] = None,
    json_lines: Annotated[
        str | None,
        typer.Option("--json-lines", metavar="FILE|-", help="Write one JSON report per capture, one per line."),
    ] = None,
    spi: Annotated[
        list[str] | None, typer.Option("--spi", metavar="SPI", help="Only this ESP/AH SPI and its SAs (repeatable).")
    ] = None,
    peer: Annotated[
        list[str] | None, typer.Option("--peer", metavar="ADDR", help="Only SAs and flows with this peer address (repeatable).")
    ] = None,
    ike_sa: Annotated[
        list[str] | None,
        typer.Option("--ike-sa", metavar="SPI", help="Only this IKE SA (an IKE SPI, or spi_i/spi_r) and its CHILD SAs."),
    ] = None,
    time_from: Annotated[
        str | None, typer.Option("--time-from", metavar="TIME", help="Only what was active at or after TIME (ISO 8601 or epoch seconds).")
    ] = None,
    time_to: Annotated[
        str | None, typer.Option("--time-to", metavar="TIME", help="Only what was active at or before TIME.")
    ] = None,
    no_pager: Annotated[
        bool, typer.Option("--no-pager", help="Never page the terminal report (default: less -R via PAGER when longer than the screen).")
    ] = False,
    separate: Annotated[
        bool,
        typer.Option(
            "--separate", help="One report per file, even for files that continue one another (ring, split)."
        ),
    ] = False,
    replay_window: Annotated[int, typer.Option(help="Anti-replay window size to model for ESP.")] = 64,
    natt_idle_timeout: Annotated[
        float, typer.Option(help="Seconds of silence after which a NAT may drop a UDP mapping.")
    ] = 30.0,
    path_mtu: Annotated[
        int | None, typer.Option(help="Path MTU to compute the tunnel MTU / MSS for (default: ICMP or 1500).")
    ] = None,
    ca: Annotated[
        list[Path] | None,
        typer.Option(
            "--ca",
            metavar="FILE",
            readable=False,
            help="CA certificate (PEM or DER, repeatable): names the CAs peers request in CERTREQ.",
        ),
    ] = None,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            "-j",
            help="Processes: several captures, or byte ranges of one (default: the cores from 32 MiB of input, else 1).",
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            metavar="ADDRESS|local",
            help=(
                "Analyse the captures on a Dask cluster (tcp://host:8786, or local for a LocalCluster of"
                " --jobs workers); captures and key files must be readable by the workers at the same paths."
                " Needs pip install 'ipsecdiag\\[dask]'."  # \[: rich markup would eat [dask]
            ),
        ),
    ] = None,
) -> None:
    """Analyse captures: IKE SAs and exchanges, ESP flows, and findings with evidence and fixes."""
    try:
        sev = _parse_fail_on(fail_on)
        if replay_window < 1:
            raise UserError("--replay-window must be at least 1")
        if not (math.isfinite(natt_idle_timeout) and natt_idle_timeout > 0):
            raise UserError(f"--natt-idle-timeout {natt_idle_timeout}: must be a finite number of seconds above 0")
        if path_mtu is not None and not 576 <= path_mtu <= 65535:
            raise UserError(f"--path-mtu {path_mtu}: must be within 576..65535")
        outs = [(o, Path(v)) for o, v in (("--json", json_out), ("--json-lines", json_lines)) if v not in (None, "-")]
        outs += [("--html", html_out)] if html_out is not None else []
        if outs:
            _refuse_inputs(outs, [*captures, *(keys or []), *(ca or [])])
        options = AnalysisOptions(
            ike_ports=tuple(_ports("--ike-port", 500, ike_port)),
            natt_ports=tuple(_ports("--natt-port", 4500, natt_port)),
            replay_window=replay_window,
            natt_idle_timeout=natt_idle_timeout,
            path_mtu=path_mtu,
            ca_files=tuple(_check_ca_files(ca or [])),
            esp_timeline=html_out is not None,  # the HTML plots draw it; nobody else pays for it
        )
        if jobs is not None and jobs < 1:
            raise UserError(f"--jobs {jobs}: must be at least 1")
        with _stdin_capture(captures) as (captures, stdin_name):
            # No bar when the JSON goes to the terminal too: it would be drawn into it.
            bar = "-" not in (json_out, json_lines)
            reports = run_analysis(
                captures, keys, options, separate=separate, jobs=jobs, progress=bar, scheduler=scheduler
            )
            for r in reports:  # the report names standard input as the user did, not the spool
                r.source.files = ["-" if f == stdin_name else f for f in r.source.files]
                if stdin_name:
                    r.source.truncated_files = [t.replace(stdin_name, "-") for t in r.source.truncated_files]
                    for f in r.findings:
                        f.explanation = f.explanation.replace(stdin_name, "-")
                        f.evidence = [ev.replace(stdin_name, "-") for ev in f.evidence]
    except UserError as e:
        _fail(str(e))
        return
    from . import presentation as pres

    try:
        reports = pres.apply_filter(reports, pres.build_filter(spi, peer, ike_sa, time_from, time_to))
        min_severity = pres.parse_severity(severity)
    except pres.PresentationError as e:
        _fail(str(e))
        return
    if json_out == "-" and json_lines == "-":
        _fail("--json - and --json-lines - cannot both write to standard output")
    from .report.json import dumps, dumps_lines

    for target, text in ((json_out, lambda: dumps(reports) + "\n"), (json_lines, lambda: dumps_lines(reports))):
        if target == "-":
            sys.stdout.write(text())
        elif target is not None:
            from .outputs import write_output

            try:
                write_output(Path(target), text())
            except OSError as e:
                _fail(f"cannot write {target}: {e.strerror or e}")
    if html_out is not None:
        try:
            pres.write_html(reports, html_out)
        except OSError as e:
            _fail(f"cannot write {html_out}: {e.strerror or e}")
    if "-" not in (json_out, json_lines):
        ladders = False if no_ladder else True if ladder else None
        opts = pres.TextOptions(
            brief=brief, full=full, min_severity=min_severity, ladders=ladders, pager=not no_pager
        )
        pres.print_reports(reports, opts)
    worst = max((status_for(r, sev) for r in reports), default=ExitStatus.OK)
    raise typer.Exit(int(worst))


class _NothingDecrypted(Exception):
    """``decrypt`` decrypted no packet: exit 1 with the reason, write no file."""


def _nothing_decrypted(summary: ExportSummary, output: Path) -> str:
    """One line: why ``decrypt`` wrote nothing (no ESP at all, or each reason with its count)."""
    packets = sum(c.packets for c in summary.per_spi.values())
    if packets == 0:
        return f"nothing decrypted: the capture holds no ESP packets; {output} not written"
    why = ", ".join(f"{n} {reason}" for reason, n in summary.not_decrypted.most_common())
    spis = ", ".join(sorted({f"{spi:08x}" for spi, _src, _dst in summary.per_spi}))
    return f"nothing decrypted: {packets} ESP packet(s) of SPI {spis}: {why}; {output} not written"


def _jobs_note(summary: ExportSummary) -> str:
    """One line on how ``decrypt --jobs`` went when it was not simply parallel."""
    if summary.serial_reason:
        return f"decrypted in one process: {summary.serial_reason}"
    return (
        f"{summary.ranges_redone} of {summary.ranges} byte ranges decrypted again from the ESP SA state"
        " carried across their cut"
    )


@app.command()
def decrypt(
    capture: Annotated[Path, typer.Argument(help="pcap/pcapng file with ESP traffic.", show_default=False, readable=False)],
    keys: Annotated[
        list[Path], typer.Option("--keys", "-k", help="Key material (repeatable), as for analyze.", readable=False)
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help=(
                "Where to write the inner packets: .pcapng gives pcapng, anything else classic pcap (raw IP)."
            ),
        ),
    ],
    keep_undecrypted: Annotated[
        bool,
        typer.Option(
            "--keep-undecrypted",
            help=("Also write ESP packets that have no key or fail their integrity check, as they were."),
        ),
    ] = False,
    ike_port: Annotated[
        list[int] | None, typer.Option("--ike-port", help="Extra UDP port carrying IKE.")
    ] = None,
    natt_port: Annotated[list[int] | None, typer.Option("--natt-port", help="Extra NAT-T UDP port.")] = None,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            "-j",
            help="Processes decrypting byte ranges of the capture (default: the cores from 32 MiB, else 1).",
        ),
    ] = None,
) -> None:
    """Decrypt ESP and write the inner traffic, with the original timestamps, as a capture."""
    from rich.table import Table

    from .capture.model import CaptureError
    from .report.pcap_jobs import export_decrypted_jobs

    try:
        if jobs is not None and jobs < 1:
            raise UserError(f"--jobs {jobs}: must be at least 1")
        _refuse_inputs([("--output", output)], [capture, *keys])
        store = _load_keys(keys)
        if not store:
            # Each source already had its warning (file and why); like any decrypt that
            # decrypts nothing this is exit 1, once the capture is known to be readable.
            from .capture.reader import open_capture

            open_capture(capture).close()
            raise _NothingDecrypted(f"nothing decrypted: the key files hold no usable keys; {output} not written")
        options = AnalysisOptions(
            ike_ports=tuple(_ports("--ike-port", 500, ike_port)),
            natt_ports=tuple(_ports("--natt-port", 4500, natt_port)),
        )
        from .outputs import writing
        from .report.progress import DelayedProgress, progress_for

        with writing(output) as tmp, progress_for(capture) or contextlib.nullcontext() as prog:
            summary = export_decrypted_jobs(
                capture,
                store,
                tmp,
                jobs=jobs,
                pcapng=output.suffix.lower() == ".pcapng",
                keep_undecrypted=keep_undecrypted,
                options=options,
                progress=prog.update if isinstance(prog, DelayedProgress) else None,
            )
            if summary.serial_reason or summary.ranges_redone:
                _stderr().print(f"ipsecdiag: {_jobs_note(summary)}", markup=False)
            if summary.decrypted == 0:
                # Leave no file behind (an empty capture looks like success to a script).
                raise _NothingDecrypted(_nothing_decrypted(summary, output))
    except _NothingDecrypted as e:
        _stderr().print(f"ipsecdiag: {e}", markup=False)
        raise typer.Exit(ExitStatus.FINDINGS) from None
    except UserError as e:
        _fail(str(e))
        return
    except CaptureError as e:
        _fail(str(e))
        return
    except OSError as e:
        _fail(f"cannot write {output}: {e.strerror or e}")
        return
    out = _stdout()
    t = Table(title=f"Decrypted ESP -> {output}", title_justify="left", box=_table_box())
    for col in ("SPI", "Src -> Dst", "Packets", "Decrypted", "Not decrypted", "Written"):
        t.add_column(col, justify="right" if col in ("Packets", "Decrypted", "Written") else "left")
    for (spi, src, dst), c in sorted(summary.per_spi.items()):
        failed = ", ".join(f"{n} {why}" for why, n in c.failed.most_common()) or "-"
        t.add_row(f"{spi:08x}", f"{src} -> {dst}", str(c.packets), str(c.decrypted), failed, str(c.written))
    out.print(t)
    nd = sum(summary.not_decrypted.values())
    out.print(
        f"{summary.written + summary.kept} packet(s) written: {summary.written} decrypted"
        + (f", {summary.kept} kept undecrypted" if keep_undecrypted else "")
        + (
            f"; {nd} ESP packet(s) not decrypted"
            + ("" if keep_undecrypted else " (not written; use --keep-undecrypted)")
            if nd
            else ""
        ),
        markup=False,
    )


@keys_app.command("convert")
def keys_convert(
    sources: Annotated[
        list[Path], typer.Argument(help="Key sources (any supported format).", show_default=False, readable=False)
    ],
    to: Annotated[str, typer.Option("--to", help="Target format: wireshark, toml or xfrm.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output directory (wireshark) or file.")],
    esn_layout: Annotated[
        bool,
        typer.Option(
            "--esn-layout",
            help=("Write esp_sa in the newer 10-field layout with ESN columns (Wireshark 4.2+)."),
        ),
    ] = False,
    any_address: Annotated[
        bool,
        typer.Option(
            "--any-address",
            help=(
                "Write every esp_sa row with wildcard addresses, matched by SPI alone (UDP-encapsulated"
                " SAs always are: a NAT changes their addresses between capture points)."
            ),
        ),
    ] = False,
) -> None:
    """Convert key material, e.g. a charon log into Wireshark's decryption tables."""
    from .keys.convert import convert
    from .keys.errors import KeyFileError

    try:
        _refuse_inputs(_convert_outputs(to, output), sources)
        summary = convert(sources, to, output, esn_layout=esn_layout, any_address=any_address)
    except UserError as e:
        _fail(str(e))
        return
    except (KeyFileError, ValueError) as e:
        _fail(str(e))
        return
    except OSError as e:
        _fail(f"cannot write {output}: {e.strerror or e}")
        return
    out = _stdout()
    for src, fmt in summary.formats.items():
        out.print(f"read {src} ({fmt})", markup=False)
    for w in summary.warnings:
        _stderr().print(f"ipsecdiag: warning: {w}", markup=False)
    if not summary.records_out:
        # Like decrypt that decrypts nothing: exit 1, one line, no empty file behind.
        why = "the key sources hold no usable keys" if not summary.records_in else "no record could be written"
        _stderr().print(f"ipsecdiag: nothing converted: {why}; {output} not written", markup=False)
        raise typer.Exit(ExitStatus.FINDINGS)
    out.print(
        f"wrote {summary.records_out} of {summary.records_in} key record(s) to "
        + ", ".join(str(f) for f in summary.files)
        if summary.files
        else f"wrote {summary.records_out} key record(s) to {summary.out}",
        markup=False,
    )


@keys_app.command("list")
def keys_list(
    sources: Annotated[
        list[Path], typer.Argument(help="Key sources (any supported format).", show_default=False, readable=False)
    ],
    show_keys: Annotated[
        bool, typer.Option("--show-keys", help="Print the key bytes (hidden by default).")
    ] = False,
) -> None:
    """List the key records found in key sources (keys redacted unless --show-keys)."""
    from rich.table import Table

    from .keys.model import ChildSaKeys, IkeSaKeys, IkeV1Keys
    from .wire.registry import EncrId, IntegId, V1EncrAlg, V1HashAlg, name_of

    try:
        store = _load_keys(sources)
    except UserError as e:
        _fail(str(e))
        return

    def k(b: object) -> str:
        if not show_keys:
            return f"<{len(b)} bytes>" if b else "-"  # type: ignore[arg-type]
        return b.hex() if b else "-"  # type: ignore[attr-defined]

    t = Table(title="Key records", title_justify="left", box=_table_box())
    for col in ("Kind", "SA", "Encryption", "Integrity", "Keys", "Source"):
        t.add_column(col, overflow="fold")
    for r in store:
        if isinstance(r, IkeSaKeys):
            t.add_row(
                "IKEv2",
                f"{r.spi_i.hex()}/{r.spi_r.hex()}",
                name_of(EncrId, r.encr),
                name_of(IntegId, r.integ),
                f"SK_ei {k(r.sk_ei)} SK_er {k(r.sk_er)} SK_ai {k(r.sk_ai)} SK_ar {k(r.sk_ar)}",
                r.source,
            )
        elif isinstance(r, IkeV1Keys):
            t.add_row(
                "IKEv1",
                r.cookie_i.hex(),
                "-" if r.encr is None else name_of(V1EncrAlg, r.encr),  # IKEv1's own registry
                "-" if r.hash_alg is None else name_of(V1HashAlg, r.hash_alg),
                f"Ka {k(r.encr_key)}",
                r.source,
            )
        elif isinstance(r, ChildSaKeys):
            where = f"{r.src or '*'} -> {r.dst or '*'}"
            t.add_row(
                r.protocol.upper(),
                f"{r.spi:08x} {where}",
                name_of(EncrId, r.encr),
                name_of(IntegId, r.integ),
                f"enc {k(r.encr_key)} auth {k(r.integ_key)}",
                r.source,
            )
    _stdout().print(t)


@app.command()
def show(
    capture: Annotated[Path, typer.Argument(help="pcap/pcapng file.", show_default=False, readable=False)],
    frames: Annotated[list[int], typer.Argument(help="Frame numbers to dissect.", show_default=False)],
    keys: Annotated[
        list[Path] | None, typer.Option("--keys", "-k", help="Key material (repeatable).", readable=False)
    ] = None,
) -> None:
    """Wireshark's full dissection of the chosen frames, decrypted with the keys (needs the
    `wireshark` extra: pip install 'ipsecdiag\\[wireshark]', and tshark)."""
    from .wsdissect import DissectError, dissect_frames

    try:
        store = _load_keys(keys)
        for text in dissect_frames(capture, frames, store):
            sys.stdout.write(text)
    except (UserError, DissectError) as e:
        _fail(str(e))


@app.command()
def explain(
    key: Annotated[
        str,
        typer.Argument(help="A finding id (e.g. ike-unanswered), or a notify name or number (e.g. TS_UNACCEPTABLE, 24578; both IKE versions)."),
    ],
) -> None:
    """Print the catalogue entry for a finding id or an IKE notify name."""
    from rich.table import Table

    from .diagnosis.knowledge import CATALOGUE
    from .diagnosis.notify_explain import explain_key

    res = explain_key(key)
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


@contextlib.contextmanager
def _stdin_capture(captures: list[Path]) -> Iterator[tuple[list[Path], str | None]]:
    """``-`` among the captures: standard input (a pcap or pcapng stream), spooled to a private
    temporary file because the reader needs to seek and to know the size; removed after."""
    if sum(str(c) == "-" for c in captures) == 0:
        yield captures, None
        return
    if sum(str(c) == "-" for c in captures) > 1:
        raise UserError("'-' (standard input) can be given only once")
    if sys.stdin.isatty():
        raise UserError("'-' reads a capture from standard input, which is a terminal")
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory(prefix="ipsecdiag-stdin-") as tmp:
        spool = Path(tmp) / "stdin.pcap"
        with open(spool, "wb") as out:
            shutil.copyfileobj(sys.stdin.buffer, out, 1 << 20)
        try:
            yield [spool if str(c) == "-" else c for c in captures], str(spool)
        except UserError as e:
            raise UserError(str(e).replace(str(spool), "-")) from None


def _silence_stdout() -> None:
    """Point fd 1 at /dev/null so the interpreter's final flush cannot fail a second time."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def main() -> None:
    try:
        try:
            app()
        finally:
            sys.stdout.flush()  # a full disk shows here, not in the interpreter's shutdown
    except KeyboardInterrupt:
        _stderr().print("ipsecdiag: interrupted", markup=False)
        sys.exit(130)
    except BrokenPipeError:
        _silence_stdout()
        sys.exit(0)
    except OSError as e:
        # Standard output failed (a full disk, an I/O error; no file name then), or a file
        # error no command mapped: one line, never a traceback.
        _silence_stdout()
        what = f"{e.filename}: " if e.filename else "cannot write output: "
        _stderr().print(f"ipsecdiag: error: {what}{e.strerror or e}", markup=False)
        sys.exit(int(ExitStatus.ERROR))


if __name__ == "__main__":
    main()
