"""EAP-MSCHAPv2 (draft-kamath-pppext-eap-mschapv2, RFC 2759) for IKEv2 (RFC 7296 §2.16).

:class:`EapPeer` is the client side the initiator runs; :class:`EapServer` the authenticator a
responder runs against a small user table (enough for tests and ``ipsecdiag responder``). Both
turn one EAP packet into the next; neither knows about IKE. The server skips the EAP-Identity
round and challenges the IKE identity directly (strongSwan's default ``eap_id``); the peer
answers an Identity request when one comes.

Packet layout (after the 4-octet EAP header and the Type octet 26)::

    OpCode | MS-CHAPv2-ID | MS-Length (= EAP Length - 5) | data
    Challenge (1): Value-Size 16 | Challenge | Name
    Response  (2): Value-Size 49 | Peer-Challenge(16) | 8 zero | NT-Response(24) | Flags | Name
    Success   (3): request "S=<40 hex> M=<text>"; the peer's answer is the OpCode alone
    Failure   (4): request "E=691 R=0 C=<hex> V=3 M=<text>"; the peer's answer is the OpCode alone
"""

from __future__ import annotations

import hmac
import struct

from ..crypto.rng import RandomSource
from ..wire.registry import EapCode, EapType
from . import mschapv2

__all__ = ["EapError", "EapPeer", "EapServer"]

_MSCHAPV2 = int(EapType.MSCHAPV2)
_CHALLENGE, _RESPONSE, _SUCCESS, _FAILURE = 1, 2, 3, 4


