"""Stateless responder cookies (RFC 7296 §2.6).

Cookie = <VersionIDofSecret> | Hash(Ni | IPi | SPIi | <secret>), with the secret derived from the
configured one and the version, and the version the number of ``lifetime`` periods of the
caller's clock. A cookie made with the current or the previous version is accepted, so one made
just before a rotation still works.
"""

from __future__ import annotations

import hashlib
import hmac

from ..keys.model import SecretBytes

_VERSION_LEN = 4


def _period(now: float, lifetime: float) -> int:
    return int(now // lifetime) & 0xFFFFFFFF


def _make(secret: SecretBytes, version: int, ni: bytes, ip: bytes, spi_i: bytes) -> bytes:
    v = version.to_bytes(_VERSION_LEN, "big")
    versioned = hmac.new(secret.reveal(), b"ipsecdiag cookie secret" + v, hashlib.sha256).digest()
    return v + hashlib.sha256(ni + ip + spi_i + versioned).digest()


def make_cookie(
    secret: SecretBytes, now: float, lifetime: float, ni: bytes, ip: bytes, spi_i: bytes
) -> bytes:
    return _make(secret, _period(now, lifetime), ni, ip, spi_i)


def cookie_valid(
    secret: SecretBytes, now: float, lifetime: float, cookie: bytes, ni: bytes, ip: bytes, spi_i: bytes
) -> bool:
    if len(cookie) != _VERSION_LEN + 32:
        return False
    version = int.from_bytes(cookie[:_VERSION_LEN], "big")
    current = _period(now, lifetime)
    if version not in (current, (current - 1) & 0xFFFFFFFF):
        return False
    return hmac.compare_digest(cookie, _make(secret, version, ni, ip, spi_i))
