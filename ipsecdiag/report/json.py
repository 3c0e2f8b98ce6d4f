"""The stable JSON report (``"schema": "ipsecdiag/report-1"``), documented in docs/json-schema.md.

Fixed fields follow DESIGN.md; additional fields may be added but never renamed or removed.
Hex is lowercase without 0x; frame numbers are 1-based; names are IANA names.
"""

from __future__ import annotations

import json

from ..reconstruction.model import (
    EspFlow,
    ExchangeRecord,
    Finding,
    IkeSaRecord,
    MessageRecord,
    Report,
    raw_seconds,
    utc_datetime,
)
from ..reconstruction.time_order import flow_times, out_of_order
from ..wire.jsontypes import Json, JsonValue
from .childsa import child_sa_rows
from .view import message_details

SCHEMA = "ipsecdiag/report-1"
MULTI_SCHEMA = "ipsecdiag/reports-1"  # several captures: {"schema": ..., "reports": [report-1, ...]}


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    dt = utc_datetime(ts)
    return raw_seconds(ts) if dt is None else dt.isoformat(timespec="microseconds")


def _message(m: MessageRecord | None) -> Json | None:
    if m is None:
        return None
    d: Json = {
        "frames": m.frames,
        "payloads": m.payloads,
        "notifies": m.notifies,
        "src": f"{m.src}:{m.sport}",
        "dst": f"{m.dst}:{m.dport}",
        "time": _iso(m.ts),
        "size": m.size,
        "is_response": m.is_response,
        "from_initiator": m.from_initiator,
        "encrypted": m.encrypted,
        "decrypted": m.decrypted,
        "ip_fragmented": m.ip_fragmented,
        "retransmissions": m.retransmissions,
        # seconds between successive transmissions (the retransmission back-off)
        "retransmit_intervals": [
            round(b.ts - a.ts, 6) for a, b in zip(m.transmissions, m.transmissions[1:], strict=False)
        ],
    }
    if m.ikev2_fragments:
        d["ikev2_fragments"] = m.ikev2_fragments
        if m.fragments_missing:
            d["ikev2_fragments_missing"] = m.fragments_missing
    details = message_details(m)
    if details:
        d["details"] = details
    if m.decrypt_error:
        d["decrypt_error"] = m.decrypt_error
    if m.malformed:
        d["malformed"] = m.malformed
    return d


def _exchange(e: ExchangeRecord) -> Json:
    d: Json = {
        "type": e.type,
        "exchange_type": e.exchange_type,
        "message_id": e.message_id,
        "request": _message(e.request),
        "response": _message(e.response),
        "retransmissions": e.retransmissions,
        "initiated_by": "initiator" if e.initiated_by_initiator else "responder",
    }
    if e.version == 1:
        d["messages"] = [_message(m) for m in e.messages]
    return d


def _ike_sa(sa: IkeSaRecord) -> Json:
    return {
        "version": sa.version,
        "spi_i": sa.spi_i.hex(),
        "spi_r": sa.spi_r.hex() if sa.spi_r else None,
        "initiator": f"{sa.initiator[0]}:{sa.initiator[1]}",
        "responder": f"{sa.responder[0]}:{sa.responder[1]}",
        "state": sa.state,
        "state_basis": sa.state_basis,
        "state_evidence": sa.state_evidence or None,
        "proposal": sa.proposal,
        "offered": sa.offered,
        "nat_t": sa.nat_seen,
        "vendor_ids": sa.vendor_ids,
        "error_notifies": sa.error_notifies,
        "rekeyed_from": sa.rekeyed_from,
        "rekey_inferred": sa.rekey_inferred,
        "rekeyed_to": sa.rekeyed_to,
        "keys": sa.keys_available,
        "key_source": sa.key_source or None,
        "exchanges": [_exchange(e) for e in sa.exchanges],
        "child_sas": [
            {
                "spi_i": f"{c.spi_i:08x}" if c.spi_i is not None else None,
                "spi_r": f"{c.spi_r:08x}" if c.spi_r is not None else None,
                "mode": c.mode,
                "protocol": c.protocol,
                "proposal": c.proposal,
                "created_in": c.created_in,
                "created_frame": c.created_frame,
                "rekey_of": f"{c.rekey_of:08x}" if c.rekey_of is not None else None,
                "ts_i": c.ts_i,
                "ts_r": c.ts_r,
                "deleted_frame": c.deleted_frame,
            }
            for c in sa.child_sas
        ],
    }


