"""Test-only reconstruction of what an IKEv2 peer authenticated: from a capture and the IKE SA
keys (charon's level-4 log or the lab's keys.json) to each side's signed octets and AUTH.

IKE_SA_INIT bytes and nonces come from the capture, IDi/IDr and AUTH from IKE_AUTH decrypted with
ipsecdiag's own SK code (SKF fragments reassembled, RFC 7383 §2.6). Shared by the corpus KATs
(tests/crypto) and the live strongSwan runs (tests/interop).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from crypto.ike_frames import ike_messages

from ipsecdiag.crypto.auth import PskVerdict, id_body, psk_check, signed_octets
from ipsecdiag.crypto.sk import decrypt_sk
from ipsecdiag.keys.model import IkeSaKeys
from ipsecdiag.wire.ikev2 import RawPayload, parse_message, walk_payloads
from ipsecdiag.wire.registry import PayloadType


@dataclass(frozen=True)
class Session:
    keys: IkeSaKeys
    init_request: bytes
    init_response: bytes
    inner: dict[bool, dict[int, RawPayload]]  # from_initiator -> IKE_AUTH payloads by type

    def nonce(self, initiator: bool) -> bytes:
        msg = parse_message(self.init_request if initiator else self.init_response)
        return next(p.data for p in msg.payloads if p.payload_type == PayloadType.Nonce)  # type: ignore[union-attr]

    def id_body(self, initiator: bool) -> bytes:
        return id_body(self.inner[initiator][PayloadType.IDi if initiator else PayloadType.IDr])

    def octets(self, initiator: bool) -> bytes:
        """The signed octets of one side, built from the capture and the logged SK_pi/SK_pr."""
        k = self.keys
        msg = self.init_request if initiator else self.init_response
        sk = (k.sk_pi if initiator else k.sk_pr).reveal()
        return signed_octets(msg, self.nonce(not initiator), k.prf, sk, self.id_body(initiator))

    def psk_check(self, psk: bytes) -> PskVerdict:
        """Which side's AUTH this candidate PSK explains (None: that side sent no PSK AUTH)."""
        k = self.keys
        has_id = {i: (PayloadType.IDi if i else PayloadType.IDr) in self.inner.get(i, {}) for i in (True, False)}
        ids = {i: self.id_body(i) if has_id[i] else None for i in (True, False)}
        return psk_check(
            k.prf,
            psk,
            init_request=self.init_request,
            init_response=self.init_response,
            nonce_i=self.nonce(True),
            nonce_r=self.nonce(False),
            sk_pi=k.sk_pi.reveal(),
            sk_pr=k.sk_pr.reveal(),
            id_i=ids[True],
            id_r=ids[False],
            auth_i=self.auth(True),
            auth_r=self.auth(False),
        )

    def auth(self, initiator: bool) -> tuple[int, bytes] | None:
        """(AUTH method, AUTH data) as that side sent it, or None without an AUTH payload."""
        p = self.inner.get(initiator, {}).get(PayloadType.AUTH)
        return None if p is None else (p.body[0], p.body[4:])


def session(pcap: Path, keys: IkeSaKeys) -> Session:
    """The IKE SA of ``keys`` in ``pcap``: its last IKE_SA_INIT pair (after any COOKIE or
    INVALID_KE_PAYLOAD retry) and the decrypted IKE_AUTH payloads of each side."""
    frames = [f.message for f in ike_messages(pcap) if f.message[:8] == keys.spi_i]
    init = [m for m in frames if m[18] == 34]
    request = [m for m in init if m[19] & 0x08][-1]
    response = [m for m in init if not m[19] & 0x08][-1]
    inner: dict[bool, dict[int, RawPayload]] = {}
    frags: dict[bool, dict[int, tuple[int, bytes]]] = {}
    for m in frames:
        if m[18] != 35 or m[16] not in (PayloadType.SK, PayloadType.SKF):
            continue
        from_i = bool(m[19] & 0x08)
        plain = decrypt_sk(keys, m, 28, from_initiator=from_i)
        first = m[28]
        if m[16] == PayloadType.SKF:
            number, total = struct.unpack_from("!HH", m, 32)
            parts = frags.setdefault(from_i, {})
            parts[number] = (first, plain)
            if len(parts) < total:
                continue
            first = parts[1][0]
            plain = b"".join(parts[i][1] for i in range(1, total + 1))
            del frags[from_i]
        inner.setdefault(from_i, {}).update({p.type: p for p in walk_payloads(first, plain, 0, len(plain))})
    return Session(keys, request, response, inner)
