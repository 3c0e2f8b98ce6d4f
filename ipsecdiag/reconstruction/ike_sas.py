"""IKE SA reconstruction: group messages into SAs, pair requests with responses, count
retransmissions, reassemble IKEv2 fragments (RFC 7383) and hand encrypted bodies to the
decryption hook.

IKEv2 (RFC 7296 §2.2): each side numbers its own requests; a response carries the request's
message id. The I flag says whether the sender is the original initiator, the R flag whether
the message is a response, so ``(requester is original initiator, message id)`` identifies an
exchange. A request whose bytes equal an earlier request of the same exchange is a
retransmission; different bytes under the same id (e.g. IKE_SA_INIT after INVALID_KE_PAYLOAD
or COOKIE) start a new exchange.

IKEv1 (RFC 2408/2409): SAs are keyed by the initiator cookie; phase 1 (message id 0) and each
quick mode / informational / transaction message id form one exchange of several messages.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from typing import TypeVar

from ..capture.model import IkeDatagram
from ..keys.rekey import RekeyExchange
from ..wire import ikev1 as v1
from ..wire import ikev2 as v2
from ..wire.errors import MalformedMessage, WireError
from ..wire.registry import EapCode, ExchangeType, name_of
from .decrypted import deletes_in_time_order, learn, learn_v1
from .halfopen import HalfOpenLedger, Promoted, ledger_key
from .model import ExchangeRecord, IkeSaRecord, MessageRecord, Transmission
from .proposals import proposal_dict_v1, proposal_dict_v2, proposal_dicts_v1_all
from .sa_state import later_exchange_evidence

_R = TypeVar("_R")

ZERO_SPI = bytes(8)
_V1_PHASE1 = (2, 4)  # Identity Protection (Main Mode) and Aggressive exchanges

@dataclass(frozen=True)
class V2Decrypted:
    """What the IKEv2 decryptor made of one message's SK/SKF payload(s): the inner payloads, or
    why there are none (``error``: integrity or algorithm; ``malformed``: the plaintext did not
    parse). The reconstructor records it on the message and learns from it."""

    inner: tuple[v2.Payload, ...] = ()
    error: str | None = None
    malformed: str | None = None


@dataclass(frozen=True)
class V1Decrypted:
    """What the IKEv1 decryptor made of one encrypted message: its payloads, or why not."""

    inner: tuple[v1.V1Payload, ...] = ()
    error: str | None = None
    # Phase 1 (its KE payloads, its last CBC block) comes later in the capture: the reconstructor
    # asks again once the whole capture is read, in time order (IV chain, RFC 2409 Appendix B).
    later: bool = False


# The IKEv1 decryptor: (sa, exchange, record, parsed message) -> result, None without keys.
V1DecryptHook = Callable[[IkeSaRecord, ExchangeRecord, MessageRecord, v1.V1Message], "V1Decrypted | None"]
# The IKEv2 decryptor: (sa, record, [(datagram bytes, parsed message)] of its fragments) ->
# the result, or None when there are no keys for this IKE SA.
DecryptHook = Callable[[IkeSaRecord, MessageRecord, list[tuple[bytes, v2.IkeMessage]]], "V2Decrypted | None"]


def exchange_name_v2(t: int) -> str:
    return name_of(ExchangeType, t)


@dataclass
class _Pending:
    """IKEv2 fragments (SKF) collected until all of a message's fragments arrived."""

    total: int
    fragments: dict[int, tuple[IkeDatagram, v2.IkeMessage]] = field(default_factory=dict)
    record: MessageRecord | None = None


