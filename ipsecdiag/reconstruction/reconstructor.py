"""One streaming pass over a capture: reader -> decoder -> this sink -> Report.

The :class:`Reconstructor` implements the capture layer's ``Sink``: ESP goes to the
:class:`EspTracker` hot path, IKE to the :class:`IkeReconstructor`, the rest is kept as
evidence for the checks. :mod:`ipsecdiag.pipeline` drives it and runs the checks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace

from ..capture.model import FragmentGroup, IcmpError, IkeDatagram
from ..esp.ah import AhStatus, AhVerifier
from ..keys.model import KeyStore
from ..keys.rekey import RekeyExchange
from .certificates import read_all_certificates
from .esp_tracker import EspHook, EspTracker
from .ike_sas import DecryptHook, IkeReconstructor, V1DecryptHook, settle_states
from .inner import SYN_CODE, inner_name
from .model import AhFlow, EspFlow, IkeSaRecord, Keepalive, Report, SourceInfo, addr_text
from .options import DEFAULT_OPTIONS, AnalysisOptions
from .sa_state import infer_from_esp

MAX_KEEPALIVES = 100_000
MAX_EVIDENCE = 10_000


@dataclass(frozen=True)
class Decryptors:
    """What the decryption stage hands the reconstructor: the SK (IKEv2), IKEv1 and ESP
    decryptors, each returning results the reconstruction applies itself, and the calls that
    end the pass (``finish``: drain worker results before the report; ``close``: release the
    workers, always)."""

    ike: DecryptHook | None = None
    ikev1: V1DecryptHook | None = None
    on_ike_rekey: Callable[[RekeyExchange], None] | None = None
    esp: EspHook | None = None
    finish: tuple[Callable[[], None], ...] = ()
    close: tuple[Callable[[], None], ...] = ()


# Builds the decryptors of one pass from the key material, the ESP tracker (nested ESP goes back
# through it) and the size of the input (whether worker processes pay off). decryption/ has one.
DecryptorFactory = Callable[[KeyStore, EspTracker, int], Decryptors]


class Reconstructor:
    """The Sink: collects everything the decoder finds into a Report.

    ``decryption``, when given with keys, builds the decryptors here, in the constructor: the
    reconstructor wires them into its IKE and ESP stages itself (nothing outside assigns to its
    internals). ``capture_bytes`` is the input's size (0: unknown or a live source)."""

    def __init__(
        self,
        report: Report,
        keys: KeyStore | None = None,
        options: AnalysisOptions = DEFAULT_OPTIONS,
        *,
        decryption: DecryptorFactory | None = None,
        capture_bytes: int = 0,
    ) -> None:
        self.report = report
        self.keys = keys or KeyStore()
        self.options = options
        self.esp = EspTracker(
            replay_window=options.replay_window,
            dup_seconds=options.dup_seconds,
            idle_gap=options.natt_idle_timeout,
            timeline=options.esp_timeline,
        )
        self.ike = IkeReconstructor()
        self.ah: dict[tuple[int, bytes, bytes], AhFlow] = {}
        # One AH verifier per keyed SA, owned by this pass (keyed MAC and ESN state).
        self._ah_verifiers: dict[tuple[int, bytes, bytes], AhVerifier | None] = {}
        self.on_esp = self.esp.on_esp  # bound method: the hot path skips one call level
        self.keepalives_dropped = 0
        self.capture_bytes = capture_bytes  # size of the input, for decisions such as decryption workers
        self.finishers: list[Callable[[], None]] = []  # run at the end, before the report is built
        self.closers: list[Callable[[], None]] = []  # release resources (worker processes), always
        if decryption is not None and self.keys:
            d = decryption(self.keys, self.esp, capture_bytes)
            self.ike.decrypt_hook = d.ike
            self.ike.v1_decrypt_hook = d.ikev1
            self.ike.on_ike_rekey = d.on_ike_rekey
            self.esp.hook = d.esp
            self.finishers += d.finish
            self.closers += d.close

    # -- Sink -------------------------------------------------------------------------------
    def on_ike(self, msg: IkeDatagram) -> None:
        self.ike.on_ike(msg)

    def on_ah(self, frame: int, ts: float, src: bytes, dst: bytes, data: bytes, off: int, end: int) -> None:
        if end - off < 12:
            self.report.malformed.append((frame, "ah", off, f"AH header needs 12 bytes, {end - off} present"))
            return
        nh = data[off]
        spi = int.from_bytes(data[off + 4 : off + 8], "big")
        seq = int.from_bytes(data[off + 8 : off + 12], "big")
        key = (spi, src, dst)
        f = self.ah.get(key)
        if f is None:
            f = AhFlow(spi=spi, src=addr_text(src), dst=addr_text(dst), seq_first=seq, first_frame=frame)
            self.ah[key] = f
        f.packets += 1
        f.seq_last = seq
        f.last_frame = frame
        f.next_headers[nh] += 1
        if self.keys:
            self._verify_ah(key, f, data, off, end)
        if nh == 50:
            # AH protecting ESP: account the ESP part too (RFC 4302 §3.1).
            ah_len = (data[off + 1] + 2) * 4
            if off + ah_len + 8 <= end:
                self.esp.on_esp(frame, ts, src, dst, 0, 0, data, off + ah_len, end)

    def _verify_ah(self, key: tuple[int, bytes, bytes], f: AhFlow, data: bytes, off: int, end: int) -> None:
        """ICV check (RFC 4302) when the key store has the SA; counts go to the AH flow."""
        if key not in self._ah_verifiers:
            k = self.keys.child(f.spi, f.src, f.dst) or self.keys.child_by_spi(f.spi)
            self._ah_verifiers[key] = AhVerifier(k) if k is not None and k.protocol == "ah" else None
        verifier = self._ah_verifiers[key]
        if verifier is None:
            return
        ip = ip_header_before(data, off, 51)
        if ip is None:
            return  # the IP header could not be located: not verifiable
        status = verifier.verify(data[:end], ip, off)
        if status == AhStatus.OK:
            f.verified += 1
        elif status == AhStatus.INTEGRITY_FAILED:
            f.integrity_failed += 1

    def on_keepalive(self, frame: int, ts: float, src: str, dst: str, sport: int, dport: int) -> None:
        if len(self.report.keepalives) < MAX_KEEPALIVES:
            self.report.keepalives.append(Keepalive(frame, ts, src, dst, sport, dport))
        else:
            self.keepalives_dropped += 1
        self.report.source.keepalives += 1

    def on_icmp_error(self, err: IcmpError) -> None:
        self.report.source.icmp_errors += 1
        if len(self.report.icmp_errors) < MAX_EVIDENCE:
            self.report.icmp_errors.append(err)

    def on_fragment_group(self, group: FragmentGroup) -> None:
        if len(self.report.fragment_groups) < MAX_EVIDENCE:
            self.report.fragment_groups.append(group)
        if not group.complete:
            counts = self.report.incomplete_fragments
            key = (group.src, group.dst, fragment_payload(group))
            if key in counts or len(counts) < MAX_FRAGMENT_PAIRS:
                counts[key] += 1
            else:
                counts[("other hosts", "", key[2])] += 1

    def on_malformed(self, frame: int, ts: float, layer: str, offset: int, reason: str) -> None:
        if len(self.report.malformed) < MAX_EVIDENCE:
            self.report.malformed.append((frame, layer, offset, reason))

    def on_truncated(self, frame: int, ts: float, caplen: int, origlen: int) -> None:
        if len(self.report.truncated_frames) < MAX_EVIDENCE:
            self.report.truncated_frames.append(frame)

    # -- end --------------------------------------------------------------------------------
    def finish(self) -> None:
        for fn in self.finishers:
            fn()
        self._fill(self.report, self.ike.finish(), self.esp.flows_out())

    def close(self) -> None:
        """Release what the pass holds (worker processes); safe to call more than once."""
        closers, self.closers = self.closers, []
        for close in closers:
            close()

    def provisional_report(self, source: SourceInfo) -> Report:
        """The Report as it would be if the capture ended now, built from copies so that the
        pass goes on undisturbed (for live snapshots). Checks are not run."""
        r = self.report
        out = Report(
            source=source,
            keepalives=list(r.keepalives),
            icmp_errors=list(r.icmp_errors),
            fragment_groups=list(r.fragment_groups),
            malformed=list(r.malformed),
            truncated_frames=list(r.truncated_frames),
            options=r.options,
        )
        self._fill(out, self.ike.snapshot(), self.esp.flows_out(final=False))
        return out

    def _fill(self, r: Report, ike_sas: list[IkeSaRecord], esp_flows: list[EspFlow]) -> None:
        r.ike_sas = ike_sas
        read_all_certificates(ike_sas)
        r.esp_flows = esp_flows
        for flow in r.esp_flows:
            if flow.inner_protocols:  # keyed by inner.inner_code on the hot path
                named: Counter[str] = Counter()
                syn_mss: Counter[int] = Counter()
                for k, v in flow.inner_protocols.items():
                    named[inner_name(k) if isinstance(k, int) else k] += v
                    if isinstance(k, int) and k & SYN_CODE:
                        syn_mss[k & 0xFFFF] += v
                flow.inner_protocols = named
                if syn_mss:
                    flow.syn_mss = dict(sorted(syn_mss.items()))
        r.ah_flows = sorted(
            (replace(f, next_headers=Counter(f.next_headers)) for f in self.ah.values()), key=lambda f: f.first_frame
        )
        r.source.ike_messages = self.ike.messages
        r.half_open = self.ike.half_open.summaries()
        r.esp_overflow = self.esp.overflow_out()
        r.source.esp_packets = self.esp.packets
        r.source.ah_packets = sum(f.packets for f in r.ah_flows)
        for frame, layer, off, reason in self.ike.malformed:
            r.malformed.append((frame, layer, off, reason))
        for frame, off, reason in self.esp.malformed:
            r.malformed.append((frame, "esp", off, reason))
        r.malformed.sort()
        _link_child_sas(r)
        infer_from_esp(r.ike_sas, r.esp_flows)
        _time_bounds(r)
        if r.source.last_ts is not None:  # a request still in flight at the end has not failed
            settle_states(r.ike_sas, r.source.last_ts)


