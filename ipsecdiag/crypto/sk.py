"""IKEv2 Encrypted (SK) and Encrypted Fragment (SKF) payload protection.

Layout (RFC 7296 §3.14, RFC 7383 §2.5)::

    generic payload header (4) [| Fragment Number (2) | Total Fragments (2)]   <- SKF only
    IV | ciphertext( inner payloads | padding | Pad Length ) | ICV

Integrity: with a separate integrity transform the ICV is computed over the whole message from
the first octet of the IKE header up to the ICV (RFC 7296 §3.14). With an AEAD cipher (RFC 5282
§5.1, RFC 7634 §4) the nonce is ``salt | IV`` and the associated data is the message from the
IKE header up to the IV (header, any earlier payloads, the SK/SKF header and the SKF fields).

Direction: messages sent by the original initiator use SK_ei/SK_ai, the others SK_er/SK_ar.
An :class:`SkContext` holds the keyed cipher and MAC of one direction; build it once per IKE SA
direction and keep it with the SA (the engine's IKE SA, the analyser's decryptor), so that key
material lives as long as its SA and no longer. :func:`decrypt_sk` / :func:`protect_sk` /
:func:`protect_skf` are one-shot conveniences that build a context per call (no cache).
"""

from __future__ import annotations

import hmac
import struct

from ..keys.model import IkeSaKeys
from ..wire.registry import PayloadType
from .ciphers import AeadCipher, AnyCipher, make_cipher
from .errors import DecryptError, IntegrityError
from .mac import Mac, make_mac
from .transforms import EncrSpec, encr_spec

IKE_HEADER_LEN = 28
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")


class SkContext:
    """SK/SKF protection for one direction of an IKE SA (``from_initiator``: the original
    initiator is the sender). Raises :class:`UnsupportedAlgorithm` / :class:`InvalidKey` when
    built with keys it cannot use."""

    __slots__ = ("_cipher", "_mac", "from_initiator", "icv_size", "spec")

    def __init__(self, keys: IkeSaKeys, *, from_initiator: bool) -> None:
        self.from_initiator = from_initiator
        self.spec: EncrSpec = encr_spec(keys.encr)
        ek = keys.sk_ei if from_initiator else keys.sk_er
        self._cipher: AnyCipher = make_cipher(keys.encr, ek.reveal(), keys.encr_key_bits)
        self._mac: Mac | None = None
        if self.spec.aead:
            self.icv_size = self.spec.icv_size
        else:
            if keys.integ:
                ak = keys.sk_ai if from_initiator else keys.sk_ar
                self._mac = make_mac(keys.integ, ak.reveal())
            self.icv_size = self._mac.icv_size if self._mac else 0

    @property
    def iv_size(self) -> int:
        return self.spec.iv_size

    # -- unprotect ---------------------------------------------------------------------------

    def decrypt(self, message: bytes, sk_offset: int, *, fragment: bool | None = None) -> bytes:
        """Verify and decrypt the SK (or SKF) payload whose generic header starts at
        ``sk_offset`` of the whole IKE ``message``; return the inner payloads (padding and the
        Pad Length octet removed). ``fragment`` says SKF; None infers it from the IKE header's
        Next Payload when the payload is the first one.

        Raises :class:`IntegrityError` for a bad ICV/tag and :class:`DecryptError` for lengths or
        padding that cannot be right.
        """
        if fragment is None:
            fragment = sk_offset == IKE_HEADER_LEN and len(message) > 16 and message[16] == PayloadType.SKF
        hdr_len = 8 if fragment else 4
        if sk_offset < 0 or sk_offset + hdr_len > len(message):
            raise DecryptError(f"encrypted payload header at {sk_offset} runs past the message end")
        plen = _U16.unpack_from(message, sk_offset + 2)[0]
        end = sk_offset + plen
        iv_start = sk_offset + hdr_len
        ct_start = iv_start + self.spec.iv_size
        icv_start = end - self.icv_size
        if end > len(message):
            raise DecryptError(
                f"encrypted payload length {plen} runs past the message end ({len(message)} bytes)"
            )
        if icv_start <= ct_start:
            raise DecryptError(
                f"encrypted payload length {plen} cannot hold header, {self.spec.iv_size}-byte IV, "
                f"ciphertext and {self.icv_size}-byte ICV"
            )
        iv = message[iv_start:ct_start]
        cipher = self._cipher
        if isinstance(cipher, AeadCipher):
            pt = cipher.open(iv, message[:iv_start], message[ct_start:end])
        else:
            if self._mac is not None:
                icv = self._mac.compute(message[:icv_start])
                if not hmac.compare_digest(icv, message[icv_start:end]):
                    raise IntegrityError()
            pt = cipher.decrypt(iv, message[ct_start:icv_start])
        if not pt:
            raise DecryptError("encrypted payload has no Pad Length octet")
        pad = pt[-1]
        if pad + 1 > len(pt):
            raise DecryptError(f"Pad Length {pad} exceeds the {len(pt)}-byte decrypted data")
        return pt[: len(pt) - 1 - pad]

    # -- protect -------------------------------------------------------------------------------

    def payload_length(
        self, plaintext_len: int, *, fragment: bool = False, pad_len: int | None = None
    ) -> int:
        """Length of the SK/SKF payload that protects ``plaintext_len`` octets of inner payloads."""
        return (
            (8 if fragment else 4)
            + self.spec.iv_size
            + self._body_len(plaintext_len, pad_len)
            + self.icv_size
        )

    def _body_len(self, n: int, pad_len: int | None) -> int:
        bs = self.spec.block_size
        if pad_len is None:
            pad_len = (-(n + 1)) % bs
        elif (n + pad_len + 1) % bs:
            raise ValueError(f"pad_len {pad_len} leaves {n + pad_len + 1} bytes, not a multiple of {bs}")
        if not 0 <= pad_len <= 255:
            raise ValueError(f"pad_len {pad_len} out of range")
        return n + pad_len + 1

    def protect(
        self,
        *,
        ike_header: bytes,
        first_inner_type: int,
        plaintext: bytes,
        iv: bytes,
        pad_len: int | None = None,
        prior_payloads: bytes = b"",
    ) -> bytes:
        """Build the complete message: ``ike_header`` (28 bytes; its Length is patched, and its
        Next Payload set to SK when no ``prior_payloads`` precede), the unencrypted
        ``prior_payloads`` (their chain must already point at SK), then the SK payload.
        ``iv`` is injected (no randomness here); ``pad_len`` None means the minimum padding."""
        return self._protect(ike_header, first_inner_type, plaintext, iv, pad_len, prior_payloads, None)

    def protect_fragment(
        self,
        *,
        ike_header: bytes,
        first_inner_type: int,
        fragment_number: int,
        total_fragments: int,
        plaintext: bytes,
        iv: bytes,
        pad_len: int | None = None,
        prior_payloads: bytes = b"",
    ) -> bytes:
        """As :meth:`protect` for one SKF fragment (RFC 7383 §2.5): ``first_inner_type`` is the
        first inner payload type for fragment 1 and 0 for the others."""
        if not 1 <= fragment_number <= total_fragments <= 0xFFFF:
            raise ValueError(f"fragment {fragment_number} of {total_fragments} is not valid")
        return self._protect(
            ike_header,
            first_inner_type,
            plaintext,
            iv,
            pad_len,
            prior_payloads,
            (fragment_number, total_fragments),
        )

    def _protect(
        self,
        ike_header: bytes,
        first_inner_type: int,
        plaintext: bytes,
        iv: bytes,
        pad_len: int | None,
        prior: bytes,
        frag: tuple[int, int] | None,
    ) -> bytes:
        if len(ike_header) != IKE_HEADER_LEN:
            raise ValueError(f"IKE header must be {IKE_HEADER_LEN} bytes, got {len(ike_header)}")
        if len(iv) != self.spec.iv_size:
            raise ValueError(f"{self.spec.name} needs a {self.spec.iv_size}-byte IV, got {len(iv)}")
        body_len = self._body_len(len(plaintext), pad_len)
        pad = body_len - len(plaintext) - 1
        body = plaintext + bytes(pad) + bytes((pad,))
        hdr_len = 8 if frag else 4
        plen = hdr_len + len(iv) + body_len + self.icv_size
        if plen > 0xFFFF:
            raise ValueError(f"encrypted payload of {plen} bytes does not fit a 16-bit length")
        header = bytearray(ike_header)
        _U32.pack_into(header, 24, IKE_HEADER_LEN + len(prior) + plen)
        if not prior:
            header[16] = PayloadType.SKF if frag else PayloadType.SK
        gen = bytes((first_inner_type, 0)) + _U16.pack(plen)
        if frag:
            gen += _U16.pack(frag[0]) + _U16.pack(frag[1])
        prefix = bytes(header) + prior + gen
        cipher = self._cipher
        if isinstance(cipher, AeadCipher):
            return prefix + iv + cipher.seal(iv, prefix, body)
        msg = prefix + iv + cipher.encrypt(iv, body)
        return msg + self._mac.compute(msg) if self._mac is not None else msg