def _esp(f: EspFlow, owner: tuple[str, bool] | None, disorder: bool) -> Json:
    """One ESP flow. ``owner``: the IKE SA its CHILD SA belongs to, and whether that was
    inferred from the addresses (CHILD SA not seen negotiated). ``disorder``: the capture is
    out of time order, so reordering (frame order) is not judged and the first and last
    packet in frame order are given as the earlier and the later time."""
    first, last = flow_times(f.first_ts, f.last_ts) if disorder else (f.first_ts, f.last_ts)
    out: Json = {
        "spi": f"{f.spi:08x}",
        "src": f.src,
        "dst": f.dst,
        "encap": f.encap,
        "sport": f.sport or None,
        "dport": f.dport or None,
        "packets": f.packets,
        "bytes": f.bytes,
        "seq_first": f.seq_first,
        "seq_last": f.seq_last,
        "seq_min": f.seq_min,
        "seq_max": f.seq_max,
        "duplicates": f.duplicates,
        "reordered": None if disorder else f.reordered,
        "gaps": f.gaps,
        "first_frame": f.first_frame,
        "last_frame": f.last_frame,
        "first_time": _iso(first),
        "last_time": _iso(last),
        "keys": f.keys,
        "decrypted": f.decrypted,
        "integrity_failed": f.integrity_failed,
        "integrity_failed_frames": f.failed_frames,
        "integrity_failed_times": [_iso(t) for t in f.failed_ts],
        "key_source": f.key_source or None,
        "inner_protocols": dict(f.inner_protocols),
        "ike_sa": owner[0] if owner else None,
        "ike_sa_inferred": owner[1] if owner else False,
    }
    if f.timeline is not None:  # collected for the HTML plots only (AnalysisOptions.esp_timeline)
        out["timeline"] = f.timeline.to_json()
    return out


def _owners(r: Report) -> dict[int, tuple[str, bool]]:
    """id(flow) -> (IKE SA key, inferred): the link the CHILD SA table shows, negotiated or by
    address (report/childsa.py)."""
    out: dict[int, tuple[str, bool]] = {}
    for row in child_sa_rows(r):
        if row.ike_sa is not None:
            for f in row.flows:
                out[id(f)] = (row.ike_sa, row.ike_sa_inferred)
    return out


def _finding(f: Finding) -> Json:
    return {
        "id": f.id,
        "severity": f.severity.label,
        "title": f.title,
        "frames": f.frames,
        "explanation": f.explanation,
        "remediation": f.remediation,
        "evidence": f.evidence,
        "cause": f.cause,
        "ike_sa": f.ike_sa,
        "explains": f.explains,
        "data": f.data,
    }


def report_dict(r: Report) -> Json:
    s = r.source
    owners, disorder = _owners(r), out_of_order(r)
    return {
        "schema": SCHEMA,
        "source": {
            "files": s.files,
            "formats": s.formats,
            "frames": s.frames,
            "ipsec_frames": s.ipsec_frames,
            "skipped": dict(sorted(s.skipped.items())),
            "bytes": s.bytes,
            "first_time": _iso(s.first_ts),
            "last_time": _iso(s.last_ts),
            "truncated": s.truncated_files,
            "ike_messages": s.ike_messages,
            "esp_packets": s.esp_packets,
            "ah_packets": s.ah_packets,
            "nat_keepalives": s.keepalives,
            "icmp_errors": s.icmp_errors,
            "keys_loaded": s.keys_loaded,
        },
        "ike_sas": [_ike_sa(sa) for sa in r.ike_sas],
        "esp_flows": [_esp(f, owners.get(id(f)), disorder) for f in r.esp_flows],
        "ah_flows": [
            {
                "spi": f"{f.spi:08x}",
                "src": f.src,
                "dst": f.dst,
                "packets": f.packets,
                "seq_first": f.seq_first,
                "seq_last": f.seq_last,
                "verified": f.verified,
                "integrity_failed": f.integrity_failed,
            }
            for f in r.ah_flows
        ],
        "findings": [_finding(f) for f in r.findings],
        "keys": {
            "notes": [{"source": n.source, "kind": n.kind, "reason": n.reason} for n in r.key_notes],
            "records": [
                {"kind": k.kind, "spi": k.spi, "source": k.source, "algorithm": k.algorithm} for k in r.key_records
            ],
        },
    }


def dumps(reports: list[Report]) -> str:
    """Always one JSON object: the report of one capture, or for several captures
    ``{"schema": "ipsecdiag/reports-1", "reports": [...]}`` (so ``jq`` paths never depend on
    how many captures were given)."""
    if len(reports) == 1:
        return json.dumps(report_dict(reports[0]), indent=2, default=_default)
    doc = {"schema": MULTI_SCHEMA, "reports": [report_dict(r) for r in reports]}
    return json.dumps(doc, indent=2, default=_default)


def dumps_lines(reports: list[Report]) -> str:
    """JSON Lines: one compact report object per line, one line per capture."""
    return "".join(json.dumps(report_dict(r), default=_default, separators=(",", ":")) + "\n" for r in reports)


def _default(o: object) -> JsonValue:
    if isinstance(o, bytes):
        return o.hex()
    if isinstance(o, set):
        return sorted(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
