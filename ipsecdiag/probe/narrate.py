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
from typing import Any

from ipsecdiag.diagnosis.knowledge import CATALOGUE, NOTIFY_HELP
from ipsecdiag.engine import events as ev
from ipsecdiag.reconstruction.model import Finding, Severity
from ipsecdiag.wire.ikev2_sa import proposal_summary
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
    data: dict[str, Any] = field(default_factory=dict)


def finding(
    fid: str,
    *,
    evidence: list[str],
    frames: Iterable[int] = (),
    explanation: str | None = None,
    severity: Severity | None = None,
    data: dict[str, Any] | None = None,
    ike_sa: str | None = None,
) -> Finding:
    """A finding with the catalogue's texts for ``fid`` and this session's evidence."""
    entry = CATALOGUE[fid]
    return Finding(
        id=fid,
        severity=entry.severity if severity is None else severity,
        title=entry.title,
        explanation=explanation or entry.meaning,
        remediation=entry.remediation,
        frames=sorted(set(frames)),
        evidence=evidence,
        cause=entry.causes,
        check="probe",
        data=data or {},
        ike_sa=ike_sa,
    )


def finding_dict(f: Finding) -> dict[str, Any]:
    """A finding as JSON, with the fields of the report JSON (severity as its label)."""
    d = dataclasses.asdict(f)
    d["severity"] = f.severity.label
    return d


def ts_text(selectors: tuple[Any, ...]) -> str:
    return ", ".join(s.display() for s in selectors) or "(none)"


# Notifies we send (or would) about a message that is not well-formed IKEv2 at all.
_MALFORMED = frozenset({"", "INVALID_SYNTAX", "INVALID_MAJOR_VERSION"})


def _id_of(notify_name: str, exchange: str, received: bool) -> str:
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
        icmp: Callable[[], list[Any]] = list,
        dest: Callable[[], object] | None = None,
        asked_ts: tuple[str, str] = ("", ""),
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

    def step(self, kind: str, text: str, *, frame: int | None = None, **data: Any) -> None:
        s = Step(round(self._clock() - self._t0, 3), kind, text, frame, data)
        self.steps.append(s)
        self._emit(s)

    def fail(self, f: Finding) -> None:
        """Record ``f`` (once per id) and print it; an error-severity finding ends the probe."""
        self.failed = self.failed or f.severity >= Severity.ERROR
        if all(x.id != f.id for x in self.findings):
            self.findings.append(f)
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
        self.step(kind, f"{e.exchange} {what} (message id {e.message_id}){notes}", frame=self._frame())

    def _on_MessageDropped(self, e: ev.MessageDropped) -> None:
        self.drops[e.reason] += 1
        if self.drops[e.reason] == 1:
            self.step("dropped", f"datagram from {self.peer} discarded: {e.reason}", frame=self._frame())

    def _on_CookieRequested(self, e: ev.CookieRequested) -> None:
        self.step("cookie", f"{self.peer} asked for a COOKIE ({e.cookie_len} bytes); sending IKE_SA_INIT again")

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
        if e.nat_local or e.nat_remote:
            where = " and ".join(
                w for w, on in (("in front of us", e.nat_local), (f"in front of {self.peer}", e.nat_remote)) if on
            )
            # a faked NAT-D hash (strongSwan encap=yes, kernel-libipsec) looks exactly like a NAT
            why = " (or it forces UDP encapsulation)" if e.nat_remote and not e.nat_local else ""
            self.step("nat", f"NAT found {where}{why}: IKE and ESP move to UDP 4500", nat_local=e.nat_local)
        elif e.encap:
            self.step("nat", "no NAT found; UDP encapsulation forced (faked NAT-D): IKE moves to UDP 4500")
        else:
            self.step("nat", f"no NAT between us and {self.peer}")
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

    def _on_ChildSaDeleted(self, e: ev.ChildSaDeleted) -> None:
        who = self.peer if e.by_peer else "us"
        self.step("deleted", f"CHILD SA 0x{e.spi_in:08x}/0x{e.spi_out:08x} deleted by {who}")

    def _on_InformationalReceived(self, e: ev.InformationalReceived) -> None:
        what = "liveness check" if not (e.notifies or e.deletes) else ", ".join(e.notifies) or f"{e.deletes} delete(s)"
        self.step("received", f"INFORMATIONAL from {self.peer}: {what}", frame=self._frame())

    def _on_IkeSaDeleted(self, e: ev.IkeSaDeleted) -> None:
        self.deleted = e
        self.step("deleted", f"IKE SA deleted{f' by {self.peer}' if e.by_peer else ''}: {e.reason}")

    def _on_EspReceived(self, _e: ev.EspReceived) -> None:
        self.esp_received += 1

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
        explanation = None
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
            )
        )
        if e.fatal:
            self.failed = True

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
        self.fail(finding(fid, evidence=evidence, ike_sa=self.ike_sa, data={"exchange": exchange}))
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
