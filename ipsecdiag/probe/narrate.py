"""Engine events as the steps a user reads, and failures as the findings ``analyze`` would give.

:class:`Narrator` watches one initiator IKE SA. Each event becomes a :class:`Step` (printed as it
happens); an event that ends the negotiation becomes a :class:`~ipsecdiag.reconstruction.model.Finding`
with the catalogue's id, title, meaning, cause and fix (``ipsecdiag explain ID`` prints the
same text) plus evidence from this session, with frame numbers of the pcapng ``--write``
produces. Mapping (ENGINE_API.md): a Notify sent or received maps through the Notify knowledge
base (NO_PROPOSAL_CHOSEN, AUTHENTICATION_FAILED, TS_UNACCEPTABLE...), INVALID_KE_PAYLOAD with a
retry is ``ke-group-mismatch``, an unanswered request is ``ike-unanswered`` (``natt-port-blocked``
when only the move to UDP 4500 went unanswered).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ipsecdiag.diagnosis.knowledge import CATALOGUE, NOTIFY_HELP
from ipsecdiag.engine import events as ev
from ipsecdiag.probe.icmperr import IcmpError
from ipsecdiag.protocol.natd import NatdSide, judge_side
from ipsecdiag.reconstruction.model import Finding, Severity
from ipsecdiag.wire.ikev2_sa import proposal_summary
from ipsecdiag.wire.ikev2_ts import TrafficSelector
from ipsecdiag.wire.registry import AuthMethod, KeGroup, name_of

# An IKE message this large needs IP fragmentation on a 1500-byte path (20 IP + 8 UDP + 4 marker).
_IP_FRAGMENTED = 1500 - 32


@dataclass
class Step:
    """One thing that happened, as printed: ``t`` seconds since the start."""

    t: float
    kind: str
    text: str
    frame: int | None = None
    data: dict[str, object] = field(default_factory=dict)


def finding(
    fid: str,
    *,
    evidence: list[str],
    frames: Iterable[int] = (),
    explanation: str | None = None,
    severity: Severity | None = None,
    data: dict[str, object] | None = None,
    ike_sa: str | None = None,
    cause: str | None = None,
    remediation: str | None = None,
) -> Finding:
    """A finding with the catalogue's texts for ``fid`` and this session's evidence."""
    entry = CATALOGUE[fid]
    return Finding(
        id=fid,
        severity=entry.severity if severity is None else severity,
        title=entry.title,
        explanation=explanation or entry.meaning,
        remediation=remediation or entry.remediation,
        frames=sorted(set(frames)),
        evidence=evidence,
        cause=cause or entry.causes,
        check="probe",
        data=data or {},
        ike_sa=ike_sa,
    )


def finding_dict(f: Finding) -> dict[str, object]:
    """A finding as JSON, with the fields of the report JSON (severity as its label)."""
    d = dataclasses.asdict(f)
    d["severity"] = f.severity.label
    return d


def ts_text(selectors: Iterable[TrafficSelector]) -> str:
    return ", ".join(s.display() for s in selectors) or "(none)"


def gateway_nat(source_mismatch: bool) -> NatdSide:
    """The gateway's side as the probe, one end of the SA, reads it: its source hash not
    matching is a NAT in front of it or forced encapsulation (its answers come back from the
    address and port we sent to, so no translated port tells a NAT; a hash of its address in a
    message to it is our own and always matches)."""
    return judge_side(False, source_mismatch, False)


def nat_fields(e: ev.IkeSaInitDone) -> dict[str, bool | str | None]:
    """The JSON's NAT keys: ``nat_remote`` is true only for a NAT shown, null when the hashes
    cannot tell a NAT from forced encapsulation (``nat_remote_verdict`` "nat-or-forced")."""
    remote = gateway_nat(e.nat_remote)
    return {"nat_local": e.nat_local, "nat_remote": remote.nat, "nat_remote_verdict": remote.verdict}


def nat_text(e: ev.IkeSaInitDone, peer: str, forced: bool) -> str:
    """The NAT step: what each NAT-D hash says, hedged where the RFC cannot tell.

    Our own detection (the peer's NAT_DETECTION_DESTINATION_IP) is a fact about the path; the
    peer's source hash not matching can be a NAT in front of it or a faked hash (strongSwan
    ``encap = yes``, kernel-libipsec): RFC 7296 §2.23 cannot tell them apart.
    """
    parts = []
    if e.nat_local:
        parts.append("NAT found in front of us (our address or port is rewritten)")
    if e.nat_remote:
        parts.append(f"{peer}'s source hash does not match: a NAT in front of {peer}, or it forces UDP encapsulation")
    if forced:
        parts.append("we force UDP encapsulation ourselves (faked NAT-D)")
    if parts:
        return "; ".join(parts) + ": IKE and ESP move to UDP 4500"
    if e.encap:
        return "no NAT found; UDP encapsulation forced (faked NAT-D): IKE moves to UDP 4500"
    return f"no NAT between us and {peer}"


def _overlaps(a: TrafficSelector, b: TrafficSelector) -> bool:
    return (
        a.ts_type == b.ts_type
        and len(a.start_addr) == len(b.start_addr)
        and a.start_addr <= b.end_addr
        and b.start_addr <= a.end_addr
    )


def _is_everything(sel: tuple[TrafficSelector, ...]) -> bool:
    return len(sel) == 1 and sel[0].start_addr == bytes(len(sel[0].start_addr)) and set(sel[0].end_addr) == {0xFF}


def narrowing(
    asked: tuple[tuple[TrafficSelector, ...], tuple[TrafficSelector, ...]],
    got: tuple[tuple[TrafficSelector, ...], tuple[TrafficSelector, ...]],
    peer: str,
) -> list[str]:
    """Lines saying how the selectors we asked for were narrowed (RFC 7296 §2.9), and what
    the CHILD SA does not cover at all."""
    lines = []
    for side, label in ((0, "TSi (our side)"), (1, f"TSr ({peer}'s side)")):
        a, g = asked[side], got[side]
        if not a or sorted(x.display() for x in a) == sorted(x.display() for x in g):
            continue
        dropped = [x for x in a if not any(_overlaps(x, y) for y in g)]
        line = f"{label} narrowed by {peer}: asked {ts_text(a)}, got {ts_text(g)}"
        if dropped:
            line += f"; not covered: {ts_text(dropped)}"
        elif side == 0 and _is_everything(a):
            line += " (expected: we asked for everything and let it choose)"
        lines.append(line)
    return lines


# Notifies we send (or would) about a message that is not well-formed IKEv2 at all.
_MALFORMED = frozenset(
    {"", "INVALID_SYNTAX", "INVALID_MAJOR_VERSION", "INVALID_IKE_SPI", "INVALID_SPI", "INVALID_MESSAGE_ID",
     "UNSUPPORTED_CRITICAL_PAYLOAD"}
)  # fmt: skip

# Notifies the catalogue files under the generic error-notify: (cause, fix) for the probe's user.
_NOTIFY_ADVICE: dict[str, tuple[str, str]] = {
    "INTERNAL_ADDRESS_FAILURE": (
        "The gateway could not assign a virtual IP (RFC 7296 §3.15.4): no address pool is configured "
        "for this connection, or the pool is exhausted. The IKE SA was authenticated; only the CHILD "
        "SA with the configuration payload failed.",
        "Configure a pool for the connection on the gateway (strongSwan: `pools = ...` in the "
        "connection, check `swanctl --list-pools`), or probe without --vip.",
    ),
    "FAILED_CP_REQUIRED": (
        "The gateway requires a configuration payload request (a virtual IP) and we sent none "
        "(RFC 7296 §3.10.1).",
        "Probe again with --vip.",
    ),
    "SINGLE_PAIR_REQUIRED": (
        "The gateway accepts only a single pair of addresses as selectors (RFC 7296 §3.10.1).",
        "Ask for one host on each side: --local-ts ADDR/32 --ts ADDR/32.",
    ),
    "NO_ADDITIONAL_SAS": (
        "The gateway accepts no more CHILD SAs on this IKE SA (RFC 7296 §3.10.1).",
        "Check the gateway's limits on CHILD SAs per IKE SA.",
    ),
    "TEMPORARY_FAILURE": (
        "The gateway is busy with another exchange on this SA (RFC 7296 §2.25) and asks to retry later.",
        "Probe again in a few seconds.",
    ),
}


def _id_of(notify_name: str, exchange: str, received: bool) -> str:
    # A message we refused for its form (garbage, a stray datagram) says nothing about the
    # negotiation: a malformed packet, never the peer's error notify.
    if not received and notify_name in _MALFORMED:
        return "malformed-packet"  # we refused the peer's message: it broke the RFC
    if notify_name == "NO_PROPOSAL_CHOSEN" and exchange not in ("", "IKE_SA_INIT"):
        return "child-no-proposal-chosen"
    info = NOTIFY_HELP.get(notify_name)
    if info is not None and info.finding in CATALOGUE:
        return info.finding
    return "error-notify" if notify_name else "malformed-packet"


class Narrator:
    """Steps and findings for one probe; ``emit`` prints each step as it comes."""

    def __init__(
        self,
        *,
        gateway: str,
        peer: str = "the gateway",
        offered_ike: str,
        offered_esp: str,
        emit: Callable[[Step], None],
        clock: Callable[[], float],
        frame: Callable[[], int],
        t0: float | None = None,
        offer_by: str = "we",
        accepted: tuple[str, str] = ("", ""),
        icmp: Callable[[], list[IcmpError]] = list,
        dest: Callable[[], object] | None = None,
        asked_ts: tuple[str, str] = ("", ""),
        asked_sel: tuple[tuple[TrafficSelector, ...], tuple[TrafficSelector, ...]] = ((), ()),
        sent_ids: tuple[str, str, str] = ("", "", ""),
        rx_time: Callable[[], float | None] | None = None,
        mode: str = "tunnel",
        encap_forced: bool = False,
    ) -> None:
        self.gateway = gateway
        self.peer = peer  # how steps name the other side ("the gateway", "the client")
        # the offers in proposal-mismatch evidence: ours (initiator), or the client's with what
        # we accept (responder; "" when unknown, e.g. ESP offers inside the encrypted IKE_AUTH)
        self.offered_ike, self.offered_esp = offered_ike, offered_esp
        self.offer_by, self.accepted = offer_by, accepted
        self._icmp = icmp  # ICMP errors about our datagrams so far (probe.icmperr.IcmpError)
        self._dest = dest  # where our requests go now (the engine's current remote endpoint)
        self.asked_ts = asked_ts  # (TSi, TSr) we asked for, for ts-unacceptable evidence
        self.asked_sel = asked_sel  # the same as selectors: what narrowing dropped
        self.sent_ids = sent_ids  # (IDi, IDr, AUTH method) we send, for auth-failed evidence
        self._rx_time = rx_time  # clock() time the last datagram arrived: answers at wire time
        self.mode, self.encap_forced = mode, encap_forced
        self._emit, self._clock, self._frame = emit, clock, frame
        self._t0 = clock() if t0 is None else t0  # steps are timed from here
        self.steps: list[Step] = []
        self.findings: list[Finding] = []
        self.init_done: ev.IkeSaInitDone | None = None
        self.authenticated: ev.Authenticated | None = None
        self.child: ev.ChildSaUp | None = None
        self.failed = False
        self.deleted: ev.IkeSaDeleted | None = None
        self.ike_sa: str | None = None
        self.requests: dict[tuple[str, int], ev.Sent] = {}  # outstanding, for "unanswered" evidence
        self.drops: Counter[str] = Counter()
        self.esp_received = 0

    # -- state the driver's loop asks about
    @property
    def finished(self) -> bool:
        return self.child is not None or self.failed or self.deleted is not None

    def step(self, kind: str, text: str, *, frame: int | None = None, at: float | None = None, **data: object) -> None:
        s = Step(round((self._clock() if at is None else at) - self._t0, 3), kind, text, frame, data)
        self.steps.append(s)
        self._emit(s)

    def fail(self, f: Finding) -> None:
        """Record ``f`` (once per id) and print it; an error-severity finding ends the probe."""
        self.failed = self.failed or f.severity >= Severity.ERROR
        if all(x.id != f.id for x in self.findings):
            self.findings.append(f)
            # the finding that ended the probe first (a stray garbage datagram is a note after it)
            self.findings.sort(key=lambda x: x.severity, reverse=True)
            self.step("finding", f"[{f.id}] {f.title}", frame=f.frames[-1] if f.frames else None)

    # -- events
    def on_event(self, _session: object, e: object) -> None:
        handler = getattr(self, "_on_" + type(e).__name__, None)
        if handler is not None:
            handler(e)

    def _on_Sent(self, e: ev.Sent) -> None:
        what = f"{e.exchange} {'response' if e.is_response else 'request'} (message id {e.message_id})"
        size = f"{e.size} bytes" + (f" in {e.fragments} fragments" if e.fragments > 1 else "")
        if self._dest is not None:
            size += f" to {self._dest()}"  # shows the move to UDP 4500
        if not e.is_response:
            self.requests[(e.exchange, e.message_id)] = e
        if e.retransmission:
            self.step("retransmitted", f"{what}, retransmission {e.retransmission}, {size}")
        else:
            self.step("sent", f"{what}, {size}")

    def _on_Received(self, e: ev.Received) -> None:
        if e.is_response:
            self.requests.pop((e.exchange, e.message_id), None)
        kind = "answered" if e.is_response else "received"
        notes = f" [{', '.join(e.notifies)}]" if e.notifies else ""
        what = "response" if e.is_response else "request"
        # timed when the datagram arrived, not after our key derivation: RTTs match the pcapng
        at = self._rx_time() if self._rx_time is not None else None
        self.step(kind, f"{e.exchange} {what} (message id {e.message_id}){notes}", frame=self._frame(), at=at)

    def _on_MessageDropped(self, e: ev.MessageDropped) -> None:
        self.drops[e.reason] += 1
        if self.drops[e.reason] == 1:
            self.step("dropped", f"datagram from {self.peer} discarded: {e.reason}", frame=self._frame())

    def _on_CookieRequested(self, e: ev.CookieRequested) -> None:
        # RFC 7296 §2.6: a responder asks when it counts too many half-open IKE SAs; our own
        # recent probes from this address count too (strongSwan cookie_threshold, 30 s half-open)
        self.step(
            "cookie",
            f"{self.peer} demanded a COOKIE ({e.cookie_len} bytes): it counts many half-open IKE SAs (load, "
            "or our own recent probes from this address), or always asks; sending IKE_SA_INIT again with it",
        )

    def _on_KeRetry(self, e: ev.KeRetry) -> None:
        want, had = name_of(KeGroup, e.requested_group), name_of(KeGroup, e.offered_group)
        frame = self._frame()
        self.step("ke-retry", f"{self.peer} wants {want} instead of {had} (INVALID_KE_PAYLOAD); retrying", frame=frame)
        self.fail(
            finding(
                "ke-group-mismatch",
                frames=[frame],
                evidence=[
                    f"our KE payload used {had} (group {e.offered_group}); {self.peer} answered "
                    f"INVALID_KE_PAYLOAD asking for {want} (group {e.requested_group}), frame {frame}",
                    *self._offers(0),
                ],
                data={"offered_group": e.offered_group, "requested_group": e.requested_group},
            )
        )

    def _on_Redirected(self, e: ev.Redirected) -> None:
        self.step("redirect", f"{self.peer} redirects to {e.to}" + ("" if e.followed else " (not followed)"))

    def _on_IkeSaInitDone(self, e: ev.IkeSaInitDone) -> None:
        self.init_done = e
        self.ike_sa = f"{e.keys.spi_i.hex()}/{e.keys.spi_r.hex()}"
        chosen = proposal_summary(e.chosen)
        self.step("chosen", f"chosen proposal: {chosen}", frame=self._frame(), proposal=chosen)
        self.step("nat", nat_text(e, self.peer, self.encap_forced), **nat_fields(e))
        if e.fragmentation:
            self.step("fragmentation", "IKEv2 fragmentation (RFC 7383) supported by both sides")

    def _on_Authenticated(self, e: ev.Authenticated) -> None:
        self.authenticated = e
        method = name_of(AuthMethod, e.auth_method)
        certs = f", {len(e.peer_certs)} certificate(s)" if e.peer_certs else ""
        self.step("authenticated", f"{self.peer} authenticated as {e.peer_id_text} ({method}{certs})", frame=self._frame())

    def _on_ChildSaUp(self, e: ev.ChildSaUp) -> None:
        self.child = e
        enc = ", UDP-encapsulated" if e.encap else ""
        vip = f", virtual IP {', '.join(e.virtual_ips)}" if e.virtual_ips else ""
        self.step(
            "child-sa-up",
            f"CHILD SA up: ESP SPIs in 0x{e.spi_in:08x} out 0x{e.spi_out:08x}, "
            f"{ts_text(e.ts_i)} === {ts_text(e.ts_r)}, {e.mode}{enc}, {proposal_summary(e.proposal)}{vip}",
            frame=self._frame(),
        )
        for line in narrowing(self.asked_sel, (e.ts_i, e.ts_r), self.peer):
            self.step("narrowed", line)

    def _on_ChildSaDeleted(self, e: ev.ChildSaDeleted) -> None:
        who = self.peer if e.by_peer else "us"
        self.step("deleted", f"CHILD SA 0x{e.spi_in:08x}/0x{e.spi_out:08x} deleted by {who}")

    def _on_InformationalReceived(self, e: ev.InformationalReceived) -> None:
        what = "liveness check" if not (e.notifies or e.deletes) else ", ".join(e.notifies) or f"{e.deletes} delete(s)"
        self.step("received", f"INFORMATIONAL from {self.peer}: {what}", frame=self._frame())

    def _on_HalfOpenExpired(self, e: ev.HalfOpenExpired) -> None:
        self.step("expired", f"half-open for {e.after:g} s without IKE_AUTH ({e.state}): dropped")

    def _on_IkeSaDeleted(self, e: ev.IkeSaDeleted) -> None:
        self.deleted = e
        if self.init_done is None:
            # refused in IKE_SA_INIT (or never answered): no IKE SA ever existed on either side
            self.step("ended", f"no IKE SA created: {e.reason}")
        elif self.authenticated is None and self.child is None:
            self.step("ended", f"IKE SA not established (half-open, abandoned): {e.reason}")
        elif e.reason.strip().lower() in ("ike sa deleted", "deleted", "the peer deleted the ike sa"):
            self.step("deleted", f"IKE SA deleted{f' by {self.peer}' if e.by_peer else ''}")
        else:
            self.step("deleted", f"IKE SA deleted{f' by {self.peer}' if e.by_peer else ''}: {e.reason}")

    def _on_EspReceived(self, _e: ev.EspReceived) -> None:
        self.esp_received += 1

    def _on_CertificateInvalid(self, e: ev.CertificateInvalid) -> None:
        # the precise cause, recorded before the AUTHENTICATION_FAILED that follows it
        fid = "cert-expired" if e.problem == "expired" else "cert-not-yet-valid"
        frame = self._frame()
        which = f"{self.peer}'s certificate" if e.end_entity else f"a CA/intermediate certificate of {self.peer}'s chain"
        when = f"expired on {e.not_after}" if fid == "cert-expired" else f"is not valid before {e.not_before}"
        self.fail(
            finding(
                fid,
                frames=[frame] if frame else [],
                evidence=[
                    f"{which} {e.subject} {when} (valid {e.not_before} to {e.not_after}); our clock reads {e.wall_time}",
                    "we refused its AUTH with AUTHENTICATION_FAILED (RFC 5280 §4.1.2.5)",
                ],
                data={"subject": e.subject, "not_before": e.not_before, "not_after": e.not_after,
                      "wall_time": e.wall_time, "end_entity": e.end_entity},  # fmt: skip
                ike_sa=self.ike_sa,
            )
        )

    def _on_ProtocolError(self, e: ev.ProtocolError) -> None:
        frame = self._frame()
        fid = _id_of(e.notify_name, e.exchange, e.received)
        where = e.exchange or "the exchange"
        if e.received:
            ev_line = f"{self.peer} answered our {where} request with {e.notify_name or 'an error'}, frame {frame}"
        elif e.notify_name:
            ev_line = f"we refused {self.peer}'s {where} message ({e.notify_name}): {e.detail}"
        else:
            ev_line = f"{self.peer}'s {where} message was refused: {e.detail}"
        evidence = [ev_line]
        if e.detail and e.received and e.notify_name not in e.detail:
            evidence.append(e.detail)
        if fid in ("ike-no-proposal-chosen", "ke-group-mismatch"):
            evidence += self._offers(0)
        elif fid == "child-no-proposal-chosen":
            evidence += self._offers(1)
        elif fid == "ts-unacceptable" and any(self.asked_ts):
            tsi, tsr = self.asked_ts
            evidence.append(f"we asked for TSi {tsi or '(assigned address)'} and TSr {tsr}")
        if fid == "auth-failed" and e.received and any(self.sent_ids):
            idi, idr, method = self.sent_ids
            evidence.append(f"we sent IDi {idi}, IDr {idr or '(none: any identity)'}, AUTH {method}")
        explanation = remediation = cause = None
        if fid == "auth-failed" and e.received:
            explanation, cause, remediation = self._auth_refused_text()
        elif fid == "ike-no-proposal-chosen" and e.received:
            explanation = (
                f"{self.peer.capitalize()} refused every IKE proposal we offered. NO_PROPOSAL_CHOSEN does not "
                f"reveal what {self.peer} accepts (RFC 7296 §2.7)."
            )
            remediation = (
                f"Run `ipsecdiag probe scan {self.gateway}` to list the IKE proposals {self.peer} accepts, "
                "then offer one of them (--ike) or add ours to its configuration."
            )
        elif fid in ("ike-no-proposal-chosen", "child-no-proposal-chosen") and not e.received and self.accepted[0]:
            remediation = self._overlap_fix(0 if fid == "ike-no-proposal-chosen" else 1)
        elif fid == "child-no-proposal-chosen" and e.received and self.mode == "transport":
            evidence.append("we asked for transport mode (USE_TRANSPORT_MODE, RFC 7296 §3.10.1)")
            explanation = (
                f"{self.peer.capitalize()} refused our CHILD SA. We asked for transport mode: strongSwan "
                "(kernel-libipsec in particular) answers NO_PROPOSAL_CHOSEN when it does not accept the mode, "
                "even when the ESP proposals match."
            )
            remediation = "Probe again without --mode transport; if that works, enable transport mode on the gateway (strongSwan `mode = transport`)."
        if fid == "auth-failed" and not e.received:
            explanation = (
                f"We rejected {self.peer}'s AUTH payload (its pre-shared key, signature or certificate did "
                f"not verify against our credentials), so {self.peer} is not who we expect or the PSKs differ."
            )
        elif fid == "error-notify" and e.notify_name and e.received:
            info = NOTIFY_HELP.get(e.notify_name)
            explanation = f"{self.peer.capitalize()} sent the error notify {e.notify_name} in {where}." + (
                f" {info.meaning}" if info else ""
            )
            if e.notify_name in _NOTIFY_ADVICE:
                cause, remediation = _NOTIFY_ADVICE[e.notify_name]
        elif fid == "malformed-packet":
            explanation = f"{self.peer.capitalize()}'s {where} message violates RFC 7296 and was refused: {e.detail}."
        # a malformed datagram that did not end the SA (garbage, a spoofer) is noted, not fatal
        severity = Severity.ERROR if fid == "malformed-packet" and e.fatal else None
        self.fail(
            finding(
                fid,
                frames=[frame] if frame else [],
                evidence=evidence,
                explanation=explanation,
                severity=severity,
                data={"notify": e.notify_name, "fault": e.fault, "received": e.received, "exchange": e.exchange},
                ike_sa=self.ike_sa,
                cause=cause,
                remediation=remediation,
            )
        )
        if e.fatal:
            self.failed = True

    def _overlap_fix(self, which: int) -> str | None:
        """Responder: both lists are known, so say which algorithms differ (not an example)."""
        offered, ours = (self.offered_ike, self.offered_esp)[which], self.accepted[which]
        if not offered or not ours:
            return None
        theirs_t = {t for p in offered.split(",") for t in p.strip().split("-")}
        ours_t = {t for p in ours.split(",") for t in p.strip().split("-")}
        common = sorted(theirs_t & ours_t)
        only = sorted(theirs_t - ours_t)
        kind = ("IKE", "ESP")[which]
        return (
            f"Make the {kind} proposal lists overlap: {self.offer_by} offers only {', '.join(only) or '(nothing new)'} "
            f"where we accept {ours}" + (f" (in common: {', '.join(common)})" if common else "")
            + f"; add one of our proposals on {self.offer_by.removeprefix('the ')} side or ours to --{kind.lower()}."
        )  # fmt: skip

    def _auth_refused_text(self) -> tuple[str, str, str]:
        """(explanation, cause, fix) when the gateway refused OUR AUTH (RFC 7296 §2.21.2)."""
        idi, idr, method = self.sent_ids
        who = f"{self.peer.capitalize()} (the responder) rejected our authentication"
        ids = f" as IDi {idi}" if idi else ""
        explanation = f"{who}{ids} ({method or 'AUTH'}): it answered our IKE_AUTH with AUTHENTICATION_FAILED."
        psk = "shared key" in method.lower() or method.upper().startswith("SHARED_KEY")
        cause = (
            ("The pre-shared keys differ" if psk else "Our certificate or signature was not accepted (unknown CA, "
             "wrong identity in the certificate, or an AUTH method it does not allow)")
            + "; or no peer configuration on the gateway matches the identities we sent (strongSwan answers "
            "AUTHENTICATION_FAILED also for 'no matching peer config found')."
        )  # fmt: skip
        fix = (
            (f"Compare the PSK with the gateway's `secrets` entry for {idi or 'our identity'}" if psk
             else "Check that the gateway trusts our certificate's CA and that --id matches the certificate")
            + (f"; check that the gateway's identity really is {idr} (--remote-id), or omit --remote-id" if idr else "")
            + "; the gateway's log names the reason."
        )  # fmt: skip
        return explanation, cause, fix

    def _on_Timeout(self, e: ev.Timeout) -> None:
        sent = self.requests.get((e.exchange, e.message_id))
        self.unanswered(e.exchange, e.message_id, e.retransmissions + 1, sent, "after the whole retransmission schedule")

    def _icmp_evidence(self) -> list[str]:
        """ICMP errors about our datagrams, counted: why a request went unanswered."""
        counts = Counter(e.text() for e in self._icmp())
        lines = [f"{text}{f' ({n}x)' if n > 1 else ''}" for text, n in counts.items()]
        if any("port unreachable" in t for t in counts):
            lines.append("port unreachable: nothing listens on that UDP port there (IKE daemon down or elsewhere)")
        return lines[:6]

    def _icmp_cause(self) -> tuple[str | None, str | None]:
        """(cause, fix) settled by an ICMP error about our requests; (None, None) if none came."""
        errors = self._icmp()
        if not errors:
            return None, None
        e = errors[-1]
        host, port = e.dst
        if "port unreachable" in e.what:
            return (
                f"Nothing listens on UDP {port} at {host} (ICMP port unreachable from {e.offender}): the IKE "
                "daemon is not running there, or listens on another address or port.",
                "Start the IKE daemon on the gateway (strongSwan: `systemctl status strongswan`, `swanctl "
                "--stats`), or probe the address/port it listens on (--remote-port).",
            )
        if "prohibited" in e.what:
            return (
                f"A firewall at {e.offender} rejects our datagrams to {host}:{port} ({e.what}).",
                f"Allow UDP 500 and 4500 to {host} on {e.offender}'s filter.",
            )
        return (
            f"{host} cannot be reached: {e.offender} reported {e.what} (wrong address, the host is down, or "
            "no route to it).",
            f"Check the gateway's address and that it is up; {e.offender} is where the path ends.",
        )

    def _offers(self, which: int) -> list[str]:
        """Evidence lines with the offer and, on a responder, what it accepts (0 IKE, 1 ESP)."""
        kind = ("IKE", "ESP")[which]
        offered = (self.offered_ike, self.offered_esp)[which]
        lines = [f"{self.offer_by} offered {kind} proposals: {offered}"] if offered else []
        if self.accepted[which]:
            lines.append(f"we accept {kind} proposals: {self.accepted[which]}")
        return lines

    # -- endings without an engine event
    def unanswered(self, exchange: str, mid: int, times: int, sent: ev.Sent | None, how: str) -> None:
        size = sent.size if sent else 0
        unfragmented = sent is not None and sent.fragments == 1
        evidence = [f"{exchange} request (message id {mid}, {size} bytes) sent {times}x to {self.gateway}, never answered ({how})"]
        fid = "ike-unanswered"
        i = self.init_done
        if exchange != "IKE_SA_INIT" and i is not None:
            evidence.append(f"IKE_SA_INIT ({'UDP 500' if i.encap else 'the same ports'}) was answered")
            if unfragmented and size > _IP_FRAGMENTED:
                fid = "ike-fragment-loss"
                evidence.append(
                    f"the request ({size} bytes) needed IP fragmentation; IKEv2 fragmentation (RFC 7383) was "
                    + ("negotiated but not used" if i.fragmentation else f"not announced by {self.peer}")
                )
            elif i.encap:
                fid = "natt-port-blocked"
                evidence.append("the unanswered request went to UDP 4500 (NAT-T)")
        evidence += self._icmp_evidence()
        if self.drops:
            evidence.append(
                f"datagrams from {self.peer} were discarded: "
                + ", ".join(f"{n}x {why}" for why, n in self.drops.most_common(3))
            )
        cause, fix = self._icmp_cause() if fid == "ike-unanswered" else (None, None)
        self.fail(
            finding(fid, evidence=evidence, ike_sa=self.ike_sa, data={"exchange": exchange}, cause=cause, remediation=fix)
        )
        self.failed = True
        if self.drops:
            reasons = [f"{n}x {why}" for why, n in self.drops.most_common(5)]
            self.fail(finding("malformed-packet", evidence=["discarded: " + "; ".join(reasons)]))

    def end(self, reason: str, timeout: float, sends: int) -> None:
        """The driver stopped before the engine finished: the deadline or the send budget."""
        if self.finished:
            return
        how = f"within the --timeout of {timeout:g} s" if reason == "deadline" else f"send budget of {sends} spent"
        if self.requests:
            # the latest request: its Sent event counts the retransmissions so far
            (exchange, mid), sent = max(self.requests.items(), key=lambda kv: kv[0][1])
            self.unanswered(exchange, mid, sent.retransmission + 1, sent, how)
        else:
            self.fail(finding("ike-unanswered", evidence=[f"the negotiation did not finish {how}"]))
        self.failed = True


__all__ = ["Narrator", "Step", "finding", "finding_dict", "ts_text"]
