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

Beside this pass: the decryptors' results (ike_hooks.py), the records it builds (ike_records.py)
and what follows it, time order, inferred rekeys and SA states (ike_finish.py). The names
other modules and tests import from here are re-exported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..capture.model import IkeDatagram
from ..keys.rekey import RekeyExchange
from ..wire import ikev1 as v1
from ..wire import ikev2 as v2
from ..wire.errors import MalformedMessage, WireError
from ..wire.registry import ExchangeType, name_of
from .decrypted import learn, learn_v1
from .halfopen import HalfOpenLedger, Promoted, ledger_key
from .ike_finish import _infer_rekeys, in_time_order, settle_states
from .ike_finish import _settle_state as _settle_state  # tests/analysis/test_eap_state.py
from .ike_hooks import DecryptHook, V1Decrypted, V1DecryptHook, V2Decrypted
from .ike_records import (
    ZERO_SPI,
    _copy_sa,
    _extend,
    _message_record,
    _note_v1,
    _note_v2,
    _transmission,
    note_error_notifies,
)
from .model import ExchangeRecord, IkeSaRecord, MessageRecord

_V1_PHASE1 = (2, 4)  # Identity Protection (Main Mode) and Aggressive exchanges


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
        _note_v2(sa, rec, msg)
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
        _note_v1(sa, rec, msg)
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