class IkeReconstructor:
    def __init__(self, decrypt_hook: DecryptHook | None = None) -> None:
        self.sas: list[IkeSaRecord] = []
        self._v2_by_spi_i: dict[bytes, list[IkeSaRecord]] = {}
        self._v1_by_cookie: dict[bytes, IkeSaRecord] = {}
        self._raw: dict[int, bytes] = {}  # id(MessageRecord) -> first transmission bytes
        self._frag: dict[tuple[int, int, bool, bool], _Pending] = {}
        self.decrypt_hook = decrypt_hook
        self.malformed: list[tuple[int, str, int, str]] = []  # frame, layer, offset, reason
        self.messages = 0
        # (new spi_i, new spi_r) -> parent SA, learnt from decrypted CREATE_CHILD_SA rekeys
        self.rekey_parents: dict[tuple[bytes, bytes], IkeSaRecord] = {}
        self.v1_decrypt_hook: V1DecryptHook | None = None
        self._v1_later: list[tuple[IkeSaRecord, ExchangeRecord, MessageRecord, v1.V1Message]] = []
        # Told of every decrypted IKE SA rekey, so the new SA's keys logged without SPIs can be
        # bound before its first message (the decryption stage installs it, see decrypted.py).
        self.on_ike_rekey: Callable[[RekeyExchange], None] | None = None
        # Every new IKE SA's first request is kept compact until something else of its SA
        # arrives; floods and scans that never get further are summarised: see halfopen.py.
        self.half_open = HalfOpenLedger()
        # id(SA) -> position of its first message in the capture: SAs promoted from the ledger
        # later take their place in capture order again (finish, snapshot).
        self.birth: dict[int, int] = {}
        self._seq = 0

    # ------------------------------------------------------------------ entry point
    def on_ike(self, d: IkeDatagram, *, promoted: bool = False) -> None:
        data = d.data
        if len(data) < 28:
            self.malformed.append((d.frame, "ike", 0, f"IKE header needs 28 bytes, {len(data)} present"))
            return
        major = data[17] >> 4
        if not promoted:
            self.messages += 1
            self._seq = self.messages
            if major in (1, 2) and self._half_open(d, major):
                return
        try:
            if major == 2:
                self._on_v2(d, v2.parse_message(data))
            elif major == 1:
                self._on_v1(d, v1.parse_v1_message(data))
            else:
                self.malformed.append(
                    (d.frame, "ike", 17, f"unknown IKE major version {major} (byte 0x{data[17]:02x})")
                )
        except MalformedMessage as e:
            self.malformed.append(
                (d.frame, "ikev2" if major == 2 else "ikev1", e.offset, f"{e.field}: {e.reason}")
            )
            self._on_malformed(d, major, e)
        except WireError as e:
            self.malformed.append((d.frame, "ike", 0, str(e)))

    # ------------------------------------------------------------------ IKEv2
    def _half_open(self, d: IkeDatagram, major: int) -> bool:
        """True when ``d`` is the first request of a new IKE SA (an IKE_SA_INIT request, or an
        IKEv1 Main/Aggressive Mode first message: zero responder SPI) and was kept compact in the
        ledger (see halfopen.py), or a retransmission of one. Any other message of an SA whose
        request is kept brings that request back first."""
        data = d.data
        key = ledger_key(data)
        if major == 2:
            new = data[18] == ExchangeType.IKE_SA_INIT and not data[19] & 0x20 and data[:8] not in self._v2_by_spi_i
        else:
            new = data[18] in _V1_PHASE1 and data[20:24] == bytes(4) and data[:8] not in self._v1_by_cookie
        if new and data[8:16] == ZERO_SPI and self.half_open.keep(d, key, self._seq):
            return True
        if self.half_open.pending(key):
            self._promote(self.half_open.claim(key))
        return False

    def _promote(self, p: Promoted | None) -> None:
        """Reconstruct a request from the ledger (and its retransmissions) as if just read, at
        its own place in the capture."""
        if p is None:
            return
        seq, datagrams = p
        saved, self._seq = self._seq, seq
        for d in datagrams:
            self.on_ike(d, promoted=True)
        self._seq = saved

    def _find_v2_sa(self, spi_i: bytes, spi_r: bytes, d: IkeDatagram, h: v2.IkeHeader) -> IkeSaRecord:
        cands = self._v2_by_spi_i.get(spi_i, [])
        if spi_r != ZERO_SPI:
            for sa in reversed(cands):
                if sa.spi_r == spi_r:
                    return sa
            for sa in reversed(cands):
                if sa.spi_r is None:
                    sa.spi_r = spi_r
                    return sa
        else:
            for sa in reversed(cands):
                if sa.spi_r is None:
                    return sa
            # IKE_SA_INIT response with zero SPIr (INVALID_KE/COOKIE/NO_PROPOSAL): same SA
            for sa in reversed(cands):
                return sa
        if h.is_initiator:
            init, resp = (d.src, d.sport), (d.dst, d.dport)
        else:
            init, resp = (d.dst, d.dport), (d.src, d.sport)
        sa = IkeSaRecord(
            version=2, spi_i=spi_i, spi_r=None if spi_r == ZERO_SPI else spi_r, initiator=init, responder=resp
        )
        parent = self.rekey_parents.get((spi_i, spi_r))
        if parent is not None:
            sa.rekeyed_from = parent.key
        self.sas.append(sa)
        self.birth[id(sa)] = self._seq
        self._v2_by_spi_i.setdefault(spi_i, []).append(sa)
        return sa

    def _on_v2(self, d: IkeDatagram, msg: v2.IkeMessage) -> None:
        h = msg.header
        sa = self._find_v2_sa(h.spi_i, h.spi_r, d, h)
        sa.peers_seen.add((d.src, d.sport))
        if d.non_esp_marker or d.sport == 4500 or d.dport == 4500:
            sa.nat_seen = True
        skf = next((p for p in msg.payloads if isinstance(p, v2.SkfPayload)), None)
        if skf is not None and skf.total_fragments > 1:
            self._on_v2_fragment(sa, d, msg, skf)
            return
        rec = self._make_v2_record(d, msg)
        self._place_v2(sa, d, msg, rec)

    def _make_v2_record(self, d: IkeDatagram, msg: v2.IkeMessage) -> MessageRecord:
        h = msg.header
        rec = _message_record(d, h.length, h.is_response, h.is_initiator)
        rec.parsed = msg
        rec.payloads = v2.payload_names(msg.payloads)
        rec.notifies = v2.notify_names(msg.payloads)
        rec.encrypted = any(isinstance(p, (v2.SkPayload, v2.SkfPayload)) for p in msg.payloads)
        return rec

    def _on_v2_fragment(self, sa: IkeSaRecord, d: IkeDatagram, msg: v2.IkeMessage, skf: v2.SkfPayload) -> None:
        h = msg.header
        requester_is_init = h.is_initiator != h.is_response
        key = (id(sa), h.message_id, h.is_response, requester_is_init)
        pend = self._frag.get(key)
        if pend is None or (
            skf.fragment_number in pend.fragments
            and pend.record is not None
            and len(pend.fragments) == pend.total
        ):
            # First sight, or a retransmission of an already complete message.
            if pend is not None and pend.record is not None:
                first_frag = pend.fragments.get(skf.fragment_number)
                if first_frag is not None and first_frag[0].data == d.data:
                    if skf.fragment_number == 1:
                        pend.record.transmissions.append(_transmission(d))
                    else:
                        pend.record.transmissions[-1] = _extend(pend.record.transmissions[-1], d)
                    return
            pend = _Pending(total=skf.total_fragments)
            self._frag[key] = pend
        if skf.fragment_number in pend.fragments:
            prev = pend.fragments[skf.fragment_number][0]
            if pend.record is not None and prev.data == d.data:
                if skf.fragment_number == 1:
                    pend.record.transmissions.append(_transmission(d))
                else:
                    pend.record.transmissions[-1] = _extend(pend.record.transmissions[-1], d)
            return
        pend.fragments[skf.fragment_number] = (d, msg)
        if pend.record is None:
            rec = self._make_v2_record(d, msg)
            rec.ikev2_fragments = pend.total
            pend.record = rec
            self._place_v2(sa, d, msg, rec, defer_decrypt=True)
        else:
            pend.record.transmissions[-1] = _extend(pend.record.transmissions[-1], d)
        rec = pend.record
        rec.fragments_missing = pend.total - len(pend.fragments)
        if rec.fragments_missing == 0 and self.decrypt_hook is not None:
            ordered = [pend.fragments[i][1] for i in sorted(pend.fragments)]
            raws = [pend.fragments[i][0].data for i in sorted(pend.fragments)]
            self._apply_v2(sa, rec, self.decrypt_hook(sa, rec, list(zip(raws, ordered, strict=True))))

    def _place_v2(
        self, sa: IkeSaRecord, d: IkeDatagram, msg: v2.IkeMessage, rec: MessageRecord, defer_decrypt: bool = False
    ) -> None:
        h = msg.header
        requester_is_init = h.is_initiator != h.is_response
        mid = h.message_id
        ex_name = exchange_name_v2(h.exchange_type)
        same = [
            e
            for e in sa.exchanges
            if e.message_id == mid and e.initiated_by_initiator == requester_is_init and e.version == 2
        ]
        late: ExchangeRecord | None = None
        if not h.is_response:
            for e in reversed(same):
                if e.request is not None and self._raw.get(id(e.request)) == d.data:
                    e.request.transmissions.append(_transmission(d))
                    return
            # A capture not in time order (merged files, several interfaces) may hold the
            # response before its request: a request captured earlier than a lone response of
            # the same exchange is that response's request.
            late = next(
                (e for e in same if e.request is None and e.response is not None and d.ts < e.response.ts),
                None,
            )
            if late is not None:
                late.request = rec
            else:
                sa.exchanges.append(
                    ExchangeRecord(
                        type=ex_name,
                        exchange_type=h.exchange_type,
                        message_id=mid,
                        request=rec,
                        initiated_by_initiator=requester_is_init,
                    )
                )
        else:
            target = None
            for e in reversed(same):
                if e.response is not None and self._raw.get(id(e.response)) == d.data:
                    e.response.transmissions.append(_transmission(d))
                    return
                if e.response is None and target is None:
                    target = e
            if target is None:
                target = ExchangeRecord(
                    type=ex_name,
                    exchange_type=h.exchange_type,
                    message_id=mid,
                    request=None,
                    initiated_by_initiator=requester_is_init,
                )
                sa.exchanges.append(target)
            target.response = rec
        self._raw[id(rec)] = d.data
        self._note_v2(sa, rec, msg)
        if not defer_decrypt and rec.encrypted and self.decrypt_hook is not None:
            self._apply_v2(sa, rec, self.decrypt_hook(sa, rec, [(d.data, msg)]))
        if late is not None and late.response is not None and late.response.decrypted:
            learn(self, sa, late.response)  # the response came first: learn now that both are here

    def _apply_v2(self, sa: IkeSaRecord, m: MessageRecord, result: V2Decrypted | None) -> None:
        """Record a decryption result on the message and learn from the decrypted exchange."""
        if result is None:
            return
        sa.keys_available = True
        if result.error is not None:
            m.decrypted = False
            m.decrypt_error = result.error
            return
        m.decrypted = True
        if result.malformed is not None:
            m.malformed = f"decrypted payloads: {result.malformed}"
            self.malformed.append((m.first_frame, "ikev2-sk", 0, result.malformed))
            return
        m.inner = result.inner
        m.payloads = m.payloads + v2.payload_names(result.inner)
        m.notifies = m.notifies + v2.notify_names(result.inner)
        note_error_notifies(sa, result.inner)
        learn(self, sa, m)

    def _apply_v1(self, sa: IkeSaRecord, ex: ExchangeRecord, m: MessageRecord, result: V1Decrypted | None) -> None:
        """Record an IKEv1 decryption result and learn from the decrypted message."""
        if result is None:
            return
        sa.keys_available = True
        if result.error is not None:
            m.decrypted = False
            m.decrypt_error = result.error
            return
        m.decrypted = True
        m.decrypt_error = None
        m.inner = result.inner
        m.payloads = v1.v1_payload_names(result.inner)
        m.notifies = v1.v1_notify_names(result.inner)
        note_error_notifies(sa, result.inner)
        learn_v1(sa, ex, m)

    def _note_v2(self, sa: IkeSaRecord, rec: MessageRecord, msg: v2.IkeMessage) -> None:
        """Facts visible in clear payloads: proposals, vendor ids, error notifies."""
        h = msg.header
        for p in msg.payloads:
            if isinstance(p, v2.VendorIdPayload):
                name = _vendor_name(p.data)
                if name not in sa.vendor_ids:
                    sa.vendor_ids.append(name)
        if h.exchange_type == ExchangeType.IKE_SA_INIT:
            sa_p = next((p for p in msg.payloads if isinstance(p, v2.SaPayload)), None)
            if sa_p is not None:
                props = [proposal_dict_v2(p) for p in sa_p.proposals]
                if h.is_response and props:
                    sa.proposal = props[0]
                elif not h.is_response:
                    sa.offered = props
        note_error_notifies(sa, msg.payloads)

    # ------------------------------------------------------------------ IKEv1
    def _on_v1(self, d: IkeDatagram, msg: v1.V1Message) -> None:
        h = msg.header
        sa = self._v1_by_cookie.get(h.cookie_i)
        if sa is None:
            # The first message comes from the initiator (responder cookie zero); if the capture
            # starts later, the sender of the first message seen is assumed the initiator.
            init, resp = (d.src, d.sport), (d.dst, d.dport)
            sa = IkeSaRecord(
                version=1,
                spi_i=h.cookie_i,
                spi_r=None if h.cookie_r == ZERO_SPI else h.cookie_r,
                initiator=init,
                responder=resp,
            )
            self.sas.append(sa)
            self.birth[id(sa)] = self._seq
            self._v1_by_cookie[h.cookie_i] = sa
        elif sa.spi_r is None and h.cookie_r != ZERO_SPI:
            sa.spi_r = h.cookie_r
        sa.peers_seen.add((d.src, d.sport))
        if d.non_esp_marker or d.sport == 4500 or d.dport == 4500:
            sa.nat_seen = True
        from_init = d.src == sa.initiator[0]
        rec = _message_record(d, h.length, False, from_init)
        rec.parsed = msg
        rec.encrypted = bool(h.flags & 0x01)
        rec.payloads = v1.v1_payload_names(msg.payloads) if msg.payloads else []
        rec.notifies = v1.v1_notify_names(msg.payloads) if msg.payloads else []
        mid = h.message_id
        ex = None
        for e in reversed(sa.exchanges):
            if e.message_id == mid and e.exchange_type == h.exchange_type:
                ex = e
                break
        if ex is None:
            ex = ExchangeRecord(
                type=v1.v1_exchange_name(h.exchange_type),
                exchange_type=h.exchange_type,
                message_id=mid,
                version=1,
                initiated_by_initiator=from_init,
            )
            sa.exchanges.append(ex)
        for m in ex.messages:
            if m.src == d.src and self._raw.get(id(m)) == d.data:
                m.transmissions.append(_transmission(d))
                return
        rec.is_response = bool(ex.messages) and rec.from_initiator != ex.initiated_by_initiator
        ex.messages.append(rec)
        if ex.request is None:
            ex.request = rec
        elif ex.response is None and rec.from_initiator != ex.initiated_by_initiator:
            ex.response = rec
        self._raw[id(rec)] = d.data
        self._note_v1(sa, rec, msg)
        if rec.encrypted and self.v1_decrypt_hook is not None:
            result = self.v1_decrypt_hook(sa, ex, rec, msg)
            if result is not None and result.later:
                self._v1_later.append((sa, ex, rec, msg))
            self._apply_v1(sa, ex, rec, result)

    def _v1_decrypt_later(self) -> None:
        """Decrypt the IKEv1 messages that came before their phase 1 in the capture, now in time
        order: a phase-2 or informational IV derives from the last phase-1 CBC block and the
        message's own M-ID (RFC 2409 Appendix B), so they decrypt once phase 1 has been read."""
        waiting, self._v1_later = self._v1_later, []
        if self.v1_decrypt_hook is None:
            return
        for sa, ex, rec, msg in sorted(waiting, key=lambda w: (w[2].ts, w[2].first_frame)):
            self._apply_v1(sa, ex, rec, self.v1_decrypt_hook(sa, ex, rec, msg))

    def _note_v1(self, sa: IkeSaRecord, rec: MessageRecord, msg: v1.V1Message) -> None:
        for p in msg.payloads:
            if isinstance(p, v1.V1VendorIdPayload):
                name = _vendor_name(p.data)
                if name not in sa.vendor_ids:
                    sa.vendor_ids.append(name)
            elif isinstance(p, v1.V1SaPayload) and msg.header.message_id == 0:
                props = [proposal_dict_v1(pp) for pp in p.proposals]
                if not rec.from_initiator and props:
                    sa.proposal = props[0]
                elif rec.from_initiator and not sa.offered:
                    sa.offered = [o for pp in p.proposals for o in proposal_dicts_v1_all(pp)]
        note_error_notifies(sa, msg.payloads)

    # ------------------------------------------------------------------ malformed
    def _on_malformed(self, d: IkeDatagram, major: int, e: MalformedMessage) -> None:
        """Keep a record of the message so the ladder shows it (header is valid: 28 bytes)."""
        try:
            if major == 2:
                h = v2.peek_header(d.data)
                sa = self._find_v2_sa(h.spi_i, h.spi_r, d, h)
                rec = _message_record(d, h.length, h.is_response, h.is_initiator)
                rec.malformed = f"{e.field} at offset {e.offset}: {e.reason}"
                requester_is_init = h.is_initiator != h.is_response
                ex = ExchangeRecord(
                    type=exchange_name_v2(h.exchange_type),
                    exchange_type=h.exchange_type,
                    message_id=h.message_id,
                    initiated_by_initiator=requester_is_init,
                )
                if h.is_response:
                    ex.response = rec
                else:
                    ex.request = rec
                sa.exchanges.append(ex)
        except WireError:
            return

    # ------------------------------------------------------------------ finish
    def finish(self) -> list[IkeSaRecord]:
        self._v1_decrypt_later()
        for p in self.half_open.settle():
            self._promote(p)
        self.sas.sort(key=lambda sa: self.birth.get(id(sa), 0))
        for sa in self.sas:
            in_time_order(sa)
        _infer_rekeys(self.sas)
        settle_states(self.sas)
        return self.sas

    def snapshot(self) -> list[IkeSaRecord]:
        """The IKE SAs as :meth:`finish` would return them now, as copies: the records the pass
        keeps updating (SAs, exchanges, messages and their lists) are not shared."""
        scratch = IkeReconstructor()  # the requests settle() would promote, in records of their own
        for p in self.half_open.settle(final=False):
            scratch._promote(p)
        born = [(self.birth.get(id(sa), 0), _copy_sa(sa)) for sa in self.sas]
        born += [(scratch.birth.get(id(sa), 0), sa) for sa in scratch.sas]
        sas = [sa for _b, sa in sorted(born, key=lambda t: t[0])]
        for sa in sas:
            in_time_order(sa)
        _infer_rekeys(sas)
        settle_states(sas)
        return sas


