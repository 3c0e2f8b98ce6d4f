"""Keyed cipher objects shared by SK payloads, ESP and IKEv1: built once per key, used per packet.

Three shapes, chosen by the transform:

* :class:`CbcCipher` (DES, 3DES, AES, Camellia, Blowfish, CAST in CBC mode),
* :class:`CtrCipher` (AES-CTR with the RFC 3686 counter block ``salt | IV | 00000001``),
* :class:`AeadCipher` (AES-GCM, AES-CCM, ChaCha20-Poly1305, and GMAC = GCM over no plaintext),

plus :class:`NullCipher`. Non-AEAD ciphers offer ``decrypt(iv, ct)``/``encrypt(iv, pt)``; AEAD
ones ``open(iv, aad, ct_and_tag)``/``seal(iv, aad, pt)``, raising :class:`IntegrityError`.

Speed notes (cryptography 50): a new ``Cipher(...)`` context costs 6-26 µs, the crypto itself
about 1 µs per packet. So CBC decryption keeps one decryptor per key and feeds it ``IV || C``:
CBC decrypts block i as D(C[i]) ^ C[i-1], so the first output block is garbage (it is chained to
whatever came before) and every later block is the plaintext of C. CTR keeps one context and
calls ``reset_nonce``; GCM-16, CCM and ChaCha20-Poly1305 reuse their AEAD objects.
"""

from __future__ import annotations

from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.decrepit.ciphers import algorithms as decrepit
from cryptography.hazmat.primitives.ciphers import BlockCipherAlgorithm, Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM, ChaCha20Poly1305

from ..wire.registry import EncrId
from .errors import DecryptError, IntegrityError, UnsupportedAlgorithm
from .transforms import EncrSpec, encr_spec, split_key

_CTR_ONE = b"\x00\x00\x00\x01"


def block_algorithm(encr_id: int, key: bytes) -> BlockCipherAlgorithm:
    """The block cipher behind a CBC transform, keyed."""
    if encr_id in (EncrId.ENCR_AES_CBC, EncrId.ENCR_AES_CTR):
        return algorithms.AES(key)
    if encr_id == EncrId.ENCR_3DES:
        return decrepit.TripleDES(key)
    if encr_id == EncrId.ENCR_DES:
        # Single DES = 3DES with K1 = K2 = K3 (EDE collapses to one encryption).
        return decrepit.TripleDES(key * 3)
    if encr_id == EncrId.ENCR_CAMELLIA_CBC:
        return decrepit.Camellia(key)
    if encr_id == EncrId.ENCR_BLOWFISH:
        return decrepit.Blowfish(key)
    if encr_id == EncrId.ENCR_CAST:
        return decrepit.CAST5(key)
    raise UnsupportedAlgorithm(encr_spec(encr_id).name, "not a CBC cipher")


class NullCipher:
    """ENCR_NULL (RFC 2410): the identity."""

    __slots__ = ("spec",)

    def __init__(self, spec: EncrSpec) -> None:
        self.spec = spec

    def decrypt(self, iv: bytes, ct: bytes) -> bytes:
        return ct

    def encrypt(self, iv: bytes, pt: bytes) -> bytes:
        return pt


class CbcCipher:
    """A block cipher in CBC mode with one reusable decryptor (see the module notes)."""

    __slots__ = ("_algorithm", "_bs", "_dec", "spec")

    def __init__(self, spec: EncrSpec, key: bytes) -> None:
        self.spec = spec
        self._algorithm = block_algorithm(spec.id, key)
        self._bs = spec.block_size
        self._dec = Cipher(self._algorithm, modes.CBC(bytes(self._bs))).decryptor()

    def decrypt(self, iv: bytes, ct: bytes) -> bytes:
        """Plaintext of ``ct`` (a whole number of blocks) under ``iv``."""
        if len(ct) % self._bs or len(iv) != self._bs:
            raise DecryptError(
                f"{self.spec.name}: ciphertext of {len(ct)} bytes is not a multiple of {self._bs}"
            )
        return self._dec.update(iv + ct)[self._bs :]

    def decrypt_prefixed(self, iv_and_ct: bytes) -> bytes:
        """Plaintext of ``iv_and_ct[bs:]`` with ``iv_and_ct[:bs]`` as IV: ESP carries the IV right
        before the ciphertext, so the packet slice goes in unchanged. The length must already be
        a whole number of blocks (a remainder would stay buffered in the shared decryptor)."""
        return self._dec.update(iv_and_ct)[self._bs :]

    @property
    def prefixed_update(self) -> Callable[[bytes], bytes]:
        """The shared decryptor's ``update``: ``prefixed_update(iv_and_ct)[bs:]`` is
        :meth:`decrypt_prefixed` without the call around it (ESP's per-packet path)."""
        return self._dec.update

    def encrypt(self, iv: bytes, pt: bytes) -> bytes:
        if len(pt) % self._bs:
            raise ValueError(f"{self.spec.name}: plaintext of {len(pt)} bytes is not block aligned")
        return Cipher(self._algorithm, modes.CBC(iv)).encryptor().update(pt)


