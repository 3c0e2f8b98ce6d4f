"""ESP flow problems: one-way SA pairs, CHILD SAs without ESP, ESP for SPIs nobody announced.

SA pairs come from decrypted IKE when there is some (a CHILD SA's two SPIs: ``spi_i`` is the
SPI the initiator of the creating exchange receives on, ``spi_r`` the responder's). Without it,
flows are paired by reversed endpoints (addresses, and ports for ESP-in-UDP) over the same time
span, which cannot tell a silent peer from a capture that only holds one direction: the
findings say so.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from ...reconstruction.model import (
    ChildSaRecord,
    EspFlow,
    Finding,
    IkeSaRecord,
    MessageRecord,
    Report,
    Severity,
)
from ...wire import ikev1 as v1
from ...wire import ikev2 as v2
from ...wire.registry import ExchangeType, NotifyType, V1NotifyType
from ..base import Check, CheckContext
from ..common import child_spis
from ..timeorder import flow_times

MIN_ONE_WAY = 3  # packets one way before the silence of the other way means something
# Reverse ESP this close before or after a flow still answers it (a burst, then the replies).
ONE_WAY_SLACK = 10.0
ESP_EXPECT_SECONDS = 10.0  # capture time after an SA came up within which ESP is expected
MAX_LINES = 12

Endpoint = tuple[str, int]


def _overlap(a: tuple[float, float], b: tuple[float, float], slack: float) -> bool:
    return b[0] <= a[1] + slack and b[1] >= a[0] - slack


def _ep(addr: str, port: int) -> str:
    if not port:
        return addr
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


def _flow_text(f: EspFlow) -> str:
    return (
        f"SPI 0x{f.spi:08x} {_ep(f.src, f.sport)} -> {_ep(f.dst, f.dport)}: {f.packets} packet(s), "
        f"frames {f.first_frame}..{f.last_frame}"
    )


def _frame_ts(sa: IkeSaRecord) -> dict[int, float]:
    out = {}
    for ex in sa.exchanges:
        for m in ex.all_messages():
            for t in m.transmissions:
                for fr in t.frames:
                    out[fr] = t.ts
    return out


def _reverse_seen(report: Report, src: str, dst: str) -> list[str]:
    """Evidence that the capture holds traffic from ``src`` to ``dst`` at all."""
    out = []
    for sa in report.ike_sas:
        for ex in sa.exchanges:
            for m in ex.all_messages():
                if m.src == src and m.dst == dst:
                    out.append(f"{ex.type} from {src} to {dst} (frame {m.first_frame})")
                    break
            if out:
                return out
    for f in report.esp_flows:
        if f.src == src and f.dst == dst:
            return [f"ESP SPI 0x{f.spi:08x} from {src} to {dst} (frame {f.first_frame})"]
    for k in report.keepalives:
        if k.src == src and k.dst == dst:
            return [f"a NAT keepalive from {src} to {dst} (frame {k.frame})"]
    return out


def _stale_mapping(
    r: Report, silent: list[EspFlow], a: Endpoint, b: Endpoint, by_dir: dict[tuple[Endpoint, Endpoint], list[EspFlow]]
) -> list[tuple[Endpoint, EspFlow]]:
    """ESP from ``b`` over the same period to an endpoint the silent flows' SPIs came from
    before ``a`` (their old NAT mapping): ``b`` does send, to where ``a`` no longer is."""
    spis = {f.spi for f in silent}
    old = {(g.src, g.sport) for g in r.esp_flows if g.spi in spis and g.dst == b[0] and (g.src, g.sport) != a}
    span = (
        min(flow_times(f.first_ts, f.last_ts)[0] for f in silent),
        max(flow_times(f.first_ts, f.last_ts)[1] for f in silent),
    )
    return [
        (o, g)
        for o in sorted(old)
        for g in by_dir.get((b, o), [])
        if _overlap(span, flow_times(g.first_ts, g.last_ts), ONE_WAY_SLACK)
    ]


def _icmp_answers(report: Report, src: str, dst: str) -> tuple[list[int], list[str], str]:
    """ICMP errors quoting ESP (or ESP-in-UDP) from ``src`` to ``dst``: the other side's answer.
    Returns their frames, evidence lines and a sentence for the explanation ('' when none)."""
    hits = [
        e for e in report.icmp_errors if e.quoted_src == src and e.quoted_dst == dst and e.quoted_proto in (50, 17)
    ]
    if not hits:
        return [], [], ""
    kinds: dict[tuple[str, int, int], list[int]] = defaultdict(list)
    for e in hits:
        kinds[(e.src, e.icmp_type, e.icmp_code)].append(e.frame)
    ev = []
    for (who_, t, c), frames in kinds.items():
        what = _ICMP_TEXT.get((t, c), f"ICMP type {t} code {c}")
        ev.append(f"{who_} answered with ICMP {what} x{len(frames)} (frames {', '.join(map(str, frames[:8]))})")
    first = next(iter(kinds))
    meaning = _ICMP_MEANING.get((first[1], first[2]), "the packets are refused on the way or at the host")
    text = (
        f" {first[0]} answers the ESP with ICMP errors ({len(hits)} in the capture): the packets reach "
        f"{'it' if first[0] == dst else 'that router'} and are refused: {meaning}."
    )
    return [e.frame for e in hits], ev, text


_ICMP_TEXT = {
    (3, 2): "protocol unreachable",
    (3, 3): "port unreachable",
    (3, 13): "administratively prohibited",
    (3, 1): "host unreachable",
    (3, 0): "net unreachable",
    (3, 10): "host administratively prohibited",
    (1, 4): "port unreachable (ICMPv6)",
    (1, 1): "administratively prohibited (ICMPv6)",
}
_ICMP_MEANING = {
    (3, 2): "protocol 50 (ESP) is not handled there (no IPsec stack or SA, or ESP not allowed in)",
    (3, 3): "nothing listens on UDP 4500 there (the IKE daemon is down or the SA moved)",
    (3, 13): "a firewall forbids it",
    (3, 10): "a firewall forbids it",
    (1, 1): "a firewall forbids it",
    (1, 4): "nothing listens on UDP 4500 there",
}


class EspFlowCheck(Check):
    name = "esp-flows"
    finding_ids = ("esp-one-way", "esp-missing", "esp-unknown-spi")
    severity_overrides = {
        "esp-one-way": "warning when the capture holds no IPsec packet at all from the silent side: the "
        "explanation says the capture may have been taken in one direction only",
        "esp-missing": "info when IKE_AUTH was not decrypted: the title says there are no keys to confirm "
        "a CHILD SA was created",
    }

    def run(self, ctx: CheckContext) -> Iterable[Finding]:
        r = ctx.report
        owners = child_spis(r)
        yield from self._child_pairs(r)
        yield from self._endpoint_pairs(r, owners)
        yield from self._no_esp_without_keys(r)
        yield from self._unknown_spis(r, owners)
        yield from self._invalid_spi(r)

    # -- with IKE knowledge -------------------------------------------------------------------
    def _child_pairs(self, r: Report) -> Iterable[Finding]:
        end = r.source.last_ts or 0.0
        by_spi: dict[int, list[EspFlow]] = defaultdict(list)
        for f in r.esp_flows:
            by_spi[f.spi].append(f)
        for sa in r.ike_sas:
            when = _frame_ts(sa)
            for c in sa.child_sas:
                if c.protocol != "ESP":
                    continue
                # ESP from the responder of the creating exchange uses spi_i, the other way spi_r.
                to_i = [f for f in by_spi.get(c.spi_i or -1, [])]
                to_r = [f for f in by_spi.get(c.spi_r or -1, [])]
                n_i, n_r = sum(f.packets for f in to_i), sum(f.packets for f in to_r)
                created = when.get(c.created_frame, sa.first_ts)
                gone = when.get(c.deleted_frame, end) if c.deleted_frame else end
                spis = f"0x{c.spi_i or 0:08x}/0x{c.spi_r or 0:08x}"
                if n_i == 0 and n_r == 0:
                    if gone - created < ESP_EXPECT_SECONDS:
                        continue
                    yield self.finding(
                        "esp-missing",
                        frames=[c.created_frame],
                        ike_sa=sa.key,
                        evidence=[
                            f"CHILD SA with SPIs {spis} created in {c.created_in} (frame {c.created_frame})"
                            + (f", selectors {', '.join(c.ts_i)} === {', '.join(c.ts_r)}" if c.ts_i else ""),
                            f"no ESP packet with either SPI in the {gone - created:.0f} s of capture "
                            + ("until it was deleted" if c.deleted_frame else "after that"),
                        ],
                        data={"spi_i": f"{c.spi_i or 0:08x}", "spi_r": f"{c.spi_r or 0:08x}"},
                    )
                    continue
                for have, lack, lack_spi, n in ((to_r, to_i, c.spi_i, n_r), (to_i, to_r, c.spi_r, n_i)):
                    start = min(flow_times(f.first_ts, f.last_ts)[0] for f in have) if have else end
                    if lack or n < MIN_ONE_WAY:
                        continue
                    f0 = have[0]
                    icmp_frames, icmp_ev, icmp_text = _icmp_answers(r, f0.src, f0.dst)
                    # replies may still be on their way in the last second, unless ICMP already answered
                    if end - start < 1.0 and not icmp_frames:
                        continue
                    ev = [_flow_text(f) for f in have[:MAX_LINES]]
                    ev.append(
                        f"no ESP with the partner SPI 0x{lack_spi or 0:08x} ({f0.dst} -> {f0.src}) "
                        f"of the same CHILD SA (created frame {c.created_frame})"
                    )
                    ev += self._inner_hint(have)
                    ev += icmp_ev
                    yield self.finding(
                        "esp-one-way",
                        frames=[f.first_frame for f in have] + icmp_frames,
                        ike_sa=sa.key,
                        evidence=ev,
                        explanation=(
                            f"The CHILD SA {spis} carries ESP from {f0.src} to {f0.dst} only: {n} packet(s) "
                            "one way and none with the partner SPI back."
                            + (
                                icmp_text  # the answer it did send says why: no guessing
                                or f" Either {f0.dst} does not send (no matching inbound SA or policy, no return "
                                "route for the traffic selectors, nothing to answer), or its ESP is filtered "
                                "before the capture point."
                            )
                        ),
                        data={
                            "spi": f"{f0.spi:08x}",
                            "partner_spi": f"{lack_spi or 0:08x}",
                            "packets": n,
                        }
                        | ({"icmp_errors": len(icmp_frames)} if icmp_frames else {}),
                    )

    @staticmethod
    def _inner_hint(flows: list[EspFlow]) -> list[str]:
        inner: dict[str, int] = defaultdict(int)
        for f in flows:
            for k, n in f.inner_protocols.items():
                inner[k] += n
        if not inner:
            return []
        mix = ", ".join(f"{k} x{n}" for k, n in sorted(inner.items(), key=lambda kv: -kv[1]))
        return [f"decrypted inner traffic: {mix} (requests of this kind expect replies)"]

    # -- without IKE knowledge ----------------------------------------------------------------
    def _endpoint_pairs(
        self, r: Report, owners: dict[int, tuple[IkeSaRecord, ChildSaRecord]]
    ) -> Iterable[Finding]:
        end = r.source.last_ts or 0.0
        by_dir: dict[tuple[Endpoint, Endpoint], list[EspFlow]] = defaultdict(list)
        for f in r.esp_flows:
            by_dir[((f.src, f.sport), (f.dst, f.dport))].append(f)
        for (a, b), flows in sorted(by_dir.items(), key=lambda kv: kv[1][0].first_frame):
            answered = bool(_icmp_answers(r, a[0], b[0])[0])  # then there is no reply to wait for
            cand = [
                f
                for f in flows
                if f.spi not in owners
                and f.packets >= MIN_ONE_WAY
                and (end - flow_times(f.first_ts, f.last_ts)[0] >= 1.0 or answered)
            ]
            if not cand:
                continue
            back = by_dir.get((b, a), [])
            slack = ONE_WAY_SLACK
            silent = [
                f
                for f in cand
                if not any(
                    _overlap(flow_times(f.first_ts, f.last_ts), flow_times(g.first_ts, g.last_ts), slack)
                    for g in back
                )
            ]
            if not silent:
                continue
            reverse = _reverse_seen(r, b[0], a[0])
            stale = _stale_mapping(r, silent, a, b, by_dir)
            if stale:
                yield self._stale(silent, a, b, stale)
                continue
            ev = [_flow_text(f) for f in silent[:MAX_LINES]]
            ev.append(
                f"no ESP from {_ep(*b)} to {_ep(*a)} during these flows (or within {ONE_WAY_SLACK:.0f} s)"
            )
            if back:
                ev.append(
                    "ESP the other way exists only at other times: "
                    + ", ".join(f"SPI 0x{g.spi:08x} frames {g.first_frame}..{g.last_frame}" for g in back[:4])
                )
            ev += self._inner_hint(silent)
            icmp_frames, icmp_ev, icmp_text = _icmp_answers(r, a[0], b[0])
            ev += icmp_ev
            if icmp_frames and not reverse:
                reverse = icmp_ev  # the ICMP errors are traffic from that side: never "nothing from it"
            if reverse:
                ev.append(f"the capture does hold traffic from {b[0]} to {a[0]}: {reverse[0]}")
                sev = Severity.ERROR
                tail = ""
            else:
                ev.append(
                    f"the capture holds no IPsec packet at all (IKE, ESP, keepalive) from {b[0]} to {a[0]}"
                )
                sev = Severity.WARNING
                tail = (
                    f" The capture holds no IPsec packet at all from {b[0]} to {a[0]}, so it may simply have been "
                    "taken in one direction only (a capture filter, an asymmetric route past the capture "
                    "point, `tcpdump -Q out`)."
                )
            n = sum(f.packets for f in silent)
            yield self.finding(
                "esp-one-way",
                frames=[f.first_frame for f in silent] + icmp_frames,
                severity=sev,
                evidence=ev,
                explanation=(
                    f"{n} ESP packet(s) went from {_ep(*a)} to {_ep(*b)} and none came back over the same "
                    f"period. Without decrypted IKE the SA pair is inferred from the addresses"
                    f"{' and ports' if a[1] else ''}."
                    + (
                        icmp_text
                        or f" Either {b[0]} does not send (no matching inbound SA or policy, no return route, "
                        "nothing to answer), or its ESP is filtered before the capture point." + tail
                    )
                ),
                data={
                    "spis": [f"{f.spi:08x}" for f in silent],
                    "packets": n,
                    "reverse_seen": bool(reverse),
                }
                | ({"icmp_errors": len(icmp_frames)} if icmp_frames else {}),
            )

    def _stale(
        self, silent: list[EspFlow], a: Endpoint, b: Endpoint, stale: list[tuple[Endpoint, EspFlow]]
    ) -> Finding:
        """One-way ESP because ``b`` keeps sending to ``a``'s old NAT mapping: ``b`` does send,
        so neither a silent peer nor a filter; the mapping change is the cause (RFC 3948 §4,
        RFC 7296 §2.23) and the nat-detected finding on it explains this one."""
        (old, _), n = stale[0], sum(f.packets for f in silent)
        back = sum(g.packets for _, g in stale)
        last = max(g.last_frame for _, g in stale)
        ev = [_flow_text(f) for f in silent[:MAX_LINES]]
        ev.append(f"no ESP from {_ep(*b)} to {_ep(*a)} during these flows (or within {ONE_WAY_SLACK:.0f} s)")
        ev += [f"but {_flow_text(g)}: to {_ep(*o)}, where SPI 0x{silent[0].spi:08x} came from before" for o, g in stale[:4]]
        return self.finding(
            "esp-one-way",
            frames=[f.first_frame for f in silent] + [last],
            evidence=ev,
            title=f"ESP one way only: {b[0]} still sends to the old NAT mapping {_ep(*old)}",
            explanation=(
                f"{n} ESP packet(s) went from {_ep(*a)} to {_ep(*b)} and none came back to {_ep(*a)}. {b[0]} "
                f"did send ESP over the same period ({back} packet(s), until frame {last}), but to {_ep(*old)}, "
                f"the endpoint the same SA's ESP came from before: the NAT in front of {a[0]} gave it a new "
                f"mapping ({_ep(*old)} -> {_ep(*a)}) and {b[0]} did not follow it, so its ESP goes to a mapping "
                "that no longer reaches the peer (see the NAT mapping change finding). Without decrypted IKE "
                "the SA pair is inferred from the addresses and ports."
            ),
            cause=(
                f"The NAT in front of {a[0]} dropped its idle UDP mapping (no traffic and no NAT keepalives, "
                "RFC 3948 §4, for longer than its UDP timeout) or restarted; "
                f"{b[0]} kept the old address and port instead of following the new one (RFC 7296 §2.23)."
            ),
            remediation=(
                f"Enable NAT keepalives on {a[0]}'s side at an interval below the NAT's UDP timeout "
                "(strongSwan `charon.keep_alive = 20s`, libreswan `nat-keepalive=yes`, `keep-alive=20`) or "
                f"raise that timeout; make {b[0]} follow NAT mapping changes (RFC 7296 §2.23, and DPD so it "
                "notices): it must update the peer's port from authenticated IKE/ESP arriving from the new one."
            ),
            data={
                "spis": [f"{f.spi:08x}" for f in silent],
                "packets": n,
                "reverse_seen": True,
                "stale_mapping": _ep(*old),
                "stale_packets": back,
            },
        )

    def _no_esp_without_keys(self, r: Report) -> Iterable[Finding]:
        """IKE_AUTH answered, no keys to see whether a CHILD SA came up, and no ESP at all
        (one finding per pair of peers, however many IKE SAs they set up)."""
        end = r.source.last_ts or 0.0
        by_pair: dict[frozenset[str], list[tuple[IkeSaRecord, MessageRecord, float]]] = defaultdict(list)
        for sa in r.ike_sas:
            if sa.version != 2 or sa.child_sas or sa.state in ("failed",):
                continue
            auth = [
                e
                for e in sa.exchanges
                if e.exchange_type == ExchangeType.IKE_AUTH
                and e.response is not None
                and not e.response.decrypted
            ]
            if not auth or auth[-1].response is None:
                continue
            up = auth[-1].response
            peers = {sa.initiator[0], sa.responder[0]} | {p[0] for p in sa.peers_seen}
            if any(f.src in peers and f.dst in peers for f in r.esp_flows):
                continue
            later = [e for e in sa.exchanges if e.first_ts > up.ts]
            stop = end
            if later and later[-1].exchange_type == ExchangeType.INFORMATIONAL:
                stop = later[-1].first_ts  # possibly the DELETE that ends it
            if stop - up.ts >= ESP_EXPECT_SECONDS:
                by_pair[frozenset((sa.initiator[0], sa.responder[0]))].append((sa, up, stop - up.ts))
        for items in by_pair.values():
            sa, up, quiet = max(items, key=lambda x: x[2])
            ev = [
                f"IKE_AUTH of IKE SA {s.key} answered at frame {m.first_frame}, then {q:.0f} s without ESP"
                for s, m, q in items[:MAX_LINES]
            ]
            yield self.finding(
                "esp-missing",
                frames=[m.first_frame for _, m, _ in items],
                ike_sa=sa.key,
                severity=Severity.INFO,
                title="IKE_AUTH answered but no ESP at all (no keys to confirm a CHILD SA)",
                explanation=(
                    f"IKE_AUTH was answered ({len(items)} IKE SA(s)) and the capture went on for up to "
                    f"{quiet:.0f} s, but no ESP between {sa.initiator[0]} and {sa.responder[0]} appears. "
                    "Without keys the IKE_AUTH response cannot be read: it may have refused the CHILD SA "
                    "(e.g. TS_UNACCEPTABLE), so this is weaker evidence than for a known CHILD SA; a capture "
                    "filter that kept only IKE would look the same."
                ),
                evidence=ev,
            )

    # -- SPIs nobody announced ----------------------------------------------------------------
    def _unknown_spis(
        self, r: Report, owners: dict[int, tuple[IkeSaRecord, ChildSaRecord]]
    ) -> Iterable[Finding]:
        groups: dict[tuple[str, str], list[EspFlow]] = defaultdict(list)
        for f in r.esp_flows:
            if f.spi in owners:
                continue
            sa = self._knowing_sa(r, f)
            if sa is not None:
                groups[(sa.key, f.src)].append(f)
        for (key, _src), flows in groups.items():
            ev = [_flow_text(f) for f in flows[:MAX_LINES]]
            ev.append(
                f"the decrypted exchanges of IKE SA {key} announce SPIs "
                + ", ".join(sorted({f"0x{s:08x}" for s, (sa, _) in owners.items() if sa.key == key}))
            )
            yield self.finding(
                "esp-unknown-spi",
                frames=[f.first_frame for f in flows],
                ike_sa=key,
                evidence=ev,
                explanation=(
                    f"ESP from {flows[0].src} to {flows[0].dst} uses SPI(s) that no CHILD SA in the decrypted "
                    "IKE exchanges created, although those exchanges began before this ESP. The receiver "
                    "has no SA for it and drops it (and may answer INVALID_SPI): the sender kept an SA the "
                    "peer deleted or lost (restart), or it belongs to an IKE SA whose keys are missing."
                ),
                data={"spis": [f"{f.spi:08x}" for f in flows]},
            )

    @staticmethod
    def _knowing_sa(r: Report, f: EspFlow) -> IkeSaRecord | None:
        """An IKE SA between the flow's hosts whose CHILD SAs are all known and that started
        before the flow; None when the SA may predate the capture or hides exchanges."""
        best = None
        for sa in r.ike_sas:
            hosts = {sa.initiator[0], sa.responder[0]} | {p[0] for p in sa.peers_seen}
            if f.src not in hosts or f.dst not in hosts:
                continue
            creating = [
                e.response
                for e in sa.exchanges
                if e.type in ("IKE_AUTH", "CREATE_CHILD_SA", "QUICK_MODE") and e.response is not None
            ]
            if any(not m.decrypted for m in creating if m.encrypted):
                return None  # an exchange we could not read may have created it
            if not creating or not sa.child_sas:
                continue
            if f.first_ts <= min(m.ts for m in creating):
                return None  # the flow may belong to an SA set up before the capture
            best = sa
        return best

    def _invalid_spi(self, r: Report) -> Iterable[Finding]:
        for sa in r.ike_sas:
            for ex in sa.exchanges:
                for m in ex.all_messages():
                    if "INVALID_SPI" not in m.notifies:
                        continue
                    spis = []
                    for p in m.all_payloads():
                        if isinstance(p, v2.NotifyPayload) and p.notify_type == NotifyType.INVALID_SPI:
                            spis.append(p.data if len(p.data) == 4 else p.spi)
                        elif isinstance(p, v1.V1NotifyPayload) and p.notify_type == V1NotifyType.INVALID_SPI:
                            spis.append(p.spi)
                    spi_ints = [int.from_bytes(s, "big") for s in spis if len(s) == 4]
                    ev = [
                        f"{'initiator' if m.from_initiator else 'responder'} {m.src} sent INVALID_SPI in {ex.type} (frame {m.first_frame})"
                    ]
                    for s in spi_ints:
                        ev.append(f"reported SPI 0x{s:08x}")
                        ev += [_flow_text(f) for f in r.esp_flows if f.spi == s][:4]
                    yield self.finding(
                        "esp-unknown-spi",
                        frames=m.frames,
                        ike_sa=sa.key,
                        title="Peer reports INVALID_SPI",
                        explanation=(
                            f"{m.src} received ESP/AH for an SPI it has no SA for and said so with INVALID_SPI. "
                            f"The sender ({m.dst}) still uses an SA the receiver deleted or lost (restart, "
                            "expiry, failover) and its traffic is dropped until the SA is renegotiated."
                        ),
                        evidence=ev,
                        data={"spis": [f"{s:08x}" for s in spi_ints]},
                    )
