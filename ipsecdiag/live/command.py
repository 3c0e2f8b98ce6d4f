"""``ipsecdiag live``: capture from an interface and diagnose while it happens.

The analysis is ``analyze``'s own pass (:func:`ipsecdiag.pipeline.analyze_frames`) fed from
the capture, so the final report is the one ``analyze`` gives for the pcapng ``--write``
keeps. Output:

* a terminal: a dashboard redrawn with every snapshot (IKE SAs, ESP flows and rates,
  findings as soon as the analysis knows them), then the final report as ``analyze`` prints it;
* not a terminal: one line per new finding (and per finding the analysis withdrew), then the
  final report;
* ``--json FILE|-``: the final ``ipsecdiag/report-1`` report; ``--json-lines FILE|-``: one
  JSON object per new finding as it appears, the final report as the last line. When either
  writes to stdout, the human output goes to stderr.

Exit status as ``analyze``: 0, 1 when a finding reaches ``--fail-on``, 2 for bad usage or a
capture that cannot start (one line on stderr). Ctrl-C is the normal way to stop.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from ..exitcodes import ExitStatus, status_for
from ..reconstruction.model import Finding, Report, Severity
from ..report.live_view import Dashboard, LiveStatus, finding_line
from ..report.render import report_renderable
from ..wire.jsontypes import Json
from .session import FindingTracker, LiveSession, RateMeter, finding_key, replacements

if TYPE_CHECKING:
    from rich.live import Live

    from ..capture.live import LiveBackend
    from ..capture.ring import CaptureKeeper
    from ..pipeline import Snapshot

SNAPSHOT_INTERVAL = 0.25  # seconds between dashboard snapshots: "within a second" with margin


class LiveUsageError(Exception):
    """Bad options or a capture that cannot start: one line, exit 2."""


def _parse_duration(text: str) -> float:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h)?\s*", text)
    if not m:
        raise LiveUsageError(f"--duration {text!r}: expected a number of seconds or e.g. 30s, 10m, 2h")
    value = float(m.group(1)) * {None: 1, "ms": 0.001, "s": 1, "m": 60, "min": 60, "h": 3600}[m.group(2)]
    if value <= 0:
        raise LiveUsageError("--duration must be positive")
    return value


def _ports(option: str, extra: list[int] | None) -> tuple[int, ...]:
    for port in extra or []:
        if not 1 <= port <= 65535:
            raise LiveUsageError(f"{option} {port}: a port is 1..65535")
    return tuple(extra or ())


def _load_keys(paths: list[Path] | None, err: Console):  # -> KeyStore | None
    if not paths:
        return None
    from ..keys.load import KeyFileError, load_key_sources

    try:
        loaded = load_key_sources(paths)
    except KeyFileError as e:
        raise LiveUsageError(str(e)) from None
    for warning in loaded.user_warnings:  # the same as analyze prints
        err.print(warning, markup=False)
    return loaded.store


def _open_out(target: str | None, option: str) -> IO[str] | None:
    if target is None or target == "-":
        return sys.stdout if target == "-" else None
    try:
        return open(target, "w", encoding="utf-8")  # closed by the caller
    except OSError as e:
        raise LiveUsageError(f"{option} {target}: {e.strerror or e}") from None


def live_cmd(
    interface: Annotated[
        str, typer.Option("--interface", "-i", help="Interface to capture on ('any': all of them).")
    ],
    bpf: Annotated[
        str | None,
        typer.Option(
            "--filter",
            "-f",
            metavar="BPF",
            help="Capture filter (pcap syntax) that narrows the default IPsec filter, e.g. 'host 192.0.2.1'.",
        ),
    ] = None,
    backend: Annotated[
        str, typer.Option(help="Capture back end: auto (dumpcap, tcpdump, then scapy), dumpcap, tcpdump, scapy.")
    ] = "auto",
    keys: Annotated[
        list[Path] | None, typer.Option("--keys", "-k", help="Key material (repeatable), as for analyze.")
    ] = None,
    write: Annotated[
        Path | None, typer.Option("--write", "-w", metavar="FILE", help="Keep the raw capture as pcapng.")
    ] = None,
    ring: Annotated[
        str | None,
        typer.Option(
            metavar="NxSIZE",
            help="With --write: a ring of N files of SIZE each (e.g. 10x100MB), named FILE_00001_<time>.",
        ),
    ] = None,
    duration: Annotated[
        str | None, typer.Option(metavar="TIME", help="Stop after this long (seconds, or 30s, 10m, 2h).")
    ] = None,
    count: Annotated[int | None, typer.Option(help="Stop after this many captured frames.")] = None,
    json_out: Annotated[
        str | None, typer.Option("--json", metavar="FILE|-", help="Write the final JSON report (as analyze).")
    ] = None,
    json_lines: Annotated[
        str | None,
        typer.Option(
            "--json-lines",
            metavar="FILE|-",
            help="Stream one JSON object per new finding, then the final report as the last line.",
        ),
    ] = None,
    fail_on: Annotated[
        str, typer.Option(help="Exit 1 if a finding has at least this severity: info, warning, error or never.")
    ] = "error",
    ike_port: Annotated[list[int] | None, typer.Option("--ike-port", help="Extra UDP port carrying IKE.")] = None,
    natt_port: Annotated[list[int] | None, typer.Option("--natt-port", help="Extra NAT-T port.")] = None,
    replay_window: Annotated[int, typer.Option(help="Anti-replay window size to model for ESP.")] = 64,
    no_ladder: Annotated[bool, typer.Option("--no-ladder", help="No exchange ladders in the final report.")] = False,
) -> None:
    """Capture from an interface and diagnose while it happens: a live dashboard, then the
    final report exactly as `analyze` gives it for the capture."""
    human_stream = sys.stderr if "-" in (json_out, json_lines) else sys.stdout
    tty = human_stream.isatty()
    human = Console(file=human_stream, highlight=False, no_color=not tty, emoji=False, soft_wrap=not tty)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    req = LiveRequest(
        interface, bpf, backend, keys, write, ring, duration, count, json_out, json_lines,
        fail_on, ike_port, natt_port, replay_window, not no_ladder,
    )  # fmt: skip
    try:
        report = run_live(req, human, tty=tty)
    except LiveUsageError as e:
        err.print(f"ipsecdiag: error: {e}", markup=False)
        raise typer.Exit(ExitStatus.ERROR) from None
    sev = None if fail_on.strip().lower() == "never" else Severity.parse(fail_on)
    raise typer.Exit(int(status_for(report, sev)))


@dataclass(frozen=True)
class LiveRequest:
    """The options of one ``live`` run, as given on the command line."""

    interface: str
    bpf: str | None = None
    backend: str = "auto"
    key_paths: list[Path] | None = None
    write: Path | None = None
    ring: str | None = None
    duration: str | None = None
    count: int | None = None
    json_out: str | None = None
    json_lines: str | None = None
    fail_on: str = "error"
    ike_port: list[int] | None = None
    natt_port: list[int] | None = None
    replay_window: int = 64
    ladders: bool = True


def run_live(
    req: LiveRequest, human: Console, *, tty: bool, on_redraw: Callable[[], None] | None = None
) -> Report:
    """Run one live session to its end and write its outputs; returns the final Report.

    ``human`` receives the dashboard (``tty``) or the finding lines, then the final report;
    ``on_redraw`` runs after every dashboard redraw (tests record the frames with it).
    Raises :class:`LiveUsageError` for bad options and captures that cannot start."""
    from ..capture.bpf import build_filter
    from ..capture.feed import FrameFeed
    from ..capture.live import LiveCaptureError, open_backend
    from ..capture.model import CaptureError
    from ..capture.ring import CaptureKeeper, parse_ring
    from ..outputs import OutputError, refuse_inputs
    from ..pipeline import analyze_frames
    from ..reconstruction.options import AnalysisOptions

    if req.fail_on.strip().lower() != "never":
        try:
            Severity.parse(req.fail_on)
        except ValueError as e:
            raise LiveUsageError(f"--fail-on: {e}") from None
    if req.json_out == "-" and req.json_lines == "-":
        raise LiveUsageError("--json - and --json-lines - cannot both write to stdout")
    if req.ring is not None and req.write is None:
        raise LiveUsageError("--ring needs --write FILE (the name the ring files are made from)")
    if req.count is not None and req.count < 1:
        raise LiveUsageError("--count must be at least 1")
    seconds = _parse_duration(req.duration) if req.duration is not None else None
    try:
        ring_spec = parse_ring(req.ring) if req.ring is not None else None
        options = AnalysisOptions(
            ike_ports=_ports("--ike-port", req.ike_port),
            natt_ports=_ports("--natt-port", req.natt_port),
            replay_window=req.replay_window,
        )
    except ValueError as e:
        raise LiveUsageError(str(e)) from None
    named = (("--json", req.json_out), ("--json-lines", req.json_lines))
    outputs = [(opt, Path(p)) for opt, p in named if p not in (None, "-")]
    if req.write is not None:
        outputs.append(("--write", req.write))
    try:
        refuse_inputs(outputs, list(req.key_paths or []))
    except OutputError as e:
        raise LiveUsageError(str(e)) from None
    store = _load_keys(req.key_paths, human)
    lines_out = _open_out(req.json_lines, "--json-lines")
    filt = build_filter(req.interface, options.ike_ports, options.natt_ports, req.bpf)
    try:
        cap = open_backend(req.interface, filt, req.backend)
    except LiveCaptureError as e:
        raise LiveUsageError(str(e)) from None
    keeper = CaptureKeeper(req.write, ring=ring_spec, interface=req.interface) if req.write is not None else None
    session = LiveSession(FrameFeed(cap).start(), keeper=keeper, duration=seconds, count=req.count)
    view = _View(session, cap, human, tty, lines_out, keeper, on_redraw)
    restore = session.install_sigint()
    try:
        with view:
            report = analyze_frames(
                session.frames(),
                options=options,
                keys=store,
                source_name=req.interface,
                source_format=f"live {cap.name}",
                on_snapshot=view.snapshot,
                snapshot_interval=SNAPSHOT_INTERVAL,
            )
    except CaptureError as e:
        raise LiveUsageError(str(e)) from None
    finally:
        restore()
    note = cap.ended_note() if session.stop_reason == "capture ended" else ""
    if note:  # the tool died (interface gone, disk full): the report covers what came before
        session.stop_reason += f" ({note})"
        human.print(f"ipsecdiag: warning: the capture ended by itself: {note}", markup=False)
    view.final(report, req.json_out, ladders=req.ladders)
    if lines_out is not None and lines_out is not sys.stdout:
        lines_out.close()
    return report


class _View:
    """Everything the user sees while the session runs and when it ends."""

    def __init__(
        self,
        session: LiveSession,
        cap: LiveBackend,
        human: Console,
        tty: bool,
        lines_out: IO[str] | None,
        keeper: CaptureKeeper | None,
        on_redraw: Callable[[], None] | None = None,
    ) -> None:
        self.on_redraw = on_redraw
        self.session = session
        self.cap = cap
        self.human = human
        self.tty = tty
        self.lines_out = lines_out
        self.keeper = keeper
        self.tracker = FindingTracker()
        self.rates = RateMeter()
        self._live: Live | None = None

    def __enter__(self) -> _View:
        if self.tty:
            from rich.live import Live

            self._live = Live(console=self.human, auto_refresh=False, transient=True, redirect_stderr=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)
            self._live = None

    def _status(self, esp_rates: dict[tuple[int, str, str], tuple[float, float]] | None = None) -> LiveStatus:

        d = self.cap.drops
        return LiveStatus(
            interface=self.cap.interface,
            backend=self.cap.name,
            elapsed=self.session.elapsed,
            frames=self.session.frames_seen,
            drops=d.describe(),
            dropped=d.total,
            writing=_describe_keeper(self.keeper),
            stopping=self.session.stopping,
            esp_rates=esp_rates or {},
            now_ts=self.session.last_ts,
        )

    def snapshot(self, snap: Snapshot) -> None:
        self.cap.request_stats()
        new, gone = self.tracker.update(snap.findings)
        at = time.time()
        if self._live is not None:
            rates = self.rates.update(snap.report.esp_flows, snap.wall)
            self._live.update(Dashboard(snap.report, self._status(rates)), refresh=True)
            if self.on_redraw is not None:
                self.on_redraw()
        elif new or gone:
            replaced = replacements(new, gone)
            for f in new:
                old = replaced.get(id(f))
                was = f" (replaces the earlier line for frames {','.join(map(str, old.frames[:6]))})" if old else ""
                self.human.print(finding_line(f, at) + was, markup=False, highlight=False)
            kept = {id(g) for g in replaced.values()}
            for f in gone:
                if id(f) not in kept:
                    self.human.print(finding_line(f, at).replace(f"[{f.id}]", f"[{f.id}] withdrawn:", 1), markup=False)
        if self.lines_out is not None and (new or gone):
            self._json_events(snap.report, new, gone, at)

    def _json_events(self, report: Report, new: list[Finding], gone: list[Finding], at: float) -> None:
        stamp = _iso(at)
        dicts = _report_json(report)["findings"]
        by_key = {finding_key(f): d for f, d in zip(report.findings, dicts, strict=True)}
        out = self.lines_out
        assert out is not None
        replaced = replacements(new, gone)
        by_old = {id(g): f for f, g in ((f, replaced[id(f)]) for f in new if id(f) in replaced)}
        for f in new:
            ev: dict[str, object] = {"event": "finding", "time": stamp, **by_key[finding_key(f)]}
            if id(f) in replaced:
                old = replaced[id(f)]
                ev["replaces"] = {"ike_sa": old.ike_sa, "frames": old.frames}
            out.write(json.dumps(ev) + "\n")
        for f in gone:
            ev = {"event": "finding-withdrawn", "time": stamp, "id": f.id, "ike_sa": f.ike_sa, "frames": f.frames}
            if id(f) in by_old:  # refined, not gone: the finding event above replaces it
                ev["replaced_by"] = {"ike_sa": by_old[id(f)].ike_sa, "frames": by_old[id(f)].frames}
            out.write(json.dumps(ev) + "\n")
        out.flush()

    def live_info(self) -> Json:
        """The capture's own facts for the JSON report (an additional ``live`` object)."""
        d = self.cap.drops
        info: Json = {
            "interface": self.cap.interface,
            "backend": self.cap.name,
            "filter": getattr(self.cap, "bpf", ""),
            "seconds": round(self.session.elapsed, 3),
            "stopped": self.session.stop_reason,
            "dropped": {
                "kernel": d.kernel,
                "interface": d.interface,
                "capture_process": d.capture_process,
                "received_by_filter": d.received,
            },
            # times ipsecdiag fell behind far enough to make the capture tool wait (back-pressure)
            "analysis_stalls": getattr(self.cap, "stalls", 0),
        }
        if self.keeper is not None:
            info["written"] = [str(p) for p in self.keeper.files]
        return info

    def final(self, report: Report, json_out: str | None, *, ladders: bool) -> None:
        doc = _report_json(report)
        doc["live"] = self.live_info()
        if json_out is not None:
            text = json.dumps(doc, indent=2)
            if json_out == "-":
                sys.stdout.write(text + "\n")
            else:
                from ..outputs import write_output

                write_output(Path(json_out), text + "\n")
        if self.lines_out is not None:
            self.lines_out.write(json.dumps(doc) + "\n")
            self.lines_out.flush()
        self.human.print(report_renderable(report, ladders=ladders))
        self.human.print(_summary_line(self.session, self.cap, self.keeper), markup=False, highlight=False)


def _describe_keeper(keeper: CaptureKeeper | None) -> str:
    if keeper is None:
        return ""
    if keeper.ring is None:
        return str(keeper.base)
    n, size = keeper.ring
    return f"ring of {n} x {size // 1_000_000 or size} {'MB' if size >= 1_000_000 else 'bytes'} ({keeper.base})"


def _summary_line(session: LiveSession, cap: LiveBackend, keeper: CaptureKeeper | None) -> str:
    text = (
        f"live capture on {cap.interface} via {cap.name}: {session.frames_seen} frames in "
        f"{session.elapsed:.1f}s, stopped ({session.stop_reason or 'done'}); {cap.drops.describe()}"
    )
    if keeper is not None and keeper.files:
        text += "; written: " + ", ".join(str(p) for p in keeper.files)
    return text


def _iso(t: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(t, tz=UTC).isoformat(timespec="milliseconds")


def _report_json(report: Report) -> Json:
    """The report as ``analyze --json`` writes it (the same serialiser), as a dict."""
    from ..report.json import dumps

    return json.loads(dumps([report]))
