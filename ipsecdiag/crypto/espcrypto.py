"""ESP payload transforms (RFC 4303 §2-3): integrity check and decryption of one packet.

An :class:`EspTransform` is built once per SA from its keys and works on the packet in place:
``open(data, off, end, hi)`` takes the ESP packet at ``data[off:end]`` (SPI first, ICV last) and
returns ``payload | padding | Pad Length | Next Header``; ``seal`` builds the protected part.
``hi`` is ``b""`` without ESN, else the 4 high-order sequence bytes, which enter:

* the ICV of a separate integrity transform, appended after the packet (RFC 4303 §3.3.2.1),
* the AEAD associated data as ``SPI | seq-hi | seq-lo`` (RFC 4106 §5, RFC 4309 §5, RFC 7634 §2.1),
* GMAC's associated data the same way, followed by IV, payload and trailer (RFC 4543 §3.3).

Nonces: ``salt | IV`` for GCM, GMAC, ChaCha20-Poly1305 (4-byte salt) and CCM (3-byte salt);
AES-CTR's counter block is ``salt | IV | 00000001`` (RFC 3686 §4).

The integrity check comes first, as RFC 4303 §3.4.4 requires; every ``open`` raises
:class:`IntegrityError` when it fails and :class:`DecryptError` for impossible lengths.
"""

from __future__ import annotations

import hmac

from cryptography.exceptions import InvalidTag

from ..wire.registry import EncrId
from .ciphers import AeadCipher, CbcCipher, CtrCipher, NullCipher, make_cipher
from .errors import DecryptError, IntegrityError
from .mac import Mac, make_mac
from .transforms import EncrSpec, encr_spec, integ_spec

_CTR_ONE = b"\x00\x00\x00\x01"


class EspTransform:
    """Cipher + integrity of one ESP SA. Sizes: ``iv_size``, ``icv_size``; the encrypted part
    must be a multiple of ``align`` octets. ``verifies`` is False when an ICV is present but its
    key is unknown (it is then skipped, as Wireshark's "[No Checking]" entries do)."""

    __slots__ = ("align", "block_size", "icv_size", "iv_size", "spec", "verifies")

    def __init__(self, spec: EncrSpec, icv_size: int, verifies: bool = True) -> None:
        self.spec = spec
        self.iv_size = spec.iv_size
        self.icv_size = icv_size
        self.block_size = spec.block_size
        self.align = spec.pad_align
        self.verifies = verifies

    @property
    def min_length(self) -> int:
        """Shortest possible ESP packet: header, IV, one aligned block holding the trailer, ICV."""
        return 8 + self.iv_size + max(self.block_size, 2) + self.icv_size

    def open(self, data: bytes, off: int, end: int, hi: bytes) -> bytes:  # pragma: no cover - abstract
        raise TypeError("abstract")

    def seal(self, header: bytes, iv: bytes, body: bytes, hi: bytes) -> bytes:  # pragma: no cover
        raise TypeError("abstract")


def _check_icv(mac: Mac | None, data: bytes, off: int, icv_at: int, end: int, hi: bytes) -> None:
    if mac is not None and not hmac.compare_digest(mac.compute(data[off:icv_at], hi), data[icv_at:end]):
        raise IntegrityError()


def _icv(mac: Mac | None, icv_size: int, data: bytes, hi: bytes) -> bytes:
    if mac is not None:
        return mac.compute(data, hi)
    if icv_size:
        raise ValueError("cannot compute an ICV without the integrity key")
    return b""


class _MacEsp(EspTransform):
    """A cipher with a separate integrity transform: ``IV | C`` then the ICV over the packet."""

    __slots__ = ("_cipher", "_mac")
    _cipher: CbcCipher | CtrCipher

    def __init__(self, cipher: CbcCipher | CtrCipher, mac: Mac | None, icv_size: int) -> None:
        super().__init__(cipher.spec, icv_size, mac is not None or not icv_size)
        self._cipher = cipher
        self._mac = mac

    def seal(self, header: bytes, iv: bytes, body: bytes, hi: bytes) -> bytes:
        out = iv + self._cipher.encrypt(iv, body)
        return out + _icv(self._mac, self.icv_size, header + out, hi)


class _CbcEsp(_MacEsp):
    """CBC ciphers with a separate MAC. Decryption feeds ``IV | C`` to the one reusable
    decryptor and drops the first block (see crypto.ciphers). ``open`` runs for every packet
    of ``decrypt`` and ``analyze --keys``: it does the HMAC/CMAC check and the decryption
    itself rather than through ``Mac.compute`` and ``decrypt_prefixed`` (two calls less)."""

    __slots__ = ("_keyed", "_update")
    _cipher: CbcCipher

    def __init__(self, cipher: CbcCipher, mac: Mac | None, icv_size: int) -> None:
        super().__init__(cipher, mac, icv_size)
        self._keyed = mac.keyed() if mac is not None else None
        self._update = cipher.prefixed_update

    def open(self, data: bytes, off: int, end: int, hi: bytes) -> bytes:
        icv_size = self.icv_size
        icv_at = end - icv_size
        keyed = self._keyed
        if keyed is not None:  # Mac.compute, inlined
            h = keyed.copy()
            h.update(data[off:icv_at])
            if hi:
                h.update(hi)
            if not hmac.compare_digest(h.finalize()[:icv_size], data[icv_at:end]):
                raise IntegrityError()
        else:
            _check_icv(self._mac, data, off, icv_at, end, hi)
        bs = self.block_size
        if (icv_at - off - 8 - self.iv_size) % bs:
            raise DecryptError(f"{self.spec.name}: ciphertext is not a multiple of the {bs}-byte block")
        return self._update(data[off + 8 : icv_at])[bs:]


