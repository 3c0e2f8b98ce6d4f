"""``ipsecdiag probe mtu GATEWAY``: the largest packets that survive the path to a gateway.

(a) IKE, no credentials needed: a binary search over the size of IKE_SA_INIT requests, once
with DF set and once without, gives the largest IKE message that arrives unfragmented (the path
MTU) and the largest that arrives IP-fragmented (all sizes, or as small as the unfragmented one
when a device drops fragments). That says whether a certificate-sized IKE_AUTH survives and
whether IKEv2 fragmentation (RFC 7383) is needed, and with what fragment size.

The requests are padded with a VENDOR_ID payload: RFC 7296 §3.12 says a Vendor ID the receiver
does not recognise is ignored, its content is opaque by definition, and it changes nothing in
the negotiation. A private-use Notify (types 40960-65535) would also be ignored by the RFC, but
vendors do give meaning to that range (strongSwan's own notifies live there), so it could be
taken for something. Each request offers an encryption transform from the private-use range
(RFC 7296 §3.3.2) that no gateway has configured: the gateway answers NO_PROPOSAL_CHOSEN and
keeps no state, so the search leaves no half-open IKE SAs behind and never hits a gateway's
per-peer half-open limit (strongSwan's ``block_threshold`` of 5). Any answer with our SPI means
the request arrived. A gateway that does not answer an unacceptable offer is probed with the
``--ike`` proposals instead (each answered request then leaves a half-open SA to expire).

DF on a UDP socket (Linux): ``IP_MTU_DISCOVER`` = ``IP_PMTUDISC_PROBE`` sets DF but ignores the
kernel's cached path MTU, so a stale value learned earlier cannot fake a result (``IP_PMTUDISC_DO``
where PROBE is missing). Three different limits look alike (EMSGSIZE) and are told apart by the
socket error queue (``IP_RECVERR``, ip(7)): our own interface/route MTU (the kernel refuses the
send, origin SO_EE_ORIGIN_LOCAL: nothing left the host), a router's ICMP "fragmentation needed"
(origin SO_EE_ORIGIN_ICMP, with the router's address and the MTU it reported: a hint the search
checks, never a result by itself), and silence (a DF probe lost without any ICMP: a black hole).
A router is only ever named when its ICMP message was read.

(b) With credentials and ``--ping HOST``: a CHILD SA comes up (``probe connect``'s machinery,
forced UDP encapsulation) and ICMP echo requests with inner DF set, in ESP-in-UDP with outer DF
set, find the largest inner packet that gets an answer: the tunnel MTU, and the TCP MSS clamp
(inner MTU - 40 for IPv4, - 60 for IPv6).

Every send is paced (``--rate``), the whole run bounded (``--max-time``), every datagram
recorded for ``--write``, and the count of packets sent printed.
"""

from __future__ import annotations

import errno
import selectors
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ipsecdiag.crypto.rng import RandomSource
from ipsecdiag.engine import IkeConfig, IkeSa, Role
from ipsecdiag.engine.config import Endpoint, Identity, PskAuth
from ipsecdiag.keys.model import SecretBytes
from ipsecdiag.probe import icmperr
from ipsecdiag.probe.narrate import Narrator, Step, finding
from ipsecdiag.probe.record import Datagram, SessionRecord
from ipsecdiag.probe.transport import MAX_DATAGRAM, Driver, Pacer, ProbeError
from ipsecdiag.reconstruction.model import Finding
from ipsecdiag.wire.ikev2_sa import Proposal, Transform
from ipsecdiag.wire.registry import TransformType

PAD_VENDOR_ID = b"ipsecdiag path MTU probe "  # followed by the padding octets
_PRIVATE_ENCR = 1024 + 0x1D1A  # RFC 7296 §3.3.2: 1024-65535 private use; nobody configures it
IP_MTU_DISCOVER = getattr(socket, "IP_MTU_DISCOVER", 10)
IP_MTU = getattr(socket, "IP_MTU", 14)
IPV6_MTU_DISCOVER = getattr(socket, "IPV6_MTU_DISCOVER", 23)
IPV6_MTU = getattr(socket, "IPV6_MTU", 24)
PMTUDISC_DONT, PMTUDISC_DO, PMTUDISC_PROBE = 0, 2, 3  # the same values for IPv4 and IPv6
# What "certificate-sized" means here: a 2048-bit RSA certificate is about 1 KB of DER; with the
# 256-byte signature, IDs, CERTREQ, SA and TS payloads an IKE_AUTH is past 1.5 KB, with an
# intermediate CA or a 4096-bit key well past 2 KB.
CERT_IKE_AUTH = 2000


