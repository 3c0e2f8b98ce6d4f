"""The CHILD SA table as ``swanctl --list-sas`` shows it: one row per CHILD SA (SPI pair), its
owning IKE SA, mode, proposal, traffic selectors, packets and bytes each way, first/last seen
and state, linking the ESP flows to the IKE SA that negotiated them.

A view model: plain rows for every renderer (terminal, HTML, JSON consumers). Flows whose
CHILD SA was never seen negotiated (encrypted IKE_AUTH without keys, capture started late) are
paired by reversed addresses; their IKE SA is inferred when exactly one IKE SA joins the same
two addresses, or, of several, as the one that last set up CHILD SAs before the flow started,
and the row says it was inferred.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from ..reconstruction.model import ChildSaRecord, EspFlow, IkeSaRecord, Report
from ..reconstruction.sa_state import child_setup_times
from ..reconstruction.time_order import flow_times
from .view import proposal_short


@dataclass
class ChildSaRow:
    ike_sa: str | None  # key "spi_i/spi_r" of the owning IKE SA
    ike_sa_inferred: bool  # owner guessed from the addresses (no negotiation seen)
    spi_in: int | None  # the SPI the IKE initiator receives on (it sent it in SAi2/SAi)
    spi_out: int | None  # the SPI the IKE initiator sends with
    src: str  # the initiator side (sender of spi_out)
    dst: str
    protocol: str = "ESP"
    mode: str = "-"
    proposal: str = "-"
    ts_local: list[str] = field(default_factory=list)  # TSi
    ts_remote: list[str] = field(default_factory=list)  # TSr
    packets_out: int = 0
    bytes_out: int = 0
    packets_in: int = 0
    bytes_in: int = 0
    first_ts: float | None = None
    last_ts: float | None = None
    state: str = "-"
    flows: list[EspFlow] = field(default_factory=list, repr=False)  # initiator's way first

    @property
    def spi_pair(self) -> str:
        return f"{_spi(self.spi_in)}_i {_spi(self.spi_out)}_o"


def _spi(v: int | None) -> str:
    return "-" if v is None else f"{v:08x}"


def _quick_mode_stopped(sa: IkeSaRecord, c: ChildSaRecord) -> bool:
    """An IKEv1 CHILD SA whose Quick Mode never got its third message: neither side installs
    it (the responder waits for message 3, the initiator sends it after installing)."""
    if sa.version != 1 or c.created_in != "QUICK_MODE":
        return False
    ex = next((e for e in sa.exchanges if any(c.created_frame in m.frames for m in e.messages)), None)
    return ex is not None and ex.type == "QUICK_MODE" and len(ex.messages) < 3


def _state(c: ChildSaRecord, flows: list[EspFlow], rekeyed: set[int], sa: IkeSaRecord) -> str:
    if sa.state == "failed" and not flows:
        # negotiated in an IKE_AUTH whose authentication then failed (e.g. the initiator
        # rejected the responder's AUTH, RFC 7296 §2.21.2): never usable
        return "failed, IKE SA not authenticated"
    if not flows and _quick_mode_stopped(sa, c):
        return "failed, Quick Mode not completed"
    if c.deleted_frame is not None:
        return "deleted"
    if c.spi_i in rekeyed or c.spi_r in rekeyed:
        return "rekeyed"
    if not flows:
        return "installed, no traffic"
    ways = len({f.spi for f in flows})
    return "installed" if ways == 2 else "installed, one way"


def _fill(row: ChildSaRow, out: EspFlow | None, inn: EspFlow | None) -> None:
    for f, way in ((out, "out"), (inn, "in")):
        if f is None:
            continue
        row.flows.append(f)
        setattr(row, f"packets_{way}", f.packets)
        setattr(row, f"bytes_{way}", f.bytes)
        # the flow's first and last packet in frame order: out of time order the later may come first
        first, last = flow_times(f.first_ts, f.last_ts)
        row.first_ts = first if row.first_ts is None else min(row.first_ts, first)
        row.last_ts = last if row.last_ts is None else max(row.last_ts, last)


def _pick(by_spi: dict[int, list[EspFlow]], spi: int | None, src: str) -> EspFlow | None:
    """The flow carrying ``spi`` from ``src`` (an SPI can repeat on other address pairs)."""
    cands = by_spi.get(spi, []) if spi is not None else []
    return next((f for f in cands if f.src == src), cands[0] if cands else None)


def child_sa_rows(report: Report) -> list[ChildSaRow]:
    """Every CHILD SA the report knows of, negotiated ones first (in IKE SA order)."""
    by_spi: dict[int, list[EspFlow]] = {}
    for f in report.esp_flows:
        by_spi.setdefault(f.spi, []).append(f)
    used: set[int] = set()
    rows: list[ChildSaRow] = []
    for sa in report.ike_sas:
        rekeyed = {c.rekey_of for c in sa.child_sas if c.rekey_of is not None}
        init, resp = sa.initiator[0], sa.responder[0]
        for c in sa.child_sas:
            out = _pick(by_spi, c.spi_r, init)  # the initiator sends with the responder's SPI
            inn = _pick(by_spi, c.spi_i, resp)
            flows = [f for f in (out, inn) if f is not None]
            used.update(id(f) for f in flows)
            row = ChildSaRow(
                ike_sa=sa.key,
                ike_sa_inferred=False,
                spi_in=c.spi_i,
                spi_out=c.spi_r,
                src=init,
                dst=resp,
                protocol=c.protocol,
                mode=c.mode,
                proposal=proposal_short(c.proposal),
                ts_local=list(c.ts_i),
                ts_remote=list(c.ts_r),
                state=_state(c, flows, rekeyed, sa),
            )
            _fill(row, out, inn)
            rows.append(row)
    rows += _unlinked(report, [f for f in report.esp_flows if id(f) not in used])
    return rows


_Owners = tuple[list[float], list[IkeSaRecord]]


def _owners(report: Report, a: str, b: str) -> _Owners:
    """The IKE SAs between ``a`` and ``b`` at each time one of them could have set up a CHILD
    SA, in time order; one SA alone at time -inf (it owns every flow between them)."""
    sas = [sa for sa in report.ike_sas if {sa.initiator[0], sa.responder[0]} == {a, b}]
    if len(sas) == 1:
        return [float("-inf")], sas
    pairs = sorted(((t, sa) for sa in sas for t in child_setup_times(sa)), key=lambda x: x[0])
    return [t for t, _ in pairs], [sa for _, sa in pairs]


def _negotiation(sa: IkeSaRecord | None) -> str:
    """Why a flow's CHILD SA was not seen negotiated: its IKE SA's exchanges were captured but
    could not be read, or the capture does not hold them."""
    if sa is not None and child_setup_times(sa) and not sa.keys_available:
        return "encrypted (no keys)"
    return "not in capture"


def _owner_at(owners: _Owners, ts: float) -> IkeSaRecord | None:
    """Of several IKE SAs between two hosts, the one that last set up CHILD SAs before a flow
    with a new SPI started at ``ts`` (ESP starts after the exchange that created its SPI)."""
    at = bisect.bisect_right(owners[0], ts)
    return owners[1][at - 1] if at else None


# Flows the other way scanned for the best time overlap; beyond this many (a flood of SPIs
# between two hosts) only the ones nearest in start time are, so pairing stays linear.
SCAN = 64


def _back(cands: list[EspFlow], starts: list[float], f: EspFlow, paired: set[int]) -> EspFlow | None:
    """The unpaired flow of ``cands`` (sorted by start, ``starts`` their start times) that
    overlaps ``f`` most in time."""
    if len(cands) > SCAN:
        at = bisect.bisect_left(starts, f.first_ts)
        cands = cands[max(0, at - SCAN // 2) : at + SCAN // 2]
    best, score = None, 0.0
    for g in cands:
        if id(g) in paired:
            continue
        overlap = min(f.last_ts, g.last_ts) - max(f.first_ts, g.first_ts)
        if best is None or overlap > score:
            best, score = g, overlap
    return best


def _unlinked(report: Report, flows: list[EspFlow]) -> list[ChildSaRow]:
    """Flows of CHILD SAs not seen negotiated, paired with the flow the other way between the
    same addresses and encapsulation that overlaps it most in time."""
    ways: dict[tuple[str, str, str], list[EspFlow]] = {}
    for f in flows:
        ways.setdefault((f.src, f.dst, f.encap), []).append(f)
    for v in ways.values():
        v.sort(key=lambda g: g.first_ts)
    starts = {k: [g.first_ts for g in v] for k, v in ways.items()}
    owners: dict[tuple[str, str], _Owners] = {}
    paired: set[int] = set()
    rows = []
    for f in flows:
        if id(f) in paired:
            continue
        paired.add(id(f))
        key = (f.dst, f.src, f.encap)
        g = _back(ways.get(key, []), starts.get(key, []), f, paired)
        if g is not None:
            paired.add(id(g))
        if (f.src, f.dst) not in owners:
            owners[(f.src, f.dst)] = _owners(report, f.src, f.dst)
        sa = _owner_at(owners[(f.src, f.dst)], min(f.first_ts, g.first_ts) if g else f.first_ts)
        inferred = sa is not None
        owner = f.child_sa or (sa.key if sa else None)
        # Orient the row as the IKE SA is (initiator -> responder) when the owner is known.
        if sa is not None and f.src != sa.initiator[0] and g is not None:
            f, g = g, f
        row = ChildSaRow(
            ike_sa=owner,
            ike_sa_inferred=inferred and f.child_sa is None,
            spi_in=g.spi if g else None,
            spi_out=f.spi,
            src=f.src,
            dst=f.dst,
            state=("seen" if g else "seen one way") + ", negotiation " + _negotiation(sa),
        )
        _fill(row, f, g)
        rows.append(row)
    return rows
