"""NAT traversal: NAT detected (and where), forced encapsulation, mapping changes, ESP not
encapsulated through a NAT, NAT keepalives missing across idle periods.

The NAT-D analysis itself lives in :mod:`.natd`; this module turns it into findings.
"""

from __future__ import annotations

from collections.abc import Iterable

from ...reconstruction.model import EspFlow, Finding, IkeSaRecord, Report, Severity
from ...wire.jsontypes import Json
from ..base import Check, CheckContext
from ..natd import SIDES, MappingChange, NatVerdict, analyse_sa, messages, side_of
from ..timeorder import flow_times, time_order

# Idle time after which a NAT may drop its UDP mapping. 30 s is the low end found in practice:
# Linux conntrack's nf_conntrack_udp_timeout (30 s until traffic was seen both ways; 120 s
# after), AWS's udpTimeout default, many home routers. RFC 3948 §4 keepalives default to 20 s.
MAX_LINES = 12


def _other(side: str) -> str:
    return SIDES[1] if side == SIDES[0] else SIDES[0]


def _ep(ep: tuple[str, int]) -> str:
    return f"[{ep[0]}]:{ep[1]}" if ":" in ep[0] else f"{ep[0]}:{ep[1]}"


def _both(sides: Iterable[str]) -> str:
    s = [x for x in SIDES if x in set(sides)]
    return " and ".join(s) if s else "neither peer"


def _natd_names(version: int) -> tuple[str, str]:
    """(the hash of the sender's own address, the hash of the peer's address) as the version
    names them: IKEv2 NAT_DETECTION_*_IP notifies (RFC 7296 §2.23); IKEv1 NAT-D payloads, the
    first of which hashes the peer's address and the following ones the sender's own (RFC 3947
    §3.2)."""
    if version == 1:
        return "the NAT-D hash of the sender's address", "the NAT-D hash of the receiver's address"
    return "NAT_DETECTION_SOURCE_IP", "NAT_DETECTION_DESTINATION_IP"


def _followed(r: Report, sa: IkeSaRecord, c: MappingChange) -> bool:
    """The other side sent anything (IKE or ESP) to the new mapping after the change."""
    return any(
        side_of(m) != c.side and (m.dst, m.dport) == c.new and any(t.ts > c.ts for t in m.transmissions)
        for m in messages(sa)
    ) or any((f.dst, f.dport) == c.new and f.last_ts > c.ts for f in r.esp_flows)


def verdicts(ctx: CheckContext) -> list[NatVerdict]:
    r = ctx.report
    ike_ports = ctx.options.ike_ports
    natt_ports = ctx.options.natt_ports
    return [analyse_sa(sa, r.esp_flows, ike_ports, natt_ports) for sa in r.ike_sas]


def side_addresses(sa: IkeSaRecord) -> dict[str, set[str]]:
    """Every address a side of the SA used as seen in the capture."""
    own: dict[str, set[str]] = {SIDES[0]: {sa.initiator[0]}, SIDES[1]: {sa.responder[0]}}
    for m in messages(sa):
        own[side_of(m)].add(m.src)
        own[_other(side_of(m))].add(m.dst)
    return own


def _by_spi(flows: list[EspFlow]) -> dict[int, list[EspFlow]]:
    out: dict[int, list[EspFlow]] = {}
    for f in flows:
        if f.encap == "udp":
            out.setdefault(f.spi, []).append(f)
    return out


def flows_between(report: Report, a: set[str], b: set[str]) -> list[EspFlow]:
    return [f for f in report.esp_flows if (f.src in a and f.dst in b) or (f.src in b and f.dst in a)]


