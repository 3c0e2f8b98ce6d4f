"""Fast L2-L4 demux of captured frames into IPsec events for a :class:`~.model.Sink`.

Frames come from :mod:`.reader`; the decoder peels the link layer (Ethernet with stacked VLAN
tags, PPPoE, MPLS, Linux SLL/SLL2, raw IP, BSD loopback), walks IPv4/IPv6 (options, extension
headers), reassembles IP fragments (:mod:`.reassembly`) and sends:

* UDP with a port in ``ike_ports`` -> ``on_ike`` (Wireshark also prefers port 500 over 4500);
* UDP with a port in ``natt_ports`` -> keepalive (one 0xFF byte, RFC 3948 §2.2), IKE after the
  non-ESP marker (RFC 3948 §2.1), or ESP-in-UDP -> ``on_esp`` with the ports;
* IP protocol 50 -> ``on_esp`` (ports 0); 51 -> ``on_ah`` (AH followed by ESP too);
* TCP with a port in ``natt_ports`` -> RFC 8229 stream (:mod:`.tcpencap`);
* ICMP/ICMPv6 errors quoting any of the above -> ``on_icmp_error``.

Accounting: every frame given to :meth:`Decoder.feed` ends up counted exactly once, in
``ipsec_frames`` (it carried IKE, ESP, AH, a NAT keepalive, an ICMP error about IPsec, a
fragment of an IPsec datagram, or data of an RFC 8229 stream), in ``skipped[reason]``, or in
``pending_frames`` (an IP fragment still buffered). IP fragments are counted
when their group is settled: with the reassembled datagram's outcome when it completes,
"not-ipsec" as soon as the first fragment shows ordinary traffic, ``ipsec_frames`` when an
incomplete group was IPsec, and "incomplete-fragment" when its first fragment never came;
copies of a completed datagram's fragments arriving within two seconds (mirror ports) count
with its outcome. After :meth:`finish`, ``pending_frames`` is 0, so
``frames == ipsec_frames + sum(skipped.values())``.

Skip reasons: "non-ip" (link payload is not IP: ARP, LLDP...), "unsupported-linktype-N",
"not-ipsec" (ordinary IP traffic), "truncated" (snaplen cut the data the decision needs),
"malformed" (a header that violates its RFC; reported with ``on_malformed``),
"incomplete-fragment" (see above).

The hot path (IPv4 ESP and ESP-in-UDP over Ethernet, one 802.1Q tag or Linux SLL/SLL2) is
straight-line struct parsing inlined into ``feed`` with no object built per packet beyond the
two address slices. For classic pcap over Ethernet, ``record_walker`` goes one step further:
it walks the reader's buffers of records itself and calls ``feed`` only for what its inlined
copy of the commonest case does not settle (1,300 of 17,400 instructions per packet saved).
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from ..wire.registry import IKE_PORT, NATT_PORT
from .headers import (
    AH,
    ESP,
    FRAGMENT,
    ICMP,
    ICMPV6,
    IKE_HEADER_LEN,
    IP4_HDR,
    IP6_HDR,
    PORT_IKE,
    PORT_NATT,
    TCP,
    U16,
    U32,
    UDP,
    UDP_HDR,
    ZERO4,
    icmp_error_kind,
    ntoa,
    parse_quote,
    walk_ext6,
)
from .link import ip_offset
from .model import IcmpError, IkeDatagram, Sink
from .reader import RecordLayout, RecordWalker
from .reassembly import FirstFragment, IpReassembler
from .tcpencap import TcpEncap
from .timesteps import GAP_SECONDS, TOLERANCE, StepsBack


@dataclass(frozen=True)
class CarriedState:
    """The decoder state that crosses from one frame to the next (``Decoder.carried_state``).

    IP fragments still buffered and RFC 8229 TCP streams (which live until the end) would be
    continued by the next frames; a tombstone (a settled fragment group, remembered until its
    deadline so that late copies count with it) matters to fragments up to ``tomb_until``;
    ``tombs_full``: some were forgotten, so what was there is unknown. ``min_fragment_ts`` is
    the earliest fragment this decoder was fed, to judge tombstones from before it."""

    fragment_groups: int
    tcp_streams: int
    tombs: int
    tombs_full: bool
    tomb_until: float
    min_fragment_ts: float


# Ethernet II type and the IPv4 fields of the fast path, in one unpack from the frame's start.
_ETH_IP4 = struct.Struct("!12xHBxHxxHxBxx4s4s")


class Decoder:
    """Feed frames, get Sink callbacks. Never raises on packet content.

    ``ike_ports``/``natt_ports`` choose the UDP demux; the fragment limits bound memory (see
    :mod:`.reassembly`).
    """

    def __init__(
        self,
        sink: Sink,
        *,
        ike_ports: frozenset[int] = frozenset({IKE_PORT}),
        natt_ports: frozenset[int] = frozenset({NATT_PORT}),
        reassembly_timeout: float = 30.0,
        max_fragment_buffers: int = 1024,
        max_fragment_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.sink = sink
        self.ike_ports = ike_ports
        self.natt_ports = natt_ports
        self.skipped: Counter[str] = Counter()
        self._ipsec = 0  # IPsec frames settled outside the fast path
        # One byte per port: a bit for IKE, a bit for NAT-T; two lookups decide a UDP packet.
        pc = bytearray(65536)
        for p in natt_ports:
            pc[p] |= PORT_NATT
        for p in ike_ports:
            pc[p] |= PORT_IKE
        self._pc = bytes(pc)
        self._frag = IpReassembler(
            timeout=reassembly_timeout,
            max_buffers=max_fragment_buffers,
            max_bytes=max_fragment_bytes,
            classify=self._classify_first,
            complete=self._reassembled,
            account=self._account,
            report=sink.on_fragment_group,
            ntoa=ntoa,
        )
        self._tcp = TcpEncap(sink, ntoa)
        self.min_fragment_ts = float("inf")  # earliest IP fragment fed (see carried_state)
        self._fast_count: Callable[[], int] = lambda: 0
        self.steps_back = StepsBack()  # frames whose time steps back (timesteps.py)
        self._see_time: Callable[[int, float], None] = lambda frame, ts: None
        self._last_time: Callable[[], float | None] = lambda: None
        self.time_top: Callable[[], tuple[float, int | None]] = lambda: (float("-inf"), None)
        # For CaptureFile.push: feed()'s hot path as a record walker (set by _compile_feed).
        self.record_walker: Callable[[RecordLayout], RecordWalker | None] = lambda layout: None
        # Per-instance specialisation of feed(); see _compile_feed.
        self.feed = self._compile_feed()  # type: ignore[method-assign]

    # -- accounting ------------------------------------------------------------------------
    @property
    def ipsec_frames(self) -> int:
        """Frames that carried IPsec (see the module docstring)."""
        return self._fast_count() + self._ipsec

    @property
    def pending_frames(self) -> int:
        """IP fragments held in reassembly buffers, not yet accounted."""
        return self._frag.pending_frames

    @property
    def fragments_evicted(self) -> int:
        return self._frag.evicted

    def _account(self, n: int, outcome: str | None) -> None:
        if outcome is None:
            self._ipsec += n
        elif outcome:
            self.skipped[outcome] += n

    def carried_state(self) -> CarriedState:
        """What this decoder would carry into the frames after the ones fed so far (call it
        before :meth:`finish`). A byte range decoded alone is exact only when the ranges before
        it left nothing that a fresh decoder lacks: see :class:`CarriedState`."""
        # Same package: the reassembler's tombstones and the RFC 8229 streams are read here,
        # at a range's end, never on the hot path.
        tombs = self._frag._tombs
        return CarriedState(
            fragment_groups=len(self._frag._groups),
            tcp_streams=len(self._tcp._streams),
            tombs=len(tombs),
            tombs_full=len(tombs) >= self._frag.max_tombs,
            tomb_until=max((until for until, _ in tombs.values()), default=float("-inf")),
            min_fragment_ts=self.min_fragment_ts,
        )

    def finish(self) -> None:
        """End of capture: flush reassembly buffers as incomplete ("end-of-capture")."""
        self.steps_back.end = self._last_time()
        self._frag.flush("end-of-capture")
        self._tcp.flush()

    # -- link layer ------------------------------------------------------------------------
    def feed(self, frame: int, ts: float, linktype: int, data: bytes, orig_len: int) -> None:
        """Decode one frame; see the module docstring for how it is accounted.

        Each instance replaces this method with the closure from :meth:`_compile_feed`, which
        behaves identically; this is the reference (and what the equivalence test compares).
        """
        self._see_time(frame, ts)
        if ts > self._frag.deadline:
            self._frag.expire(ts)
        self._account(1, self._decode(frame, ts, linktype, data, orig_len))

    def _compile_feed(self) -> Callable[[int, float, int, bytes, int], None]:
        """feed() with the common case inlined: option-less unfragmented IPv4 that is ESP or
        ESP-in-UDP, over untagged Ethernet (constant offsets), or over one 802.1Q tag or Linux
        SLL/SLL2 (through ``esp_at``). Everything else goes to ``_decode``, which handles every
        case; the equivalence test holds the two paths to the same results.

        A closure instead of a method because local and cell variables are much cheaper than
        attribute look-ups: at a million packets the difference is about a second.
        """
        on_esp = self.sink.on_esp
        frag = self._frag
        pc = self._pc
        decode = self._decode
        account = self._account
        ip4 = IP4_HDR.unpack_from
        eth_ip4 = _ETH_IP4.unpack_from
        udp = UDP_HDR.unpack_from
        et_ipv4 = b"\x08\x00"
        fast = 0
        # Time order (timesteps.py), cheap in the common case: a frame no older than the latest
        # (top) and within ``horizon`` (a time at most GAP_SECONDS after the frame before it)
        # costs two comparisons. ``horizon`` is -inf after a frame older than top, whose time
        # ``prev`` then holds (otherwise the frame before is the one at top).
        steps = self.steps_back
        step_back, jump = steps.add, steps.jump
        tol, gap, never = TOLERANCE, GAP_SECONDS, float("-inf")
        top, top_frame, prev, horizon = never, 0, never, never

        def esp_at(frame: int, ts: float, data: bytes, off: int) -> bool:
            """The untagged-Ethernet branch below, for an IPv4 header at ``off``."""
            nonlocal fast
            if len(data) < off + 28:
                return False
            vihl, tot, fragw, proto, src, dst = ip4(data, off)
            p = off + 20
            end = off + tot
            if vihl == 0x45 and not fragw & 0x3FFF and p + 8 <= end <= len(data):
                if proto == 50:
                    on_esp(frame, ts, src, dst, 0, 0, data, p, end)
                    fast += 1
                    return True
                if proto == 17:
                    sport, dport, ulen = udp(data, p)
                    if pc[sport] | pc[dport] == PORT_NATT:
                        q = p + 8
                        uend = p + ulen
                        if q + 8 <= uend <= end and data[q : q + 4] != ZERO4:
                            on_esp(frame, ts, src, dst, sport, dport, data, q, uend)
                            fast += 1
                            return True
            return False

        def feed(frame: int, ts: float, linktype: int, data: bytes, orig_len: int) -> None:
            nonlocal fast, top, top_frame, prev, horizon
            if ts >= top:
                if ts > horizon:
                    before = prev if horizon == never else top
                    if ts - before > gap:
                        jump(frame, before, ts)
                    horizon = ts + gap
                top = ts
            else:
                if horizon != never:  # the frame before was the latest (frames are numbered in order)
                    top_frame = frame - 1
                if ts < top - tol:
                    step_back(frame, ts, top_frame, top)
                before = prev if horizon == never else top
                if not -tol <= ts - before <= gap:
                    jump(frame, before, ts)
                prev, horizon = ts, never
            if ts > frag.deadline:
                frag.expire(ts)
            if linktype == 1:
                n = len(data)
                if n >= 42:
                    et, vihl, tot, fragw, proto, src, dst = eth_ip4(data)
                    if et == 0x0800:
                        end = 14 + tot
                        if vihl == 0x45 and not fragw & 0x3FFF and 42 <= end <= n:
                            if proto == 50:
                                on_esp(frame, ts, src, dst, 0, 0, data, 34, end)
                                fast += 1
                                return
                            if proto == 17:
                                sport, dport, ulen = udp(data, 34)
                                if pc[sport] | pc[dport] == PORT_NATT:
                                    uend = 34 + ulen
                                    if 50 <= uend <= end and data[42:46] != ZERO4:
                                        on_esp(frame, ts, src, dst, sport, dport, data, 42, uend)
                                        fast += 1
                                        return
                    elif et == 0x8100 and data[16:18] == et_ipv4 and esp_at(frame, ts, data, 18):
                        return
            elif linktype == 113:
                if data[14:16] == et_ipv4 and esp_at(frame, ts, data, 16):
                    return
            elif linktype == 276:
                if data[0:2] == et_ipv4 and esp_at(frame, ts, data, 20):
                    return
            account(1, decode(frame, ts, linktype, data, orig_len))

        def see_time(frame: int, ts: float) -> None:
            """The time tests of feed() above, for the reference feed() (one state for both)."""
            nonlocal top, top_frame, prev, horizon
            before = prev if horizon == never else top
            if ts < top and horizon != never:
                top_frame = frame - 1
            if ts >= top:
                top = ts
            elif ts < top - tol:
                step_back(frame, ts, top_frame, top)
            if not -tol <= ts - before <= gap:
                jump(frame, before, ts)
            prev, horizon = ts, (ts + gap if ts >= top else never)

        def last_time() -> float | None:
            t = prev if horizon == never else top
            return None if t == never else t

        def walker(layout: RecordLayout) -> RecordWalker | None:
            """For Ethernet classic pcap: a record walker (see CaptureFile.push) with feed()'s
            commonest case inlined, IPv4 ESP or ESP-in-UDP in a frame whose time keeps order.
            It saves the call per record into feed() and the tests repeated there, about 1,300
            of 17,400 instructions per packet of the inventory (callgrind). Every other record
            still goes to feed(), which decides it afresh (the time state a record settled here
            changes, ``top``, is the same feed() would set). The frame is still sliced out of
            the buffer: the tracker keeps recent packets by reference, and a reference into the
            buffer would keep whole 256 KiB buffers alive (slicing costs few instructions)."""
            if layout.linktype != 1:
                return None
            unpack_rec, hsize, div = layout.unpack, layout.size, layout.divisor

            def walk(buf: bytes, pos: int, frame: int) -> tuple[int, int, float | None]:
                nonlocal fast, top
                n = len(buf)
                last = n - hsize
                ts = None
                settled = 0  # added to ``fast`` once per buffer
                while pos <= last:
                    sec, frac, incl, orig = unpack_rec(buf, pos)
                    start = pos + hsize
                    end = start + incl
                    if end > n:
                        break
                    frame += 1
                    ts = sec + frac / div
                    pos = end
                    # In order and within the gap horizon, no fragment due to expire, room for
                    # Ethernet + IPv4 + 8 bytes: feed()'s time tests reduce to ``top = ts``.
                    if top <= ts <= horizon and ts <= frag.deadline and incl >= 42:
                        data = buf[start:end]
                        et, vihl, tot, fragw, proto, src, dst = eth_ip4(data)
                        ip_end = 14 + tot
                        if et == 0x0800 and vihl == 0x45 and not fragw & 0x3FFF and 42 <= ip_end <= incl:
                            if proto == 50:
                                top = ts
                                on_esp(frame, ts, src, dst, 0, 0, data, 34, ip_end)
                                settled += 1
                                continue
                            if proto == 17:
                                sport, dport, ulen = udp(data, 34)
                                if pc[sport] | pc[dport] == PORT_NATT:
                                    uend = 34 + ulen
                                    if 50 <= uend <= ip_end and data[42:46] != ZERO4:
                                        top = ts
                                        on_esp(frame, ts, src, dst, sport, dport, data, 42, uend)
                                        settled += 1
                                        continue
                        feed(frame, ts, 1, data, orig)
                    else:
                        feed(frame, ts, 1, buf[start:end], orig)
                fast += settled
                return pos, frame, ts

            return walk

        def time_top() -> tuple[float, int | None]:
            """The latest frame time so far, and the last frame that had it (None: the last
            frame fed, whose number feed() does not keep)."""
            return top, (None if horizon != never else top_frame)

        self.time_top = time_top
        self.record_walker = walker
        self._fast_count = lambda: fast
        self._see_time = see_time
        self._last_time = last_time
        return feed

    def _decode(self, frame: int, ts: float, linktype: int, data: bytes, orig_len: int) -> str | None:
        """The general path: outcome None (IPsec), a skip reason, or "" (held as a fragment)."""
        version, off, what = ip_offset(linktype, data)
        if version == 4:
            return self._ipv4(frame, ts, data, off, orig_len)
        if version == 6:
            return self._ipv6(frame, ts, data, off, orig_len)
        if version == 0:
            return self._short(frame, ts, data, orig_len, what, off, f"{what} header cut short")
        return what

    # -- problems --------------------------------------------------------------------------
    def _short(
        self, frame: int, ts: float, data: bytes, orig_len: int, layer: str, offset: int, reason: str
    ) -> str:
        """Needed bytes are missing: a snaplen cut when the frame was captured short."""
        if len(data) < orig_len:
            self.sink.on_truncated(frame, ts, len(data), orig_len)
            return "truncated"
        self.sink.on_malformed(frame, ts, layer, offset, reason)
        return "malformed"

    def _malformed(self, frame: int, ts: float, layer: str, offset: int, reason: str) -> str:
        self.sink.on_malformed(frame, ts, layer, offset, reason)
        return "malformed"

    # -- IPv4 ------------------------------------------------------------------------------
    def _ipv4(self, frame: int, ts: float, data: bytes, off: int, orig_len: int) -> str | None:
        n = len(data)
        if n < off + 20:
            return self._short(frame, ts, data, orig_len, "ipv4", off, "IPv4 header cut short")
        vihl, tot, fragw, proto, src, dst = IP4_HDR.unpack_from(data, off)
        if vihl == 0x45:
            p = off + 20
        else:
            if vihl >> 4 != 4:
                return self._malformed(frame, ts, "ipv4", off, f"version {vihl >> 4} in an IPv4 header")
            hl = (vihl & 15) * 4
            if hl < 20:
                return self._malformed(frame, ts, "ipv4", off, f"header length {hl} below 20")
            p = off + hl
            if p > n:
                return self._short(frame, ts, data, orig_len, "ipv4", off, "IPv4 options cut short")
        end = off + tot
        cut = False
        if end > n:
            if n < orig_len:
                end = n
                cut = True
            else:
                return self._malformed(
                    frame, ts, "ipv4", off + 2, f"total length {tot} exceeds the {n - off} bytes present"
                )
        elif end < p:
            if tot != 0:
                return self._malformed(
                    frame, ts, "ipv4", off + 2, f"total length {tot} below the header length"
                )
            end = n  # 0 = segmentation offload on the capturing host; the frame is the datagram
        if fragw & 0x3FFF:
            return self._fragment4(frame, ts, data, off, p, end, cut, fragw, proto, src, dst, orig_len)
        return self._l4(frame, ts, 4, proto, src, dst, data, p, end, cut, orig_len, (frame,), end - off, 1)

    def _fragment4(
        self,
        frame: int,
        ts: float,
        data: bytes,
        off: int,
        p: int,
        end: int,
        cut: bool,
        fragw: int,
        proto: int,
        src: bytes,
        dst: bytes,
        orig_len: int,
    ) -> str | None:
        if cut:
            # A fragment without all its bytes can never be reassembled.
            self.sink.on_truncated(frame, ts, len(data), orig_len)
            return "truncated"
        offset = (fragw & 0x1FFF) * 8
        if offset + end - p > 65535:
            return self._malformed(frame, ts, "ipv4", off + 6, "fragment ends beyond 65535 bytes")
        ident = U16.unpack_from(data, off + 4)[0]
        if ts < self.min_fragment_ts:
            self.min_fragment_ts = ts
        self._frag.add(
            frame, ts, (4, src, dst, ident, proto), 4, src, dst, ident, offset, bool(fragw & 0x2000),
            data[p:end], p - off, proto,
        )  # fmt: skip
        return ""

    # -- IPv6 ------------------------------------------------------------------------------
    def _ipv6(self, frame: int, ts: float, data: bytes, off: int, orig_len: int) -> str | None:
        n = len(data)
        if n < off + 40:
            return self._short(frame, ts, data, orig_len, "ipv6", off, "IPv6 header cut short")
        if data[off] >> 4 != 6:
            return self._malformed(frame, ts, "ipv6", off, f"version {data[off] >> 4} in an IPv6 header")
        plen, nh, src, dst = IP6_HDR.unpack_from(data, off)
        p = off + 40
        end = p + plen
        cut = False
        if plen == 0:
            end = n  # jumbogram (RFC 2675) or segmentation offload: the frame bounds it
        elif end > n:
            if n < orig_len:
                end = n
                cut = True
            else:
                return self._malformed(
                    frame, ts, "ipv6", off + 4, f"payload length {plen} exceeds the {n - p} bytes present"
                )
        nh, p = walk_ext6(data, nh, p, end)
        if nh < 0:
            return self._short(frame, ts, data, orig_len, "ipv6", p, "extension header runs past the packet")
        if nh == FRAGMENT:
            if p + 8 > end:
                return self._short(frame, ts, data, orig_len, "ipv6", p, "fragment header cut short")
            fnh = data[p]
            fo = U16.unpack_from(data, p + 2)[0]
            offset = fo & 0xFFF8
            more = bool(fo & 1)
            if offset or more:
                if cut:
                    self.sink.on_truncated(frame, ts, n, orig_len)
                    return "truncated"
                ident = U32.unpack_from(data, p + 4)[0]
                if ts < self.min_fragment_ts:
                    self.min_fragment_ts = ts
                self._frag.add(
                    frame, ts, (6, src, dst, ident), 6, src, dst, ident, offset, more, data[p + 8 : end],
                    p - off, fnh,
                )  # fmt: skip
                return ""
            # Atomic fragment (RFC 6946): the datagram is whole; carry on after the header.
            nh, p = walk_ext6(data, fnh, p + 8, end)
            if nh < 0:
                return self._short(
                    frame, ts, data, orig_len, "ipv6", p, "extension header runs past the packet"
                )
        return self._l4(frame, ts, 6, nh, src, dst, data, p, end, cut, orig_len, (frame,), end - off, 1)

    # -- fragments -------------------------------------------------------------------------
    def _classify_first(self, version: int, nh: int, payload: bytes) -> FirstFragment:
        """Is the datagram starting with this offset-0 fragment worth buffering?"""
        p = 0
        if version == 6:
            nh, p = walk_ext6(payload, nh, 0, len(payload))
        if nh == ESP or nh == AH:
            return FirstFragment(True, nh)
        if nh == UDP or nh == TCP:
            if p + 4 > len(payload):
                return FirstFragment(True, nh)  # cannot tell: keep it, a later look decides
            sport, dport = struct.unpack_from("!HH", payload, p)
            c = self._pc[sport] | self._pc[dport]
            if nh == TCP:
                c &= PORT_NATT
            return FirstFragment(bool(c), nh, sport, dport)
        return FirstFragment(False, nh)

    def _reassembled(
        self,
        frames: tuple[int, ...],
        ts: float,
        version: int,
        src: bytes,
        dst: bytes,
        nh: int,
        payload: bytes,
        ip_len: int,
        n_fragments: int,
    ) -> str | None:
        end = len(payload)
        p = 0
        if version == 6:
            nh, p = walk_ext6(payload, nh, 0, end)
            if nh < 0:
                return self._malformed(frames[-1], ts, "ipv6", 0, "extension header runs past the datagram")
        return self._l4(
            frames[-1], ts, version, nh, src, dst, payload, p, end, False, 0, frames, ip_len, n_fragments
        )

    # -- transport -------------------------------------------------------------------------
    def _l4(
        self,
        frame: int,
        ts: float,
        version: int,
        proto: int,
        src: bytes,
        dst: bytes,
        data: bytes,
        p: int,
        end: int,
        cut: bool,
        orig_len: int,
        frames: tuple[int, ...],
        ip_len: int,
        n_fragments: int,
    ) -> str | None:
        """Upper layer of a whole datagram: ``data[p:end]`` (``cut``: the capture ended early)."""
        sink = self.sink
        if proto == UDP:
            return self._udp(
                frame, ts, version, src, dst, data, p, end, cut, orig_len, frames, ip_len, n_fragments
            )
        if proto == ESP:
            if end - p < 8:
                return self._short(frame, ts, data, orig_len, "esp", p, "ESP header cut short")
            sink.on_esp(frame, ts, src, dst, 0, 0, data, p, end)
            if cut:
                sink.on_truncated(frame, ts, len(data), orig_len)
            return None
        if proto == AH:
            if end - p < 12:
                return self._short(frame, ts, data, orig_len, "ah", p, "AH header cut short")
            sink.on_ah(frame, ts, src, dst, data, p, end)
            if cut:
                sink.on_truncated(frame, ts, len(data), orig_len)
            return None
        if proto == ICMP and version == 4 or proto == ICMPV6 and version == 6:
            return self._icmp(frame, ts, version, src, dst, data, p, end, cut, orig_len)
        if proto == TCP:
            if end - p < 20:
                return self._short(frame, ts, data, orig_len, "tcp", p, "TCP header cut short")
            sport, dport = struct.unpack_from("!HH", data, p)
            if not (self._pc[sport] | self._pc[dport]) & PORT_NATT:
                return "not-ipsec"
            if cut:
                sink.on_truncated(frame, ts, len(data), orig_len)
                return "truncated"
            return self._tcp.segment(frame, ts, version, src, dst, data, p, end)
        return "not-ipsec"

    def _udp(
        self,
        frame: int,
        ts: float,
        version: int,
        src: bytes,
        dst: bytes,
        data: bytes,
        p: int,
        end: int,
        cut: bool,
        orig_len: int,
        frames: tuple[int, ...],
        ip_len: int,
        n_fragments: int,
    ) -> str | None:
        if end - p < 8:
            return self._short(frame, ts, data, orig_len, "udp", p, "UDP header cut short")
        sport, dport, ulen = UDP_HDR.unpack_from(data, p)
        c = self._pc[sport] | self._pc[dport]
        if not c:
            return "not-ipsec"
        if ulen < 8:
            if not (ulen == 0 and version == 6):  # 0 is only legal in IPv6 jumbograms
                return self._malformed(frame, ts, "udp", p + 4, f"length {ulen} below 8")
            ulen = end - p
        uend = p + ulen
        if uend > end:
            if not cut:
                return self._malformed(frame, ts, "udp", p + 4, f"length {ulen} exceeds the IP payload")
            uend = end
        else:
            cut = False  # whatever the snaplen cut lies beyond the UDP datagram
        q = p + 8
        avail = uend - q
        sink = self.sink
        marker = False
        if not c & PORT_IKE:
            # NAT-T port: keepalive, non-ESP marker + IKE, or ESP (RFC 3948 §2).
            if avail == 1 and not cut:
                if data[q] == 0xFF:
                    sink.on_keepalive(frame, ts, ntoa(src), ntoa(dst), sport, dport)
                    return None
                return self._malformed(frame, ts, "udp-encap", q, "one-byte payload other than 0xFF")
            if avail < 4 or (avail < 8 and data[q : q + 4] != ZERO4):
                if cut:
                    return self._short(frame, ts, data, orig_len, "udp-encap", q, "")
                return self._malformed(
                    frame, ts, "udp-encap", q, f"{avail}-byte payload is neither IKE nor ESP"
                )
            if data[q : q + 4] != ZERO4:
                sink.on_esp(frame, ts, src, dst, sport, dport, data, q, uend)
                if cut:
                    sink.on_truncated(frame, ts, len(data), orig_len)
                return None
            marker = True
            q += 4
            avail -= 4
        elif c & PORT_NATT and avail >= 4 and data[q : q + 4] == ZERO4:
            # Port 500 on one side, 4500 on the other (a NAT remapped one): an IKE SPI is
            # never zero (RFC 7296 §3.1), so four zero bytes are the non-ESP marker.
            marker = True
            q += 4
            avail -= 4
        if cut:
            sink.on_truncated(frame, ts, len(data), orig_len)
            return "truncated"
        if avail < IKE_HEADER_LEN:
            return self._malformed(frame, ts, "ike", q, f"{avail} bytes, shorter than the 28-byte IKE header")
        sink.on_ike(
            IkeDatagram(
                frame=frame,
                frames=frames,
                ts=ts,
                src=ntoa(src),
                dst=ntoa(dst),
                sport=sport,
                dport=dport,
                data=data[q:uend],
                non_esp_marker=marker,
                ip_len=ip_len,
                ip_fragments=n_fragments,
                ip_version=version,
            )
        )
        return None

    # -- ICMP errors -----------------------------------------------------------------------
    def _icmp(
        self,
        frame: int,
        ts: float,
        version: int,
        src: bytes,
        dst: bytes,
        data: bytes,
        p: int,
        end: int,
        cut: bool,
        orig_len: int,
    ) -> str | None:
        if end - p < 8:
            return self._short(frame, ts, data, orig_len, "icmp", p, "ICMP header cut short")
        itype = data[p]
        code = data[p + 1]
        kind = icmp_error_kind(version, itype, code)
        if kind is None:
            return "not-ipsec"
        mtu: int | None = None
        if kind == "frag-needed":
            mtu = U16.unpack_from(data, p + 6)[0]  # next-hop MTU, RFC 1191
        elif kind == "packet-too-big":
            mtu = U32.unpack_from(data, p + 4)[0]  # RFC 4443 §3.2
        quote = parse_quote(data, p + 8, end, self._pc)
        if quote is None:
            if cut:
                return self._short(frame, ts, data, orig_len, "icmp", p + 8, "")
            return self._malformed(frame, ts, "icmp", p + 8, "quoted IP header missing or cut short")
        qproto, qsrc, qdst, qlen, sport, dport, spi, ike_spi = quote
        if qproto < 0:
            return "not-ipsec"
        self.sink.on_icmp_error(
            IcmpError(
                frame=frame,
                ts=ts,
                src=ntoa(src),
                dst=ntoa(dst),
                icmp_type=itype,
                icmp_code=code,
                kind=kind,
                mtu=mtu,
                quoted_proto=qproto,
                quoted_src=ntoa(qsrc),
                quoted_dst=ntoa(qdst),
                quoted_sport=sport,
                quoted_dport=dport,
                quoted_spi=spi,
                quoted_ike_spi_i=ike_spi,
                quoted_len=qlen,
            )
        )
        return None
