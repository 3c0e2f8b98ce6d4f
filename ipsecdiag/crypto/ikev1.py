"""IKEv1 (ISAKMP) payload decryption with the RFC 2409 IV chain.

RFC 2409 Appendix B: all ISAKMP encryption is CBC with the key Ka, and the IV is state:

* the first phase-1 encrypted message uses ``hash(g^xi | g^xr)`` truncated to the block size,
  computed with the negotiated hash;
* every later phase-1 message uses the last ciphertext block of the previous phase-1 message,
  whichever side sent it (one chain per exchange, not per direction);
* a phase-2 or informational exchange (non-zero Message ID) starts from
  ``hash(last phase-1 ciphertext block | M-ID)`` truncated, then chains within that M-ID.

The same facts drive Wireshark's packet-isakmp.c, which however keeps a single chain and so
loses track when phase-2 exchanges interleave; :class:`V1Decryptor` keeps one chain per
Message ID. Retransmissions (identical ciphertext) decrypt again with the IV they used the first
time and leave the state untouched. When a message is missing from the capture, the next one in
the chain gets a wrong first block; the decryptor notices (the decrypted payload chain does not
hold together), tries the other IVs it knows of, and if none fits raises :class:`IvUnknown`
carrying the plaintext whose first block is unreliable, after moving the chain on so that the
message after it decrypts normally.
"""

from __future__ import annotations

import struct

from ..keys.model import IkeV1Keys
from ..wire.registry import EncrId, V1EncrAlg, name_of
from .ciphers import CbcCipher
from .errors import DecryptError, InvalidKey, UnsupportedAlgorithm
from .prf import v1_hash, v1_hash_name
from .transforms import encr_spec

_V1_TO_ENCR = {
    V1EncrAlg.DES_CBC: EncrId.ENCR_DES,
    V1EncrAlg.TRIPLE_DES_CBC: EncrId.ENCR_3DES,
    V1EncrAlg.AES_CBC: EncrId.ENCR_AES_CBC,
    V1EncrAlg.BLOWFISH_CBC: EncrId.ENCR_BLOWFISH,
    V1EncrAlg.CAST_CBC: EncrId.ENCR_CAST,
    V1EncrAlg.CAMELLIA_CBC: EncrId.ENCR_CAMELLIA_CBC,
}

_U32 = struct.Struct("!I")


class IvUnknown(DecryptError):
    """The IV for this message could not be established (an earlier message of its exchange is
    missing from the capture). ``partial`` is the decryption with the best-guess IV: every block
    but the first is right."""

    def __init__(self, message_id: int, partial: bytes) -> None:
        self.message_id = message_id
        self.partial = partial
        super().__init__(
            f"IV for message ID {message_id:#010x} unknown (an earlier message of the exchange is "
            "missing?): first cipher block undecryptable"
        )


def v1_payload_chain_ok(plaintext: bytes) -> bool:
    """Does ``plaintext`` start with a generic ISAKMP payload chain that ends (Next Payload 0)
    inside it? The first payload's type is in the ISAKMP header, so only its successors' types,
    the RESERVED octets and the lengths can be checked."""
    pos, n = 0, len(plaintext)
    while True:
        if pos + 4 > n:
            return False
        nxt, reserved, plen = (
            plaintext[pos],
            plaintext[pos + 1],
            (plaintext[pos + 2] << 8) | plaintext[pos + 3],
        )
        if reserved != 0 or plen < 4 or pos + plen > n or (22 < nxt < 128):
            return False
        pos += plen
        if nxt == 0:
            return True