def _time_bounds(r: Report) -> None:
    """The capture's span is its earliest and latest record time, not its first and last
    frame's: in a capture not in time order (merged files, several interfaces) those can be
    the other way round, and the report would show a negative span and judge "the capture
    ends N s after" from a time that is not its end."""
    src = r.source
    if src.first_ts is None or src.last_ts is None:
        return
    times = [src.first_ts, src.last_ts]
    times += [t.ts for sa in r.ike_sas for e in sa.exchanges for m in e.all_messages() for t in m.transmissions]
    times += [t for f in r.esp_flows for t in (f.first_ts, f.last_ts)]
    times += [k.ts for k in r.keepalives]
    src.first_ts, src.last_ts = min(times), max(times)


# Distinct (source, destination, payload) keys counted for incomplete fragments; beyond, the
# rest is counted under "other hosts" so that a fragment flood cannot grow the counter.
MAX_FRAGMENT_PAIRS = 1000


def fragment_payload(group: FragmentGroup) -> str:
    """What an IP datagram carried, from its first fragment (when that one arrived)."""
    if group.proto == 50:
        return "ESP"
    if group.proto == 51:
        return "AH"
    if group.proto == 17 and group.dport is not None:
        if 500 in (group.sport, group.dport):
            return "IKE"
        if 4500 in (group.sport, group.dport):
            return "IKE or ESP on UDP 4500"
        return "UDP"
    if group.proto < 0:
        return "unknown (first fragment missing)"
    return f"IP protocol {group.proto}"


