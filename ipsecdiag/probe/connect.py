"""``probe connect``: negotiate an IKE SA and a CHILD SA with a gateway, then clean up.

:func:`connect` wires an initiator :class:`~ipsecdiag.engine.IkeSa` to a :class:`Driver`,
narrates the events, deletes what it created (unless ``keep``) and returns a
:class:`ConnectResult`; the CLI renders it. Time is bounded twice: the negotiation by
``timeout``, the cleanup (INFORMATIONAL Delete) by :data:`CLEANUP_SECONDS` more.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ipsecdiag.crypto.rng import RandomSource
from ipsecdiag.engine.config import Endpoint, Identity, IkeConfig, PskAuth, Role
from ipsecdiag.probe.explain import explain
from ipsecdiag.probe.narrate import Narrator, Step, nat_fields, ts_text
from ipsecdiag.probe.record import SessionRecord, WrittenFiles
from ipsecdiag.probe.transport import (
    IKE_PORT,
    NATT_PORT,
    Counters,
    Driver,
    Pacer,
    UdpSockets,
    source_address,
)
from ipsecdiag.reconstruction.model import Finding
from ipsecdiag.wire.ikev2_ts import TrafficSelector

CLEANUP_SECONDS = 3.0


@dataclass(frozen=True)
class ConnectOptions:
    gateway: str  # an IP address literal (resolved by the caller)
    config: IkeConfig
    offered_ike: str
    offered_esp: str
    remote_port: int = IKE_PORT
    local_addr: str | None = None
    local_port: int = IKE_PORT  # 500 also opens 4500; another port (0: any) gets a free NAT-T port
    timeout: float = 20.0
    keep: bool = False
    rate: float = 10.0
    max_sends: int = 200
    write: Path | None = None


@dataclass
class ConnectResult:
    ok: bool
    gateway: Endpoint
    local: Endpoint
    steps: list[Step]
    findings: list[Finding]
    counters: Counters
    record: SessionRecord
    ike: dict[str, object] = field(default_factory=dict)
    child: dict[str, object] = field(default_factory=dict)
    stop_reason: str = ""
    deleted: bool = False
    files: WrittenFiles | None = None
    internal_error: str = ""  # an exception out of the engine: a bug to report, exit status 2


def _ports(local_port: int) -> list[int]:
    """Our IKE and NAT-T source ports: 500 and 4500, or ``local_port`` and a free port.

    Two sockets always: the engine tells NAT-T traffic (non-ESP marker) by our local port, and
    a NAT-T source port other than 4500 is what every NAT produces anyway (RFC 7296 §2.23).
    """
    return [IKE_PORT, NATT_PORT] if local_port == IKE_PORT else [local_port, 0]


def connect(
    opts: ConnectOptions,
    *,
    rng: RandomSource,
    emit: Callable[[Step], None] = lambda s: None,
    clock: Callable[[], float] = time.monotonic,
    data_plane: Callable[[object, Driver, Narrator], None] | None = None,
) -> ConnectResult:
    """Run one probe; raises :class:`~ipsecdiag.probe.transport.ProbeError` for unusable
    addresses or ports (before anything is sent). ``data_plane(sa, driver, narrator)`` runs
    once the CHILD SA is up, before the cleanup (``--ping``, ``probe mtu``)."""
    local_addr = opts.local_addr or source_address(opts.gateway, opts.remote_port)
    sockets = UdpSockets(local_addr, _ports(opts.local_port))
    ports = sockets.open()
    try:
        from ipsecdiag.engine import IkeSa

        local = Endpoint(local_addr, ports[0])
        local_natt = Endpoint(local_addr, ports[-1])
        remote = Endpoint(opts.gateway, opts.remote_port)
        start = clock()
        sa = IkeSa(opts.config, role=Role.INITIATOR, rng=rng, now=start, local=local, remote=remote, local_natt=local_natt)
        holder: list[Driver] = []
        narrator = Narrator(
            gateway=opts.gateway,
            offered_ike=opts.offered_ike,
            offered_esp=opts.offered_esp,
            emit=emit,
            clock=clock,
            frame=lambda: holder[0].frame if holder else 0,
            icmp=lambda: holder[0].counters.icmp_errors if holder else [],
            dest=lambda: sa.remote,
            asked_ts=_asked_ts(opts.config),
            asked_sel=_asked_sel(opts.config),
            sent_ids=_sent_ids(opts.config),
            rx_time=lambda: holder[0].last_rx if holder else None,
            mode=opts.config.child.mode if opts.config.child else "tunnel",
            encap_forced=opts.config.force_encap,
        )

        def route(payload: bytes, src: Endpoint, dst: Endpoint, now: float) -> IkeSa | None:
            # only the gateway's address: anything else on our ports is not this session's
            return sa if src.host == opts.gateway else None

        driver = Driver(
            sockets,
            route=route,
            on_event=narrator.on_event,
            pacer=Pacer(rate=opts.rate, burst=16, now=start),
            max_sends=opts.max_sends,
            clock=clock,
        )
        holder.append(driver)
        driver.add(sa)
        narrator.step("start", f"IKEv2 to {remote} from {local}" + (f" (NAT-T from {local_natt})" if local_natt != local else ""))
        internal = ""
        try:
            sa.initiate(start)
            reason = driver.run(lambda: narrator.finished, deadline=start + opts.timeout)
        except KeyboardInterrupt:
            # Ctrl-C: still delete what we created and write the record (a second one aborts)
            reason = "interrupted"
            narrator.step("interrupted", "interrupted: cleaning up")
        except Exception as e:  # noqa: BLE001 - an engine bug must not lose the session's record
            reason, internal = "engine-error", f"{type(e).__name__}: {e}"
            narrator.step("internal-error", f"the IKEv2 engine failed: {internal}")
        else:
            narrator.end(reason, opts.timeout, opts.max_sends)
        dp_error = ""
        if data_plane is not None and reason == "done" and narrator.child is not None and not narrator.failed:
            try:
                data_plane(sa, driver, narrator)
            except Exception as e:  # noqa: BLE001 - as above: report, keep the record, still clean up
                dp_error = f"{type(e).__name__}: {e}"
                narrator.step("internal-error", f"the data-plane probe failed: {dp_error}")
        deleted = False
        if not opts.keep and not internal and _has_state(sa) and reason != "budget":
            deleted = _cleanup(sa, driver, narrator, clock)
        internal = internal or dp_error
        result = ConnectResult(
            ok=narrator.child is not None and not narrator.failed,
            gateway=remote,
            local=local,
            steps=narrator.steps,
            findings=narrator.findings,
            counters=driver.counters,
            record=driver.record,
            stop_reason=reason,
            deleted=deleted,
            internal_error=internal,
        )
        _fill_sa_info(result, narrator, sa)
        # the verdict in analyze's words, from this very session (probe/explain.py)
        result.findings = explain(result.findings, result.record)
        return result
    finally:
        sockets.close()


def _asked_ts(cfg: IkeConfig) -> tuple[str, str]:
    if cfg.child is None:
        return ("", "")
    return ts_text(cfg.child.local_ts) if cfg.child.local_ts else "", ts_text(cfg.child.remote_ts)


def _asked_sel(cfg: IkeConfig) -> tuple[tuple[TrafficSelector, ...], tuple[TrafficSelector, ...]]:
    return ((), ()) if cfg.child is None else (cfg.child.local_ts, cfg.child.remote_ts)


def _sent_ids(cfg: IkeConfig) -> tuple[str, str, str]:
    """(IDi, IDr, AUTH method) as the evidence names them."""
    auth = "SHARED_KEY_MIC (PSK)" if isinstance(cfg.auth, PskAuth) else "certificate signature"
    return _id_text(cfg.local_id), _id_text(cfg.remote_id) if cfg.remote_id is not None else "", auth


def _id_text(i: Identity) -> str:
    import ipaddress

    from ipsecdiag.wire.registry import IdType, name_of

    kind = name_of(IdType, i.id_type).removeprefix("ID_")
    if i.id_type in (IdType.ID_IPV4_ADDR, IdType.ID_IPV6_ADDR):
        return f"{ipaddress.ip_address(i.data)} ({kind})"
    if i.id_type in (IdType.ID_FQDN, IdType.ID_RFC822_ADDR):
        return f"{i.data.decode(errors='replace')} ({kind})"
    if i.id_type == IdType.ID_DER_ASN1_DN:
        return f"a {len(i.data)}-byte distinguished name (DER_ASN1_DN, our certificate's subject)"
    return f"{i.data.hex()} ({kind})"


def _has_state(sa: object) -> bool:
    """Does the gateway hold state for this IKE SA that a Delete should remove?"""
    from ipsecdiag.engine.state import State

    # A half-open SA (IKE_AUTH unanswered) is abandoned: the gateway expires it (RFC 7296 §2.4).
    return getattr(sa, "state", None) is State.ESTABLISHED


def _cleanup(sa: object, driver: Driver, narrator: Narrator, clock: Callable[[], float]) -> bool:
    """INFORMATIONAL Delete for the IKE SA (it takes its CHILD SAs along, RFC 7296 §1.4.1)."""
    from ipsecdiag.engine.state import State

    now = clock()
    try:
        sa.delete(now)  # type: ignore[attr-defined]
    except Exception as e:  # noqa: BLE001 - an engine refusal must not lose the session's record
        narrator.step("cleanup", f"could not delete the IKE SA: {e}")
        return False
    narrator.step("cleanup", "deleting the IKE SA (INFORMATIONAL Delete)")
    try:
        driver.run(lambda: sa.state is State.CLOSED or narrator.deleted is not None, deadline=now + CLEANUP_SECONDS)  # type: ignore[attr-defined]
    except Exception as e:  # noqa: BLE001 - as above: report, keep the record
        narrator.step("internal-error", f"the IKEv2 engine failed during the Delete: {type(e).__name__}: {e}")
        return False
    if narrator.deleted is None:
        narrator.step("cleanup", f"no answer to the Delete within {CLEANUP_SECONDS:g} s; the gateway will expire it")
        return False
    return True


def _fill_sa_info(result: ConnectResult, n: Narrator, sa: object) -> None:
    from ipsecdiag.wire.ikev2_sa import proposal_summary
    from ipsecdiag.wire.registry import KeGroup, name_of

    if n.init_done is not None:
        i = n.init_done
        result.record.add_keys([i.keys])
        result.ike = {
            "spi_i": i.keys.spi_i.hex(),
            "spi_r": i.keys.spi_r.hex(),
            "proposal": proposal_summary(i.chosen),
            "ke_group": name_of(KeGroup, i.ke_group),
            **nat_fields(i),
            "encap": i.encap,
            "fragmentation": i.fragmentation,
            "established": n.authenticated is not None,
        }
        # a rekeyed IKE SA or late keys: whatever the engine holds now
        keys = getattr(sa, "keys", None)
        if keys is not None:
            result.record.add_keys([keys])
    if n.authenticated is not None:
        result.ike["peer_id"] = n.authenticated.peer_id_text
    if n.child is not None:
        c = n.child
        result.record.add_keys([c.keys_in, c.keys_out])
        result.child = {
            "spi_in": f"{c.spi_in:08x}",
            "spi_out": f"{c.spi_out:08x}",
            "ts_i": [t.display() for t in c.ts_i],
            "ts_r": [t.display() for t in c.ts_r],
            "mode": c.mode,
            "encap": c.encap,
            "esn": c.esn,
            "proposal": proposal_summary(c.proposal),
            "virtual_ips": list(c.virtual_ips),
        }


__all__ = ["CLEANUP_SECONDS", "ConnectOptions", "ConnectResult", "connect"]
