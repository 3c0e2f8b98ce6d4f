"""The ``ipsecdiag probe mtu`` command: runs :mod:`ipsecdiag.probe.mtu`'s searches and reports.

(a) always; (b) when credentials and ``--ping HOST`` are given (the CHILD SA is negotiated with
forced UDP encapsulation and IKEv2 fragments no larger than what (a) found to pass). One pcapng
holds both parts, with the keys of the IKE and CHILD SAs beside it. Exit status: 0 only when
every measurement asked for succeeded (the IKE size search, and with ``--ping`` the CHILD SA
and the tunnel search) and no finding is an error; 1 when one did not (the gateway or the
tunnel did not answer, the CHILD SA did not come up) or a finding is an error (fragments
dropped with no IKEv2 fragmentation to carry IKE_AUTH); 2 for bad usage.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ipsecdiag.probe.options import DEFAULT_ESP, DEFAULT_IKE
from ipsecdiag.reconstruction.model import Finding, Severity

if TYPE_CHECKING:  # the probe machinery is imported when the command runs
    from collections.abc import Callable

    from ipsecdiag.crypto.rng import RandomSource
    from ipsecdiag.probe.connect import ConnectOptions, ConnectResult
    from ipsecdiag.probe.mtu import IkeMtuResult, MtuOptions, TunnelMtuResult
    from ipsecdiag.probe.narrate import Step
    from ipsecdiag.probe.record import WrittenFiles


def mtu_cmd(
    gateway: Annotated[str, typer.Argument(metavar="GATEWAY", help="The gateway's address (or name).")],
    port: Annotated[int, typer.Option("--port", metavar="PORT", help="Our IKE source port (0: any free port; 500 needs privileges).")] = 0,
    remote_port: Annotated[int, typer.Option("--remote-port", metavar="PORT", help="The gateway's IKE port.")] = 500,
    source: Annotated[str | None, typer.Option("--source", metavar="ADDR", help="Our local address (default: the route's).")] = None,
    wait: Annotated[float, typer.Option("--wait", metavar="SECONDS", help="Seconds to wait for the answer to each request.")] = 1.0,
    tries: Annotated[int, typer.Option("--tries", metavar="N", help="Requests per size before it counts as lost.")] = 2,
    rate: Annotated[float, typer.Option("--rate", metavar="PER_SECOND", help="At most this many datagrams per second.")] = 5.0,
    max_time: Annotated[float, typer.Option("--max-time", metavar="SECONDS", help="Bound on each search, seconds.")] = 90.0,
    max_size: Annotated[int, typer.Option("--max-size", metavar="BYTES", help="Largest IKE message tried IP-fragmented.")] = 8192,
    ping: Annotated[str | None, typer.Option("--ping", metavar="HOST", help="With credentials: a host behind the gateway that answers ICMP echo; measures the tunnel MTU.")] = None,
    ping_source: Annotated[str | None, typer.Option("--ping-source", metavar="ADDR", help="Inner source address (default: virtual IP or an address of TSi).")] = None,
    psk_file: Annotated[Path | None, typer.Option("--psk-file", metavar="FILE", help="File holding the pre-shared key.")] = None,
    cert: Annotated[Path | None, typer.Option("--cert", metavar="FILE", help="Our certificate (PEM/DER, chain allowed).")] = None,
    key: Annotated[Path | None, typer.Option("--key", metavar="FILE", help="Our private key (PEM/DER, unencrypted).")] = None,
    ca: Annotated[list[Path] | None, typer.Option("--ca", metavar="FILE", help="CA certificate(s) to trust the gateway's certificate.")] = None,
    local_id: Annotated[str | None, typer.Option("--id", metavar="ID", help="Our identity.")] = None,
    remote_id: Annotated[str | None, typer.Option("--remote-id", metavar="ID", help="The gateway's expected identity.")] = None,
    ike: Annotated[str, typer.Option("--ike", metavar="PROPOSALS", help="IKE proposals (strongSwan syntax).")] = DEFAULT_IKE,
    esp: Annotated[str, typer.Option("--esp", metavar="PROPOSALS", help="ESP proposals (strongSwan syntax).")] = DEFAULT_ESP,
    ts: Annotated[str | None, typer.Option("--ts", metavar="CIDR,...", help="Selectors asked for on the gateway's side (TSr).")] = None,
    local_ts: Annotated[str | None, typer.Option("--local-ts", metavar="CIDR,...", help="Our selectors (TSi).")] = None,
    vip: Annotated[bool, typer.Option("--vip", metavar="", help="Request a virtual IP.")] = False,
    timeout: Annotated[float, typer.Option("--timeout", metavar="SECONDS", help="Bound on the negotiation of the CHILD SA, seconds.")] = 20.0,
    write: Annotated[Path | None, typer.Option("--write", metavar="FILE", help="Write the probe's packets as pcapng (keys beside it).")] = None,
    json_out: Annotated[str | None, typer.Option("--json", metavar="FILE|-", help="Write the result as JSON to this file ('-': stdout).")] = None,
) -> None:
    """Find the largest IKE message and (with credentials and --ping) the largest tunnelled packet that get through to GATEWAY.

    Says which limit it hit: our own interface MTU, a router's ICMP fragmentation needed, or silence. Exit status: 0 every measurement asked for succeeded, 1 one did not (no answer, CHILD SA not up) or a finding is an error, 2 bad usage.
    """
    from ipsecdiag.engine import IkeConfig
    from ipsecdiag.exitcodes import ExitStatus
    from ipsecdiag.probe.cli import (
        _console,
        _refuse_inputs,
        step_printer,
        usage_error,
        write_json,
        write_session,
    )
    from ipsecdiag.probe.connect import ConnectOptions
    from ipsecdiag.probe.mtu import IkeSizeSearch, MtuOptions, judge_ike, judge_tunnel
    from ipsecdiag.probe.options import UsageError, build_config, load_credentials, proposals
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
    tunnel: TunnelMtuResult | None = None
    connected: ConnectResult | None = None
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
            creds = load_credentials(psk_file, cert, key, ca or ())

            def config_for(fragment_size: int) -> IkeConfig:
                return build_config(
                    ike=ike, esp=esp, creds=creds, local_id=local_id, remote_id=remote_id, ts=ts, local_ts=local_ts,
                    local_addr=local_addr, encap=True, timeout=timeout, virtual_ip=vip, fragment_size=fragment_size,
                )  # fmt: skip

            copts = ConnectOptions(
                gateway=gw, config=config_for(_fragment_size(result.df_max)), offered_ike=ike, offered_esp=esp,
                remote_port=remote_port, local_addr=local_addr, local_port=port, timeout=timeout, rate=max(rate, 10.0),
            )  # fmt: skip
            tunnel, connected = _tunnel(opts, copts, ping, ping_source, rng, emit)
    except (UsageError, ProbeError) as e:
        raise usage_error(str(e)) from None
    sent = result.packets_sent
    findings = list(result.findings)
    child_up = False
    if connected is not None:
        record.datagrams.extend(connected.record.datagrams)
        record.datagrams.sort(key=lambda d: d.ts)
        record.add_keys(connected.record.keys)
        sent += connected.counters.sent
        child_up = bool(connected.child)
        saved = [fragments_saved(f, connected) for f in findings]
        if saved != findings:
            lines.append("IKEv2 fragmentation (RFC 7383) was negotiated and the IKE SA came up through it: the fragment drop does not break IKE on this tunnel")
        findings = saved
        findings += [f for f in connected.findings if f.id not in {x.id for x in findings}]
        lines += judge_tunnel(tunnel) if tunnel is not None else ["tunnel MTU: not measured: the CHILD SA did not come up"]
    else:
        # the size search's NO_PROPOSAL_CHOSEN answers do not say whether the gateway does RFC 7383
        unknown = "whether the gateway does IKEv2 fragmentation (RFC 7383) was not checked: with credentials and --ping, probe mtu brings an IKE SA up and sees whether it negotiates it and carries IKE_AUTH in fragments"
        findings = [replace(f, evidence=[*f.evidence, unknown]) if f.id == "ike-fragment-loss" else f for f in findings]
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
    raise typer.Exit(ExitStatus.OK if succeeded(result, ping is not None, child_up, tunnel, findings) else ExitStatus.FINDINGS)


def succeeded(result: IkeMtuResult, tunnel_asked: bool, child_up: bool, tunnel: TunnelMtuResult | None, findings: list[Finding]) -> bool:
    """Exit 0 only when every measurement asked for succeeded and no finding is an error."""
    if result.df_max is None or any(f.severity >= Severity.ERROR for f in findings):
        return False
    return not tunnel_asked or (child_up and tunnel is not None and tunnel.inner_max is not None)


def fragments_saved(f: Finding, connected: ConnectResult) -> Finding:
    """``ike-fragment-loss`` when IKEv2 fragmentation carried IKE_AUTH anyway (review #12).

    The size search proves that IP fragments are dropped on the path; whether that breaks the
    tunnel depends on IKEv2 fragmentation (RFC 7383): when both peers announced it and the IKE SA
    came up, the large messages travel as IKE fragments that need no IP fragmentation, so the
    drop is a fact about the path to know (other IP-fragmented traffic dies there), not an error.
    """
    if f.id != "ike-fragment-loss" or not (connected.ike.get("fragmentation") and connected.ike.get("established")):
        return f
    in_fragments = sum(1 for d in connected.record.datagrams if d.outgoing and _is_skf(d.payload))
    if in_fragments:
        carried = f"IKE_AUTH went out in {in_fragments} IKEv2 fragments (RFC 7383) and was answered"
        title = "IP fragments are dropped on the path; IKEv2 fragmentation is what gets IKE through"
    else:
        carried = "the IKE SA came up with IKEv2 fragmentation (RFC 7383) negotiated; our IKE_AUTH fit in one packet"
        title = "IP fragments are dropped on the path; IKEv2 fragmentation is negotiated, so IKE is not affected"
    return replace(
        f,
        severity=Severity.WARNING,
        title=title,
        explanation=(
            "Larger IKE messages sent as IP fragments were never answered, so a device on the path "
            "drops IP fragments. Both peers announced IKEV2_FRAGMENTATION_SUPPORTED, so large IKE "
            "messages (IKE_AUTH with certificates) travel as IKE fragments that each fit the path "
            "MTU, and the IKE SA came up: IKE on this tunnel is not affected."
        ),
        remediation=(
            "Keep IKEv2 fragmentation on on both peers (strongSwan `fragmentation = yes`): it is what "
            "saves IKE here. Other traffic that relies on IP fragmentation (large UDP, ESP without "
            "fragmentation before encryption) will still be lost; fix the fragment-dropping device "
            "if that matters."
        ),
        evidence=[*f.evidence, carried],
    )


def _is_skf(payload: bytes) -> bool:
    """An IKEv2 message whose first payload is an Encrypted Fragment (SKF, type 53)."""
    ike = payload[4:] if payload[:4] == bytes(4) else payload  # NAT-T: non-ESP marker
    return len(ike) >= 28 and ike[17] >> 4 == 2 and ike[16] == 53


def _fragment_size(df_max: int) -> int:
    # IKE_AUTH goes to UDP 4500 with the 4-byte non-ESP marker: its fragments must fit what passed
    return max(512, min(1280, df_max - 4))


def _tunnel(
    opts: MtuOptions, copts: ConnectOptions, host: str, ping_source: str | None, rng: RandomSource, emit: Callable[[Step], None]
) -> tuple[TunnelMtuResult | None, ConnectResult]:
    """(b): bring a CHILD SA up (forced encapsulation) and search the tunnel MTU through it."""
    from ipsecdiag.probe.connect import connect
    from ipsecdiag.probe.mtu import tunnel_search
    from ipsecdiag.probe.transport import resolve

    target, src = resolve(host), resolve(ping_source) if ping_source else None
    got: list[TunnelMtuResult] = []
    result = connect(copts, rng=rng, emit=emit, data_plane=lambda sa, drv, nar: got.append(tunnel_search(sa, drv, nar, target, opts, rng, src)))
    return (got[0] if got else None), result


def _json(r: IkeMtuResult, t: TunnelMtuResult | None, findings: list[Finding], sent: int, files: WrittenFiles | None, lines: list[str]) -> dict[str, object]:
    from ipsecdiag.probe.cli import _files_dict
    from ipsecdiag.probe.narrate import finding_dict

    ike = {
        "header": r.header,
        "largest_unfragmented": r.df_max,
        "smallest_lost_unfragmented": r.df_min_failed,
        "path_mtu": r.path_mtu,
        "icmp_reported_mtu": r.icmp_mtu,  # only from a router's ICMP, never our own interface
        "icmp_reported_by": r.icmp_from,
        "local_mtu": r.local_mtu,  # the kernel refused larger DF sends: our interface/route MTU
        "limit": r.df_limit,  # what stopped the DF search: local / icmp / silence / null
        "largest_fragmented": r.frag_max,
        "smallest_lost_fragmented": r.frag_min_failed,
        "fragments_pass": r.fragments_pass,
        "stateless": r.stateless,
        "stopped": r.stopped or None,
        "probes": [{"size": p.size, "df": p.df, "outcome": p.outcome, "rtt_ms": None if p.rtt is None else round(p.rtt * 1000, 3), "sends": p.sends, "local_mtu": p.local_mtu, "icmp_mtu": p.icmp_mtu, "router": p.router} for p in r.probes],
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
