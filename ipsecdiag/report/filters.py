"""Display filters over a finished Report (``--spi``, ``--peer``, ``--time-from/--time-to``,
``--ike-sa``), as a Wireshark user expects them.

A pure function: the Report given is never changed; the result is a shallow copy holding only
the IKE SAs, ESP/AH flows, findings and side records that match every filter given. An IKE SA
or a flow is kept whole when it matches (its counters are for the whole capture): a time
window keeps what was active inside it, it does not cut an SA in two.

How findings follow: a finding naming an IKE SA (``Finding.ike_sa``) is kept with that SA; one
naming an SPI (``data["spi"]``) with that flow; any other when one of its evidence frames
belongs to a kept IKE SA or falls inside a kept flow's frame range. Keepalives and ICMP errors
follow the peer and time filters and are dropped by an SPI or IKE SA filter.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace

from ..reconstruction.model import AhFlow, EspFlow, Finding, IkeSaRecord, Report


@dataclass(frozen=True)
class ReportFilter:
    spis: frozenset[int] = frozenset()  # ESP/AH SPI (either direction of a CHILD SA)
    peers: frozenset[str] = frozenset()  # IP addresses (compressed text form)
    time_from: float | None = None  # seconds since the epoch, inclusive
    time_to: float | None = None
    ike_sas: frozenset[str] = frozenset()  # IKE SPI hex (initiator or responder) or "spi_i/spi_r"

    @property
    def empty(self) -> bool:
        return not (self.spis or self.peers or self.ike_sas) and self.time_from is None and self.time_to is None


def parse_spi(text: str) -> int:
    """An ESP/AH SPI as Wireshark shows it (0xc0de0001) or decimal."""
    t = text.strip().lower()
    try:
        v = int(t, 16) if t.startswith("0x") else int(t, 10)
    except ValueError:
        try:
            v = int(t, 16)  # bare hex, as tshark prints esp.spi in some formats
        except ValueError:
            raise ValueError(f"not an SPI: {text!r} (expected 0x1234abcd or a decimal number)") from None
    if not 0 <= v <= 0xFFFFFFFF:
        raise ValueError(f"SPI out of range: {text!r} (ESP/AH SPIs are 32 bits)")
    return v


def parse_peer(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        raise ValueError(f"not an IP address: {text!r}") from None


def parse_ike_sa(text: str) -> str:
    """An IKE SPI (16 hex digits, 0x optional) or an IKE SA key ``spi_i/spi_r``."""
    parts = [p.strip().lower().removeprefix("0x") for p in text.split("/")]
    if len(parts) > 2 or not all(len(p) == 16 and all(c in "0123456789abcdef" for c in p) for p in parts):
        raise ValueError(f"not an IKE SPI: {text!r} (expected 16 hex digits, or spi_i/spi_r)")
    return "/".join(parts)


def _ike_matches(sa: IkeSaRecord, flt: ReportFilter) -> bool:
    if flt.ike_sas:
        spis = {sa.spi_i.hex(), (sa.spi_r or bytes(8)).hex(), sa.key}
        if not spis & flt.ike_sas:
            return False
    if flt.peers:
        addrs = {sa.initiator[0], sa.responder[0]} | {p[0] for p in sa.peers_seen}
        if not addrs & flt.peers:
            return False
    if flt.spis:
        child = {s for c in sa.child_sas for s in (c.spi_i, c.spi_r) if s is not None}
        if not child & flt.spis:
            return False
    if flt.time_from is not None or flt.time_to is not None:
        times = [t.ts for e in sa.exchanges for m in e.all_messages() for t in m.transmissions]
        if not times or not _overlaps(min(times), max(times), flt):
            return False
    return True


def _overlaps(first: float, last: float, flt: ReportFilter) -> bool:
    if flt.time_from is not None and last < flt.time_from:
        return False
    return not (flt.time_to is not None and first > flt.time_to)


def _flow_matches(f: EspFlow | AhFlow, flt: ReportFilter, kept_sas: set[str], child_spis: set[int]) -> bool:
    if flt.spis and f.spi not in flt.spis:
        return False
    if flt.peers and not {f.src, f.dst} & flt.peers:
        return False
    if flt.ike_sas:
        owner = getattr(f, "child_sa", None)
        if owner not in kept_sas and f.spi not in child_spis:
            return False
    if isinstance(f, EspFlow) and (flt.time_from is not None or flt.time_to is not None):
        return _overlaps(f.first_ts, f.last_ts, flt)
    return True


def _finding_kept(f: Finding, sas: set[str], frames: set[int], ranges: list[tuple[int, int]], spis: set[int]) -> bool:
    if f.ike_sa is not None:
        return f.ike_sa in sas
    spi = f.data.get("spi")  # checks write it as 8 hex digits; it names the flow exactly
    if isinstance(spi, str):
        try:
            return int(spi, 16) in spis
        except ValueError:
            pass
    elif isinstance(spi, int):
        return spi in spis
    return any(n in frames or any(a <= n <= b for a, b in ranges) for n in f.frames)


def filter_report(report: Report, flt: ReportFilter) -> Report:
    """The part of ``report`` that matches every filter of ``flt`` (the report itself if none)."""
    if flt.empty:
        return report
    sas = [sa for sa in report.ike_sas if _ike_matches(sa, flt)]
    keys = {sa.key for sa in sas}
    child_spis = {s for sa in sas for c in sa.child_sas for s in (c.spi_i, c.spi_r) if s is not None}
    esp = [f for f in report.esp_flows if _flow_matches(f, flt, keys, child_spis)]
    ah = [f for f in report.ah_flows if _flow_matches(f, flt, keys, child_spis)]
    frames = {n for sa in sas for n in sa.frames}
    ranges = [(f.first_frame, f.last_frame) for f in (*esp, *ah)]
    spis = {f.spi for f in (*esp, *ah)}
    findings = [f for f in report.findings if _finding_kept(f, keys, frames, ranges, spis)]

    def side(src: str, dst: str, ts: float | None) -> bool:
        if flt.peers and not {src, dst} & flt.peers:
            return False
        if ts is not None and (flt.time_from is not None or flt.time_to is not None):
            return _overlaps(ts, ts, flt)
        return not (flt.spis or flt.ike_sas)

    return replace(
        report,
        ike_sas=sas,
        esp_flows=esp,
        ah_flows=ah,
        findings=findings,
        keepalives=[k for k in report.keepalives if side(k.src, k.dst, k.ts)],
        icmp_errors=[e for e in report.icmp_errors if side(e.src, e.dst, e.ts)],
    )
