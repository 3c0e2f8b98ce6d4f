"""``ipsecdiag probe connect`` and ``ipsecdiag responder``: the command-line side of probing.

Steps are printed as they happen (stderr when ``--json -`` owns stdout); the end is the
findings in ``analyze``'s layout, the files written and one result line. Exit status: 0 when
the CHILD SA came up, 1 when the negotiation failed (a finding says why), 2 for bad usage, an
unusable address/port or an internal error of the engine (one line, never a traceback; the
session is still written), 130 after Ctrl-C (the SAs are still deleted and the session written).

``probe connect --json`` writes one object, schema ``ipsecdiag/probe-1``: ``gateway``/``local``
("ip:port"), ``result`` ("child-sa-up" | "failed"), ``ike_sa`` (SPIs, chosen proposal, KE group,
NAT, encapsulation, fragmentation, peer id) and ``child_sa`` (SPIs in/out, selectors, mode,
proposal, virtual IPs), each null when not reached; ``steps`` (t, step, text, frame), ``findings``
(the report JSON's finding fields; frames number the ``--write`` pcapng), ``packets_sent``,
``packets_received``, ``send_errors``, ``ignored``, ``stopped`` ("done" | "deadline" | "budget" |
"interrupted" | "engine-error"), ``deleted`` and ``files``.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.text import Text

from ipsecdiag.exitcodes import ExitStatus
from ipsecdiag.outputs import write_output
from ipsecdiag.probe.options import DEFAULT_ESP, DEFAULT_IKE, UsageError
from ipsecdiag.probe.transport import ProbeError

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType

    from ipsecdiag.probe.connect import ConnectResult
    from ipsecdiag.probe.narrate import Step
    from ipsecdiag.probe.ping import PingResult
    from ipsecdiag.probe.record import SessionRecord, WrittenFiles

probe_app = typer.Typer(
    no_args_is_help=True,
    help="Active probing: negotiate with a gateway yourself and say where it breaks.",
)

SCHEMA = "ipsecdiag/probe-1"


def _console(stderr: bool) -> Console:
    tty = (sys.stderr if stderr else sys.stdout).isatty()
    return Console(stderr=stderr, highlight=False, no_color=not tty, emoji=False, soft_wrap=True)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (``timeout``, systemd, ``docker stop``) ends a probe like Ctrl-C: the SAs are
    deleted and the session written. Only the main thread can install a handler."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    try:
        old = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (tests): nothing to install
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def usage_error(msg: str) -> typer.Exit:
    Console(stderr=True, highlight=False, soft_wrap=True).print(f"ipsecdiag: error: {msg}", markup=False)
    return typer.Exit(ExitStatus.ERROR)


def step_printer(console: Console) -> Callable[[Step], None]:
    def emit(s: Step) -> None:
        line = Text(f"{s.t:8.3f}  ")
        style = "red" if s.kind == "finding" else "green" if s.kind in ("child-sa-up", "authenticated") else ""
        line.append(f"{s.kind:14}", style=style or "bold")
        line.append(" " + s.text)
        if s.frame:
            line.append(f"  (frame {s.frame})", style="dim")
        console.print(line)

    return emit


def _json_doc(result: ConnectResult, files: WrittenFiles | None) -> dict[str, object]:
    from ipsecdiag.probe.narrate import finding_dict

    c = result.counters
    return {
        "schema": SCHEMA,
        "gateway": str(result.gateway),
        "local": str(result.local),
        "result": "child-sa-up" if result.ok else "failed",
        "ike_sa": result.ike or None,
        "child_sa": result.child or None,
        "steps": [{"t": s.t, "step": s.kind, "text": s.text, "frame": s.frame, **s.data} for s in result.steps],
        "findings": [finding_dict(f) for f in result.findings],
        "packets_sent": c.sent,
        "packets_received": c.received,
        "send_errors": c.send_errors,
        "ignored": c.ignored,
        "stopped": result.stop_reason,
        "deleted": result.deleted,
        "files": _files_dict(files),
    }


def write_json(doc: dict[str, object], json_out: str) -> None:
    """``--json``: the document to stdout ('-') or to a file (an unwritable one is a usage error)."""
    text = json.dumps(doc, indent=2) + "\n"
    if json_out == "-":
        sys.stdout.write(text)
        return
    try:
        write_output(Path(json_out), text)
    except OSError as e:
        raise usage_error(f"--json {json_out}: {e.strerror or e}") from None


def _files_dict(files: WrittenFiles | None) -> dict[str, str] | None:
    if files is None:
        return None
    out = {"pcapng": str(files.pcapng)}
    if files.keyfile is not None:
        out["keys"] = str(files.keyfile)
        out["wireshark"] = str(files.wireshark_dir)
    return out


def write_session(record: SessionRecord, path: Path | None, console: Console) -> WrittenFiles | None:
    """Write the pcapng (+ keys); an unwritable path is reported, the probe's result stands."""
    if path is None:
        return None
    try:
        files = record.write(path)
    except OSError as e:
        console.print(f"ipsecdiag: cannot write {path}: {e.strerror or e}", markup=False)
        return None
    extra = f", keys in {files.keyfile} and {files.wireshark_dir}/" if files.keyfile else ""
    console.print(f"wrote {files.pcapng} ({files.frames} frames){extra}", markup=False)
    return files


