"""NAT detection recomputed from the capture: which side is behind a NAT, where the capture
point sits, forced UDP encapsulation, the float to the NAT-T port and NAT mapping changes.

IKEv2 (RFC 7296 §2.23, §3.10.1): NAT_DETECTION_SOURCE_IP / _DESTINATION_IP carry
SHA-1(SPIi | SPIr | IP | port) over the SPIs of the message's own header (SPIr is zero in the
IKE_SA_INIT request). IKEv1 (RFC 3947 §3.2, drafts alike): NAT-D payloads carry
HASH(CKY-I | CKY-R | IP | port) with the negotiated hash; the first is the destination, the
rest are the sender's own addresses.

Reading one message M from S to R as the capture point P sees it:

* destination hash != H(M.dst): a NAT between S and P rewrote the destination, so R is
  behind a NAT and P is on R's private side (R's charon logs "local host is behind NAT");
* source hash != H(M.src): a NAT between S and P rewrote the source (S is behind a NAT and
  P is outside it), or S deliberately sends a random hash to force UDP encapsulation
  (strongSwan ``encap = yes`` and every kernel-libipsec charon, libreswan
  ``encapsulation=yes``). A translated source port (S's IKE traffic arriving from a port
  other than the IKE/NAT-T ports) tells a NAPT; otherwise the two cannot be told apart.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ..protocol.natd import judge_side, natd_hash_v1, natd_hash_v2, v1_hash_name
from ..reconstruction.model import EspFlow, IkeSaRecord, MessageRecord
from ..wire import ikev1 as v1
from ..wire import ikev2 as v2
from ..wire.registry import NotifyType

SIDES = ("initiator", "responder")


@dataclass
class NatdCheck:
    """The NAT-D hashes of one message compared with its addresses as captured."""

    msg: MessageRecord
    sender: str  # "initiator" | "responder"
    src_ok: bool | None  # None: no source hash in the message
    dst_ok: bool | None
    sources: int = 0

    @property
    def receiver(self) -> str:
        return SIDES[1] if self.sender == SIDES[0] else SIDES[0]


@dataclass
class MappingChange:
    side: str
    ts: float
    frame: int
    old: tuple[str, int]
    new: tuple[str, int]
    via: str  # "IKE" | "ESP SPI 0x..."
    stale_after: list[int] = field(default_factory=list)  # frames still sent to the old mapping


@dataclass
class NatVerdict:
    sa: IkeSaRecord
    checks: list[NatdCheck] = field(default_factory=list)
    behind: dict[str, str] = field(default_factory=dict)  # side -> "inside" | "outside"
    forced: set[str] = field(default_factory=set)  # source hash random although nothing translated
    ambiguous: set[str] = field(default_factory=set)  # source mismatch: forced, or a NAT beyond P
    translated_ports: dict[str, list[int]] = field(default_factory=dict)
    float_msg: MessageRecord | None = None
    mapping_changes: list[MappingChange] = field(default_factory=list)
    mobike: bool = False

    @property
    def real_nat(self) -> bool:
        return bool(self.behind) or any(not self.mobike for _ in self.mapping_changes)

    @property
    def nated_sides(self) -> list[str]:
        sides = set(self.behind)
        if not self.mobike:
            sides.update(c.side for c in self.mapping_changes)
        return [s for s in SIDES if s in sides]

    def endpoint(self, side: str) -> tuple[str, int]:
        return self.sa.initiator if side == SIDES[0] else self.sa.responder


def side_of(m: MessageRecord) -> str:
    return SIDES[0] if m.from_initiator else SIDES[1]


def _v2_natd(m: MessageRecord) -> NatdCheck | None:
    hdr = getattr(m.parsed, "header", None)
    if hdr is None:
        return None
    srcs: list[bytes] = []
    dsts: list[bytes] = []
    for p in m.all_payloads():
        if isinstance(p, v2.NotifyPayload):
            if p.notify_type == NotifyType.NAT_DETECTION_SOURCE_IP:
                srcs.append(p.data)
            elif p.notify_type == NotifyType.NAT_DETECTION_DESTINATION_IP:
                dsts.append(p.data)
    if not srcs and not dsts:
        return None

    def h(ip: str, port: int) -> bytes:
        return natd_hash_v2(hdr.spi_i, hdr.spi_r, ip, port)

    return NatdCheck(
        msg=m,
        sender=side_of(m),
        src_ok=(h(m.src, m.sport) in srcs) if srcs else None,
        dst_ok=(dsts[0] == h(m.dst, m.dport)) if dsts else None,
        sources=len(srcs),
    )


def _v1_natd(sa: IkeSaRecord, m: MessageRecord) -> NatdCheck | None:
    hdr = getattr(m.parsed, "header", None)
    if hdr is None:
        return None
    hashes = [p.hash for p in m.all_payloads() if isinstance(p, v1.V1NatDPayload)]
    if not hashes:
        return None
    alg = v1_hash_name(str((sa.proposal or {}).get("hash") or ""), hashes[0])
    if alg is None:
        return None  # TIGER or unknown: cannot recompute

    def h(ip: str, port: int) -> bytes:
        return natd_hash_v1(alg, hdr.cookie_i, hdr.cookie_r, ip, port)

    # RFC 3947 §3.2: the first NAT-D is the peer's (destination) address, the others ours.
    return NatdCheck(
        msg=m,
        sender=side_of(m),
        src_ok=(h(m.src, m.sport) in hashes[1:]) if len(hashes) > 1 else None,
        dst_ok=hashes[0] == h(m.dst, m.dport),
        sources=len(hashes) - 1,
    )


def natd_checks(sa: IkeSaRecord) -> list[NatdCheck]:
    out: list[NatdCheck] = []
    for ex in sa.exchanges:
        for m in ex.all_messages():
            c = _v1_natd(sa, m) if sa.version == 1 else _v2_natd(m)
            if c is not None:
                out.append(c)
    return out


def messages(sa: IkeSaRecord) -> list[MessageRecord]:
    msgs = [m for ex in sa.exchanges for m in ex.all_messages()]
    return sorted(msgs, key=lambda m: m.ts)


def analyse_sa(
    sa: IkeSaRecord,
    esp_flows: Iterable[EspFlow],
    ike_ports: Iterable[int] = (500,),
    natt_ports: Iterable[int] = (4500,),
) -> NatVerdict:
    """What the capture says about NAT for one IKE SA (see the module docstring)."""
    v = NatVerdict(sa=sa, checks=natd_checks(sa))
    std = set(ike_ports) | set(natt_ports)
    natt = set(natt_ports)
    msgs = messages(sa)
    for side in SIDES:
        to_side = [c for c in v.checks if c.receiver == side and c.dst_ok is False]
        src_bad = [c for c in v.checks if c.sender == side and c.src_ok is False]
        ports = sorted({m.sport for m in msgs if side_of(m) == side and m.sport not in std})
        if ports:
            v.translated_ports[side] = ports
        s = judge_side(bool(to_side), bool(src_bad), bool(ports))
        if s.behind:
            v.behind[side] = s.behind
        if s.forced:
            v.forced.add(side)
        if s.ambiguous:
            v.ambiguous.add(side)
    if v.ambiguous and not v.behind and v.ambiguous == set(SIDES):
        # Both peers "behind NAT" with all destinations intact: both force encapsulation
        # (a NAT in front of each peer with the capture in between is the unlikely alternative).
        v.forced |= v.ambiguous
        v.ambiguous = set()
    v.float_msg = next(
        (m for m in msgs if m.non_esp_marker or (m.dport in natt and m.sport not in set(ike_ports))), None
    )
    v.mobike = any("UPDATE_SA_ADDRESSES" in m.notifies for m in msgs)
    v.mapping_changes = _mapping_changes(sa, msgs, list(esp_flows), v.float_msg, natt)
    return v


def _mapping_changes(
    sa: IkeSaRecord,
    msgs: list[MessageRecord],
    flows: list[EspFlow],
    float_msg: MessageRecord | None,
    natt: set[int],
) -> list[MappingChange]:
    """A side's address/port changing on the NAT-T port after the float (same IKE SA)."""
    if float_msg is None:
        return []
    out: list[MappingChange] = []
    after = [
        m for m in msgs if m.ts >= float_msg.ts and (m.sport in natt or m.dport in natt or m.non_esp_marker)
    ]
    for side in SIDES:
        seen: list[tuple[float, int, tuple[str, int]]] = []
        for m in after:
            for t in m.transmissions:
                ep = (m.src, m.sport) if side_of(m) == side else (m.dst, m.dport)
                seen.append((t.ts, t.frames[0], ep))
        seen.sort()
        for (_, _, a), (ts, fr, b) in zip(seen, seen[1:], strict=False):
            if a != b:
                out.append(MappingChange(side, ts, fr, a, b, "IKE"))
    own: dict[str, set[str]] = {side: set() for side in SIDES}
    for m in msgs:
        own[side_of(m)].add(m.src)
        own[SIDES[1] if side_of(m) == SIDES[0] else SIDES[0]].add(m.dst)
    addrs = own[SIDES[0]] | own[SIDES[1]]
    by_spi: dict[int, list[EspFlow]] = {}
    for f in flows:
        if f.encap == "udp" and f.src in addrs and f.dst in addrs and f.first_ts >= float_msg.ts - 1.0:
            by_spi.setdefault(f.spi, []).append(f)
    for spi, fl in by_spi.items():
        fl.sort(key=lambda f: f.first_ts)
        for a, b in zip(fl, fl[1:], strict=False):
            for old_ep, new_ep in (
                ((a.src, a.sport), (b.src, b.sport)),
                ((a.dst, a.dport), (b.dst, b.dport)),
            ):
                if old_ep != new_ep:
                    side = SIDES[0] if old_ep[0] in own[SIDES[0]] or new_ep[0] in own[SIDES[0]] else SIDES[1]
                    out.append(
                        MappingChange(side, b.first_ts, b.first_frame, old_ep, new_ep, f"ESP SPI 0x{spi:08x}")
                    )
    # Traffic still addressed to the old mapping after the change: the peer did not follow it.
    for c in out:
        for m in msgs:
            if side_of(m) != c.side and (m.dst, m.dport) == c.old:
                c.stale_after += [t.frames[0] for t in m.transmissions if t.ts > c.ts]
        for f in flows:
            if (f.dst, f.dport) == c.old and f.last_ts > c.ts:
                c.stale_after.append(f.last_frame)
    out.sort(key=lambda c: c.ts)
    return _dedupe(out)


def _dedupe(changes: list[MappingChange]) -> list[MappingChange]:
    """IKE and ESP often show the same rebinding: keep one per (side, old, new)."""
    seen: set[tuple[str, tuple[str, int], tuple[str, int]]] = set()
    out = []
    for c in changes:
        k = (c.side, c.old, c.new)
        if k not in seen:
            seen.add(k)
            out.append(c)
    return out