def ip_header_len(addr: str) -> int:
    return 48 if ":" in addr else 28  # IP + UDP


def set_df(sock: socket.socket, df: bool) -> str:
    """DF on (PROBE, else DO) or off for ``sock``; returns the mode set (for the report)."""
    v6 = sock.family == socket.AF_INET6
    level, opt = (socket.IPPROTO_IPV6, IPV6_MTU_DISCOVER) if v6 else (socket.IPPROTO_IP, IP_MTU_DISCOVER)
    modes = [(PMTUDISC_PROBE, "PMTUDISC_PROBE"), (PMTUDISC_DO, "PMTUDISC_DO")] if df else [(PMTUDISC_DONT, "PMTUDISC_DONT")]
    for value, name in modes:
        try:
            sock.setsockopt(level, opt, value)
            return name
        except OSError:
            continue
    raise ProbeError("cannot control the DF bit on this system (IP_MTU_DISCOVER): probe mtu needs Linux")


def kernel_mtu(sock: socket.socket) -> int | None:
    """The kernel's path MTU towards the connected peer (interface, or learned from ICMP)."""
    v6 = sock.family == socket.AF_INET6
    try:
        return int(sock.getsockopt(socket.IPPROTO_IPV6 if v6 else socket.IPPROTO_IP, IPV6_MTU if v6 else IP_MTU))
    except OSError:
        return None


@dataclass(frozen=True)
class MtuOptions:
    gateway: str  # an IP address literal
    remote_port: int = 500
    local_addr: str = ""
    local_port: int = 0
    ike_proposals: tuple[Proposal, ...] = ()  # fallback offer when the unacceptable one is ignored
    wait: float = 1.0  # per request, for an answer
    tries: int = 2  # requests per size before "does not get through"
    rate: float = 5.0
    max_time: float = 90.0
    max_size: int = 8192  # largest IKE message tried IP-fragmented


@dataclass(frozen=True)
class Probe:
    size: int  # IKE message (UDP payload) octets
    df: bool
    outcome: str  # answered | no answer | too big (local) | too big (ICMP) | refused
    rtt: float | None = None
    icmp_mtu: int | None = None  # the MTU a router's ICMP reported (never our own interface's)
    sends: int = 0
    local_mtu: int | None = None  # too big (local): the kernel's MTU towards the gateway
    router: str | None = None  # too big (ICMP): who sent the ICMP message


@dataclass
class IkeMtuResult:
    gateway: str
    header: int  # IP + UDP octets around an IKE message
    probes: list[Probe] = field(default_factory=list)
    df_max: int | None = None  # largest IKE message answered with DF set
    df_min_failed: int | None = None
    frag_max: int | None = None  # largest answered without DF (IP-fragmented above df_max)
    frag_min_failed: int | None = None
    icmp_mtu: int | None = None  # reported by a router's ICMP fragmentation needed, only
    icmp_from: str | None = None  # that router's address
    local_mtu: int | None = None  # the kernel refused larger DF sends: our interface/route MTU
    stateless: bool = True  # the gateway answered the unacceptable offer (no half-open SAs)
    stopped: str = ""
    packets_sent: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def path_mtu(self) -> int | None:
        return None if self.df_max is None else self.df_max + self.header

    @property
    def df_limit(self) -> str | None:
        """What stopped the unfragmented search: "local" (our interface MTU: nothing larger
        left the host), "icmp" (a router said so), "silence" (lost without ICMP), None (no limit
        found below our route's MTU, or nothing answered)."""
        if self.df_max is None or self.df_min_failed is None:
            return None
        first = next((p for p in self.probes if p.df and p.size == self.df_min_failed), None)
        if first is not None and first.outcome == "too big (local)":
            return "local"
        if first is not None and first.outcome == "too big (ICMP)":
            return "icmp"
        return "silence"

    @property
    def fragments_pass(self) -> bool | None:
        if self.frag_max is None or self.df_max is None:
            return None
        if self.frag_min_failed is None and self.frag_max == self.df_max:
            return None  # nothing above the unfragmented size was tried
        return self.frag_max > self.df_max