class _CtrEsp(_MacEsp):
    __slots__ = ()
    _cipher: CtrCipher

    def open(self, data: bytes, off: int, end: int, hi: bytes) -> bytes:
        icv_at = end - self.icv_size
        _check_icv(self._mac, data, off, icv_at, end, hi)
        return self._cipher.decrypt(data[off + 8 : off + 16], data[off + 16 : icv_at])


class _NullEsp(EspTransform):
    """ENCR_NULL (RFC 2410) with an integrity transform (or none, for completeness)."""

    __slots__ = ("_mac",)

    def __init__(self, spec: EncrSpec, mac: Mac | None, icv_size: int) -> None:
        super().__init__(spec, icv_size, mac is not None or not icv_size)
        self._mac = mac

    def open(self, data: bytes, off: int, end: int, hi: bytes) -> bytes:
        icv_at = end - self.icv_size
        _check_icv(self._mac, data, off, icv_at, end, hi)
        return data[off + 8 : icv_at]

    def seal(self, header: bytes, iv: bytes, body: bytes, hi: bytes) -> bytes:
        return body + _icv(self._mac, self.icv_size, header + body, hi)


class _AeadEsp(EspTransform):
    """GCM, CCM, ChaCha20-Poly1305: AAD = SPI | [seq-hi |] seq-lo."""

    __slots__ = ("_aead", "_cipher", "_salt")

    def __init__(self, cipher: AeadCipher) -> None:
        super().__init__(cipher.spec, cipher.icv_size)
        self._cipher = cipher
        self._aead = cipher.fast
        self._salt = cipher.salt

    def open(self, data: bytes, off: int, end: int, hi: bytes) -> bytes:
        if end - off - 16 < self.icv_size:
            raise DecryptError(f"{self.spec.name}: packet too short for IV and ICV")
        aad = data[off : off + 4] + hi + data[off + 4 : off + 8] if hi else data[off : off + 8]
        aead = self._aead
        if aead is None:
            return self._cipher.open(data[off + 8 : off + 16], aad, data[off + 16 : end])
        try:
            return aead.decrypt(self._salt + data[off + 8 : off + 16], data[off + 16 : end], aad)
        except InvalidTag:
            raise IntegrityError() from None

    def seal(self, header: bytes, iv: bytes, body: bytes, hi: bytes) -> bytes:
        aad = header[:4] + hi + header[4:8] if hi else header
        return iv + self._cipher.seal(iv, aad, body)


class _GmacEsp(EspTransform):
    """ENCR_NULL_AUTH_AES_GMAC (RFC 4543): nothing is encrypted; the whole packet up to the ICV
    is GCM associated data, with ``SPI | [seq-hi |] seq-lo`` at its start."""

    __slots__ = ("_cipher",)

    def __init__(self, cipher: AeadCipher) -> None:
        super().__init__(cipher.spec, cipher.icv_size)
        self._cipher = cipher

    def open(self, data: bytes, off: int, end: int, hi: bytes) -> bytes:
        icv_at = end - self.icv_size
        if icv_at < off + 16:
            raise DecryptError(f"{self.spec.name}: packet too short for IV and ICV")
        head = data[off : off + 4] + hi + data[off + 4 : off + 8] if hi else data[off : off + 8]
        self._cipher.open(data[off + 8 : off + 16], head + data[off + 8 : icv_at], data[icv_at:end])
        return data[off + 16 : icv_at]

    def seal(self, header: bytes, iv: bytes, body: bytes, hi: bytes) -> bytes:
        head = header[:4] + hi + header[4:8] if hi else header
        return iv + body + self._cipher.seal(iv, head + iv + body, b"")


def make_esp_transform(
    encr_id: int,
    encr_key: bytes,
    integ_id: int = 0,
    integ_key: bytes = b"",
    key_bits: int | None = None,
) -> EspTransform:
    """Build the transform of one ESP SA. Raises :class:`UnsupportedAlgorithm` / :class:`InvalidKey`."""
    spec = encr_spec(encr_id)
    cipher = make_cipher(encr_id, encr_key, key_bits)
    if isinstance(cipher, AeadCipher):
        # Combined modes carry their own ICV; an integrity transform alongside is not allowed
        # (RFC 4303 §3.2) and is ignored.
        return _GmacEsp(cipher) if spec.id == EncrId.ENCR_NULL_AUTH_AES_GMAC else _AeadEsp(cipher)
    # An integrity transform without its key: the ICV is stripped but cannot be checked.
    mac = make_mac(integ_id, integ_key) if integ_id and integ_key else None
    icv_size = integ_spec(integ_id).icv_size if integ_id else 0
    if isinstance(cipher, NullCipher):
        return _NullEsp(spec, mac, icv_size)
    if isinstance(cipher, CtrCipher):
        return _CtrEsp(cipher, mac, icv_size)
    return _CbcEsp(cipher, mac, icv_size)