@probe_app.command("connect")
def connect_cmd(
    gateway: Annotated[str, typer.Argument(metavar="GATEWAY", help="The gateway's address (or name).")],
    psk_file: Annotated[Path | None, typer.Option("--psk-file", readable=False, metavar="FILE", help="File holding the pre-shared key.")] = None,
    local_id: Annotated[str | None, typer.Option("--id", help="Our identity (default: our address or certificate DN).")] = None,
    remote_id: Annotated[str | None, typer.Option("--remote-id", help="The gateway's expected identity.")] = None,
    ike: Annotated[str, typer.Option("--ike", help="IKE proposals, strongSwan syntax (comma-separated list).")] = DEFAULT_IKE,
    esp: Annotated[str, typer.Option("--esp", help="ESP proposals, strongSwan syntax.")] = DEFAULT_ESP,
    ts: Annotated[str | None, typer.Option("--ts", metavar="CIDR,...", help="Selectors asked for on the gateway's side (TSr): comma-separated addresses or networks, strongSwan's \\[proto/port] allowed (10.0.0.0/24\\[tcp/443]).")] = None,
    local_ts: Annotated[str | None, typer.Option("--local-ts", metavar="CIDR,...", help="Our selectors (TSi), as --ts; default: let the gateway narrow.")] = None,
    cert: Annotated[Path | None, typer.Option("--cert", readable=False, metavar="FILE", help="Our certificate (PEM/DER, chain allowed).")] = None,
    key: Annotated[Path | None, typer.Option("--key", readable=False, metavar="FILE", help="Our private key (PEM/DER, unencrypted).")] = None,
    ca: Annotated[list[Path] | None, typer.Option("--ca", readable=False, metavar="FILE", help="CA certificate(s) to trust the gateway's certificate.")] = None,
    port: Annotated[int, typer.Option("--port", help="Our IKE source port: 500 (needs root; NAT-T from 4500), or another (0: any, unprivileged; NAT-T from a free port).")] = 500,
    remote_port: Annotated[int, typer.Option("--remote-port", help="The gateway's IKE port.")] = 500,
    source: Annotated[str | None, typer.Option("--source", help="Our local address (default: the route's).")] = None,
    encap: Annotated[bool, typer.Option("--encap", metavar="", help="Force UDP encapsulation (faked NAT-D, as strongSwan encap=yes).")] = False,
    vip: Annotated[bool, typer.Option("--vip", metavar="", help="Request a virtual IP (configuration payload).")] = False,
    mode: Annotated[str, typer.Option("--mode", metavar="tunnel|transport", help="CHILD SA mode to ask for (transport: USE_TRANSPORT_MODE, RFC 7296 §3.10.1).")] = "tunnel",
    timeout: Annotated[float, typer.Option("--timeout", help="Give up after this many seconds.")] = 20.0,
    rate: Annotated[float, typer.Option("--rate", help="At most this many datagrams per second.")] = 10.0,
    keep: Annotated[bool, typer.Option("--keep", metavar="", help="Do not delete the SAs before exiting.")] = False,
    write: Annotated[Path | None, typer.Option("--write", readable=False, metavar="FILE", help="Write the session as pcapng (keys beside it).")] = None,
    json_out: Annotated[str | None, typer.Option("--json", help="Write the result as JSON to this file ('-': stdout).")] = None,
    ping: Annotated[str | None, typer.Option("--ping", help="Once the CHILD SA is up, ping this host behind the gateway through it (userspace ESP-in-UDP; implies --encap).")] = None,
    count: Annotated[int, typer.Option("--count", help="With --ping: echo requests to send.")] = 4,
    interval: Annotated[float, typer.Option("--interval", help="With --ping: seconds between echo requests.")] = 1.0,
    ping_size: Annotated[int, typer.Option("--ping-size", help="With --ping: size of each inner IP packet (header included).")] = 84,
    ping_source: Annotated[str | None, typer.Option("--ping-source", help="With --ping: inner source address (default: virtual IP or an address of TSi).")] = None,
) -> None:
    """Negotiate an IKE SA and a CHILD SA with GATEWAY and report each step."""
    from ipsecdiag.probe.connect import ConnectOptions, connect
    from ipsecdiag.probe.options import build_config, load_credentials
    from ipsecdiag.probe.rng import SystemRandom
    from ipsecdiag.probe.transport import resolve, source_address

    for ok, msg in (
        (0 <= port <= 65535, f"--port {port}: must be 0-65535"),
        (1 <= remote_port <= 65535, f"--remote-port {remote_port}: must be 1-65535"),
        (0 < timeout <= 3600, f"--timeout {timeout:g}: must be in (0, 3600] seconds"),
        (0 < rate <= 1000, f"--rate {rate:g}: must be in (0, 1000] per second"),
        (mode in ("tunnel", "transport"), f"--mode {mode}: must be tunnel or transport"),
        (ping is None or 1 <= count <= 1000, f"--count {count}: must be 1-1000"),
        (ping is None or 0.05 <= interval <= 60, f"--interval {interval:g}: must be 0.05-60 seconds"),
        (ping is None or 28 <= ping_size <= 65535, f"--ping-size {ping_size}: must be 28-65535"),
    ):
        if not ok:
            raise usage_error(msg)
    to_stdout = json_out == "-"
    console = _console(stderr=to_stdout)
    json_path = Path(json_out) if json_out not in (None, "-") else None
    _refuse_inputs(write, json_path, [p for p in (psk_file, cert, key, *(ca or ())) if p is not None])
    pinged: list[PingResult] = []
    try:
        data_plane = None
        if ping is not None:
            from ipsecdiag.probe.ping import PingOptions, run_ping

            encap = True  # userspace ESP leaves on the NAT-T socket as ESP-in-UDP
            popts = PingOptions(resolve(ping), count=count, interval=interval, size=ping_size, source=resolve(ping_source) if ping_source else None)
            data_plane = lambda sa, drv, nar: pinged.append(run_ping(sa, drv, nar, popts, SystemRandom()))  # noqa: E731
        gw = resolve(gateway)
        local_addr = resolve(source) if source else source_address(gw, remote_port)
        if (":" in local_addr) != (":" in gw):
            raise UsageError(f"--source {local_addr} and the gateway {gw} are of different address families")
        creds = load_credentials(psk_file, cert, key, ca or ())
        cfg = build_config(
            ike=ike, esp=esp, creds=creds, local_id=local_id, remote_id=remote_id, ts=ts, local_ts=local_ts,
            local_addr=local_addr, encap=encap, timeout=timeout, virtual_ip=vip, mode=mode,
        )  # fmt: skip
        opts = ConnectOptions(
            gateway=gw, config=cfg, offered_ike=ike, offered_esp=esp, remote_port=remote_port,
            local_addr=local_addr, local_port=port, timeout=timeout, keep=keep, rate=rate, write=write,
        )  # fmt: skip
        with sigterm_as_interrupt():
            result = connect(opts, rng=SystemRandom(), emit=step_printer(console), data_plane=data_plane)
    except (UsageError, ProbeError) as e:
        raise usage_error(str(e)) from None
    files = write_session(result.record, write, console)
    render_end(console, result)
    if json_out is not None:
        full = _json_doc(result, files)
        if ping is not None:
            full["ping"] = pinged[0].as_dict() if pinged else None
        write_json(full, json_out)
    if result.stop_reason == "interrupted":
        raise typer.Exit(130)
    if pinged and pinged[0].problem.startswith("--ping-source"):
        raise usage_error(pinged[0].problem)  # a bad option found once the selectors were known
    if result.internal_error:
        where = f"; the session so far is in {write}" if write is not None else ""
        raise usage_error(f"internal error in the IKEv2 engine ({result.internal_error}){where}; please report it")
    raise typer.Exit(ExitStatus.OK if result.ok else ExitStatus.FINDINGS)


