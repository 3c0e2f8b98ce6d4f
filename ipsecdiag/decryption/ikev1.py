"""IKEv1 decryption during analysis: one :class:`V1Decryptor` per ISAKMP SA, fed in capture
order (the CBC IV chains across messages, RFC 2409 Appendix B), with the cipher taken from the
negotiated phase-1 SA and the IV seed from the two KE payloads."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..crypto.errors import CryptoError
from ..crypto.ikev1 import V1Decryptor
from ..reconstruction.ike_sas import note_error_notifies
from ..reconstruction.model import ChildSaRecord, ExchangeRecord, IkeSaRecord, MessageRecord
from ..wire import ikev1 as v1
from ..wire.errors import WireError
from ..wire.registry import V1EncapMode, V1EncrAlg, V1HashAlg, V1IpsecAttr, V1ProtocolId, name_of

if TYPE_CHECKING:
    from ..reconstruction.reconstructor import Reconstructor


class IkeV1DecryptHook:
    def __init__(self, rec: Reconstructor) -> None:
        self.rec = rec
        self._dec: dict[bytes, V1Decryptor | str] = {}

    def _decryptor(self, sa: IkeSaRecord) -> V1Decryptor | str:
        d = self._dec.get(sa.spi_i)
        if d is not None:
            return d
        keys = self.rec.keys.ikev1(sa.spi_i)
        if keys is None:
            return "no keys"
        sa.keys_available = True
        p = sa.proposal or {}
        try:
            encr = keys.encr if keys.encr is not None else V1EncrAlg[str(p.get("encr"))]
            hash_alg = keys.hash_alg if keys.hash_alg is not None else V1HashAlg[str(p.get("hash"))]
        except KeyError:
            return "the phase 1 proposal (cipher and hash) is not in the capture"
        gxi = gxr = None
        for e in sa.exchanges:
            if e.message_id != 0:
                continue
            for m in e.messages:
                parsed = m.parsed
                for pl in getattr(parsed, "payloads", ()):
                    if isinstance(pl, v1.V1KePayload):
                        if m.from_initiator and gxi is None:
                            gxi = pl.data
                        elif not m.from_initiator and gxr is None:
                            gxr = pl.data
        try:
            dec = V1Decryptor(keys, int(encr), p.get("encr_key_bits") or keys.encr_key_bits, int(hash_alg))
        except CryptoError as e:
            self._dec[sa.spi_i] = f"cannot decrypt: {e}"
            return self._dec[sa.spi_i]
        if gxi is None or gxr is None:
            return "the KE payloads of phase 1 are not in the capture (needed for the IV)"
        dec.set_ke(gxi, gxr)
        self._dec[sa.spi_i] = dec
        return dec

    def decrypt(self, sa: IkeSaRecord, ex: ExchangeRecord, m: MessageRecord, msg: v1.V1Message) -> None:
        dec = self._decryptor(sa)
        if isinstance(dec, str):
            if dec != "no keys":
                m.decrypted = False
                m.decrypt_error = dec
            return
        body = msg.encrypted_body or b""
        try:
            pt = dec.decrypt(msg.header.message_id, body)
        except CryptoError as e:
            m.decrypted = False
            m.decrypt_error = f"decryption with the supplied key failed for ISAKMP SA {sa.key}: {e}"
            return
        try:
            inner = v1.parse_v1_payloads(msg.header.next_payload, pt, 28)
        except WireError as e:
            m.decrypted = False
            m.decrypt_error = f"decrypted payloads do not parse (wrong key?): {e}"
            return
        m.decrypted = True
        m.inner = tuple(inner)
        m.payloads = v1.v1_payload_names(inner)
        m.notifies = v1.v1_notify_names(inner)
        note_error_notifies(sa, inner)
        if ex.type == "QUICK_MODE" and m.from_initiator != ex.initiated_by_initiator:
            self._child_from_quick_mode(sa, ex, m)
        for p in inner:
            if isinstance(p, v1.V1DeletePayload):
                gone = {int.from_bytes(x, "big") for x in p.spis if len(x) == 4}
                for c in sa.child_sas:
                    ended = p.protocol_id == V1ProtocolId.PROTO_ISAKMP or gone & {c.spi_i, c.spi_r}
                    if ended and c.deleted_frame is None:
                        c.deleted_frame = m.first_frame

    @staticmethod
    def _child_from_quick_mode(sa: IkeSaRecord, ex: ExchangeRecord, resp: MessageRecord) -> None:
        """Quick Mode's first two messages carry each side's inbound SPI (RFC 2409 §5.5):
        the initiator's offer and the responder's chosen proposal, plus IDci/IDcr."""
        req = ex.request
        if req is None or not req.decrypted:
            return
        offer = next((p for p in req.inner if isinstance(p, v1.V1SaPayload)), None)
        chosen = next((p for p in resp.inner if isinstance(p, v1.V1SaPayload)), None)
        if offer is None or chosen is None or not chosen.proposals:
            return
        cp = chosen.proposals[0]
        op = next(
            (p for p in offer.proposals if p.number == cp.number and p.protocol_id == cp.protocol_id),
            offer.proposals[0] if offer.proposals else None,
        )
        if op is None or len(cp.spi) != 4 or len(op.spi) != 4:
            return
        t = cp.transforms[0] if cp.transforms else None
        mode = "tunnel"
        if t is not None:
            enc = next((a.int_value for a in t.attributes if a.type == V1IpsecAttr.ENCAPSULATION_MODE), None)
            if enc in (V1EncapMode.TRANSPORT, V1EncapMode.UDP_TRANSPORT, V1EncapMode.UDP_TRANSPORT_DRAFT):
                mode = "transport"
        ids = [p.display() for p in req.inner if isinstance(p, v1.V1IdPayload)]
        spi_i = int.from_bytes(op.spi, "big")
        if any(c.spi_i == spi_i for c in sa.child_sas):
            return  # the third Quick Mode message or a retransmission
        sa.child_sas.append(
            ChildSaRecord(
                spi_i=spi_i,
                spi_r=int.from_bytes(cp.spi, "big"),
                mode=mode,
                proposal={
                    "protocol": name_of(V1ProtocolId, cp.protocol_id),
                    "summary": v1.v1_transform_summary(cp.protocol_id, t) if t is not None else "",
                },
                protocol="AH" if cp.protocol_id == V1ProtocolId.PROTO_IPSEC_AH else "ESP",
                created_in="QUICK_MODE",
                created_frame=resp.first_frame,
                ts_i=ids[:1],
                ts_r=ids[1:2],
            )
        )