def bisect(lo: int, top: int, attempt: Callable[[int], tuple[bool, int | None]], time_left: Callable[[], bool]) -> tuple[int, int | None]:
    """Largest size in [lo, top] that passes (``lo`` known to) and the smallest that failed.

    ``attempt(size)`` returns (passed, hint): a hint is a size an ICMP message said is the
    largest that fits; it is tried next (and then the size above it) instead of the midpoint,
    so a path that reports its MTU is settled in two probes and one that does not in log2.
    """
    if top <= lo:
        return lo, None
    ok, hint = attempt(top)
    if ok:
        return top, None
    hi = top
    hint = hint if hint is not None and lo < hint < hi else None
    while hi - lo > 1 and time_left():
        mid = hint if hint is not None else (lo + hi) // 2
        ok, new_hint = attempt(mid)
        if ok:
            lo = mid
            hint = mid + 1 if hint is not None and mid + 1 < hi else None
        else:
            hi = mid
            hint = new_hint if new_hint is not None and lo < new_hint < hi else None
    return lo, hi


class IkeSizeSearch:
    """The sequential search of (a): one connected UDP socket, one request in flight."""

    def __init__(self, opts: MtuOptions, *, rng: RandomSource, emit: Callable[[Step], None], record: SessionRecord, clock: Callable[[], float] = time.monotonic) -> None:
        self.opts, self.rng, self.emit, self.record, self.clock = opts, rng, emit, record, clock
        self.t0 = clock()
        self.deadline = self.t0 + opts.max_time
        self.pacer = Pacer(rate=opts.rate, burst=1, now=self.t0)
        self.result = IkeMtuResult(opts.gateway, ip_header_len(opts.gateway))
        self._wall = time.time() - self.t0
        self._base: dict[bool, int] = {}
        self.sock: socket.socket | None = None

    def step(self, kind: str, text: str, **data: object) -> None:
        self.emit(Step(round(self.clock() - self.t0, 3), kind, text, len(self.record.datagrams) or None, data))

    # -- one request
    def base_size(self, stateless: bool) -> int:
        """The size of the request without padding (the smallest the search can send)."""
        if stateless not in self._base:
            self._base[stateless] = len(self._build(0, stateless)[0])
        return self._base[stateless]

    def _build(self, pad: int, stateless: bool) -> tuple[bytes, bytes]:
        """A fresh IKE_SA_INIT (new SPI, nonce and KE value) padded by ``pad`` octets, and its SPIi."""
        proposals = self.opts.ike_proposals
        if stateless or not proposals:
            offer = (Transform(TransformType.ENCR, _PRIVATE_ENCR), Transform(TransformType.PRF, 5), Transform(TransformType.KE, 19))
            proposals = (Proposal(1, 1, b"", offer),)
        assert self.sock is not None
        host, port = self.sock.getsockname()[:2]
        cfg = IkeConfig(
            ike_proposals=proposals, child=None, local_id=Identity.parse(str(host)), auth=PskAuth(SecretBytes(b"unused")),
            vendor_ids=(PAD_VENDOR_ID + bytes(pad),), fragmentation=False,
        )  # fmt: skip
        now = self.clock()
        local, remote = Endpoint(str(host), int(port)), Endpoint(self.opts.gateway, self.opts.remote_port)
        sa = IkeSa(cfg, role=Role.INITIATOR, rng=self.rng, now=now, local=local, remote=remote)
        sa.initiate(now)
        return sa.datagrams_to_send(now)[0].payload, sa.spi_i

    def _message(self, size: int, stateless: bool) -> tuple[bytes, bytes]:
        pad = size - self.base_size(stateless)
        if pad < 0:
            raise ValueError(f"an IKE_SA_INIT cannot be smaller than {size - pad} octets")
        msg, spi = self._build(pad, stateless)
        assert len(msg) == size, (len(msg), size)
        return msg, spi

    def probe(self, size: int, df: bool, stateless: bool) -> Probe:
        assert self.sock is not None
        set_df(self.sock, df)
        msg, spi = self._message(size, stateless)
        sends = 0
        for _ in range(self.opts.tries):
            if self.clock() >= self.deadline:
                break
            self._pace()
            sent_at = self.clock()
            if not self._send(msg):
                return Probe(size, df, "too big (local)", sends=sends, local_mtu=kernel_mtu(self.sock))
            sends += 1
            self.result.packets_sent += 1
            self._record(msg, True, sent_at)
            outcome = self._await(spi, sent_at)
            if outcome is not None:
                rtt, what = outcome
                if what == "answered":
                    return Probe(size, df, what, rtt=rtt, sends=sends)
                if what == "too big (ICMP)":
                    icmp = self._too_big_icmp()
                    return Probe(size, df, what, icmp_mtu=icmp.mtu if icmp else None, sends=sends, router=icmp.offender if icmp else None)
                return Probe(size, df, what, sends=sends)
        return Probe(size, df, "no answer", sends=sends)

    def _send(self, msg: bytes) -> bool:
        """Send ``msg``; False when the kernel refused it as larger than our own MTU.

        EMSGSIZE on a send is either our interface/route MTU (nothing left the host) or a late
        router ICMP about an earlier probe that the kernel reports on this call: the error queue
        tells which. A late ICMP is kept as the router's report and the send is tried again.
        """
        assert self.sock is not None
        for _ in range(2):
            try:
                self.sock.send(msg)
                return True
            except OSError as e:
                if e.errno != errno.EMSGSIZE:
                    raise ProbeError(f"send to {self.opts.gateway}: {e.strerror or e}") from None
                icmp = self._too_big_icmp()
                if icmp is None:
                    return False
                self.result.icmp_mtu, self.result.icmp_from = icmp.mtu, icmp.offender
        return False

    def _too_big_icmp(self) -> icmperr.IcmpError | None:
        """The last ICMP "fragmentation needed" / "packet too big" in the error queue, if any."""
        assert self.sock is not None
        return next((e for e in reversed(icmperr.drain(self.sock)) if e.mtu is not None), None)

    def _pace(self) -> None:
        while (w := self.pacer.wait(self.clock())) > 0:
            time.sleep(w)
        self.pacer.take(self.clock())

    def _await(self, spi: bytes, sent_at: float) -> tuple[float, str] | None:
        assert self.sock is not None
        end = min(sent_at + self.opts.wait, self.deadline)
        sel = selectors.DefaultSelector()
        sel.register(self.sock, selectors.EVENT_READ)
        try:
            while (left := end - self.clock()) > 0:
                if not sel.select(left):
                    continue
                try:
                    data = self.sock.recv(MAX_DATAGRAM)
                except OSError as e:
                    if e.errno == errno.EMSGSIZE:
                        return 0.0, "too big (ICMP)"  # the error queue holds the details
                    icmperr.drain(self.sock)  # else the queued error keeps the socket readable
                    if e.errno == errno.ECONNREFUSED:
                        return 0.0, "refused"
                    continue
                now = self.clock()
                self._record(data, False, now)
                if data[:8] == spi and len(data) >= 28:
                    return now - sent_at, "answered"
            return None
        finally:
            sel.close()

    def _record(self, payload: bytes, outgoing: bool, at: float) -> None:
        assert self.sock is not None
        me = self.sock.getsockname()[:2]
        peer = (self.opts.gateway, self.opts.remote_port)
        src, dst = (me, peer) if outgoing else (peer, me)
        self.record.add(Datagram(at + self._wall, (str(src[0]), int(src[1])), (str(dst[0]), int(dst[1])), payload, outgoing))

    # -- the search
    def _run(self, size: int, df: bool, stateless: bool) -> Probe:
        p = self.probe(size, df, stateless)
        self.result.probes.append(p)
        if p.icmp_mtu and p.outcome == "too big (ICMP)":
            self.result.icmp_mtu, self.result.icmp_from = p.icmp_mtu, p.router
        if p.outcome == "too big (local)" and p.local_mtu:
            self.result.local_mtu = p.local_mtu
        wire = size + self.result.header
        how = f"answered in {p.rtt * 1000:.1f} ms" if p.rtt is not None else p.outcome
        if p.outcome == "too big (ICMP)":
            how += f": {p.router or 'a router'} reported MTU {p.icmp_mtu or '(none given)'}"
        elif p.outcome == "too big (local)":
            how += f": not sent, our interface MTU towards {self.opts.gateway} is {p.local_mtu or 'smaller'}"
        elif p.outcome == "no answer":
            how += f" after {p.sends} request(s)"
        self.step("mtu-probe", f"IKE_SA_INIT {size} bytes ({wire} on the wire), {'DF' if df else 'no DF'}: {how}", size=size, df=df, outcome=p.outcome)
        return p

    def _bisect(self, lo: int, top: int, *, df: bool, stateless: bool) -> tuple[int, int | None]:
        def attempt(size: int) -> tuple[bool, int | None]:
            p = self._run(size, df, stateless)
            return p.outcome == "answered", None if p.icmp_mtu is None else p.icmp_mtu - self.result.header

        lo, hi = bisect(lo, top, attempt, lambda: self.clock() < self.deadline)
        if hi is not None and hi - lo > 1:
            self.result.stopped = "deadline"
        return lo, hi

    def run(self) -> IkeMtuResult:
        """The whole of (a); ProbeError for an unusable address or port."""
        r, o = self.result, self.opts
        fam = socket.AF_INET6 if ":" in o.gateway else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_DGRAM)
        try:
            try:
                self.sock.bind((o.local_addr, o.local_port))
                self.sock.connect((o.gateway, o.remote_port))
            except OSError as e:
                raise ProbeError(f"UDP socket to {o.gateway}:{o.remote_port}: {e.strerror or e}") from None
            self.sock.setblocking(False)
            icmperr.enable(self.sock)  # tells our own MTU from a router's ICMP (module docstring)
            mode = set_df(self.sock, True)
            local_mtu = kernel_mtu(self.sock) or 1500
            self.step("mtu-start", f"IKE_SA_INIT size search to {o.gateway}:{o.remote_port} from {self.sock.getsockname()[0]}:{self.sock.getsockname()[1]} (DF by {mode}; route MTU {local_mtu})")
            stateless = True
            p = self._run(self.base_size(True), True, True)
            if p.outcome != "answered" and p.outcome != "refused" and o.ike_proposals:
                self.step("mtu-probe", "no answer to an unacceptable offer; probing with the --ike proposals (half-open SAs will expire on the gateway)")
                stateless = False
                p = self._run(self.base_size(False), True, False)
            r.stateless = stateless
            if p.outcome != "answered":
                r.stopped = p.outcome
                return r
            base = self.base_size(stateless)
            top_df = min(max(local_mtu, 1500) - r.header, 65000)  # loopback's 65536 is no path
            r.df_max, r.df_min_failed = self._bisect(base, top_df, df=True, stateless=stateless)
            r.frag_max, r.frag_min_failed = self._bisect(r.df_max, max(o.max_size, r.df_max), df=False, stateless=stateless)
            return r
        finally:
            self.sock.close()