def _copied(obj: _R) -> _R:
    """A shallow copy whose list, dict and set fields are copies too."""
    new = copy.copy(obj)
    for f in fields(new):  # type: ignore[arg-type]
        v = getattr(new, f.name)
        if isinstance(v, list | dict | set):
            setattr(new, f.name, type(v)(v))
    return new


def _copy_sa(sa: IkeSaRecord) -> IkeSaRecord:
    new = _copied(sa)
    msgs: dict[int, MessageRecord] = {}

    def m(rec: MessageRecord | None) -> MessageRecord | None:
        if rec is None:
            return None
        if id(rec) not in msgs:
            msgs[id(rec)] = _copied(rec)
        return msgs[id(rec)]

    exchanges = []
    for ex in sa.exchanges:
        e = _copied(ex)
        e.request, e.response = m(ex.request), m(ex.response)
        e.messages = [m(x) for x in ex.messages]  # type: ignore[misc]
        exchanges.append(e)
    new.exchanges = exchanges
    new.child_sas = [_copied(c) for c in sa.child_sas]
    return new


def in_time_order(sa: IkeSaRecord) -> None:
    """Put an SA's records in time order: each message's transmissions, an IKEv1 exchange's
    messages (with its request and response named again) and the SA's exchanges. They are
    recorded in capture order, which a merged capture or one taken on several interfaces does
    not keep in time; every span, interval and "first"/"last" read from them is a time. A
    capture in time order is left as it is (the sorts are stable)."""

    def unsorted(times: list[float]) -> bool:
        return any(b < a for a, b in zip(times, times[1:], strict=False))

    if sa.version == 1:
        _v1_roles(sa)
    for ex in sa.exchanges:
        for m in ex.all_messages():
            if unsorted([t.ts for t in m.transmissions]):
                m.transmissions.sort(key=lambda t: t.ts)
        if ex.version == 1 and unsorted([m.ts for m in ex.messages]):
            ex.messages.sort(key=lambda m: m.ts)
            first = ex.messages[0]
            ex.initiated_by_initiator = first.from_initiator
            ex.request = first
            ex.response = next((m for m in ex.messages if m.from_initiator != first.from_initiator), None)
            for m in ex.messages:
                m.is_response = m is not first and m.from_initiator != first.from_initiator
    if unsorted([e.first_ts for e in sa.exchanges]):
        sa.exchanges.sort(key=lambda e: e.first_ts)
    _first_endpoints(sa)
    deletes_in_time_order(sa)