def _refuse_inputs(write: Path | None, json_path: Path | None, inputs: list[Path]) -> None:
    """The session files (pcapng, keys beside it) and the JSON must not overwrite an input."""
    from ipsecdiag.outputs import OutputError, refuse_inputs
    from ipsecdiag.probe.record import keys_paths

    outputs: list[tuple[str, Path]] = []
    if write is not None:
        outputs += [("--write", write), *(("--write", p) for p in keys_paths(write))]
    if json_path is not None:
        outputs.append(("--json", json_path))
    try:
        refuse_inputs(outputs, inputs)
    except OutputError as e:
        raise usage_error(str(e)) from None


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def render_end(console: Console, result: ConnectResult) -> None:
    from ipsecdiag.report.render import FindingsView

    c = result.counters
    if result.findings:
        console.print()
        console.print(FindingsView(result.findings))
    console.print()
    sent = f"{_n(c.sent, 'datagram')} sent, {c.received} received"
    if c.send_errors:
        sent += f", {c.send_errors} send errors ({c.last_send_error})"
    if c.ignored:
        sent += f", {c.ignored} from other addresses ignored"
    if result.stop_reason == "interrupted":
        console.print(Text(f"Result: interrupted ({sent})", style="bold yellow"))
    elif result.ok:
        console.print(Text(f"Result: CHILD SA up ({sent})", style="bold green"))
    else:
        ids = ", ".join(f.id for f in result.findings if f.severity.label == "error") or "no answer"
        console.print(Text(f"Result: failed: {ids} ({sent})", style="bold red"))