def sk_context(keys: IkeSaKeys, *, from_initiator: bool) -> SkContext:
    """A new :class:`SkContext` for one direction; the caller owns it (and the key material)."""
    return SkContext(keys, from_initiator=from_initiator)


def decrypt_sk(
    keys: IkeSaKeys, message: bytes, sk_offset: int, *, from_initiator: bool, fragment: bool | None = None
) -> bytes:
    """Inner payloads of the SK/SKF payload at ``sk_offset`` (see :meth:`SkContext.decrypt`)."""
    return sk_context(keys, from_initiator=from_initiator).decrypt(message, sk_offset, fragment=fragment)


def protect_sk(
    keys: IkeSaKeys,
    *,
    from_initiator: bool,
    ike_header: bytes,
    first_inner_type: int,
    plaintext: bytes,
    iv: bytes,
    pad_len: int | None = None,
    prior_payloads: bytes = b"",
) -> bytes:
    """A complete IKE message with ``plaintext`` protected in an SK payload (see :meth:`SkContext.protect`)."""
    return sk_context(keys, from_initiator=from_initiator).protect(
        ike_header=ike_header,
        first_inner_type=first_inner_type,
        plaintext=plaintext,
        iv=iv,
        pad_len=pad_len,
        prior_payloads=prior_payloads,
    )


def protect_skf(
    keys: IkeSaKeys,
    *,
    from_initiator: bool,
    ike_header: bytes,
    first_inner_type: int,
    fragment_number: int,
    total_fragments: int,
    plaintext: bytes,
    iv: bytes,
    pad_len: int | None = None,
    prior_payloads: bytes = b"",
) -> bytes:
    """A complete IKE message carrying one SKF fragment (see :meth:`SkContext.protect_fragment`)."""
    return sk_context(keys, from_initiator=from_initiator).protect_fragment(
        ike_header=ike_header,
        first_inner_type=first_inner_type,
        fragment_number=fragment_number,
        total_fragments=total_fragments,
        plaintext=plaintext,
        iv=iv,
        pad_len=pad_len,
        prior_payloads=prior_payloads,
    )