class EapError(Exception):
    """EAP authentication failed or a packet makes no sense; ``reason`` is one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _packet(code: int, ident: int, data: bytes = b"") -> bytes:
    return struct.pack("!BBH", code, ident & 0xFF, 4 + len(data)) + data


def _ms(code: int, ident: int, opcode: int, ms_id: int, body: bytes = b"") -> bytes:
    """An EAP-MSCHAPv2 packet (``body`` after MS-Length)."""
    head = struct.pack("!BBBH", _MSCHAPV2, opcode, ms_id & 0xFF, 4 + len(body))
    return _packet(code, ident, head + body)


def _parse(packet: bytes) -> tuple[int, int, bytes]:
    if len(packet) < 4:
        raise EapError(f"EAP packet of {len(packet)} octets")
    code, ident, length = struct.unpack_from("!BBH", packet)
    if length < 4 or length > len(packet):
        raise EapError(f"EAP length {length} does not fit the {len(packet)}-octet payload")
    return code, ident, packet[4:length]


class EapPeer:
    """The EAP-MSCHAPv2 client: ``handle(request)`` returns the response to send, or None once
    EAP-Success arrived (then :attr:`msk` holds the key for the final AUTH)."""

    def __init__(self, identity: bytes, password: str, rng: RandomSource) -> None:
        self.identity = identity
        self.password = password
        self.rng = rng
        self.msk: bytes | None = None
        self._expect: bytes | None = None  # the authenticator response we wait for
        self._nt = b""
        self.failure = ""

    def handle(self, packet: bytes) -> bytes | None:
        code, ident, data = _parse(packet)
        if code == EapCode.SUCCESS:
            if self.msk is None:
                raise EapError("EAP-Success before MS-CHAPv2 authenticated the server")
            return None
        if code == EapCode.FAILURE:
            raise EapError(self.failure or "the server sent EAP-Failure")
        if code != EapCode.REQUEST or not data:
            raise EapError(f"unexpected EAP code {code}")
        etype = data[0]
        if etype == EapType.IDENTITY:
            return _packet(EapCode.RESPONSE, ident, bytes((EapType.IDENTITY,)) + self.identity)
        if etype != _MSCHAPV2:
            return _packet(EapCode.RESPONSE, ident, bytes((EapType.NAK, _MSCHAPV2)))  # RFC 3748 §5.3.1
        if len(data) < 5:
            raise EapError("truncated EAP-MSCHAPv2 request")
        opcode, ms_id = data[1], data[2]
        if opcode == _CHALLENGE:
            if len(data) < 6 or data[5] != 16 or len(data) < 22:
                raise EapError("EAP-MSCHAPv2 challenge without a 16-octet value")
            auth_chal = data[6:22]
            peer_chal = self.rng.bytes(16)
            self._nt = mschapv2.nt_response(auth_chal, peer_chal, self.identity, self.password)
            self._expect = mschapv2.authenticator_response(
                self.password, self._nt, peer_chal, auth_chal, self.identity
            )
            value = peer_chal + bytes(8) + self._nt + b"\x00"
            return _ms(EapCode.RESPONSE, ident, _RESPONSE, ms_id, bytes((49,)) + value + self.identity)
        if opcode == _SUCCESS:
            message = data[5:]
            if self._expect is None or not hmac.compare_digest(message[:42], self._expect):
                raise EapError(
                    "the server's MS-CHAPv2 authenticator response is wrong (it does not know the password)"
                )
            self.msk = mschapv2.msk(self.password, self._nt)
            return _packet(EapCode.RESPONSE, ident, bytes((_MSCHAPV2, _SUCCESS)))
        if opcode == _FAILURE:
            # Acknowledge; the server answers with EAP-Failure, which ends it (draft §2).
            self.failure = f"MS-CHAPv2 failure from the server: {data[5:].decode('ascii', 'replace')}"
            return _packet(EapCode.RESPONSE, ident, bytes((_MSCHAPV2, _FAILURE)))
        raise EapError(f"unknown MS-CHAPv2 opcode {opcode}")


class EapServer:
    """The EAP-MSCHAPv2 authenticator for ``users`` (identity -> password)."""

    def __init__(self, users: dict[bytes, str], rng: RandomSource, name: bytes = b"ipsecdiag") -> None:
        self.users = users
        self.rng = rng
        self.name = name
        self.msk: bytes | None = None
        self.identity = b""
        self._ident = rng.bytes(1)[0]
        self._chal = b""
        self._state = "start"

    def start(self, identity: bytes) -> bytes:
        """The first request: an MS-CHAPv2 challenge for ``identity`` (the IKE IDi)."""
        self.identity = identity
        self._chal = self.rng.bytes(16)
        self._state = "challenged"
        return _ms(
            EapCode.REQUEST, self._ident, _CHALLENGE, self._ident, bytes((16,)) + self._chal + self.name
        )

    def handle(self, packet: bytes) -> tuple[bytes, bool | None]:
        """``(next packet, outcome)``: outcome None while running, True after EAP-Success,
        False after EAP-Failure (the packet is then the EAP-Failure to send)."""
        code, ident, data = _parse(packet)
        if code != EapCode.RESPONSE or ident != self._ident or len(data) < 2 or data[0] != _MSCHAPV2:
            raise EapError("unexpected EAP response")
        self._ident = (self._ident + 1) & 0xFF
        opcode = data[1]
        if self._state == "challenged" and opcode == _RESPONSE and len(data) >= 5 + 1 + 49:
            value = data[6:55]
            name = data[55:]
            peer_chal, nt = value[:16], value[24:48]
            password = self.users.get(name)
            expected = (
                mschapv2.nt_response(self._chal, peer_chal, name, password) if password is not None else None
            )
            if expected is None or not hmac.compare_digest(nt, expected):
                self._state = "failed"
                msg = b"E=691 R=0 C=" + self._chal.hex().upper().encode() + b" V=3 M=Authentication failed"
                return _ms(EapCode.REQUEST, self._ident, _FAILURE, self._ident, msg), None
            self.identity = name
            assert password is not None
            ok = mschapv2.authenticator_response(password, nt, peer_chal, self._chal, name)
            self.msk = mschapv2.msk(password, nt)
            self._state = "succeeded"
            return _ms(EapCode.REQUEST, self._ident, _SUCCESS, self._ident, ok + b" M=Welcome"), None
        if self._state == "succeeded" and opcode == _SUCCESS:
            self._state = "done"
            return _packet(EapCode.SUCCESS, self._ident), True
        if self._state == "failed" and opcode == _FAILURE:
            self._state = "done"
            return _packet(EapCode.FAILURE, self._ident), False
        raise EapError(f"MS-CHAPv2 opcode {opcode} in state {self._state}")