def responder_cmd(
    listen: Annotated[str, typer.Option("--listen", help="Our address to listen on (required: NAT detection needs it).")],
    psk_file: Annotated[Path | None, typer.Option("--psk-file", readable=False, metavar="FILE", help="File holding the pre-shared key.")] = None,
    local_id: Annotated[str | None, typer.Option("--id", help="Our identity (default: our address or certificate DN).")] = None,
    remote_id: Annotated[str | None, typer.Option("--remote-id", help="The identity clients must prove (default: any).")] = None,
    ike: Annotated[str, typer.Option("--ike", help="IKE proposals we accept, strongSwan syntax.")] = DEFAULT_IKE,
    esp: Annotated[str, typer.Option("--esp", help="ESP proposals we accept, strongSwan syntax.")] = DEFAULT_ESP,
    ts: Annotated[str | None, typer.Option("--ts", help="Our side's selectors (default: everything, narrowed).")] = None,
    remote_ts: Annotated[str | None, typer.Option("--remote-ts", help="Selectors allowed on the client's side.")] = None,
    pool: Annotated[str | None, typer.Option("--pool", help="Virtual IP pool for clients that ask (e.g. 10.3.0.0/28).")] = None,
    cert: Annotated[Path | None, typer.Option("--cert", readable=False, metavar="FILE", help="Our certificate (PEM/DER, chain allowed).")] = None,
    key: Annotated[Path | None, typer.Option("--key", readable=False, metavar="FILE", help="Our private key (PEM/DER, unencrypted).")] = None,
    ca: Annotated[list[Path] | None, typer.Option("--ca", readable=False, metavar="FILE", help="CA certificate(s) to trust client certificates.")] = None,
    port: Annotated[int, typer.Option("--port", help="UDP port for IKE.")] = 500,
    natt_port: Annotated[int, typer.Option("--natt-port", help="UDP port for NAT-T (IKE with the non-ESP marker, ESP-in-UDP).")] = 4500,
    timeout: Annotated[float, typer.Option("--timeout", help="Stop after this many seconds.")] = 300.0,
    once: Annotated[bool, typer.Option("--once", metavar="", help="Stop after the first client whose CHILD SA came up has left.")] = False,
    linger: Annotated[float, typer.Option("--linger", help="With --once: stop this long after the CHILD SA came up.")] = 30.0,
    keep: Annotated[bool, typer.Option("--keep", metavar="", help="Do not delete the SAs still up at the end.")] = False,
    write: Annotated[Path | None, typer.Option("--write", readable=False, metavar="FILE", help="Write all sessions as pcapng (keys beside it).")] = None,
    answer_pings: Annotated[bool, typer.Option("--answer-pings", metavar="", help="Answer ICMP echo requests through the CHILD SAs as the hosts inside our selectors.")] = False,
    mode: Annotated[str, typer.Option("--mode", metavar="tunnel|transport", help="CHILD SA mode we accept.")] = "tunnel",
    cookie_threshold: Annotated[int, typer.Option("--cookie-threshold", metavar="N", help="Demand a COOKIE (RFC 7296 §2.6) from new clients while N or more IKE SAs are half-open (0: always).")] = 10,
) -> None:
    """A minimal IKEv2 responder: report what clients send and bring their CHILD SAs up."""
    from ipsecdiag.probe.options import build_responder_config, load_credentials
    from ipsecdiag.probe.responder import Responder, ResponderOptions, collect_keys
    from ipsecdiag.probe.rng import SystemRandom
    from ipsecdiag.probe.transport import resolve

    for ok, msg in (
        (0 <= port <= 65535, f"--port {port}: must be 0-65535"),
        (0 <= natt_port <= 65535, f"--natt-port {natt_port}: must be 0-65535"),
        (not port == natt_port != 0, f"--port and --natt-port are both {port}: they must differ"),
        (0 < timeout <= 86400, f"--timeout {timeout:g}: must be in (0, 86400] seconds"),
        (linger >= 0, f"--linger {linger:g}: must be >= 0"),
        (mode in ("tunnel", "transport"), f"--mode {mode}: must be tunnel or transport"),
        (cookie_threshold >= 0, f"--cookie-threshold {cookie_threshold}: must be >= 0"),
    ):
        if not ok:
            raise usage_error(msg)
    console = _console(stderr=False)
    _refuse_inputs(write, None, [p for p in (psk_file, cert, key, *(ca or ())) if p is not None])
    try:
        addr = resolve(listen)
        creds = load_credentials(psk_file, cert, key, ca or ())
        cfg = build_responder_config(
            ike=ike, esp=esp, creds=creds, local_id=local_id, remote_id=remote_id, local_ts=ts,
            remote_ts=remote_ts, listen=addr, pool=pool, mode=mode,
        )  # fmt: skip
        opts = ResponderOptions(listen=addr, config=cfg, port=port, natt_port=natt_port, accepted=(ike, esp), timeout=timeout, once=once, linger=linger, keep=keep, answer_pings=answer_pings, cookie_threshold=cookie_threshold)
        with sigterm_as_interrupt():
            result = Responder(opts, rng=SystemRandom(), emit=step_printer(console)).run()
    except (UsageError, ProbeError) as e:
        raise usage_error(str(e)) from None
    collect_keys(result)
    write_session(result.record, write, console)
    from ipsecdiag.report.render import FindingsView

    if result.findings:
        console.print()
        console.print(FindingsView(result.findings))
    c = result.counters
    console.print(
        f"{len(result.clients)} client(s), {result.children_up} CHILD SA(s) up; "
        f"{_n(c.sent, 'datagram')} sent, {c.received} received" + (f"; {result.refused} refused (client limit)" if result.refused else "")
        + (f"; {result.forgotten} finished clients not listed" if result.forgotten else "")
        + (f"; {result.cookies_demanded} COOKIE demand(s) (half-open limit)" if result.cookies_demanded else ""),
        markup=False,
    )
    if result.interrupted:
        raise typer.Exit(130)
    raise typer.Exit(ExitStatus.OK if result.children_up else ExitStatus.FINDINGS)


__all__ = ["probe_app", "render_end", "responder_cmd", "step_printer", "usage_error", "write_session"]
