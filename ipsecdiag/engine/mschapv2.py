"""MS-CHAPv2 computations (RFC 2759) and its key derivation (RFC 3079) for EAP-MSCHAPv2.

MD4 is implemented here (RFC 1320) because OpenSSL 3 no longer offers it; it only ever hashes
a password (NT hash), never anything an attacker chooses at length. Single DES for the
challenge response comes from ``cryptography``'s TripleDES with one 8-octet key (K1=K2=K3).

The EAP-MSCHAPv2 MSK handed to IKEv2 (RFC 7296 §2.16) is MasterReceiveKey | MasterSendKey as
the authenticator sees them, 32 octets; the peer computes the same octets (RFC 3079 §3.4 magic
constants 2 then 3), which is what strongSwan and hostapd use.
"""

from __future__ import annotations

import hashlib
import struct

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

__all__ = [
    "authenticator_response",
    "challenge_hash",
    "md4",
    "msk",
    "nt_password_hash",
    "nt_response",
]

# -- MD4 (RFC 1320) ------------------------------------------------------------------------------


def _rotl(x: int, n: int) -> int:
    x &= 0xFFFFFFFF
    return ((x << n) | (x >> (32 - n))) & 0xFFFFFFFF


def md4(data: bytes) -> bytes:
    msg = data + b"\x80" + bytes((55 - len(data)) % 64) + struct.pack("<Q", (len(data) * 8) & (2**64 - 1))
    a, b, c, d = 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476
    for off in range(0, len(msg), 64):
        x = struct.unpack("<16I", msg[off : off + 64])
        aa, bb, cc, dd = a, b, c, d
        for i in (0, 4, 8, 12):  # round 1: F(x,y,z) = xy v ~xz
            a = _rotl(a + ((b & c) | (~b & d)) + x[i], 3)
            d = _rotl(d + ((a & b) | (~a & c)) + x[i + 1], 7)
            c = _rotl(c + ((d & a) | (~d & b)) + x[i + 2], 11)
            b = _rotl(b + ((c & d) | (~c & a)) + x[i + 3], 19)
        for i in (0, 1, 2, 3):  # round 2: G = xy v xz v yz, + 0x5A827999
            a = _rotl(a + ((b & c) | (b & d) | (c & d)) + x[i] + 0x5A827999, 3)
            d = _rotl(d + ((a & b) | (a & c) | (b & c)) + x[i + 4] + 0x5A827999, 5)
            c = _rotl(c + ((d & a) | (d & b) | (a & b)) + x[i + 8] + 0x5A827999, 9)
            b = _rotl(b + ((c & d) | (c & a) | (d & a)) + x[i + 12] + 0x5A827999, 13)
        for i in (0, 2, 1, 3):  # round 3: H = x ^ y ^ z, + 0x6ED9EBA1
            a = _rotl(a + (b ^ c ^ d) + x[i] + 0x6ED9EBA1, 3)
            d = _rotl(d + (a ^ b ^ c) + x[i + 8] + 0x6ED9EBA1, 9)
            c = _rotl(c + (d ^ a ^ b) + x[i + 4] + 0x6ED9EBA1, 11)
            b = _rotl(b + (c ^ d ^ a) + x[i + 12] + 0x6ED9EBA1, 15)
        a, b, c, d = (
            (a + aa) & 0xFFFFFFFF,
            (b + bb) & 0xFFFFFFFF,
            (c + cc) & 0xFFFFFFFF,
            (d + dd) & 0xFFFFFFFF,
        )
    return struct.pack("<4I", a, b, c, d)


# -- RFC 2759 ------------------------------------------------------------------------------------


def nt_password_hash(password: str) -> bytes:
    """NtPasswordHash: MD4 of the UTF-16LE password (RFC 2759 §8.3)."""
    return md4(password.encode("utf-16-le"))


def challenge_hash(peer_challenge: bytes, authenticator_challenge: bytes, username: bytes) -> bytes:
    """ChallengeHash (§8.2): the first 8 octets of SHA-1(PeerChallenge | AuthChallenge | UserName)."""
    return hashlib.sha1(peer_challenge + authenticator_challenge + username).digest()[:8]


def _des_key(k7: bytes) -> bytes:
    # Spread 56 key bits over 8 octets (the parity bit of each is ignored by DES).
    bits = int.from_bytes(k7, "big")
    return bytes(((bits >> (49 - 7 * i)) & 0x7F) << 1 for i in range(8))


def _des(k7: bytes, block: bytes) -> bytes:
    k = _des_key(k7)
    enc = Cipher(TripleDES(k + k + k), modes.ECB()).encryptor()  # EDE with K1=K2=K3 is DES
    return enc.update(block) + enc.finalize()


def nt_response(
    authenticator_challenge: bytes, peer_challenge: bytes, username: bytes, password: str
) -> bytes:
    """GenerateNTResponse (§8.1): 24 octets."""
    ch = challenge_hash(peer_challenge, authenticator_challenge, username)
    z = nt_password_hash(password) + bytes(5)
    return _des(z[0:7], ch) + _des(z[7:14], ch) + _des(z[14:21], ch)


_AUTH_MAGIC1 = b"Magic server to client signing constant"
_AUTH_MAGIC2 = b"Pad to make it do more than one iteration"


def authenticator_response(
    password: str, nt_resp: bytes, peer_challenge: bytes, authenticator_challenge: bytes, username: bytes
) -> bytes:
    """GenerateAuthenticatorResponse (§8.7): ``S=`` and 40 upper-case hex digits, as ASCII."""
    hh = md4(nt_password_hash(password))
    digest = hashlib.sha1(hh + nt_resp + _AUTH_MAGIC1).digest()
    ch = challenge_hash(peer_challenge, authenticator_challenge, username)
    digest = hashlib.sha1(digest + ch + _AUTH_MAGIC2).digest()
    return b"S=" + digest.hex().upper().encode()


# -- RFC 3079 key derivation ----------------------------------------------------------------------

_MPPE_MAGIC1 = b"This is the MPPE Master Key"
_MPPE_MAGIC2 = b"On the client side, this is the send key; on the server side, it is the receive key."
_MPPE_MAGIC3 = b"On the client side, this is the receive key; on the server side, it is the send key."


def master_key(password: str, nt_resp: bytes) -> bytes:
    """GetMasterKey (RFC 3079 §3.4): 16 octets."""
    return hashlib.sha1(md4(nt_password_hash(password)) + nt_resp + _MPPE_MAGIC1).digest()[:16]


def _start_key(mk: bytes, magic: bytes) -> bytes:
    return hashlib.sha1(mk + bytes(40) + magic + b"\xf2" * 40).digest()[:16]


def msk(password: str, nt_resp: bytes) -> bytes:
    """The 32-octet EAP-MSCHAPv2 MSK: the keys of RFC 3079 magic 2 then magic 3."""
    mk = master_key(password, nt_resp)
    return _start_key(mk, _MPPE_MAGIC2) + _start_key(mk, _MPPE_MAGIC3)