def _first_endpoints(sa: IkeSaRecord) -> None:
    """The initiator's and responder's address and port as first seen in time (before any
    NAT-T float to 4500): the SA took them from its first message in the capture, which out of
    time order may be a later one."""
    msgs = [m for e in sa.exchanges for m in e.all_messages() if m.transmissions]
    if not msgs:
        return
    m = min(msgs, key=lambda x: x.ts)
    a, b = (m.src, m.sport), (m.dst, m.dport)
    sa.initiator, sa.responder = (a, b) if m.from_initiator else (b, a)


def _v1_roles(sa: IkeSaRecord) -> None:
    """An IKEv1 SA whose first message seen came from the responder (its answer captured before
    the initiator's first message) names the roles the other way round: only the initiator's
    first phase 1 message has a zero responder cookie (RFC 2408 §3.1), so its sender is the
    initiator."""
    for ex in sa.exchanges:
        for m in ex.messages:
            h = getattr(m.parsed, "header", None)
            if ex.message_id == 0 and h is not None and h.cookie_r == ZERO_SPI and not m.from_initiator:
                sa.initiator, sa.responder = sa.responder, sa.initiator
                for e in sa.exchanges:
                    e.initiated_by_initiator = not e.initiated_by_initiator
                    for x in e.messages:
                        x.from_initiator = not x.from_initiator
                        x.is_response = x.from_initiator != e.initiated_by_initiator
                sa.proposal, sa.offered = None, []  # read with the roles swapped: read again
                for x in ex.messages:
                    for p in getattr(x.parsed, "payloads", ()):
                        if isinstance(p, v1.V1SaPayload):
                            props = [proposal_dict_v1(pp) for pp in p.proposals]
                            if not x.from_initiator and props:
                                sa.proposal = props[0]
                            elif x.from_initiator and not sa.offered:
                                sa.offered = [o for pp in p.proposals for o in proposal_dicts_v1_all(pp)]
                return


