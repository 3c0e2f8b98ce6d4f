"""Decryption hooks for the single analysis pass: IKEv2 SK/SKF, IKEv1, ESP.

``install_decryption(rec)`` wires them into a :class:`Reconstructor` when key material is
loaded. Decrypted IKE payloads are attached to their :class:`MessageRecord` (``inner``,
``payloads``, ``notifies``); CHILD SAs, traffic selectors and IKE SA rekeys learnt from them
are added to the IKE SA record.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..reconstruction.ike_sas import note_error_notifies, proposal_dict_v2
from ..reconstruction.model import ChildSaRecord, IkeSaRecord, MessageRecord
from ..wire import ikev2 as v2
from ..wire.errors import WireError
from ..wire.registry import ExchangeType, ProtocolId

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..capture.writer import RecordEncoder
    from ..crypto.sk import SkContext
    from ..keys.model import IkeSaKeys
    from ..reconstruction.reconstructor import Reconstructor
    from .esp import FailSink, PlainSink


def install_decryption(
    rec: Reconstructor,
    *,
    plain: PlainSink | None = None,
    fail: FailSink | None = None,
    allow_pool: bool = True,
    encoder: RecordEncoder | None = None,
    raw_out: Callable[[bytes], None] | None = None,
) -> None:
    """Decrypt IKE and ESP during the pass. ``plain``/``fail`` receive every ESP packet that
    did / did not decrypt (for ``ipsecdiag decrypt``). Large captures decrypt ESP in worker
    processes (see :mod:`.decrypt_pool`) unless ``allow_pool`` is False; there, given an
    ``encoder`` and ``raw_out``, the workers build the output records themselves and
    ``raw_out`` receives them in place of ``plain``."""
    keys = rec.keys
    if not keys:
        return
    ike = IkeV2Decryptor(rec)
    rec.ike.decrypt_hook = ike.decrypt
    from .ikev1 import IkeV1DecryptHook

    rec.ike.v1_decrypt_hook = IkeV1DecryptHook(rec).decrypt
    if not any(getattr(k, "protocol", None) == "esp" for k in keys):
        return
    from .pool import PooledEspDecryptHook, use_pool

    workers = use_pool(rec.capture_bytes) if allow_pool else 0
    if workers:
        pooled = PooledEspDecryptHook(
            rec, plain=plain, fail=fail, workers=workers, encoder=encoder, raw_out=raw_out
        )
        rec.esp.hook = pooled
        rec.finishers.append(pooled.finish)
        rec.closers.append(pooled.close)
    else:
        from .esp import EspDecryptHook

        rec.esp.hook = EspDecryptHook(rec, plain=plain, fail=fail)


def _sk_offset(msg: v2.IkeMessage) -> int:
    """Offset of the SK/SKF generic payload header: it is the last payload of the message."""
    sk = msg.encrypted
    h = msg.header
    body = len(sk.data) + (8 if isinstance(sk, v2.SkfPayload) else 4)
    return h.length - body


class IkeV2Decryptor:
    def __init__(self, rec: Reconstructor) -> None:
        self.rec = rec
        self.keys = rec.keys
        self._sa_by_spis: dict[tuple[bytes, bytes], IkeSaRecord] = {}
        # Keyed SK contexts, one per IKE SA and direction, owned by this pass (not cached
        # process-wide): they and their key material go when the reconstructor does.
        self._contexts: dict[tuple[IkeSaKeys, bool], SkContext] = {}

    def decrypt(self, sa: IkeSaRecord, m: MessageRecord, parts: list[tuple[bytes, v2.IkeMessage]]) -> None:
        from ..crypto.errors import CryptoError
        from ..crypto.sk import SkContext

        h = parts[0][1].header
        k = self.keys.ike(h.spi_i, h.spi_r)
        if k is None:
            return
        sa.keys_available = True
        plain = b""
        try:
            for raw, msg in parts:
                direction = (k, msg.header.is_initiator)
                ctx = self._contexts.get(direction)
                if ctx is None:
                    ctx = self._contexts[direction] = SkContext(k, from_initiator=msg.header.is_initiator)
                plain += ctx.decrypt(raw[: msg.header.length], _sk_offset(msg))
        except CryptoError as e:
            m.decrypted = False
            m.decrypt_error = _crypto_text(e, sa)
            return
        first = parts[0][1].encrypted.next_payload
        try:
            inner = v2.parse_payloads(first, plain)
        except WireError as e:
            m.decrypted = True
            m.malformed = f"decrypted payloads: {e}"
            self.rec.report.malformed.append((m.first_frame, "ikev2-sk", 0, str(e)))
            return
        m.decrypted = True
        m.inner = inner
        m.payloads = m.payloads + v2.payload_names(inner)
        m.notifies = m.notifies + v2.notify_names(inner)
        note_error_notifies(sa, inner)
        self._learn(sa, m, h)

    # -- what decrypted exchanges tell us -------------------------------------------------
    def _learn(self, sa: IkeSaRecord, m: MessageRecord, h: v2.IkeHeader) -> None:
        if not m.is_response:
            return
        ex = next((e for e in reversed(sa.exchanges) if e.response is m), None)
        if ex is None or ex.request is None or not ex.request.decrypted:
            # Request not decrypted (yet): nothing to pair.
            if ex is not None and ex.exchange_type == ExchangeType.INFORMATIONAL:
                self._deletes(sa, m)
            return
        req = ex.request
        if ex.exchange_type in (ExchangeType.IKE_AUTH, ExchangeType.CREATE_CHILD_SA):
            self._child_or_rekey(sa, ex.exchange_type, req, m)
        self._deletes(sa, req)

    def _child_or_rekey(self, sa: IkeSaRecord, ex_type: int, req: MessageRecord, resp: MessageRecord) -> None:
        rsa = next((p for p in resp.inner if isinstance(p, v2.SaPayload)), None)
        qsa = next((p for p in req.inner if isinstance(p, v2.SaPayload)), None)
        if rsa is None or not rsa.proposals:
            return
        chosen = rsa.proposals[0]
        offered = None
        if qsa is not None:
            offered = next((p for p in qsa.proposals if p.number == chosen.number), None) or (
                qsa.proposals[0] if qsa.proposals else None
            )
        if chosen.protocol_id == ProtocolId.IKE:
            self._ike_rekey(sa, offered, chosen, resp)
            return
        notif = {n.name: n for n in req.inner if isinstance(n, v2.NotifyPayload)}
        rnotif = {n.name for n in resp.inner if isinstance(n, v2.NotifyPayload)}
        rekey_of = None
        if "REKEY_SA" in notif and len(notif["REKEY_SA"].spi) == 4:
            rekey_of = int.from_bytes(notif["REKEY_SA"].spi, "big")
        c = ChildSaRecord(
            spi_i=int.from_bytes(offered.spi, "big")
            if offered is not None and len(offered.spi) == 4
            else None,
            spi_r=int.from_bytes(chosen.spi, "big") if len(chosen.spi) == 4 else None,
            mode="transport"
            if "USE_TRANSPORT_MODE" in notif and "USE_TRANSPORT_MODE" in rnotif
            else "tunnel",
            proposal=proposal_dict_v2(chosen),
            protocol="AH" if chosen.protocol_id == ProtocolId.AH else "ESP",
            created_in=ExchangeType(ex_type).name,
            created_frame=resp.first_frame,
            rekey_of=rekey_of,
            ts_i=[
                s.display()
                for p in resp.inner
                if isinstance(p, v2.TsPayload) and p.payload_type == 44
                for s in p.selectors
            ],
            ts_r=[
                s.display()
                for p in resp.inner
                if isinstance(p, v2.TsPayload) and p.payload_type == 45
                for s in p.selectors
            ],
            esn=chosen_esn(chosen),
        )
        sa.child_sas.append(c)

    def _ike_rekey(
        self, sa: IkeSaRecord, offered: v2.Proposal | None, chosen: v2.Proposal, resp: MessageRecord
    ) -> None:
        if offered is None or len(offered.spi) != 8 or len(chosen.spi) != 8:
            return
        new_key = f"{offered.spi.hex()}/{chosen.spi.hex()}"
        if new_key not in sa.rekeyed_to:
            sa.rekeyed_to.append(new_key)
        for other in self.rec.ike.sas:
            if other.spi_i == offered.spi and other.spi_r == chosen.spi:
                other.rekeyed_from = sa.key
        self.rec.ike.rekey_parents[(offered.spi, chosen.spi)] = sa

    def _deletes(self, sa: IkeSaRecord, m: MessageRecord) -> None:
        for p in m.inner:
            if isinstance(p, v2.DeletePayload) and p.protocol_id == ProtocolId.IKE:
                for c in sa.child_sas:  # deleting the IKE SA ends its CHILD SAs (RFC 7296 §1.4.1)
                    if c.deleted_frame is None:
                        c.deleted_frame = m.first_frame
            if isinstance(p, v2.DeletePayload) and p.protocol_id in (ProtocolId.ESP, ProtocolId.AH):
                for spi in p.spis:
                    s = int.from_bytes(spi, "big")
                    for c in sa.child_sas:
                        if s in (c.spi_i, c.spi_r) and c.deleted_frame is None:
                            c.deleted_frame = m.first_frame


def chosen_esn(p: v2.Proposal) -> bool | None:
    from ..wire.registry import TransformType

    vals = [t.id for t in p.transforms if t.type == TransformType.ESN]
    return bool(vals[0]) if vals else None


def _crypto_text(e: Exception, sa: IkeSaRecord) -> str:
    from ..crypto.errors import IntegrityError, UnsupportedAlgorithm

    if isinstance(e, IntegrityError):
        return f"integrity check failed with the supplied keys for IKE SA {sa.key}"
    if isinstance(e, UnsupportedAlgorithm):
        return f"cannot decrypt: {e}"
    return f"decryption failed: {e}"
