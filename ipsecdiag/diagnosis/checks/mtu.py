"""Path MTU and fragmentation: ICMP "too big" for IPsec traffic and the tunnel overhead with
the inner MTU / TCP MSS that fits the path.

Overhead per ESP packet (RFC 4303 §2, RFC 3948 §2.1): outer IP header (20 IPv4 / 40 IPv6), UDP
8 when encapsulated, ESP header 8, the algorithm's explicit IV, padding so that payload +
2 trailer octets reach the cipher's alignment (4 at least), the 2-octet trailer, and the ICV
(AEAD tag or the integrity algorithm's truncated length).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import TypeVar

from ...capture.model import IcmpError
from ...crypto.transforms import ENCR_SPECS, INTEG_SPECS
from ...reconstruction.model import EspFlow, Finding, Report
from ...wire.jsontypes import Json
from ...wire.registry import EncrId, IntegId
from ..base import Check, CheckContext
from ..common import child_spis

_S = TypeVar("_S")

DEFAULT_PATH_MTU = 1500
NEAR_LIMIT = 32  # an outer packet this close to the path MTU counts as "at the limit"
MAX_LINES = 10


@dataclass(frozen=True)
class Overhead:
    outer_ip: int
    udp: int
    iv: int
    icv: int
    align: int
    algorithm: str
    assumed: bool = False

    @property
    def fixed(self) -> int:
        return self.outer_ip + self.udp + 8 + self.iv + self.icv

    def max_inner(self, path_mtu: int) -> int:
        """Largest inner packet whose ESP packet fits ``path_mtu`` (padding included)."""
        room = (path_mtu - self.fixed) // self.align * self.align
        return max(0, room - 2)

    def text(self) -> str:
        pad = f"padding 0-{self.align - 1}" if self.align > 1 else "no padding"
        parts = [f"outer IPv{4 if self.outer_ip == 20 else 6} {self.outer_ip}"]
        if self.udp:
            parts.append(f"UDP {self.udp}")
        parts += ["ESP header 8", f"IV {self.iv}", pad, "trailer 2", f"ICV {self.icv}"]
        lo = self.fixed + 2
        return f"{' + '.join(parts)} = {lo}-{lo + self.align - 1} bytes"


def _spec_by_name(table: dict[int, _S], enum: type[IntEnum], name: str | None) -> _S | None:
    if not name:
        return None
    try:
        return table.get(int(enum[name]))
    except KeyError:
        return None


def overhead_for(flow: EspFlow, proposal: dict[str, str] | None) -> Overhead:
    """Overhead from the negotiated proposal, else the keys' transform, else an assumption."""
    ip = 40 if ":" in flow.src else 20
    udp = 8 if flow.encap == "udp" else (22 if flow.encap == "tcp" else 0)  # RFC 8229: TCP 20 + length 2
    p = proposal or {}
    encr = _spec_by_name(ENCR_SPECS, EncrId, p.get("encr"))
    if encr is not None:
        icv = encr.icv_size
        integ = _spec_by_name(INTEG_SPECS, IntegId, p.get("integ"))
        if not encr.aead and integ is not None:
            icv = integ.icv_size
        name = encr.name + (f"/{integ.name}" if integ is not None and not encr.aead else "")
        return Overhead(ip, udp, encr.iv_size, icv, encr.pad_align, name)
    t = flow.esp_transform
    if t is not None:
        return Overhead(ip, udp, t.iv, t.icv, t.align, t.encr)
    # Unknown algorithm: AES-CBC with HMAC-SHA-256-128, a common suite with a large overhead.
    return Overhead(ip, udp, 16, 16, 16, "ENCR_AES_CBC/AUTH_HMAC_SHA2_256_128 (assumed)", assumed=True)


def _outer_len(flow: EspFlow) -> int:
    n = flow.max_esp_len
    if not n:
        return 0
    return n + (40 if ":" in flow.src else 20) + (8 if flow.encap == "udp" else 0)


def _inner_v6(flow: EspFlow) -> bool:
    return any(k.startswith("IPv6") for k in flow.inner_protocols) and not any(
        k.startswith("IPv4") for k in flow.inner_protocols
    )