# How soon after a CREATE_CHILD_SA on the old IKE SA the old SA must go quiet (its DELETE) for
# a new IKE SA between the same peers to be taken as its rekey when nothing was decrypted.
REKEY_DELETE_WINDOW = 30.0


def _infer_rekeys(sas: list[IkeSaRecord]) -> None:
    """Link IKEv2 SAs that appear without IKE_SA_INIT to the SA they probably rekey.

    Without keys the CREATE_CHILD_SA that rekeyed an IKE SA cannot be read. An IKE SA whose first
    exchange is not IKE_SA_INIT, between the same two hosts, starting after an answered
    CREATE_CHILD_SA on an older SA whose last exchange (the DELETE) follows it within
    ``REKEY_DELETE_WINDOW``, is recorded as its rekey with ``rekey_inferred``.
    """
    for new in sas:
        if new.version != 2 or new.rekeyed_from is not None or not new.exchanges:
            continue
        if any(e.exchange_type == ExchangeType.IKE_SA_INIT for e in new.exchanges):
            continue
        hosts = {new.initiator[0], new.responder[0]}
        start = new.first_ts
        best = None
        for old in sas:
            if old is new or old.version != 2 or {old.initiator[0], old.responder[0]} != hosts:
                continue
            ccs = [
                e
                for e in old.exchanges
                if e.exchange_type == ExchangeType.CREATE_CHILD_SA
                and e.response is not None
                and e.response.ts <= start
            ]
            if not ccs:
                continue
            last_ccs = max(ccs, key=lambda e: e.response.ts if e.response else 0.0)
            t_ccs = last_ccs.response.ts if last_ccs.response else 0.0
            later = [e.first_ts for e in old.exchanges if e.first_ts > t_ccs]
            if later and min(later) - t_ccs > REKEY_DELETE_WINDOW:
                continue
            if best is None or t_ccs > best[0]:
                best = (t_ccs, old)
        if best is not None:
            old = best[1]
            new.rekeyed_from = old.key
            new.rekey_inferred = True
            if new.key not in old.rekeyed_to:
                old.rekeyed_to.append(new.key)