class V1Decryptor:
    """Decrypts the encrypted messages of one ISAKMP SA, in capture order.

    ``encr`` is the phase-1 Encryption Algorithm attribute (:class:`V1EncrAlg`), ``key_bits`` its
    Key Length attribute (None: implied by the key), ``hash_alg`` the Hash Algorithm attribute
    (:class:`V1HashAlg`). Raises :class:`UnsupportedAlgorithm` or :class:`InvalidKey`.
    """

    def __init__(self, keys: IkeV1Keys, encr: int, key_bits: int | None, hash_alg: int) -> None:
        try:
            encr_id = _V1_TO_ENCR[V1EncrAlg(encr)]
        except (ValueError, KeyError):
            raise UnsupportedAlgorithm(name_of(V1EncrAlg, encr)) from None
        self._hash_alg = hash_alg
        v1_hash_name(hash_alg)  # fail early on an unknown hash
        spec = encr_spec(encr_id)
        ka = keys.encr_key.reveal()
        bits = key_bits or keys.encr_key_bits
        if not bits:
            bits = len(ka) * 8 if len(ka) * 8 in spec.key_bits else spec.default_key_bits
        if bits not in spec.key_bits or len(ka) * 8 < bits:
            raise InvalidKey(f"{spec.name}: encryption key of {len(ka)} bytes cannot give a {bits}-bit key")
        # Ka longer than the cipher key is truncated (RFC 2409 Appendix B).
        self._cipher = CbcCipher(spec, ka[: bits // 8])
        self.block_size = spec.block_size
        self._p1_iv: bytes | None = None
        self._chain: dict[int, bytes] = {}  # Message ID -> IV for its next message
        self._p1_last: bytes | None = None  # last ciphertext block of phase 1
        self._seen: dict[tuple[int, bytes], bytes] = {}  # (M-ID, ciphertext) -> IV it used
        self._known_blocks: list[bytes] = []  # last blocks of every message, for recovery

    @property
    def phase1_read(self) -> bool:
        """A phase-1 message was decrypted: phase-2 and informational IVs can be derived."""
        return self._p1_last is not None

    def set_ke(self, gxi: bytes, gxr: bytes) -> None:
        """The KE payload data of initiator and responder: phase-1 IV = hash(g^xi | g^xr)."""
        self._p1_iv = v1_hash(self._hash_alg, gxi + gxr)[: self.block_size]

    def _expected_iv(self, message_id: int) -> bytes:
        iv = self._chain.get(message_id)
        if iv is not None:
            return iv
        if message_id == 0:
            if self._p1_iv is None:
                raise DecryptError("phase-1 IV unknown: the KE payloads were not seen (set_ke)")
            return self._p1_iv
        return self._phase2_iv(message_id)

    def _phase2_iv(self, message_id: int) -> bytes:
        base = self._p1_last if self._p1_last is not None else self._chain.get(0)
        if base is None:
            raise DecryptError(
                f"IV for message ID {message_id:#010x} unknown: no phase-1 message was decrypted"
            )
        return v1_hash(self._hash_alg, base + _U32.pack(message_id))[: self.block_size]

    def _candidates(self, message_id: int, first: bytes) -> list[bytes]:
        cands: list[bytes] = []
        if message_id == 0 and self._p1_iv is not None:
            cands.append(self._p1_iv)
        elif message_id != 0:
            try:
                cands.append(self._phase2_iv(message_id))
            except DecryptError:
                pass
        cands.extend(reversed(self._known_blocks))
        out: list[bytes] = []
        for c in cands:
            if c != first and c not in out:
                out.append(c)
        return out

    def _advance(self, message_id: int, ciphertext: bytes, iv: bytes) -> None:
        last = ciphertext[-self.block_size :]
        self._seen[(message_id, ciphertext)] = iv
        self._chain[message_id] = last
        if message_id == 0:
            self._p1_last = last
        self._known_blocks.append(last)

    def decrypt(self, message_id: int, ciphertext: bytes) -> bytes:
        """Decrypt the encrypted part of one message (everything after the ISAKMP header) and
        advance the IV state. Returns the plaintext including padding. Raises
        :class:`DecryptError` (or its :class:`IvUnknown`)."""
        bs = self.block_size
        if not ciphertext or len(ciphertext) % bs:
            raise DecryptError(
                f"encrypted data of {len(ciphertext)} bytes is not a multiple of the {bs}-byte block"
            )
        used = self._seen.get((message_id, ciphertext))
        if used is not None:  # retransmission: same bytes, same IV, no state change
            return self._cipher.decrypt(used, ciphertext)
        iv = self._expected_iv(message_id)
        pt = self._cipher.decrypt(iv, ciphertext)
        if not v1_payload_chain_ok(pt):
            for cand in self._candidates(message_id, iv):
                alt = self._cipher.decrypt(cand, ciphertext)
                if v1_payload_chain_ok(alt):
                    self._advance(message_id, ciphertext, cand)
                    return alt
            self._advance(message_id, ciphertext, iv)
            raise IvUnknown(message_id, pt)
        self._advance(message_id, ciphertext, iv)
        return pt

    def encrypt(self, message_id: int, plaintext: bytes) -> bytes:
        """Encrypt one message body (already padded to the block size) with the chained IV and
        advance the state: the sending side of the same chain, for building test exchanges."""
        iv = self._expected_iv(message_id)
        ct = self._cipher.encrypt(iv, plaintext)
        self._advance(message_id, ct, iv)
        return ct
