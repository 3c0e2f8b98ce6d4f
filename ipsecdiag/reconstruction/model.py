"""The analysis result as data: what the reconstructor builds and every renderer consumes.

Nothing here prints or formats for a terminal; ``report/`` turns a :class:`Report` into a rich
view or the JSON contract (``ipsecdiag/report-1``).
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum
from typing import TYPE_CHECKING

from ..wire.jsontypes import Json
from .keyinfo import KeyNote, KeyRef
from .options import DEFAULT_OPTIONS, AnalysisOptions

if TYPE_CHECKING:  # annotations only: the model module stays cheap to import (CLI start-up)
    from ..capture.model import FragmentGroup, IcmpError
    from ..capture.timesteps import StepsBack
    from ..wire.ikev1_payloads import V1Message, V1Payload
    from ..wire.ikev2 import IkeMessage, Payload
    from .halfopen import HalfOpenSummary
    from .timeline import EspTimeline

# Times in the report are record times from the capture. datetime's range is years 1 to 9999;
# a pcapng record may claim any 64-bit time (with any resolution and offset), and outside this
# range it is shown as raw seconds, never as a date.
TS_MIN = -62135596800.0
TS_MAX = 253402300799.0


def utc_datetime(ts: float) -> datetime | None:
    """The UTC date and time of a record time, or None when no date can show it."""
    if not TS_MIN <= ts <= TS_MAX:  # also NaN
        return None
    return datetime.fromtimestamp(ts, tz=UTC)


def raw_seconds(ts: float) -> str:
    """How a time outside the date range is shown: seconds since 1970, as recorded."""
    return f"{ts:.6f} s"


# A lone request this close to the end of the capture may simply still be in flight.
IN_FLIGHT_SECONDS = 2.0


class Severity(IntEnum):
    INFO = 0
    WARNING = 1
    ERROR = 2

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown severity {text!r} (expected info, warning or error)") from None


@dataclass
class Finding:
    """One diagnosis: an id from the catalogue, the frames that prove it, cause and fix."""

    id: str
    severity: Severity
    title: str
    explanation: str
    remediation: str
    frames: list[int] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)
    cause: str = ""
    check: str = ""
    # Ids of findings this one explains (a root cause ranks above its consequences).
    explains: list[str] = field(default_factory=list)
    # Free-form structured values for JSON consumers (offered/accepted transforms, skew...).
    data: Json = field(default_factory=dict)
    ike_sa: str | None = None  # "spi_i/spi_r" hex of the IKE SA it concerns, if any


@dataclass
class Transmission:
    """One time a message went over the wire (a retransmission is another Transmission)."""

    frames: tuple[int, ...]
    ts: float
    ip_len: int
    ip_fragments: int


@dataclass(frozen=True)
class CertificateInfo:
    """One certificate of a CERT payload as the report shows it, read once while the report is
    built (renderers never parse certificates). ``error`` is set when the payload could not be
    decoded, ``size`` when its encoding carries no certificate to read (hash and URL, CRL)."""

    encoding: str
    subject: str | None = None
    issuer: str | None = None
    not_before: float | None = None
    not_after: float | None = None
    subject_alt_names: dict[str, list[str]] = field(default_factory=dict, hash=False)
    serial: str | None = None
    error: str | None = None
    size: int | None = None


@dataclass
class MessageRecord:
    """One IKE message (all its transmissions) as seen in the capture."""

    src: str
    dst: str
    sport: int
    dport: int
    size: int  # IKE message length (header length field) of the first transmission
    transmissions: list[Transmission] = field(default_factory=list)
    payloads: list[str] = field(default_factory=list)
    notifies: list[str] = field(default_factory=list)
    encrypted: bool = False
    decrypted: bool | None = None  # None: not encrypted or no keys tried
    decrypt_error: str | None = None
    malformed: str | None = None
    is_response: bool = False
    from_initiator: bool = False  # sent by the original initiator of the IKE SA
    # Parsed objects for checks (IkeMessage / V1Message and decrypted inner payloads).
    parsed: IkeMessage | V1Message | None = None
    inner: tuple[Payload | V1Payload, ...] = ()
    ikev2_fragments: int = 0  # RFC 7383 fragments that carried it (0 = not fragmented)
    fragments_missing: int = 0
    non_esp_marker: bool = False
    transport: str = "udp"
    certificates: list[CertificateInfo] = field(default_factory=list)  # of its CERT payloads, in order

    @property
    def frames(self) -> list[int]:
        out: list[int] = []
        for t in self.transmissions:
            out.extend(t.frames)
        return out

    @property
    def first_frame(self) -> int:
        return self.transmissions[0].frames[0] if self.transmissions else 0

    @property
    def ts(self) -> float:
        return self.transmissions[0].ts if self.transmissions else 0.0

    @property
    def retransmissions(self) -> int:
        return max(0, len(self.transmissions) - 1)

    @property
    def ip_fragmented(self) -> bool:
        return any(t.ip_fragments > 1 for t in self.transmissions)

    def all_payloads(self) -> tuple[Payload | V1Payload, ...]:
        """Outer payloads followed by decrypted inner payloads (parsed objects)."""
        outer = tuple(getattr(self.parsed, "payloads", ()) or ())
        return outer + tuple(self.inner)


@dataclass
class ExchangeRecord:
    """A request and its response (IKEv2), or the messages of one IKEv1 exchange/phase."""

    type: str  # DESIGN names: IKE_SA_INIT, IKE_AUTH, ..., MAIN_MODE, QUICK_MODE, ...
    exchange_type: int
    message_id: int
    request: MessageRecord | None = None
    response: MessageRecord | None = None
    # IKEv1 exchanges are sequences of messages rather than request/response pairs.
    messages: list[MessageRecord] = field(default_factory=list)
    initiated_by_initiator: bool = True  # request sent by the original IKE SA initiator
    version: int = 2

    @property
    def retransmissions(self) -> int:
        if self.version == 1:
            return sum(m.retransmissions for m in self.messages)
        return self.request.retransmissions if self.request else 0

    @property
    def unanswered(self) -> bool:
        """The one definition of an unanswered request. IKEv2: a request without a response.
        IKEv1 (no request/response pairing): every message came from the side that started the
        exchange (Main Mode: fewer than three messages); Informational exchanges are never
        acknowledged, so they never count."""
        if self.version == 1:
            if self.type == "INFORMATIONAL" or not self.messages:
                return False
            if any(m.from_initiator != self.initiated_by_initiator for m in self.messages):
                return False
            return not (self.type == "MAIN_MODE" and len(self.messages) >= 3)
        return self.request is not None and self.response is None

    @property
    def last_sent(self) -> MessageRecord | None:
        """The request as last sent: IKEv2's request, an IKEv1 exchange's last message (IKEv1
        pairs no request with a response)."""
        if self.version == 1:
            return self.messages[-1] if self.messages else None
        return self.request

    def unanswered_at(self, end: float) -> bool:
        """:attr:`unanswered`, and not possibly still in flight when the capture ended at
        ``end``: retransmitted, or last sent at least ``IN_FLIGHT_SECONDS`` before the end."""
        if not self.unanswered:
            return False
        last = self.last_sent
        assert last is not None  # unanswered implies a request / a message
        return last.retransmissions > 0 or end - last.transmissions[-1].ts >= IN_FLIGHT_SECONDS

    @property
    def first_ts(self) -> float:
        cands = [m.ts for m in (self.request, self.response, *self.messages) if m is not None]
        return min(cands) if cands else 0.0

    def all_messages(self) -> list[MessageRecord]:
        if self.version == 1:
            return list(self.messages)
        return [m for m in (self.request, self.response) if m is not None]


@dataclass
class ChildSaRecord:
    spi_i: int | None  # inbound SPI at the initiator of the creating exchange (i.e. the SPI it sent)
    spi_r: int | None
    mode: str = "tunnel"
    proposal: dict[str, str] | None = None
    protocol: str = "ESP"
    created_in: str = ""  # exchange type that created it
    created_frame: int = 0
    rekey_of: int | None = None  # SPI of the CHILD SA this one rekeys
    deleted_frame: int | None = None
    ts_i: list[str] = field(default_factory=list)
    ts_r: list[str] = field(default_factory=list)
    esn: bool | None = None


@dataclass
class IkeSaRecord:
    version: int
    spi_i: bytes
    spi_r: bytes | None
    initiator: tuple[str, int]
    responder: tuple[str, int]
    exchanges: list[ExchangeRecord] = field(default_factory=list)
    child_sas: list[ChildSaRecord] = field(default_factory=list)
    proposal: dict[str, str] | None = None
    offered: list[dict[str, str]] = field(default_factory=list)  # proposals in the first request
    state: str = "incomplete"  # established | failed | incomplete | deleted
    # "seen": the state as the messages show it (cleartext or decrypted); "inferred": established
    # concluded without reading the AUTH payloads, from what followed (reconstruction/sa_state.py);
    # state_evidence then says what.
    state_basis: str = "seen"
    state_evidence: str = ""
    nat_seen: bool = False  # moved to 4500 / NAT-D mismatch / non-ESP marker used
    vendor_ids: list[str] = field(default_factory=list)
    rekeyed_from: str | None = None  # "spi_i/spi_r" hex of the parent IKE SA
    rekeyed_to: list[str] = field(default_factory=list)
    rekey_inferred: bool = False  # rekeyed_from guessed from timing (no decrypted CREATE_CHILD_SA)
    keys_available: bool = False
    key_source: str = ""  # where the keys used for it came from (file and line)
    error_notifies: list[str] = field(default_factory=list)
    peers_seen: set[tuple[str, int]] = field(default_factory=set)

    @property
    def key(self) -> str:
        return f"{self.spi_i.hex()}/{(self.spi_r or bytes(8)).hex()}"

    @property
    def first_ts(self) -> float:
        return min((e.first_ts for e in self.exchanges), default=0.0)

    @property
    def frames(self) -> list[int]:
        out: list[int] = []
        for e in self.exchanges:
            for m in e.all_messages():
                out.extend(m.frames)
        return sorted(out)


@dataclass
class SequenceStats:
    """The ESP tracker's per-flow sequence-number model (RFC 4303 §3.4.3, ESN inferred), for the
    replay, NAT keepalive and MTU checks. Events are capped lists (frame first)."""

    replay_window: int = 64  # the receiver window modelled (--replay-window)
    tracking_window: int = 4096  # reordering deeper than this cannot be told from a duplicate
    too_old: int = 0
    max_reorder_depth: int = 0
    deepest_frame: int = 0
    out_of_window: int = 0  # a receiver with the modelled window would drop these
    oow_events: list[tuple[int, int, int]] = field(default_factory=list)  # frame, seq, depth
    replays: int = 0
    replay_events: list[tuple[int, float, int, str]] = field(default_factory=list)  # frame, ts, seq, why
    capture_duplicates: int = 0  # byte-identical copies within dup_seconds (a mirror port)
    dup_events: list[tuple[int, int, int, float]] = field(default_factory=list)  # frame, original, seq, dt
    dup_unverified: int = 0
    resets: int = 0  # the sender started its numbering again
    reset_events: list[tuple[int, float, int, int]] = field(default_factory=list)  # frame, ts, from, to
    esn_wraps: int = 0  # inferred ESN high-order increments
    wrap_events: list[tuple[int, float]] = field(default_factory=list)
    idle_gaps: list[tuple[float, float, int, int]] = field(default_factory=list)  # start, end, frames
    idle_gaps_dropped: int = 0
    idle_gap_min: float = 30.0  # gaps shorter than this were not recorded (natt_idle_timeout)


@dataclass(frozen=True)
class EspTransformInfo:
    """The ESP transform a keyed flow was decrypted with: what the MTU check needs."""

    encr: str
    iv: int
    icv: int
    align: int


@dataclass
class EspFlow:
    """ESP packets of one SPI in one direction over one encapsulation."""

    spi: int
    src: str
    dst: str
    encap: str  # "none" | "udp" | "tcp"
    sport: int = 0
    dport: int = 0
    packets: int = 0
    bytes: int = 0
    seq_first: int = 0
    seq_last: int = 0
    seq_min: int = 0
    seq_max: int = 0
    first_ts: float = 0.0
    last_ts: float = 0.0
    first_frame: int = 0
    last_frame: int = 0
    duplicates: int = 0  # sequence numbers seen before
    reordered: int = 0  # arrived below the highest seen, not a duplicate
    gaps: int = 0  # sequence numbers skipped (missing)
    decrypted: int = 0
    integrity_failed: int = 0
    undecryptable: int = 0  # keys present but the packet could not be processed
    truncated: int = 0
    keys: bool = False
    inner_protocols: Counter[str] = field(default_factory=Counter)
    child_sa: str | None = None  # key of the IKE SA whose CHILD SA created this SPI
    seq: SequenceStats = field(default_factory=SequenceStats)
    max_esp_len: int = 0  # longest ESP packet (SPI to end), for the tunnel MTU estimate
    esp_transform: EspTransformInfo | None = None
    syn_mss: dict[int, int] = field(default_factory=dict)  # MSS of decrypted TCP SYNs -> count
    decrypt_problem: str | None = None  # why the key could not be used (unsupported algorithm, ...)
    key_matched_by_spi_only: bool = False  # the key's addresses differ from the flow's
    key_source: str = ""  # where the key came from (file and line)
    failed_frames: list[int] = field(default_factory=list)  # first frames failing their ICV
    failed_ts: list[float] = field(default_factory=list)  # their times
    timeline: EspTimeline | None = None  # packets over time (only with AnalysisOptions.esp_timeline)


@dataclass
class SourceInfo:
    files: list[str] = field(default_factory=list)
    formats: list[str] = field(default_factory=list)
    frames: int = 0
    ipsec_frames: int = 0
    bytes: int = 0
    first_ts: float | None = None
    last_ts: float | None = None
    skipped: Counter[str] = field(default_factory=Counter)
    truncated_files: list[str] = field(default_factory=list)
    linktypes: set[int] = field(default_factory=set)
    ike_messages: int = 0
    esp_packets: int = 0
    ah_packets: int = 0
    keepalives: int = 0
    icmp_errors: int = 0
    keys_loaded: int = 0
    # Every frame whose record time steps back (capture/timesteps.py), counted as the capture is
    # read; None when not counted over the whole capture (byte ranges, live snapshots).
    steps_back: StepsBack | None = None


@dataclass
class Keepalive:
    frame: int
    ts: float
    src: str
    dst: str
    sport: int
    dport: int


@dataclass
class AhFlow:
    spi: int
    src: str
    dst: str
    packets: int = 0
    seq_first: int = 0
    seq_last: int = 0
    first_frame: int = 0
    last_frame: int = 0
    verified: int = 0
    integrity_failed: int = 0
    next_headers: Counter[int] = field(default_factory=Counter)


@dataclass
class Report:
    source: SourceInfo = field(default_factory=SourceInfo)
    ike_sas: list[IkeSaRecord] = field(default_factory=list)
    esp_flows: list[EspFlow] = field(default_factory=list)
    ah_flows: list[AhFlow] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    keepalives: list[Keepalive] = field(default_factory=list)
    icmp_errors: list[IcmpError] = field(default_factory=list)
    fragment_groups: list[FragmentGroup] = field(default_factory=list)
    malformed: list[tuple[int, str, int, str]] = field(default_factory=list)  # frame, layer, offset, reason
    truncated_frames: list[int] = field(default_factory=list)
    options: AnalysisOptions = DEFAULT_OPTIONS
    # Bounded state (issue 14): unanswered IKE_SA_INIT requests summarised per responder
    # (reconstruction.halfopen.HalfOpenSummary), and IP datagrams whose fragments never all
    # arrived, counted by (source, destination, what they carried).
    half_open: list[HalfOpenSummary] = field(default_factory=list)
    incomplete_fragments: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    # ESP SPIs past the flows tracked one by one, added up per address pair (esp_tracker).
    esp_overflow: list[Json] = field(default_factory=list)
    # The key material (no key bytes): what the sources said about themselves, and each record.
    key_notes: list[KeyNote] = field(default_factory=list)
    key_records: list[KeyRef] = field(default_factory=list)
    key_formats: dict[str, str] = field(default_factory=dict)  # key source -> format read as

    def worst_severity(self) -> Severity | None:
        return max((f.severity for f in self.findings), default=None)


def addr_text(packed: bytes) -> str:
    """Packed IPv4/IPv6 address -> compressed text form."""
    return str(ipaddress.ip_address(packed))