def _unanswered_span(r: IkeMtuResult) -> str:
    """The sizes of the unanswered non-DF requests, smallest to largest: the bisection starts at
    the top, so the smallest failure is the last one tried, not the limit."""
    sizes = [p.size for p in r.probes if not p.df and p.outcome != "answered"]
    lo, hi = min(sizes, default=r.frag_min_failed or 0), max(sizes, default=r.frag_min_failed or 0)
    return f"{lo}" if lo == hi else f"{lo} to {hi}"


def judge_ike(r: IkeMtuResult, opts: MtuOptions) -> list[str]:
    """The conclusions of (a) as lines, adding findings to ``r``."""
    lines: list[str] = []
    if r.df_max is None:
        if r.stopped == "refused":
            lines.append(f"{r.gateway}:{opts.remote_port} refused the request (ICMP port unreachable): no IKE service there")
        else:
            lines.append(f"{r.gateway} answered no IKE_SA_INIT request")
        r.findings.append(finding("ike-unanswered", evidence=[f"IKE_SA_INIT of {r.probes[0].size if r.probes else 0} bytes sent {sum(p.sends for p in r.probes)}x to {r.gateway}:{opts.remote_port}: {r.stopped or 'no answer'}"]))
        return lines
    h = r.header
    exact = r.df_min_failed is not None and r.df_min_failed == r.df_max + 1
    limit = r.df_limit
    if r.df_min_failed is None:
        lines.append(f"unfragmented (DF): IKE messages up to {r.df_max} bytes ({r.df_max + h} on the wire) pass: the path MTU is at least our route's MTU ({r.df_max + h})")
    elif limit == "local":
        mtu = r.local_mtu or r.df_max + h
        lines.append(f"unfragmented (DF): largest IKE message {r.df_max} bytes ({r.df_max + h} on the wire): our own interface MTU is {mtu}")
        lines.append(f"the kernel refused larger DF datagrams (EMSGSIZE): they never left this host, so the path beyond our {mtu}-byte interface was not tested")
    else:
        rng_ = "" if exact else f" (somewhere below {r.df_min_failed + h}; the search ran out of time)"
        lines.append(f"unfragmented (DF): largest IKE message {r.df_max} bytes: path MTU {r.df_max + h}{rng_}")
    if r.icmp_mtu is not None:
        agree = "agrees" if r.icmp_mtu == r.df_max + h else "does not agree: trust the measured value"
        lines.append(f"router {r.icmp_from or '(address unknown)'} reported MTU {r.icmp_mtu} (ICMP fragmentation needed); that {agree}")
    elif limit == "icmp":
        lines.append("a router answered the larger DF probes with ICMP fragmentation needed (no MTU given)")
    elif limit == "silence":
        lines.append("no ICMP 'fragmentation needed' came back for the lost DF probes: a PMTU black hole for DF traffic")
    if r.frag_max is None:
        return lines
    cert = f"a certificate-sized IKE_AUTH (about {CERT_IKE_AUTH}+ bytes)"
    if r.frag_min_failed is None:
        lines.append(f"IP-fragmented: IKE messages up to {r.frag_max} bytes (all sizes tried) get through: {cert} survives")
        if r.df_min_failed is not None:
            lines.append("IKEv2 fragmentation (RFC 7383) is not required on this path, but recommended: fragments are fragile")
    elif r.frag_max <= r.df_max:
        lines.append(f"IP-fragmented: nothing larger than {r.df_max} bytes gets through: IP fragments are dropped on the path")
        lines.append(f"{cert} will be lost unless IKEv2 fragmentation (RFC 7383) is on with fragments of at most {r.df_max + h} bytes (strongSwan charon.fragment_size = {r.df_max + h})")
        r.findings.append(
            finding(
                "ike-fragment-loss",
                evidence=[
                    f"IKE_SA_INIT requests up to {r.df_max} bytes were answered with DF set ({r.df_max + h}-byte IP packets)",
                    f"larger requests sent without DF (IP-fragmented) were never answered (tried {_unanswered_span(r)} bytes)",
                ],
                data={"path_mtu": r.df_max + h, "largest_fragmented": r.frag_max},
            )
        )
    else:
        lines.append(f"IP-fragmented: IKE messages up to {r.frag_max} bytes get through, {r.frag_min_failed} bytes do not (a reassembly or message size limit)")
    return lines