def _advice(o: Overhead, path_mtu: int, v6_inner: bool) -> tuple[int, int, str]:
    inner = o.max_inner(path_mtu)
    mss = inner - (60 if v6_inner else 40)
    text = (
        f"inner packets up to {inner} bytes fit a path MTU of {path_mtu}: set the tunnel's inner MTU to "
        f"{inner} and clamp the TCP MSS to {mss} ({'IPv6' if v6_inner else 'IPv4'} + TCP headers of "
        f"{60 if v6_inner else 40})"
    )
    return inner, mss, text


class MtuCheck(Check):
    name = "mtu"
    finding_ids = ("icmp-too-big", "tunnel-mtu")

    def run(self, ctx: CheckContext) -> Iterable[Finding]:
        r = ctx.report
        proposals = {spi: c.proposal for spi, (_, c) in child_spis(r).items()}
        icmp_mtu: dict[tuple[str, str], int] = {}
        yield from self._icmp(r, proposals, icmp_mtu)
        yield from self._tunnel(r, proposals, icmp_mtu, ctx.options.path_mtu)

    # -- icmp-too-big --------------------------------------------------------------------------
    def _icmp(
        self, r: Report, proposals: dict[int, dict[str, str] | None], icmp_mtu: dict[tuple[str, str], int]
    ) -> Iterable[Finding]:
        groups: dict[tuple[str, str, int, tuple[str, int | bytes | None], int | None], list[IcmpError]] = (
            defaultdict(list)
        )
        for e in r.icmp_errors:
            if e.kind not in ("frag-needed", "packet-too-big"):
                continue
            what = ("esp", e.quoted_spi) if e.quoted_spi is not None else ("ike", e.quoted_ike_spi_i)
            groups[(e.quoted_src, e.quoted_dst, e.quoted_proto, what, e.mtu)].append(e)
        for (qsrc, qdst, proto, (kind, ident), mtu), errs in groups.items():
            first = errs[0]
            if mtu:
                prev = icmp_mtu.get((qsrc, qdst))
                icmp_mtu[(qsrc, qdst)] = min(mtu, prev) if prev else mtu
            if kind == "esp" and ident is not None:
                about = f"ESP SPI 0x{ident:08x}" + (" (in UDP)" if proto == 17 else "")
            elif ident is not None:
                about = f"IKE SA with initiator SPI {ident.hex()}"
            else:
                about = "UDP 500/4500 traffic" if proto == 17 else f"IP protocol {proto} traffic"
            ev = [
                f"frame {e.frame}: {e.src} reports {'MTU ' + str(e.mtu) if e.mtu else 'no MTU (pre-RFC 1191 router)'} "
                f"for a {e.quoted_len}-byte packet {e.quoted_src} -> {e.quoted_dst}"
                for e in errs[:MAX_LINES]
            ]
            if len(errs) > MAX_LINES:
                ev.append(f"… and {len(errs) - MAX_LINES} more")
            data: Json = {"mtu": mtu, "router": first.src, "quoted": about, "count": len(errs)}
            extra = ""
            flows = [f for f in r.esp_flows if kind == "esp" and f.spi == ident]
            if flows and mtu:
                o = overhead_for(flows[0], proposals.get(flows[0].spi))
                inner, mss, advice = _advice(o, mtu, _inner_v6(flows[0]))
                ev.append(f"overhead for this SA: {o.text()}")
                extra = f" With this SA's overhead, {advice}."
                data.update(inner_mtu=inner, mss=mss)
            cause = remedy = None
            if kind == "ike":
                cause = "IKE messages (certificates, large key exchange payloads) larger than the path MTU."
                remedy = (
                    "Enable IKEv2 fragmentation on both peers (strongSwan `fragmentation = yes`, libreswan "
                    "`fragmentation=yes`) with a fragment size below the path MTU."
                )
                extra = (
                    " IKE messages this large need IKEv2 fragmentation (RFC 7383), or they are fragmented "
                    "at the IP layer, which many paths drop."
                )
            yield self.finding(
                "icmp-too-big",
                frames=[e.frame for e in errs],
                evidence=ev,
                title=f"ICMP {'packet too big' if first.kind == 'packet-too-big' else 'fragmentation needed'}: "
                f"path MTU {mtu or 'unknown'} for {about}",
                explanation=(
                    f"{first.src} could not forward {about} from {qsrc} to {qdst} without fragmenting it "
                    f"({len(errs)} ICMP error(s)); the next hop's MTU is {mtu or 'not given'}. Packets of "
                    "this size are dropped there until the sender lowers its packet size." + extra
                ),
                data=data,
                cause=cause,
                remediation=remedy,
            )

    # -- tunnel-mtu ----------------------------------------------------------------------------
    def _tunnel(
        self,
        r: Report,
        proposals: dict[int, dict[str, str] | None],
        icmp_mtu: dict[tuple[str, str], int],
        option_mtu: int | None,
    ) -> Iterable[Finding]:
        groups: dict[tuple[str, str, str], list[EspFlow]] = defaultdict(list)
        for f in r.esp_flows:
            groups[(f.src, f.dst, f.encap)].append(f)
        for (src, dst, encap), flows in groups.items():
            biggest = max(flows, key=_outer_len)
            outer = _outer_len(biggest)
            if option_mtu:
                pmtu, source = int(option_mtu), "given with --path-mtu"
            elif (src, dst) in icmp_mtu:
                pmtu, source = icmp_mtu[(src, dst)], "reported by ICMP"
            elif outer >= DEFAULT_PATH_MTU - NEAR_LIMIT or _syn_over(flows, proposals, biggest):
                pmtu, source = DEFAULT_PATH_MTU, "assumed (Ethernet)"
            else:
                continue  # nothing near the limit: the numbers would be noise
            o = overhead_for(biggest, proposals.get(biggest.spi))
            inner, mss, advice = _advice(o, pmtu, _inner_v6(biggest))
            spis = ", ".join(f"0x{f.spi:08x}" for f in flows[:6])
            ev = [
                f"ESP {src} -> {dst} ({'ESP-in-UDP' if encap == 'udp' else 'IP protocol 50' if encap == 'none' else encap}), "
                f"SPI {spis}, algorithm {o.algorithm}",
                f"overhead per packet: {o.text()}",
                f"largest ESP packet in the capture: {outer} bytes on the wire (path MTU {pmtu}, {source})",
            ]
            if outer > pmtu:
                ev.append(
                    "packets larger than the path MTU were captured: they were fragmented after the capture "
                    "point or dropped, unless the capture shows offloaded (GRO/TSO) super-packets"
                )
            syn = _syn_mss(flows)
            if syn:
                top = max(syn)
                ev.append(
                    f"decrypted TCP SYNs announce MSS {', '.join(map(str, sorted(syn)))}"
                    + (
                        f": {top} is {top - mss} bytes above what fits, so full-size segments are "
                        "fragmented or dropped unless the MSS is clamped"
                        if top > mss
                        else ": all fit"
                    )
                )
            elif any(f.keys for f in flows):
                ev.append("no TCP SYN with an MSS option among the decrypted packets")
            else:
                ev.append("TCP SYN MSS values inside the tunnel need the ESP keys (--keys) to be checked")
            yield self.finding(
                "tunnel-mtu",
                frames=[f.first_frame for f in flows],
                evidence=ev,
                title=f"Tunnel MTU {src} -> {dst}: inner MTU {inner}, MSS {mss}",
                explanation=(
                    f"Each ESP packet from {src} to {dst} adds {o.fixed + 2}-{o.fixed + 1 + o.align} bytes; "
                    f"{advice}. Larger inner packets are fragmented after encryption or dropped where "
                    "fragments are filtered."
                    + (
                        " The ESP algorithm is not known from the capture, so a common one is assumed."
                        if o.assumed
                        else ""
                    )
                ),
                data={
                    "path_mtu": pmtu,
                    "path_mtu_source": source,
                    "overhead_min": o.fixed + 2,
                    "overhead_max": o.fixed + 1 + o.align,
                    "inner_mtu": inner,
                    "mss": mss,
                    "largest_outer": outer,
                    "algorithm": o.algorithm,
                },
            )


def _syn_mss(flows: list[EspFlow]) -> set[int]:
    """MSS values announced in decrypted TCP SYNs of these flows (see reconstruction.inner.inner_code)."""
    return {m for f in flows for m in f.syn_mss}


def _syn_over(flows: list[EspFlow], proposals: dict[int, dict[str, str] | None], biggest: EspFlow) -> bool:
    """Whether a decrypted SYN announces more MSS than the tunnel carries on a 1500-byte path."""
    syn = _syn_mss(flows)
    if not syn:
        return False
    _inner, mss, _text = _advice(
        overhead_for(biggest, proposals.get(biggest.spi)), DEFAULT_PATH_MTU, _inner_v6(biggest)
    )
    return max(syn) > mss
