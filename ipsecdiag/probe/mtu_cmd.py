"""The ``ipsecdiag probe mtu`` command: runs :mod:`ipsecdiag.probe.mtu`'s searches and reports.

(a) always; (b) when credentials and ``--ping HOST`` are given (the CHILD SA is negotiated with
forced UDP encapsulation and IKEv2 fragments no larger than what (a) found to pass). One pcapng
holds both parts, with the keys of the IKE and CHILD SAs beside it. Exit status: 0 when the
measurements completed without an error finding, 1 when the gateway or the tunnel did not
answer or the path drops IP fragments (a finding says why), 2 for bad usage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ipsecdiag.probe.options import DEFAULT_ESP, DEFAULT_IKE


def mtu_cmd(
    gateway: Annotated[str, typer.Argument(help="The gateway's address (or name).")],
    port: Annotated[int, typer.Option("--port", help="Our IKE source port (0: any free port; 500 needs privileges).")] = 0,
    remote_port: Annotated[int, typer.Option("--remote-port", help="The gateway's IKE port.")] = 500,
    source: Annotated[str | None, typer.Option("--source", help="Our local address (default: the route's).")] = None,
    wait: Annotated[float, typer.Option("--wait", help="Seconds to wait for the answer to each request.")] = 1.0,
    tries: Annotated[int, typer.Option("--tries", help="Requests per size before it counts as lost.")] = 2,
    rate: Annotated[float, typer.Option("--rate", help="At most this many datagrams per second.")] = 5.0,
    max_time: Annotated[float, typer.Option("--max-time", help="Bound on each search, seconds.")] = 90.0,
    max_size: Annotated[int, typer.Option("--max-size", help="Largest IKE message tried IP-fragmented.")] = 8192,
    ping: Annotated[str | None, typer.Option("--ping", help="With credentials: a host behind the gateway that answers ICMP echo; measures the tunnel MTU.")] = None,
    ping_source: Annotated[str | None, typer.Option("--ping-source", help="Inner source address (default: virtual IP or an address of TSi).")] = None,
    psk_file: Annotated[Path | None, typer.Option("--psk-file", help="File holding the pre-shared key.")] = None,
    cert: Annotated[Path | None, typer.Option("--cert", help="Our certificate (PEM/DER, chain allowed).")] = None,
    key: Annotated[Path | None, typer.Option("--key", help="Our private key (PEM/DER, unencrypted).")] = None,
    ca: Annotated[list[Path] | None, typer.Option("--ca", help="CA certificate(s) to trust the gateway's certificate.")] = None,
    local_id: Annotated[str | None, typer.Option("--id", help="Our identity.")] = None,
    remote_id: Annotated[str | None, typer.Option("--remote-id", help="The gateway's expected identity.")] = None,
    ike: Annotated[str, typer.Option("--ike", help="IKE proposals (strongSwan syntax).")] = DEFAULT_IKE,
    esp: Annotated[str, typer.Option("--esp", help="ESP proposals (strongSwan syntax).")] = DEFAULT_ESP,
    ts: Annotated[str | None, typer.Option("--ts", help="Selectors asked for on the gateway's side (TSr).")] = None,
    local_ts: Annotated[str | None, typer.Option("--local-ts", help="Our selectors (TSi).")] = None,
    vip: Annotated[bool, typer.Option("--vip", help="Request a virtual IP.")] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="Bound on the negotiation of the CHILD SA, seconds.")] = 20.0,
    write: Annotated[Path | None, typer.Option("--write", help="Write the probe's packets as pcapng (keys beside it).")] = None,
    json_out: Annotated[str | None, typer.Option("--json", help="Write the result as JSON to this file ('-': stdout).")] = None,
) -> None:
    """Find the largest IKE message and (with credentials and --ping) the largest tunnelled packet that get through to GATEWAY."""
    from ipsecdiag.exitcodes import ExitStatus
    from ipsecdiag.probe.cli import (
        _console,
        _refuse_inputs,
        step_printer,
        usage_error,
        write_json,
        write_session,
    )
    from ipsecdiag.probe.mtu import IkeSizeSearch, MtuOptions, judge_ike, judge_tunnel
    from ipsecdiag.probe.options import UsageError, proposals
    from ipsecdiag.probe.record import SessionRecord
    from ipsecdiag.probe.rng import SystemRandom
    from ipsecdiag.probe.transport import ProbeError, resolve, source_address

    if not (0 <= port <= 65535 and 1 <= remote_port <= 65535):
        raise usage_error("--port must be 0-65535 and --remote-port 1-65535")
    if not (0 < wait <= 30 and 1 <= tries <= 10 and 0 < rate <= 100 and 0 < max_time <= 3600 and 0 < timeout <= 3600):
        raise usage_error("--wait must be in (0, 30], --tries 1-10, --rate (0, 100], --max-time and --timeout (0, 3600]")
    if not 576 <= max_size <= 65000:
        raise usage_error("--max-size must be 576-65000")
    has_creds = psk_file is not None or cert is not None
    if ping is not None and not has_creds:
        raise usage_error("--ping measures the tunnel: it needs credentials (--psk-file or --cert/--key)")
    to_stdout = json_out == "-"
    console = _console(stderr=to_stdout)
    json_path = Path(json_out) if json_out not in (None, "-") else None
    _refuse_inputs(write, json_path, [p for p in (psk_file, cert, key, *(ca or ())) if p is not None])
    emit = step_printer(console)
    rng = SystemRandom()
    record = SessionRecord()
    tunnel: Any = None
    connected: Any = None
    try:
        gw = resolve(gateway)
        local_addr = resolve(source) if source else source_address(gw, remote_port)
        opts = MtuOptions(
            gateway=gw, remote_port=remote_port, local_addr=local_addr, local_port=port,
            ike_proposals=proposals(ike, "ike", "--ike"), wait=wait, tries=tries, rate=rate, max_time=max_time, max_size=max_size,
        )  # fmt: skip
        result = IkeSizeSearch(opts, rng=rng, emit=emit, record=record).run()
        lines = judge_ike(result, opts)
        if ping is not None and result.df_max is not None:
            tunnel, connected = _tunnel(opts, result.df_max, ping, ping_source, rng, emit, locals_=dict(
                psk_file=psk_file, cert=cert, key=key, ca=ca, local_id=local_id, remote_id=remote_id, ike=ike, esp=esp,
                ts=ts, local_ts=local_ts, vip=vip, timeout=timeout, port=port, local_addr=local_addr,
            ))  # fmt: skip
    except (UsageError, ProbeError) as e:
        raise usage_error(str(e)) from None
    sent = result.packets_sent
    findings = list(result.findings)
    if connected is not None:
        record.datagrams.extend(connected.record.datagrams)
        record.datagrams.sort(key=lambda d: d.ts)
        record.add_keys(connected.record.keys)
        sent += connected.counters.sent
        findings += [f for f in connected.findings if f.id not in {x.id for x in findings}]
        lines += judge_tunnel(tunnel) if tunnel is not None else ["tunnel MTU: not measured: the CHILD SA did not come up"]
    files = write_session(record, write, console)
    console.print()
    if findings:
        from ipsecdiag.report.render import FindingsView

        console.print(FindingsView(findings))
        console.print()
    for line in lines:
        console.print(line, markup=False, highlight=False)
    console.print(f"{sent} packets sent ({result.packets_sent} in the IKE size search)", markup=False)
    if json_out is not None:
        write_json(_json(result, tunnel, findings, sent, files, lines), json_out)
    failed = result.df_max is None or (ping is not None and (tunnel is None or tunnel.inner_max is None))
    failed = failed or any(f.severity.label == "error" for f in findings)  # e.g. fragments dropped
    raise typer.Exit(ExitStatus.FINDINGS if failed else ExitStatus.OK)


def _tunnel(opts: Any, df_max: int, host: str, ping_source: str | None, rng: Any, emit: Any, locals_: dict[str, Any]) -> tuple[Any, Any]:
    """(b): bring a CHILD SA up (forced encapsulation) and search the tunnel MTU through it."""
    from ipsecdiag.probe.connect import ConnectOptions, connect
    from ipsecdiag.probe.mtu import tunnel_search
    from ipsecdiag.probe.options import build_config, load_credentials
    from ipsecdiag.probe.transport import resolve

    a = locals_
    creds = load_credentials(a["psk_file"], a["cert"], a["key"], a["ca"] or ())
    # IKE_AUTH goes to UDP 4500 with the 4-byte non-ESP marker: its fragments must fit what passed
    frag = max(512, min(1280, df_max - 4))
    cfg = build_config(
        ike=a["ike"], esp=a["esp"], creds=creds, local_id=a["local_id"], remote_id=a["remote_id"], ts=a["ts"],
        local_ts=a["local_ts"], local_addr=a["local_addr"], encap=True, timeout=a["timeout"], virtual_ip=a["vip"],
        fragment_size=frag,
    )  # fmt: skip
    copts = ConnectOptions(
        gateway=opts.gateway, config=cfg, offered_ike=a["ike"], offered_esp=a["esp"], remote_port=opts.remote_port,
        local_addr=a["local_addr"], local_port=a["port"], timeout=a["timeout"], rate=max(opts.rate, 10.0),
    )  # fmt: skip
    target, src = resolve(host), resolve(ping_source) if ping_source else None
    got: list[Any] = []
    result = connect(copts, rng=rng, emit=emit, data_plane=lambda sa, drv, nar: got.append(tunnel_search(sa, drv, nar, target, opts, rng, src)))
    return (got[0] if got else None), result


def _json(r: Any, t: Any, findings: list[Any], sent: int, files: Any, lines: list[str]) -> dict[str, Any]:
    from ipsecdiag.probe.cli import _files_dict
    from ipsecdiag.probe.narrate import finding_dict

    ike = {
        "header": r.header,
        "largest_unfragmented": r.df_max,
        "smallest_lost_unfragmented": r.df_min_failed,
        "path_mtu": r.path_mtu,
        "icmp_reported_mtu": r.icmp_mtu,
        "largest_fragmented": r.frag_max,
        "smallest_lost_fragmented": r.frag_min_failed,
        "fragments_pass": r.fragments_pass,
        "stateless": r.stateless,
        "stopped": r.stopped or None,
        "probes": [{"size": p.size, "df": p.df, "outcome": p.outcome, "rtt_ms": None if p.rtt is None else round(p.rtt * 1000, 3), "sends": p.sends} for p in r.probes],
    }
    tunnel = None
    if t is not None:
        tunnel = {
            "host": t.host, "source": t.source, "inner_mtu": t.inner_max, "smallest_lost": t.inner_min_failed,
            "outer_at_mtu": t.outer_at_max, "tcp_mss": t.mss, "inner_icmp_mtu": t.inner_icmp_mtu,
            "probes": [{"size": s, "outcome": o} for s, o in t.probes], "problem": t.problem or None,
        }  # fmt: skip
    return {
        "schema": "ipsecdiag/mtu-1",
        "gateway": r.gateway,
        "ike": ike,
        "tunnel": tunnel,
        "conclusions": lines,
        "findings": [finding_dict(f) for f in findings],
        "packets_sent": sent,
        "files": _files_dict(files),
    }


__all__ = ["mtu_cmd"]