class CtrCipher:
    """AES-CTR as RFC 3686 §4: counter block = nonce(4) | IV(8) | 32-bit block counter from 1."""

    __slots__ = ("_ctx", "_salt", "spec")

    def __init__(self, spec: EncrSpec, key: bytes, salt: bytes) -> None:
        self.spec = spec
        self._salt = salt
        self._ctx = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()

    def decrypt(self, iv: bytes, ct: bytes) -> bytes:
        self._ctx.reset_nonce(self._salt + iv + _CTR_ONE)
        return self._ctx.update(ct)

    encrypt = decrypt


class AeadCipher:
    """AES-GCM (RFC 4106/5282), AES-CCM (RFC 4309/5282), ChaCha20-Poly1305 (RFC 7634) and
    AES-GMAC (RFC 4543). The nonce is ``salt | IV``; ``data`` is ciphertext followed by the tag."""

    __slots__ = ("_aead", "_key", "_short_gcm", "fast", "icv_size", "salt", "spec")

    def __init__(self, spec: EncrSpec, key: bytes, salt: bytes) -> None:
        self.spec = spec
        self.salt = salt
        self._key = key
        self.icv_size = spec.icv_size
        # AESGCM only produces and checks 16-byte tags; GCM-8/12 go through the streaming API.
        self._short_gcm = spec.id in (EncrId.ENCR_AES_GCM_8, EncrId.ENCR_AES_GCM_12)
        self._aead: AESGCM | AESCCM | ChaCha20Poly1305
        if spec.id in (EncrId.ENCR_AES_CCM_8, EncrId.ENCR_AES_CCM_12, EncrId.ENCR_AES_CCM_16):
            self._aead = AESCCM(key, tag_length=spec.icv_size)
        elif spec.id == EncrId.ENCR_CHACHA20_POLY1305:
            self._aead = ChaCha20Poly1305(key)
        else:
            self._aead = AESGCM(key)
        #: The AEAD object for callers that build nonce and AAD themselves (the ESP hot path);
        #: None for GCM-8/12, which must go through :meth:`open`/:meth:`seal`.
        self.fast = None if self._short_gcm else self._aead

    def open(self, iv: bytes, aad: bytes, data: bytes) -> bytes:
        """Verify and decrypt; raises :class:`IntegrityError` when the tag does not match."""
        if len(data) < self.icv_size:
            raise DecryptError(f"{self.spec.name}: {len(data)} bytes cannot hold a {self.icv_size}-byte ICV")
        nonce = self.salt + iv
        try:
            if self._short_gcm:
                tag = data[-self.icv_size :]
                dec = Cipher(
                    algorithms.AES(self._key), modes.GCM(nonce, tag, min_tag_length=self.icv_size)
                ).decryptor()
                dec.authenticate_additional_data(aad)
                return dec.update(data[: -self.icv_size]) + dec.finalize()
            return self._aead.decrypt(nonce, data, aad)
        except InvalidTag:
            raise IntegrityError() from None

    def seal(self, iv: bytes, aad: bytes, pt: bytes) -> bytes:
        nonce = self.salt + iv
        if self._short_gcm:
            enc = Cipher(algorithms.AES(self._key), modes.GCM(nonce)).encryptor()
            enc.authenticate_additional_data(aad)
            ct = enc.update(pt) + enc.finalize()
            return ct + enc.tag[: self.icv_size]
        return self._aead.encrypt(nonce, pt, aad)


AnyCipher = NullCipher | CbcCipher | CtrCipher | AeadCipher


def make_cipher(encr_id: int, key_material: bytes, key_bits: int | None = None) -> AnyCipher:
    """Build the keyed cipher for a transform from key material (salt included where the
    transform has one). Raises :class:`UnsupportedAlgorithm` or :class:`InvalidKey`."""
    spec = encr_spec(encr_id)
    key, salt = split_key(encr_id, key_material, key_bits)
    if spec.id == EncrId.ENCR_NULL:
        return NullCipher(spec)
    if spec.aead:
        return AeadCipher(spec, key, salt)
    if spec.counter:
        return CtrCipher(spec, key, salt)
    return CbcCipher(spec, key)