def _message_record(d: IkeDatagram, size: int, is_response: bool, from_initiator: bool) -> MessageRecord:
    """A message's record with its first transmission, addressed as the datagram ``d``."""
    rec = MessageRecord(
        src=d.src,
        dst=d.dst,
        sport=d.sport,
        dport=d.dport,
        size=size,
        is_response=is_response,
        from_initiator=from_initiator,
        non_esp_marker=d.non_esp_marker,
        transport=d.transport,
    )
    rec.transmissions.append(_transmission(d))
    return rec


def _transmission(d: IkeDatagram) -> Transmission:
    return Transmission(d.frames, d.ts, d.ip_len, d.ip_fragments)


def _extend(t: Transmission, d: IkeDatagram) -> Transmission:
    # One more RFC 7383 fragment: ip_fragments stays per datagram (the most any of them needed),
    # so separate IKE fragments are not mistaken for IP fragmentation.
    return Transmission(t.frames + d.frames, t.ts, t.ip_len + d.ip_len, max(t.ip_fragments, d.ip_fragments))


def _vendor_name(data: bytes) -> str:
    from ..wire.vendors import identify_vendor

    return identify_vendor(data) or f"unknown ({data[:16].hex()}{'…' if len(data) > 16 else ''})"


def note_error_notifies(sa: IkeSaRecord, payloads: Iterable[object]) -> None:
    """Record the SA's error notifies (IKEv1 or IKEv2 Notify payloads, clear or decrypted)."""
    for p in payloads:
        if (
            isinstance(p, v2.NotifyPayload | v1.V1NotifyPayload)
            and p.is_error
            and p.name not in sa.error_notifies
        ):
            sa.error_notifies.append(p.name)


