"""``ipsecdiag probe scan GATEWAY``: what IKE SA transforms a gateway accepts, and what else its
IKE_SA_INIT answers (and an IKEv1 Main/Aggressive Mode probe) give away.

The decisions are sans-I/O (:mod:`ipsecdiag.engine.scan_plan` plans the offers,
:mod:`ipsecdiag.engine.scan` turns them into datagrams and reads the answers); this module runs
them through the probe's :class:`~ipsecdiag.probe.transport.Driver`, so the rate limit (a token
bucket with a burst of one: never faster than ``--rate``), the time bound, the send budget and
the pcapng recording are the ones ``probe connect`` uses. Nothing past IKE_SA_INIT is ever sent.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ipsecdiag.crypto.rng import RandomSource
from ipsecdiag.engine.config import Endpoint
from ipsecdiag.engine.scan import Observations, ProbeAnswered, QueryAnswered, ScanSession, ScanSettings
from ipsecdiag.engine.scan_plan import Chosen, InvalidKe, NoAnswer, PlanResult, Refused, ScanPlanner
from ipsecdiag.engine.scan_v1 import V1Answer
from ipsecdiag.probe.record import SessionRecord
from ipsecdiag.probe.transport import IKE_PORT, Counters, Driver, Pacer, UdpSockets, source_address
from ipsecdiag.protocol.suites import (
    AEAD,
    ENCR,
    INTEG,
    KE,
    PRF,
    Algo,
    Suite,
    strongswan_keyword,
    strongswan_proposal,
)
from ipsecdiag.protocol.weak import weak_reason, weak_reasons
from ipsecdiag.wire.registry import HashAlgorithm, KeGroup, TransformType, name_of
from ipsecdiag.wire.vendors import identify_vendor

SCHEMA = "ipsecdiag/scan-1"
TYPES = (ENCR, PRF, INTEG, KE)


@dataclass(frozen=True)
class ScanOptions:
    gateway: str  # an IP address literal
    remote_port: int = IKE_PORT
    local_addr: str | None = None
    local_port: int = IKE_PORT  # 0: any free port
    rate: float = 4.0  # datagrams per second, at most
    max_time: float = 120.0  # the whole scan, seconds
    timeout: float = 2.0  # per request before it is sent again
    tries: int = 3
    ikev1: bool = True
    backoff: float = 0.0  # wait this long for IKEv1 Main Mode retransmissions
    aggressive_id: str = "ipsecdiag-scan"
    addke: bool = True
    pair_budget: int | None = 150  # round trips for the per-cipher pairing (None: no limit)
    max_sends: int = 1000
    write: Path | None = None


@dataclass
class ScanResult:
    gateway: Endpoint
    local: Endpoint
    plan: PlanResult
    obs: Observations
    counters: Counters
    record: SessionRecord
    stop_reason: str
    elapsed: float
    lines: list[str] = field(default_factory=list)


def scan(
    opts: ScanOptions,
    *,
    rng: RandomSource,
    emit: Callable[[str], None] = lambda s: None,
    clock: Callable[[], float] = time.monotonic,
) -> ScanResult:
    """Run the scan; raises ProbeError for unusable addresses or ports (before any send)."""
    local_addr = opts.local_addr or source_address(opts.gateway, opts.remote_port)
    sockets = UdpSockets(local_addr, [opts.local_port])
    port = sockets.open()[0]
    try:
        local, remote = Endpoint(local_addr, port), Endpoint(opts.gateway, opts.remote_port)
        start = clock()
        planner = ScanPlanner(addke=opts.addke, pair_budget=opts.pair_budget)
        settings = ScanSettings(
            timeout=opts.timeout, tries=opts.tries, ikev1=opts.ikev1, backoff=opts.backoff, aggressive_id=opts.aggressive_id.encode()
        )
        session = ScanSession(planner, rng=rng, local=local, remote=remote, now=start, settings=settings)
        lines: list[str] = []

        def on_event(_s: object, ev: object) -> None:
            text = _narrate(ev)
            if text:
                line = f"{clock() - start:8.3f}  {text}"
                lines.append(line)
                emit(line)

        driver = Driver(
            sockets,
            route=lambda payload, src, dst, now: session if src.host == opts.gateway else None,
            on_event=on_event,
            pacer=Pacer(rate=opts.rate, burst=1, now=start),
            max_sends=opts.max_sends,
            clock=clock,
        )
        driver.add(session)
        try:
            reason = driver.run(lambda: session.done, deadline=start + opts.max_time)
        except KeyboardInterrupt:
            reason = "interrupted"  # what was learnt so far is still reported
        if not session.done:
            session.stop()
        return ScanResult(remote, local, planner.result, session.obs, driver.counters, driver.record, reason, clock() - start, lines)
    finally:
        sockets.close()


def _answer_text(a: object) -> str:
    if isinstance(a, Chosen):
        return "chose " + "/".join(x.label for x in a.algos)
    if isinstance(a, InvalidKe):
        return f"INVALID_KE_PAYLOAD, wants {name_of(KeGroup, a.group)}"
    if isinstance(a, Refused):
        return a.notify
    return a.reason if isinstance(a, NoAnswer) else str(a)


def _narrate(ev: object) -> str:
    if isinstance(ev, QueryAnswered):
        sends = f" ({ev.sends} sends)" if ev.sends > 1 else ""
        return f"query {ev.number:3d} {ev.purpose:8} -> {_answer_text(ev.answer)}{sends}"
    if isinstance(ev, ProbeAnswered):
        a = ev.answer
        if not a.answered:
            return f"IKEv1 {ev.mode} mode: no answer"
        got = a.chosen.iana_text() if a.chosen is not None else ", ".join(a.notifies) or "answer"
        return f"IKEv1 {ev.mode} mode -> {got}" + (" (HASH_R revealed)" if a.reveals_hash else "")
    return ""


# -- the result as data -------------------------------------------------------------------------


def _algo_dict(a: Algo) -> dict[str, object]:
    return {
        "type": name_of(TransformType, a.type),
        "name": a.label,
        "strongswan": strongswan_keyword(a),
        "weak": weak_reason(a),
    }


def proposals(plan: PlanResult) -> list[Suite]:
    """The accepted proposals as a gateway would configure them: ciphers with the same
    partners (PRFs, integrity algorithms, groups) share one proposal, AEAD and classic apart.
    Without the pairing: one proposal per cipher kind with every accepted transform (then a
    proposal may hold combinations the gateway refuses; the result says so)."""
    if plan.pairing != "done":
        encr = plan.accepted.get(ENCR, [])
        rest = [*plan.accepted.get(PRF, []), *plan.accepted.get(KE, [])]
        aead = [e for e in encr if e.id in AEAD]
        classic = [e for e in encr if e.id not in AEAD]
        out = [Suite("IKE", (*aead, *rest))] if aead else []
        if classic:
            out.append(Suite("IKE", (*classic, *plan.accepted.get(INTEG, []), *rest)))
        return out
    groups: dict[tuple[bool, tuple[Algo, ...], tuple[Algo, ...], tuple[Algo, ...]], list[Algo]] = {}
    for e, partners in plan.partners.items():
        key = (e.id in AEAD, tuple(partners[PRF]), tuple(partners[INTEG]), tuple(partners[KE]))
        groups.setdefault(key, []).append(e)
    out = []
    for (_aead, prf, integ, ke), encr in groups.items():
        out.append(Suite("IKE", (*encr, *prf, *integ, *ke)))
    return out


def to_json(r: ScanResult) -> dict[str, object]:
    p, o = r.plan, r.obs
    accepted = [_algo_dict(a) for t in TYPES for a in p.accepted.get(t, [])]
    accepted += [_algo_dict(a) for a in p.addke]
    rejected = [_algo_dict(a) for t in TYPES for a in p.rejected(t)]
    # a scan cut short says what it never asked about instead of calling it rejected
    untested = [_algo_dict(a) for t in TYPES for a in p.untested(t)]
    v1 = {mode: _v1_dict(a) for mode, a in o.ikev1.items()}
    if o.retransmissions:
        v1["retransmissions"] = o.retransmissions  # type: ignore[assignment]
        fits = {m: schedule_fit(t) for m, t in o.retransmissions.items()}
        v1["retransmission_fit"] = {  # type: ignore[assignment]
            m: {"timeout": round(f[0], 3), "base": round(f[1], 3)} for m, f in fits.items() if f is not None
        }
    return {
        "schema": SCHEMA,
        "gateway": str(r.gateway),
        "local": str(r.local),
        "accepted": accepted,
        "rejected": rejected,
        "untested": untested,
        "proposals": [strongswan_proposal(s) for s in proposals(p)],
        "pairing": p.pairing,
        "chosen_from_full_offer": strongswan_proposal(Suite("IKE", p.baseline)) if p.baseline else None,
        "additional_ke_ignored": p.addke_ignored,
        "notifies": sorted(o.notifies),
        "vendor_ids": [{"hex": v.hex(), "name": identify_vendor(v)} for v in o.vendor_ids],
        "signature_hashes": [name_of(HashAlgorithm, h) for h in o.signature_hashes],
        "cookie_demanded": o.cookie_demanded,
        "redirect": o.redirect,
        "nat": None if o.nat_local is None else _nat(o),
        "ikev1": v1,
        "round_trips": p.queries,
        "half_open_sas": p.full_answers,
        "complete": p.complete,
        "anomalies": p.anomalies,
        "stopped": r.stop_reason if p.complete else _why_incomplete(r),
        "elapsed": round(r.elapsed, 3),
        "packets_sent": r.counters.sent,
        "packets_received": r.counters.received,
    }


def _nat(o: Observations) -> dict[str, object]:
    """``remote`` is null when the gateway's source hash does not match: a NAT in front of it,
    or it forces UDP encapsulation (RFC 7296 §2.23); ``remote_verdict`` names which."""
    from ipsecdiag.probe.narrate import gateway_nat

    remote = gateway_nat(bool(o.nat_remote))
    return {"local": o.nat_local, "remote": remote.nat, "remote_verdict": remote.verdict}


def _v1_dict(a: V1Answer) -> dict[str, object]:
    return {
        "answered": a.answered,
        "chosen": a.chosen.iana_text() if a.chosen is not None else None,
        "notifies": a.notifies,
        "vendor_ids": [{"hex": v.hex(), "name": identify_vendor(v)} for v in a.vendor_ids],
        "reveals_hash": a.reveals_hash,
    }


# -- the terminal ---------------------------------------------------------------------------------


def render(console: Console, r: ScanResult) -> None:
    p = r.plan
    table = Table(title=f"IKEv2 transforms {r.gateway} accepts")
    table.add_column("type")
    table.add_column("transform (IANA)", overflow="fold")
    table.add_column("strongSwan", overflow="fold")
    table.add_column("posture", overflow="fold")
    for t in TYPES:
        for a in p.accepted.get(t, []):
            why = weak_reason(a)
            note = Text(f"weak: {why}", style="yellow") if why else Text("ok", style="green")
            table.add_row(name_of(TransformType, t), a.label, strongswan_keyword(a) or "", note)
    for a in p.addke:
        table.add_row("ADDKE1", a.label, strongswan_keyword(a) or "", Text("ok", style="green"))
    if table.row_count:
        console.print(table)
    for t in TYPES:
        for what, algos in (("rejected", p.rejected(t)), ("not tested", p.untested(t))):
            if algos:
                line = Text(f"{what} {name_of(TransformType, t)} ({len(algos)}): ", style="bold")
                line.append(", ".join(a.label for a in algos), style="dim")
                console.print(line)
    if any(p.untested(t) for t in TYPES):
        console.print(
            "(the scan stopped before asking about the transforms 'not tested': the gateway may accept them)",
            markup=False,
        )
    for s in proposals(p):
        weak = weak_reasons(s)
        line = Text(f"proposal{'' if p.complete else ' (incomplete scan)'}: {strongswan_proposal(s)}")
        if weak:
            line.append(f"  (weak: {'; '.join(weak)})", style="yellow")
        console.print(line)
    if p.pairing and p.pairing != "done":
        console.print(f"(per-cipher pairing {p.pairing}; the proposals above list the accepted transforms per kind)", markup=False)
    if p.baseline:
        pick = strongswan_proposal(Suite("IKE", p.baseline))
        console.print(f"chosen from the full offer: {pick} (the gateway's preference, unless it follows ours)", markup=False)
    for line in _facts(r):
        console.print(line, markup=False)
    state = "complete" if p.complete else f"incomplete ({_why_incomplete(r)})"
    console.print(
        Text(
            f"Scan {state}: {p.queries} round trips, {r.counters.sent} packets sent, {r.counters.received} received, "
            f"{p.full_answers} half-open IKE SA(s) left to expire on the gateway, {r.elapsed:.1f} s",
            style="bold",
        )
    )


def _why_incomplete(r: ScanResult) -> str:
    if r.stop_reason == "deadline":
        return "--max-time reached"
    if r.stop_reason == "interrupted":
        return "interrupted"
    if r.stop_reason == "budget":
        return "send budget spent"
    if r.plan.anomalies:
        return "the gateway's answers made no sense"
    return "the gateway stopped answering"


def schedule_fit(times: list[float]) -> tuple[float, float] | None:
    """(first timeout, growth factor) of a resend schedule, when the gaps grow geometrically
    (strongSwan: retransmit_timeout * retransmit_base^n); None for fewer than two resends."""
    if len(times) < 2 or times[0] <= 0:
        return None
    gaps = [times[0]] + [b - a for a, b in zip(times, times[1:], strict=False)]
    ratios = [b / a for a, b in zip(gaps, gaps[1:], strict=False) if a > 0]
    if not ratios or max(ratios) - min(ratios) > 0.25 * max(ratios):
        return None  # not geometric (fixed, random or capped): the raw times say more
    return gaps[0], sum(ratios) / len(ratios)


def _facts(r: ScanResult) -> list[str]:
    o, p = r.obs, r.plan
    out = []
    if p.silent:
        out.append("no answer to IKE_SA_INIT: nothing listens there, or a filter drops it")
    if o.notifies:
        out.append("notifies: " + ", ".join(sorted(o.notifies)))
    for v in o.vendor_ids:
        out.append(f"vendor ID: {identify_vendor(v) or 'unknown'} ({v.hex()})")
    if o.signature_hashes:
        out.append("signature hashes (RFC 7427): " + ", ".join(name_of(HashAlgorithm, h) for h in o.signature_hashes))
    if o.cookie_demanded:
        # RFC 7296 §2.6: a responder asks for cookies when its half-open SAs pass a threshold; the
        # half-open SAs earlier scans or probes from this address left count too (strongSwan
        # cookie_threshold, half_open_timeout 30 s), and so do this scan's own full answers
        own = f"; this scan left {p.full_answers} itself" if p.full_answers else ""
        out.append(
            f"COOKIE demanded ({o.cookie_len} octets): the gateway counts too many half-open IKE SAs (under load, "
            f"or ones that earlier probes from this address left{own}: wait ~30 s between scans), or it always asks"
        )
    if o.redirect:
        out.append(f"REDIRECT to {o.redirect}")
    if o.nat_local is not None:
        if o.nat_local:
            out.append("NAT detected in front of us (the gateway saw another address or port)")
        if o.nat_remote:
            # RFC 7296 §2.23: a faked source hash is how a gateway forces UDP encapsulation
            out.append("NAT detected in front of the gateway, or it forces UDP encapsulation (e.g. strongSwan encap=yes, kernel-libipsec)")
        if not (o.nat_local or o.nat_remote):
            out.append("no NAT detected")
    if p.addke_ignored:
        out.append("ADDKE (RFC 9370) transforms were ignored by the gateway")
    for mode, a in o.ikev1.items():
        if not a.answered:
            out.append(f"IKEv1 {mode} mode: no answer")
            continue
        if a.chosen is not None:
            out.append(f"IKEv1 {mode} mode: accepted {a.chosen.iana_text()}")
        else:
            refusal = ", ".join(a.notifies) or "an answer without SA"
            out.append(f"IKEv1 {mode} mode: the daemon speaks IKEv1 but refused our offer ({refusal})")
        if a.reveals_hash:
            out.append("  WARNING: Aggressive Mode answer carries HASH_R: the PSK can be attacked offline (RFC 2409 §5.4)")
    for mode, times in o.retransmissions.items():
        fit = schedule_fit(times)
        hint = f"; fits timeout {fit[0]:.2g} s x {fit[1]:.2g} per resend" if fit else ""
        out.append(f"IKEv1 {mode} mode answer sent again after (s): " + ", ".join(f"{t:g}" for t in times) + f" (fingerprint{hint})")
    # one line per kind of anomaly with its count: a gateway that answers every query oddly
    # must not print the same line per query (review #18)
    for a, n in Counter(p.anomalies).items():
        out.append(f"anomaly: {a}" + (f" ({n} queries)" if n > 1 else ""))
    return out


def scan_cmd(
    gateway: Annotated[str, typer.Argument(metavar="GATEWAY", help="The gateway's address (or name).")],
    rate: Annotated[float, typer.Option("--rate", metavar="PER_SECOND", help="At most this many datagrams per second.")] = 4.0,
    max_time: Annotated[float, typer.Option("--max-time", metavar="SECONDS", help="Stop after this many seconds, whatever is left.")] = 120.0,
    timeout: Annotated[float, typer.Option("--timeout", metavar="SECONDS", help="Seconds before an unanswered request is sent again.")] = 2.0,
    port: Annotated[int, typer.Option("--port", metavar="PORT", help="Our source port (0: any free port; 500 needs privileges).")] = 0,
    remote_port: Annotated[int, typer.Option("--remote-port", metavar="PORT", help="The gateway's IKE port.")] = IKE_PORT,
    source: Annotated[str | None, typer.Option("--source", metavar="ADDR", help="Our local address (default: the route's).")] = None,
    ikev1: Annotated[bool, typer.Option("--ikev1/--no-ikev1", metavar="", help="Also probe IKEv1 Main and Aggressive Mode.")] = True,
    backoff: Annotated[float, typer.Option("--backoff", metavar="SECONDS", help="Wait this long for the IKEv1 answers to be sent again (a fingerprint; costs time).")] = 0.0,
    pair_budget: Annotated[int, typer.Option("--pair-budget", metavar="N", help="Round trips allowed for pairing each cipher with its PRFs/groups (0: skip).")] = 150,
    aggressive_id: Annotated[str, typer.Option("--id", metavar="ID", help="Identity in the IKEv1 Aggressive Mode probe (gateways pick the PSK by it).")] = "ipsecdiag-scan",
    write: Annotated[Path | None, typer.Option("--write", metavar="FILE", help="Write the scan's packets as pcapng.")] = None,
    json_out: Annotated[str | None, typer.Option("--json", metavar="FILE|-", help="Write the result as JSON to this file ('-': stdout).")] = None,
) -> None:
    """Enumerate the IKE SA transforms GATEWAY accepts (IKE_SA_INIT only, no credentials).

    Each transform is reported accepted, rejected or, when the scan stops early (--max-time), not tested. Exit status: 0 the scan completed, 1 it did not (silence, time bound), 2 bad usage, 130 interrupted.
    """
    import json
    import sys

    from ipsecdiag.exitcodes import ExitStatus
    from ipsecdiag.outputs import write_output
    from ipsecdiag.probe.cli import _console, _refuse_inputs, usage_error, write_session
    from ipsecdiag.probe.rng import SystemRandom
    from ipsecdiag.probe.transport import ProbeError, resolve

    if not (0 <= port <= 65535 and 1 <= remote_port <= 65535):
        raise usage_error("--port must be 0-65535 and --remote-port 1-65535")
    if pair_budget < 0:
        raise usage_error("--pair-budget must be 0 or more")
    if not (0 < rate <= 100) or not (0 < max_time <= 3600) or not (0 < timeout <= 60) or not (0 <= backoff <= 600):
        raise usage_error("--rate must be in (0, 100], --max-time in (0, 3600], --timeout in (0, 60] and --backoff in [0, 600]")
    to_stdout = json_out == "-"
    console = _console(stderr=to_stdout)
    json_path = Path(json_out) if json_out not in (None, "-") else None
    _refuse_inputs(write, json_path, [])
    try:
        gw = resolve(gateway)
        opts = ScanOptions(
            gateway=gw, remote_port=remote_port, local_addr=resolve(source) if source else None, local_port=port,
            rate=rate, max_time=max_time, timeout=timeout, ikev1=ikev1, backoff=backoff, write=write,
            aggressive_id=aggressive_id, pair_budget=pair_budget,
        )  # fmt: skip
        result = scan(opts, rng=SystemRandom(), emit=lambda line: console.print(line, markup=False, highlight=False))
    except ProbeError as e:
        raise usage_error(str(e)) from None
    write_session(result.record, write, console)
    console.print()
    render(console, result)
    if json_out is not None:
        doc = json.dumps(to_json(result), indent=2) + "\n"
        if to_stdout:
            sys.stdout.write(doc)
        elif json_path is not None:
            try:
                write_output(json_path, doc)
            except OSError as e:
                raise usage_error(f"--json {json_out}: {e.strerror or e}") from None
    if result.stop_reason == "interrupted":
        raise typer.Exit(130)
    raise typer.Exit(ExitStatus.OK if result.plan.complete and not result.plan.silent else ExitStatus.FINDINGS)


__all__ = ["SCHEMA", "ScanOptions", "ScanResult", "proposals", "render", "scan", "scan_cmd", "schedule_fit", "to_json"]
