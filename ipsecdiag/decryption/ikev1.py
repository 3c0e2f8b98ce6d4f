"""IKEv1 decryption during analysis: one :class:`V1Decryptor` per ISAKMP SA, with the cipher
taken from the negotiated phase-1 SA and the IV seed from the two KE payloads.

The CBC IV chains across messages (RFC 2409 Appendix B), so messages are fed in time order.
Captures usually are; when a message comes before its phase 1 in the capture (files merged out
of order), it and every later message of that ISAKMP SA are answered ``later`` and decrypted
again at the end of the capture, in time order: a phase-2 or informational IV derives from the
last phase-1 CBC block and the message's own M-ID, never from earlier informationals."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..crypto.errors import CryptoError
from ..crypto.ikev1 import IvUnknown, V1Decryptor
from ..reconstruction.ike_sas import V1Decrypted
from ..reconstruction.model import ExchangeRecord, IkeSaRecord, MessageRecord
from ..wire import ikev1 as v1
from ..wire.errors import WireError
from ..wire.registry import V1EncrAlg, V1HashAlg

if TYPE_CHECKING:
    from ..keys.model import KeyStore


_NO_PROPOSAL = "the phase 1 proposal (cipher and hash) is not in the capture"
_NO_KE = "the KE payloads of phase 1 are not in the capture (needed for the IV)"


class IkeV1DecryptHook:
    def __init__(self, keys: KeyStore) -> None:
        self.keys = keys
        self._dec: dict[bytes, V1Decryptor | str] = {}
        self._read: set[bytes] = set()  # ISAKMP SAs of which a message decrypted
        self._later: set[bytes] = set()  # ISAKMP SAs whose messages wait for the end of the capture
        self._asked: set[int] = set()  # id() of the messages answered ``later`` once

    def _decryptor(self, sa: IkeSaRecord) -> V1Decryptor | str:
        d = self._dec.get(sa.spi_i)
        if d is not None:
            return d
        keys = self.keys.ikev1(sa.spi_i)
        if keys is None:
            return "no keys"
        sa.key_source = keys.source
        p = sa.proposal or {}
        try:
            encr = keys.encr if keys.encr is not None else V1EncrAlg[str(p.get("encr"))]
            hash_alg = keys.hash_alg if keys.hash_alg is not None else V1HashAlg[str(p.get("hash"))]
        except KeyError:
            return _NO_PROPOSAL
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
            return _NO_KE
        dec.set_ke(gxi, gxr)
        self._dec[sa.spi_i] = dec
        return dec

    def decrypt(
        self, sa: IkeSaRecord, ex: ExchangeRecord, m: MessageRecord, msg: v1.V1Message
    ) -> V1Decrypted | None:
        """Decrypt one encrypted IKEv1 message (None: no keys for this ISAKMP SA). The
        reconstructor records the result and what it tells about the SA."""
        final = id(m) in self._asked  # the second time: the whole capture has been read
        self._asked.discard(id(m))
        if not final and sa.spi_i in self._later:
            return self._wait(sa, m, "an earlier message of this ISAKMP SA waits for its phase 1")
        dec = self._decryptor(sa)
        if isinstance(dec, str):
            if dec == "no keys":
                return None
            if not final and dec in (_NO_KE, _NO_PROPOSAL):
                return self._wait(sa, m, "its phase 1 (KE payloads, proposal) is not in the capture before it")
            return V1Decrypted(error=dec)
        if not final and msg.header.message_id != 0 and not dec.phase1_read:
            return self._wait(sa, m, "no phase-1 message of its ISAKMP SA was decrypted before it")
        body = msg.encrypted_body or b""
        try:
            pt = dec.decrypt(msg.header.message_id, body)
        except IvUnknown as e:
            if sa.spi_i in self._read:  # the key works: an earlier message is missing
                return V1Decrypted(error=f"decryption with the supplied key failed for ISAKMP SA {sa.key}: {e}")
            # Nothing of this SA decrypted yet: no payload chain with any IV it knows, the first
            # phase 1 message's (from the KE payloads) included. IKEv1 has no ICV to say more.
            return V1Decrypted(
                error=f"decryption with the supplied key failed for ISAKMP SA {sa.key}: the decrypted "
                "payloads do not parse, and no message of this SA did (wrong key?)"
            )
        except CryptoError as e:
            return V1Decrypted(error=f"decryption with the supplied key failed for ISAKMP SA {sa.key}: {e}")
        try:
            inner = tuple(v1.parse_v1_payloads(msg.header.next_payload, pt, 28))
        except WireError as e:
            return V1Decrypted(error=f"decrypted payloads do not parse (wrong key?): {e}")
        self._read.add(sa.spi_i)
        return V1Decrypted(inner=inner)

    def _wait(self, sa: IkeSaRecord, m: MessageRecord, why: str) -> V1Decrypted:
        self._later.add(sa.spi_i)
        self._asked.add(id(m))
        return V1Decrypted(error=f"not decrypted yet: {why} (capture out of order)", later=True)