# "error types that don't prevent the IKE SA from being set up" in IKE_AUTH (RFC 7296 §2.21.2)
_CHILD_ONLY_ERRORS = frozenset(
    {"NO_PROPOSAL_CHOSEN", "TS_UNACCEPTABLE", "SINGLE_PAIR_REQUIRED", "INTERNAL_ADDRESS_FAILURE", "FAILED_CP_REQUIRED"}
)


def settle_states(sas: list[IkeSaRecord], end: float | None = None) -> None:
    """Settle every SA's state. ``end``: when the capture ended, once known (the report's last
    record time): a request sent within ``IN_FLIGHT_SECONDS`` of it and not retransmitted may
    still be answered, so an SA waiting on it is incomplete, not failed. Without ``end`` (the
    reconstructor alone does not know it) such an SA reads failed until settled again with it."""
    by_key = {sa.key: sa for sa in sas}
    for sa in sas:
        if end is None or sa.state == "failed":
            _settle_state(sa, by_key, end)


def _in_flight(e: ExchangeRecord, end: float | None) -> bool:
    return end is not None and e.unanswered and not e.unanswered_at(end)


def _rekey_evidence(sa: IkeSaRecord, by_key: dict[str, IkeSaRecord]) -> str:
    """Which answered CREATE_CHILD_SA of its parent created a rekeyed IKE SA (the last one
    answered before the new SA's first message, as _infer_rekeys links them)."""
    parent = by_key.get(sa.rekeyed_from or "")
    what = f"created by rekey of IKE SA {sa.rekeyed_from}"
    if parent is None:
        return what
    ccs = [
        e
        for e in parent.exchanges
        if e.exchange_type == ExchangeType.CREATE_CHILD_SA and e.response is not None and e.response.ts <= sa.first_ts
    ]
    if not ccs:
        return what
    e = max(ccs, key=lambda x: x.response.ts if x.response else 0.0)
    frames = [m.first_frame for m in (e.request, e.response) if m is not None]
    return f"{what} (its CREATE_CHILD_SA at frame{'s' if len(frames) > 1 else ''} {', '.join(map(str, frames))})"