class NatCheck(Check):
    name = "natt"
    finding_ids = ("nat-detected", "natt-not-used", "natt-keepalive-missing")
    severity_overrides = {
        "nat-detected": "warning for a mapping change after which the other side kept sending to the "
        "old mapping, error when it never followed the new one (its traffic no longer reaches the peer, "
        "and the one-way ESP that follows is this finding's consequence): the explanation says so",
        "natt-not-used": "warning when the NAT-D hash may be a request for encapsulation rather than a "
        "NAT: the explanation says the ESP fails only if the side really is behind a NAT",
    }

    def run(self, ctx: CheckContext) -> Iterable[Finding]:
        r = ctx.report
        timeout = ctx.options.natt_idle_timeout
        vs = verdicts(ctx)
        for v in self._one_per_conclusion(vs):
            f = self._detected(v)
            if f is not None:
                yield f
        not_used: set[frozenset[str]] = set()
        keepalives: set[frozenset[str]] = set()
        for v in vs:
            for c in v.mapping_changes:
                yield self._mapping_change(v, c, _followed(r, v.sa, c))
            own = side_addresses(v.sa)
            flows = flows_between(r, own[SIDES[0]], own[SIDES[1]])
            pair = frozenset(own[SIDES[0]] | own[SIDES[1]])
            if pair not in not_used:
                f = self._not_used(v, flows)
                if f is not None:
                    not_used.add(pair)
                    yield f
            if pair in keepalives:
                continue
            for side in v.nated_sides:
                f = self._keepalives(r, v, side, own, flows, timeout)
                if f is not None:
                    keepalives.add(pair)
                    yield f

    @staticmethod
    def _one_per_conclusion(vs: list[NatVerdict]) -> list[NatVerdict]:
        """Several IKE SAs between the same peers (rekeys, retries) usually say the same thing:
        keep one per conclusion, and prefer SAs where both peers' NAT-D hashes were seen over a
        lone unanswered IKE_SA_INIT."""
        by_pair: dict[frozenset[str], list[NatVerdict]] = {}
        for v in vs:
            by_pair.setdefault(frozenset((v.sa.initiator[0], v.sa.responder[0])), []).append(v)
        out = []
        for group in by_pair.values():
            full = [v for v in group if {c.sender for c in v.checks} == set(SIDES)]
            seen: set[tuple[tuple[tuple[str, str], ...], frozenset[str], frozenset[str]]] = set()
            for v in full or group:
                sig = (tuple(sorted(v.behind.items())), frozenset(v.forced), frozenset(v.ambiguous))
                if sig not in seen:
                    seen.add(sig)
                    out.append(v)
        return out

    # -- nat-detected -------------------------------------------------------------------------
    def _detected(self, v: NatVerdict) -> Finding | None:
        if not v.checks:
            return None
        sa = v.sa
        src_hash, dst_hash = _natd_names(sa.version)
        ev = []
        for c in v.checks[:MAX_LINES]:
            m = c.msg
            head = f"frame {m.first_frame}: {c.sender} {_ep((m.src, m.sport))} -> {_ep((m.dst, m.dport))}"
            parts = []
            if c.src_ok is not None:
                parts.append(
                    "source hash matches"
                    if c.src_ok
                    else f"{src_hash} does not match {_ep((m.src, m.sport))}"
                )
            if c.dst_ok is not None:
                parts.append(
                    "destination hash matches"
                    if c.dst_ok
                    else f"{dst_hash} does not match {_ep((m.dst, m.dport))}: "
                    f"the {c.sender} sent it to another (translated) address or port"
                )
            ev.append(f"{head}: {'; '.join(parts)}")
        if sa.version == 1:
            ev.append(
                "IKEv1 NAT-D payloads (RFC 3947 §3.2): the first hashes the receiver's address and port, "
                "the following ones the sender's"
            )
        if v.float_msg is not None:
            fm = v.float_msg
            ev.append(f"IKE moved to the NAT-T port {fm.dport} at frame {fm.first_frame}")
        for side, ports in v.translated_ports.items():
            ev.append(f"the {side}'s IKE traffic comes from port(s) {', '.join(map(str, ports))}")
        data: Json = {
            "behind_nat": [s for s in SIDES if s in v.behind],
            "capture_point": {s: v.behind[s] for s in SIDES if s in v.behind},
            "forced_encap": bool(v.forced) and not v.behind and not v.ambiguous,
            "forcing_encap": [s for s in SIDES if s in v.forced],
            "nat_or_forced": [s for s in SIDES if s in v.ambiguous],
            "natd": [
                {
                    "frame": c.msg.first_frame,
                    "sender": c.sender,
                    "source_ok": c.src_ok,
                    "destination_ok": c.dst_ok,
                }
                for c in v.checks
            ],
            "float_frame": v.float_msg.first_frame if v.float_msg else None,
        }
        frames = [c.msg.first_frame for c in v.checks]
        if v.behind:
            return self.finding(
                "nat-detected",
                frames=frames,
                evidence=ev,
                ike_sa=sa.key,
                title=f"NAT between the peers: the {_both(v.behind)} {'is' if len(v.behind) == 1 else 'are'} behind NAT",
                explanation=self._nat_text(v),
                data=data,
            )
        if not v.forced and not v.ambiguous:
            return None  # hashes match: no NAT, no forced encapsulation
        if v.forced and not v.ambiguous:
            return self.finding(
                "nat-detected",
                frames=frames,
                evidence=ev,
                ike_sa=sa.key,
                title=f"UDP encapsulation forced by the {_both(v.forced)} (no NAT)",
                explanation=(
                    f"{src_hash[0].upper() + src_hash[1:]} does not match the sender's address as captured for the "
                    f"{_both(v.forced)}, while the destination hashes match: nothing translated the "
                    "addresses between the peers and the capture point. A peer that sends a "
                    "non-matching source hash deliberately asks for UDP encapsulation (strongSwan "
                    "`encap = yes` and every charon using kernel-libipsec; libreswan "
                    "`encapsulation=yes`). This is not a NAT: ESP in UDP 4500 is expected."
                ),
                cause="Forced UDP encapsulation (RFC 3948) configured, or required by the ESP backend.",
                remediation="Nothing to fix.",
                data=data,
            )
        side = _both(v.ambiguous)
        ep = _ep(v.endpoint(sorted(v.ambiguous)[0]))
        return self.finding(
            "nat-detected",
            frames=frames,
            evidence=ev,
            ike_sa=sa.key,
            title=f"NAT or forced UDP encapsulation at the {side}",
            explanation=(
                f"The {side}'s {src_hash.removeprefix('the ')} does not match its address as captured ({ep}), "
                "while the destination hashes match. Either a NAT that keeps the port sits between "
                f"the {side} and the capture point, or the {side} forces UDP encapsulation on purpose "
                "(a random source hash: strongSwan `encap = yes` or kernel-libipsec, libreswan "
                f"`encapsulation=yes`). A capture on the {side}'s own link would tell them apart."
            ),
            cause="A NAT in front of that peer, or forced UDP encapsulation.",
            data=data,
        )

    @staticmethod
    def _nat_text(v: NatVerdict) -> str:
        src_hash, dst_hash = _natd_names(v.sa.version)
        parts = []
        for side in SIDES:
            where = v.behind.get(side)
            if where == "inside":
                parts.append(
                    f"The {side} ({_ep(v.endpoint(side))} in the capture) is behind a NAT and the capture "
                    f"was taken on its private side: the {_other(side)} addressed its messages to a "
                    f"translated address or port ({dst_hash.removeprefix('the ')} does not match), so the "
                    f"{side}'s address in these packets is its private one."
                )
            elif where == "outside":
                ports = ", ".join(map(str, v.translated_ports.get(side, [])))
                parts.append(
                    f"The {side} is behind a NAT and the capture was taken outside it: its "
                    f"{src_hash.removeprefix('the ')} does not match the address it is seen with "
                    f"({_ep(v.endpoint(side))}) and its IKE traffic arrives from translated port(s) {ports}."
                )
        for side in SIDES:
            if side in v.forced:
                parts.append(
                    f"The {side} also sends a non-matching source hash where nothing translated it: "
                    "it forces UDP encapsulation (strongSwan `encap = yes` or kernel-libipsec)."
                )
            elif side in v.ambiguous:
                parts.append(
                    f"The {side}'s source hash does not match either: it forces UDP encapsulation, or "
                    "another NAT sits in front of it beyond the capture point."
                )
        if v.float_msg is not None:
            parts.append(
                f"IKE moved to UDP {v.float_msg.dport} (frame {v.float_msg.first_frame}) as NAT-T requires."
            )
        return " ".join(parts)

    def _mapping_change(self, v: NatVerdict, c: MappingChange, followed: bool) -> Finding:
        stale = sorted(set(c.stale_after))
        ev = [
            f"frame {c.frame}: the {c.side}'s endpoint changed from {_ep(c.old)} to {_ep(c.new)} ({c.via})",
        ]
        if stale:
            ev.append(
                f"the {_other(c.side)} still sent to the old mapping {_ep(c.old)} afterwards "
                f"(until frame {stale[-1]})"
                + ("" if followed else f" and never to the new one {_ep(c.new)}")
            )
        broken = bool(stale) and not followed and not v.mobike
        if v.mobike:
            expl = (
                f"The {c.side}'s address/port changed during the IKE SA and MOBIKE "
                "(UPDATE_SA_ADDRESSES) was used: a deliberate address update, not a NAT rebinding."
            )
            sev = Severity.INFO
        else:
            expl = (
                f"The {c.side}'s address or port as seen on the NAT-T port changed during the same "
                f"IKE SA ({_ep(c.old)} -> {_ep(c.new)}): the NAT in front of it created a new mapping, "
                "typically because the old one expired during an idle period (missing NAT keepalives) "
                "or the NAT restarted. RFC 7296 §2.23 lets the peer follow such a change once it "
                "receives an authenticated packet from the new address"
                + (
                    f"; here the {_other(c.side)} never did: it kept sending to the old mapping, which no "
                    f"longer reaches the {c.side}, so the {c.side} receives nothing from it (ESP one way only)."
                    if broken
                    else "; here the other side kept sending to the old mapping, which no longer reaches the peer."
                    if stale
                    else "."
                )
                + " Without decrypted IKE a MOBIKE address update cannot be excluded."
            )
            sev = Severity.ERROR if broken else Severity.WARNING if stale else Severity.INFO
        return self.finding(
            "nat-detected",
            frames=[c.frame, *stale],
            evidence=ev,
            ike_sa=v.sa.key,
            severity=sev,
            explains=["esp-one-way"] if broken else [],
            title=f"NAT mapping of the {c.side} changed mid-SA"
            + (f"; the {_other(c.side)} still sends to the old one" if broken else ""),
            cause="The NAT dropped the idle mapping (no traffic or keepalives for longer than its UDP "
            "timeout, RFC 3948 §4) or restarted, and gave the peer a new port or address"
            + (f"; the {_other(c.side)} did not follow it (RFC 7296 §2.23)." if broken else "."),
            explanation=expl,
            remediation=(
                "Enable NAT keepalives at an interval below the NAT's UDP timeout (strongSwan "
                "`charon.keep_alive = 20s`, libreswan `nat-keepalive=yes`) or raise that timeout, and DPD, "
                "so a peer notices and follows a new mapping"
                + (
                    f"; the {_other(c.side)} must update the peer's address and port from authenticated "
                    "traffic arriving from the new mapping (RFC 7296 §2.23)."
                    if broken
                    else "."
                )
            ),
            data={"mapping_change": True, "side": c.side, "old": _ep(c.old), "new": _ep(c.new), "via": c.via},
        )

    # -- natt-not-used ------------------------------------------------------------------------
    def _not_used(self, v: NatVerdict, flows: list[EspFlow]) -> Finding | None:
        plain = [f for f in flows if f.encap == "none" and f.last_ts >= v.sa.first_ts]
        if not plain or not (v.real_nat or v.ambiguous):
            return None
        ev = [
            f"ESP SPI 0x{f.spi:08x} {f.src} -> {f.dst} as IP protocol 50: {f.packets} packet(s), "
            f"frames {f.first_frame}..{f.last_frame}"
            for f in plain[:MAX_LINES]
        ]
        if v.float_msg is None:
            ev.append("IKE never moved to the NAT-T port either")
        frames = [f.first_frame for f in plain]
        if v.real_nat:
            nated = _both(v.nated_sides)
            return self.finding(
                "natt-not-used",
                frames=frames,
                evidence=ev,
                ike_sa=v.sa.key,
                explanation=(
                    f"The {nated} is behind a NAT (see nat-detected), yet ESP between the peers is sent "
                    "as IP protocol 50. A NAT that translates ports cannot map ESP (it has no ports), so "
                    "these packets are dropped or reach only one peer; RFC 7296 §2.23 / RFC 3947 require "
                    "UDP encapsulation (RFC 3948) once a NAT is detected."
                ),
                data={"spis": [f"{f.spi:08x}" for f in plain], "nated": v.nated_sides},
            )
        side = _both(v.ambiguous)
        return self.finding(
            "natt-not-used",
            frames=frames,
            evidence=ev,
            ike_sa=v.sa.key,
            severity=Severity.WARNING,
            explanation=(
                f"The {side}'s NAT detection hash signals a NAT (or a request for UDP encapsulation), "
                "yet ESP is sent as IP protocol 50: the peers ignore NAT detection (RFC 7296 §2.23). "
                f"If the {side} really is behind a NAT, this ESP will not pass it."
            ),
            data={"spis": [f"{f.spi:08x}" for f in plain], "nated": []},
        )

    # -- natt-keepalive-missing ---------------------------------------------------------------
    def _keepalives(
        self,
        r: Report,
        v: NatVerdict,
        side: str,
        own: dict[str, set[str]],
        flows: list[EspFlow],
        timeout: float,
    ) -> Finding | None:
        if v.float_msg is None and not any(f.encap == "udp" for f in flows):
            return None
        start = (
            v.float_msg.ts if v.float_msg is not None else min(f.first_ts for f in flows if f.encap == "udp")
        )
        mine, theirs = own[side], own[_other(side)]
        out_events: list[tuple[float, int]] = []  # (ts, frame) of every packet the NATed side sent
        in_events: list[tuple[float, int]] = []
        for m in messages(v.sa):
            for t in m.transmissions:
                (out_events if side_of(m) == side else in_events).append((t.ts, t.frames[0]))
        kas = [k for k in r.keepalives if k.src in mine and k.dst in theirs]
        out_events += [(k.ts, k.frame) for k in kas]
        segments: list[tuple[float, float, int, int]] = []
        in_segments: list[tuple[float, float, int, int]] = [(t, t, fr, fr) for t, fr in in_events]
        truncated = False
        for f in flows:
            if f.encap != "udp":
                continue
            gaps = sorted(f.seq.idle_gaps)
            truncated |= bool(f.seq.idle_gaps_dropped)
            seg_start, seg_frame = flow_times(f.first_ts, f.last_ts)[0], f.first_frame
            pieces = []
            for g0, g1, fr0, fr1 in gaps:
                pieces.append((seg_start, g0, seg_frame, fr0))
                seg_start, seg_frame = g1, fr1
            pieces.append((seg_start, flow_times(f.first_ts, f.last_ts)[1], seg_frame, f.last_frame))
            if f.src in mine:
                segments += pieces
            else:
                in_segments += pieces
        spans = sorted(
            [(t, t, fr, fr) for t, fr in out_events if t >= start] + [s for s in segments if s[1] >= start]
        )
        if not spans:
            return None
        # A gap only matters while an SA lives across it: the same ESP SPI, or the same IKE SA,
        # before and after (otherwise one SA may have ended and another begun).
        lives = [
            (min(min(f.first_ts, f.last_ts) for f in fl), max(max(f.first_ts, f.last_ts) for f in fl))
            for fl in _by_spi(flows).values()
        ]
        ike_ts = sorted(t.ts for m in messages(v.sa) for t in m.transmissions)
        if ike_ts:
            lives.append((ike_ts[0], ike_ts[-1]))

        def alive(a: float, b: float) -> bool:
            return any(t0 <= a and t1 >= b for t0, t1 in lives)

        idle: list[tuple[float, float, int, int]] = []
        cur_end, cur_frame = spans[0][1], spans[0][3]
        for s0, s1, f0, f1 in spans[1:]:
            if s0 - cur_end > timeout and alive(cur_end, s0):
                idle.append((cur_end, s0, cur_frame, f0))
            if s1 > cur_end:
                cur_end, cur_frame = s1, f1
        # Silence at the end that the far side broke: its packets may meet an expired mapping.
        th = cur_end + timeout
        later_in = sorted((max(s0, th), f0 if s0 > th else f1) for s0, s1, f0, f1 in in_segments if s1 > th)
        if later_in and alive(cur_end, later_in[0][0]):
            idle.append((cur_end, later_in[0][0], cur_frame, later_in[0][1]))
        if not idle:
            return None
        longest = max(b - a for a, b, _, _ in idle)
        ev = [
            f"no packet from the {side} for {b - a:.0f} s: frames {f0} .. {f1}"
            for a, b, f0, f1 in idle[:MAX_LINES]
        ]
        if kas:
            ts = sorted(k.ts for k in kas)
            iv = [b - a for a, b in zip(ts, ts[1:], strict=False)]
            ev.append(
                f"{len(kas)} NAT keepalive(s) from the {side}"
                + (f", every {min(iv):.0f}-{max(iv):.0f} s" if iv else "")
                + ", none inside these gaps"
            )
        else:
            ev.append(
                f"no NAT keepalive (RFC 3948 one-byte 0xFF on UDP 4500) from the {side} in the whole capture"
            )
        if truncated:
            ev.append("(idle-gap bookkeeping hit its cap for some flows: later gaps are not listed)")
        if not time_order(r).ordered:
            ev.append(
                "the capture is not in time order (see capture-health): ESP idle gaps were measured in the "
                "order captured; sort the capture to confirm these gaps"
            )
        frames = [x for a, b, f0, f1 in idle for x in (f0, f1)]
        # A rebinding right after a gap is its consequence: the mapping expired while idle.
        rebound = [
            c
            for c in v.mapping_changes
            if c.side == side and any(a <= c.ts <= b + 1.0 for a, b, _, _ in idle)
        ]
        # The far side still sending to the old mapping makes the new one look one-way.
        explains = (
            (["nat-detected"] + (["esp-one-way"] if any(c.stale_after for c in rebound) else []))
            if rebound
            else []
        )
        return self.finding(
            "natt-keepalive-missing",
            explains=explains,
            frames=frames,
            evidence=ev,
            ike_sa=v.sa.key,
            explanation=(
                f"The {side} is behind a NAT and sent nothing towards the {_other(side)} for up to "
                f"{longest:.0f} s, longer than the {timeout:.0f} s after which many NATs drop an idle UDP "
                f"mapping (option natt_idle_timeout), and no NAT keepalive filled the gap. Traffic from "
                f"the {_other(side)} after such a gap can hit an expired mapping and be dropped, and the "
                f"{side}'s next packet may get a new port (see a NAT mapping change, if reported)."
            ),
            data={
                "side": side,
                "idle_gaps": [[round(a, 6), round(b, 6)] for a, b, _, _ in idle],
                "timeout": timeout,
            },
        )