# ---------------------------------------------------------------- (b) through the tunnel


@dataclass
class TunnelMtuResult:
    host: str
    header: int  # outer IP + UDP octets around the ESP packet
    source: str = ""
    inner_max: int | None = None  # largest inner IP packet (DF) answered
    inner_min_failed: int | None = None
    outer_at_max: int | None = None  # its ESP-in-UDP packet on the wire
    inner_icmp_mtu: int | None = None  # "fragmentation needed" from inside the tunnel
    probes: list[tuple[int, str]] = field(default_factory=list)
    problem: str = ""

    @property
    def mss(self) -> int | None:
        if self.inner_max is None:
            return None
        return self.inner_max - (60 if ":" in self.host else 40)


def route_mtu(gateway: str, port: int) -> int:
    """The route's MTU towards ``gateway`` (connecting a UDP socket sends nothing)."""
    with socket.socket(socket.AF_INET6 if ":" in gateway else socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect((gateway, port))
        except OSError:
            return 1500
        return kernel_mtu(s) or 1500


def tunnel_search(sa: object, driver: Driver, narrator: Narrator, host: str, opts: MtuOptions, rng: RandomSource, source: str | None = None) -> TunnelMtuResult:
    """(b): the largest inner packet with DF through the CHILD SA ``narrator`` saw come up."""
    from ipsecdiag.probe.ping import DEFAULT_SIZE, attach, detach

    r = TunnelMtuResult(host, ip_header_len(opts.gateway))
    try:
        echo = attach(sa, driver, narrator, rng=rng, source=source, host=host)
    except ValueError as e:
        r.problem = str(e)
        return r
    r.source = echo.src
    sock = driver.sockets.sock_for(echo.local.port)
    mode = set_df(sock, True) if sock is not None else "unknown"
    deadline = driver.clock() + opts.max_time
    seq = 0

    def attempt(size: int) -> tuple[bool, int | None]:
        nonlocal seq
        outcome, hint = "no answer", None
        for _ in range(opts.tries):
            if driver.clock() >= deadline:
                break
            seq += 1
            mine, errors_before = seq, driver.counters.send_errors
            now = driver.clock()
            echo.send(mine, size, now)
            driver.run(lambda m=mine: m in echo.replies or any(e.seq == m for e in echo.errors), deadline=min(deadline, now + opts.wait))
            if mine in echo.replies:
                rtt = echo.replies[mine][0]
                outcome = f"answered in {rtt * 1000:.1f} ms"
                break
            err = next((e for e in echo.errors if e.seq == mine), None)
            if err is not None:
                outcome, hint = err.describe, err.mtu
                r.inner_icmp_mtu = err.mtu or r.inner_icmp_mtu
                break
            if driver.counters.send_errors > errors_before:
                outcome = f"not sent: {driver.counters.last_send_error}"
                break
        r.probes.append((size, outcome))
        outer = echo.tunnel.esp_size(size) + r.header
        narrator.step("mtu-probe", f"inner {size} bytes, DF ({outer} on the wire as ESP-in-UDP, DF): {outcome}", size=size)
        return outcome.startswith("answered"), hint

    narrator.step("mtu-start", f"tunnel MTU search: ICMP echo {echo.src} -> {host}, inner and outer DF (outer by {mode})")
    try:
        if not attempt(DEFAULT_SIZE)[0]:
            r.problem = f"no echo reply from {host} through the tunnel even for {DEFAULT_SIZE}-byte packets"
            return r
        top = echo.tunnel.largest_payload(max(route_mtu(opts.gateway, opts.remote_port), 1500) - r.header)
        r.inner_max, r.inner_min_failed = bisect(DEFAULT_SIZE, top, attempt, lambda: driver.clock() < deadline)
        r.outer_at_max = echo.tunnel.esp_size(r.inner_max) + r.header
        return r
    finally:
        detach(driver, echo, narrator)


def judge_tunnel(t: TunnelMtuResult) -> list[str]:
    if t.inner_max is None:
        return [f"tunnel MTU: not measured: {t.problem}"]
    if t.inner_min_failed is None:
        first = f"tunnel MTU: at least {t.inner_max} (inner packets up to our route's limit pass; {t.outer_at_max} bytes on the wire)"
    elif t.inner_min_failed == t.inner_max + 1:
        first = f"tunnel MTU: {t.inner_max} (the largest inner packet with DF that got an answer; {t.outer_at_max} bytes on the wire as ESP-in-UDP)"
    else:
        first = f"tunnel MTU: between {t.inner_max} and {t.inner_min_failed - 1} (the search ran out of time)"
    lines = [first, f"set the tunnel interface MTU to {t.inner_max} and clamp the TCP MSS to {t.mss} (MTU - {t.inner_max - (t.mss or 0)})"]
    if t.inner_icmp_mtu:
        lines.append(f"a router inside the tunnel reported MTU {t.inner_icmp_mtu}")
    return lines


__all__ = ["CERT_IKE_AUTH", "IkeMtuResult", "IkeSizeSearch", "MtuOptions", "PAD_VENDOR_ID", "Probe", "TunnelMtuResult", "bisect", "judge_ike", "judge_tunnel", "kernel_mtu", "route_mtu", "set_df", "tunnel_search"]