def _settle_state(sa: IkeSaRecord, by_key: dict[str, IkeSaRecord] | None = None, end: float | None = None) -> None:
    """Decide established/failed/incomplete/deleted/redirected from what the capture shows."""
    sa.state_basis, sa.state_evidence = "seen", ""
    if sa.version == 1:
        _settle_v1(sa, end)
        return
    init = [e for e in sa.exchanges if e.exchange_type == ExchangeType.IKE_SA_INIT]
    auth = [e for e in sa.exchanges if e.exchange_type == ExchangeType.IKE_AUTH]
    later = [
        e
        for e in sa.exchanges
        if e.exchange_type in (ExchangeType.CREATE_CHILD_SA, ExchangeType.INFORMATIONAL)
    ]
    fatal = {
        "NO_PROPOSAL_CHOSEN",
        "INVALID_KE_PAYLOAD",
        "AUTHENTICATION_FAILED",
        "INVALID_SYNTAX",
        "UNSUPPORTED_CRITICAL_PAYLOAD",
        "INVALID_MAJOR_VERSION",
        "INTERNAL_ADDRESS_FAILURE",
        "FAILED_CP_REQUIRED",
        "AUTHORIZATION_FAILED",
    }
    ok_init = any(
        e.response is not None and not (set(e.response.notifies) & fatal) and "SA" in e.response.payloads
        for e in init
    )
    deleted = False
    for e in sa.exchanges:
        for m in e.all_messages():
            for p in m.inner:
                if isinstance(p, v2.DeletePayload) and p.protocol_id == 1:
                    deleted = True
    # Established means both AUTH payloads were sent and accepted: an IKE_AUTH request carrying
    # the initiator's AUTH answered by the responder's AUTH without a failure. With EAP (RFC 7296
    # §2.16) the responder's AUTH comes in the first round, the initiator's only in the last one,
    # after EAP-Success; an EAP-Failure (RFC 3748 §4.2) ends the exchange without it.
    auth_ok = False
    auth_failed = False
    for e in auth:
        if e.response is None:
            continue
        if e.response.decrypted:
            names = set(e.response.notifies)
            if "AUTH" in e.response.payloads:
                # errors about the CHILD SA do not prevent the IKE SA (RFC 7296 §2.21.2)
                names -= _CHILD_ONLY_ERRORS
            if names & fatal or any(
                isinstance(p, v2.EapPayload) and p.code == EapCode.FAILURE for p in e.response.inner
            ):
                auth_failed = True
            elif "AUTH" in e.response.payloads and (
                e.request is None or not e.request.decrypted or "AUTH" in e.request.payloads
            ):
                auth_ok = True
        elif e.response.payloads and "SK" not in e.response.payloads and "SKF" not in e.response.payloads:
            if set(e.response.notifies) & fatal:
                auth_failed = True
    # The initiator rejecting the responder's AUTH says so in a separate INFORMATIONAL after
    # IKE_AUTH (RFC 7296 §2.21.2): the responder's AUTH was sent but not accepted.
    for e in later:
        for m in e.all_messages():
            if m.decrypted and "AUTHENTICATION_FAILED" in m.notifies:
                auth_failed = True
                auth_ok = False
    if not ok_init and init:
        if any("REDIRECT" in e.response.notifies for e in init if e.response is not None):
            # RFC 5685 §3: the gateway hands the client to another one, a deliberate step
            sa.state = "redirected"
            return
        any_resp = any(e.response is not None for e in init)
        lost = any(e.unanswered and not _in_flight(e, end) for e in init)
        sa.state = "failed" if any_resp or lost else "incomplete"
        return
    if auth_failed:
        sa.state = "failed"  # a Delete that follows the failure does not make it a closed tunnel
    elif deleted:
        sa.state = "deleted"
    elif auth_ok:
        sa.state = "established"
    elif not init and not auth and sa.rekeyed_from is not None:
        # created by its parent's answered CREATE_CHILD_SA (RFC 7296 §1.3.2), which set it up:
        # it has no IKE_SA_INIT or IKE_AUTH of its own
        sa.state = "established"
        if sa.rekey_inferred:  # the link itself is from timing (no decrypted CREATE_CHILD_SA)
            sa.state_basis, sa.state_evidence = "inferred", _rekey_evidence(sa, by_key or {})
    elif (evidence := later_exchange_evidence(sa)) is not None:
        # AUTH not read, but only an established IKE SA has such exchanges (sa_state.py)
        sa.state, sa.state_basis, sa.state_evidence = "established", "inferred", evidence
    elif auth and all(e.unanswered and not _in_flight(e, end) for e in auth):
        sa.state = "failed"
    else:
        sa.state = "incomplete"


def _settle_v1(sa: IkeSaRecord, end: float | None = None) -> None:
    p1 = [e for e in sa.exchanges if e.message_id == 0]
    qm_done = any(e.type == "QUICK_MODE" and len(e.messages) >= 2 for e in sa.exchanges)
    deleted = any(
        e.type == "INFORMATIONAL" and any("D" in m.payloads for m in e.messages) for e in sa.exchanges
    )
    errors = bool(sa.error_notifies)
    phase1_msgs = sum(len(e.messages) for e in p1)
    p1_type = p1[0].type if p1 else ""
    complete = (
        qm_done
        or (p1_type == "MAIN_MODE" and phase1_msgs >= 6)
        or (p1_type == "AGGRESSIVE_MODE" and phase1_msgs >= 3)
    )
    if deleted and complete:
        sa.state = "deleted"
    elif complete:
        sa.state = "established"
        if not any(m.decrypted for e in sa.exchanges for m in e.messages):
            # the authenticating messages (Main Mode 5 and 6, Aggressive Mode 2 and 3) unread
            sa.state_basis = "inferred"
            sa.state_evidence = "Quick Mode answered" if qm_done else f"{p1_type} completed ({phase1_msgs} messages)"
    elif errors:
        sa.state = "failed"
    elif p1 and all(m.from_initiator for m in p1[0].messages) and not _in_flight(p1[0], end):
        sa.state = "failed"  # the responder never answered
    else:
        sa.state = "incomplete"