def ip_header_before(data: bytes, off: int, proto: int) -> int | None:
    """Offset of the IPv4/IPv6 header whose payload (after IPv6 extension headers) starts at
    ``off`` with protocol ``proto``; the decoder hands over the AH offset only."""
    for ihl in range(20, 64, 4):  # IPv4 with 0..40 bytes of options
        start = off - ihl
        if start >= 0 and data[start] == 0x40 | ihl // 4 and data[start + 9] == proto:
            return start
    for start in range(off - 40, max(-1, off - 40 - 512), -8):  # IPv6 plus extension headers
        if start < 0 or data[start] >> 4 != 6:
            continue
        nh, p = data[start + 6], start + 40
        while p < off and nh in (0, 43, 60, 135):
            nh, p = data[p], p + (data[p + 1] + 1) * 8
        if p == off and nh == proto:
            return start
    return None


def _link_child_sas(r: Report) -> None:
    """Attach ESP flows to the IKE SA whose CHILD SA announced their SPI."""
    owner: dict[int, str] = {}
    for sa in r.ike_sas:
        for c in sa.child_sas:
            for spi in (c.spi_i, c.spi_r):
                if spi is not None:
                    owner[spi] = sa.key
    for f in r.esp_flows:
        f.child_sa = owner.get(f.spi)
