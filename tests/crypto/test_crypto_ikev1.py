"""IKEv1 decryption and its IV chain (RFC 2409 Appendix B)."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest
from corpus import CORPUS, needs_corpus
from ike_frames import IkeFrame, ike_messages, payload_chain

from ipsecdiag.crypto.errors import DecryptError, UnsupportedAlgorithm
from ipsecdiag.crypto.ikev1 import IvUnknown, V1Decryptor, v1_payload_chain_ok
from ipsecdiag.crypto.prf import v1_hash
from ipsecdiag.keys.model import IkeV1Keys, SecretBytes
from ipsecdiag.wire.registry import V1EncrAlg, V1HashAlg, V1PayloadType


def _table(path: Path) -> dict[bytes, bytes]:
    rows = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            cookie, key = line.split(",")
            rows[bytes.fromhex(cookie)] = bytes.fromhex(key)
    return rows


def _kes(frames: list[IkeFrame]) -> list[bytes]:
    out = []
    for f in frames:
        m = f.message
        if m[19] & 1 == 0 and m[16]:
            out += [
                m[o + 4 : o + n] for t, o, n in payload_chain(m, m[16], 28, len(m)) if t == V1PayloadType.KE
            ]
    return out


def _decrypt_capture(
    pcap: Path, table: Path, encr: int, bits: int | None, hash_alg: int
) -> dict[int, list[int]]:
    """Frame number -> top-level payload types of every encrypted message."""
    frames = ike_messages(pcap)
    keys = _table(table)
    frames = [f for f in frames if f.message[:8] in keys]
    gxi, gxr = _kes(frames)[:2]
    dec = V1Decryptor(
        IkeV1Keys(cookie_i=frames[0].message[:8], encr_key=SecretBytes(keys[frames[0].message[:8]])),
        encr,
        bits,
        hash_alg,
    )
    dec.set_ke(gxi, gxr)
    out = {}
    for f in frames:
        m = f.message
        if m[19] & 1:
            mid, length = struct.unpack_from("!II", m, 20)
            pt = dec.decrypt(mid, m[28:length])
            out[f.frame] = [t for t, _, _ in payload_chain(pt, m[16], 0, len(pt))]
    return out


def _tshark_payloads(path: Path) -> dict[int, list[int]]:
    """Top-level payload numbers per frame from a tshark -V dump (8-space indent)."""
    out: dict[int, list[int]] = {}
    frame = 0
    for line in path.read_text().splitlines():
        m = re.match(r"Frame (\d+):", line)
        if m:
            frame = int(m.group(1))
            continue
        m = re.match(r" {8}Payload: .* \((\d+)\)$", line)
        if m:
            out.setdefault(frame, []).append(int(m.group(1)))
    return out


@needs_corpus
def test_lab_main_mode_psk_matches_tshark() -> None:
    d = CORPUS / "lab" / "ikev1-main-psk-ok"
    ours = _decrypt_capture(
        d / "capture.pcap",
        d / "wireshark-keys" / "ikev1_decryption_table",
        V1EncrAlg.AES_CBC,
        256,
        V1HashAlg.SHA2_256,
    )
    theirs = _tshark_payloads(d / "tshark-decrypted.txt")
    assert theirs and all(ours[frame] == types for frame, types in theirs.items())
    # Informational exchanges (DELETE) that the dump leaves out decrypt too: HASH then D.
    assert [ours[f] for f in sorted(set(ours) - set(theirs))] == [[8, 12], [8, 12]]


@needs_corpus
def test_wireshark_ikev1_certs() -> None:
    # Wireshark suite_decryption.py test_ikev1_certs: a decrypted certificate names "OpenSwan".
    d = CORPUS / "external" / "wireshark-testsuite"
    frames = ike_messages(d / "ikev1-certs.pcap")
    keys = _table(d / "ikev1_decryption_table")
    dec = V1Decryptor(
        IkeV1Keys(cookie_i=frames[0].message[:8], encr_key=SecretBytes(keys[frames[0].message[:8]])),
        V1EncrAlg.TRIPLE_DES_CBC,
        None,
        V1HashAlg.MD5,
    )
    dec.set_ke(*_kes(frames)[:2])
    certs, plaintexts = [], []
    for f in frames:
        m = f.message
        if m[19] & 1:
            mid, length = struct.unpack_from("!II", m, 20)
            pt = dec.decrypt(mid, m[28:length])
            plaintexts.append(pt)
            certs += [
                pt[o + 5 : o + n]
                for t, o, n in payload_chain(pt, m[16], 0, len(pt))
                if t == V1PayloadType.CERT
            ]
    assert any(b"OpenSwan" in c for c in certs)
    # Frames 7 and 8 are one Quick Mode message sent twice: same plaintext, and frame 9 (the
    # reply, chained on it) still decrypts, so the retransmission did not move the IV chain.
    assert plaintexts[2] == plaintexts[3]
    assert v1_payload_chain_ok(plaintexts[4])


KA = bytes(range(32))
GXI, GXR = b"\x11" * 128, b"\x22" * 128


def _pair() -> tuple[V1Decryptor, V1Decryptor]:
    keys = IkeV1Keys(cookie_i=b"c" * 8, encr_key=SecretBytes(KA))
    a = V1Decryptor(keys, V1EncrAlg.AES_CBC, 256, V1HashAlg.SHA)
    b = V1Decryptor(keys, V1EncrAlg.AES_CBC, 256, V1HashAlg.SHA)
    for x in (a, b):
        x.set_ke(GXI, GXR)
    return a, b


def _body(*payloads: tuple[int, bytes], block: int = 16) -> bytes:
    """A padded ISAKMP payload chain; the first type goes in the header, so only successors here."""
    out = b""
    for i, (_, data) in enumerate(payloads):
        nxt = payloads[i + 1][0] if i + 1 < len(payloads) else 0
        out += bytes((nxt, 0)) + struct.pack("!H", 4 + len(data)) + data
    return out + bytes(-len(out) % block)


def test_iv_chain_round_trip_with_interleaved_exchanges() -> None:
    a, b = _pair()
    # RFC 2409 Appendix B: the first IV is hash(g^xi | g^xr).
    assert a._expected_iv(0) == v1_hash(V1HashAlg.SHA, GXI + GXR)[:16]
    msgs = [
        (a, b, 0, _body((5, b"id-i"), (8, b"h" * 20))),  # MM5
        (b, a, 0, _body((5, b"id-r"), (8, b"h" * 20))),  # MM6
        (a, b, 0x1234, _body((8, b"q" * 20), (1, b"sa"), (10, b"n" * 16))),  # QM1
        (a, b, 0x9999, _body((8, b"i" * 20), (11, b"notify"))),  # INFORMATIONAL in between
        (b, a, 0x1234, _body((8, b"r" * 20), (1, b"sa"), (10, b"n" * 16))),  # QM2
        (a, b, 0x1234, _body((8, b"3" * 20))),  # QM3
    ]
    for sender, receiver, mid, body in msgs:
        ct = sender.encrypt(mid, body)
        assert receiver.decrypt(mid, ct) == body
    # Phase 2 starts from hash(last phase-1 block | M-ID).
    p1_last = a._p1_last
    assert p1_last is not None and b._p1_last == p1_last
    assert a._phase2_iv(0x4242) == v1_hash(V1HashAlg.SHA, p1_last + struct.pack("!I", 0x4242))[:16]


def test_retransmission_and_missing_message() -> None:
    a, b = _pair()
    mm5 = a.encrypt(0, _body((5, b"id-i"), (8, b"h" * 20)))
    b.decrypt(0, mm5)
    mm6 = b.encrypt(0, _body((5, b"id-r"), (8, b"h" * 20)))  # chained on MM5
    a.decrypt(0, mm6)
    qm1 = a.encrypt(0x77, _body((8, b"q" * 20), (1, b"sa")))
    c = _pair()[0]
    # MM5 lost from the capture: MM6 cannot get its first block right, and says so ...
    with pytest.raises(IvUnknown) as exc:
        c.decrypt(0, mm6)
    assert exc.value.partial[16:] == _body((5, b"id-r"), (8, b"h" * 20))[16:]
    # ... but the chain moves on: Quick Mode decrypts normally.
    assert v1_payload_chain_ok(c.decrypt(0x77, qm1))
    # A retransmitted message decrypts again without disturbing the chain.
    d = _pair()[0]
    first = d.decrypt(0, mm5)
    assert d.decrypt(0, mm5) == first
    assert v1_payload_chain_ok(d.decrypt(0, mm6))


def test_out_of_order_messages_are_recovered() -> None:
    a, b = _pair()
    mm5 = a.encrypt(0, _body((5, b"id-i"), (8, b"h" * 20)))
    mm6 = a.encrypt(0, _body((5, b"id-r"), (8, b"h" * 20)))
    qm1 = a.encrypt(0x10, _body((8, b"q" * 20)))
    inf = a.encrypt(0x20, _body((8, b"i" * 20), (12, b"delete")))
    for m in (mm5, mm6):
        b.decrypt(0, m)
    # The informational exchange seen before the quick mode one still gets its own IV.
    assert v1_payload_chain_ok(b.decrypt(0x20, inf))
    assert v1_payload_chain_ok(b.decrypt(0x10, qm1))


def test_errors() -> None:
    keys = IkeV1Keys(cookie_i=b"c" * 8, encr_key=SecretBytes(bytes(24)))
    with pytest.raises(UnsupportedAlgorithm, match="IDEA_CBC"):
        V1Decryptor(keys, V1EncrAlg.IDEA_CBC, None, V1HashAlg.SHA)
    with pytest.raises(UnsupportedAlgorithm, match="TIGER"):
        V1Decryptor(keys, V1EncrAlg.TRIPLE_DES_CBC, None, V1HashAlg.TIGER)
    with pytest.raises(UnsupportedAlgorithm, match="V1_ENCR_99"):
        V1Decryptor(keys, 99, None, V1HashAlg.SHA)
    dec = V1Decryptor(keys, V1EncrAlg.TRIPLE_DES_CBC, None, V1HashAlg.SHA)
    with pytest.raises(DecryptError, match="KE payloads"):
        dec.decrypt(0, bytes(16))
    with pytest.raises(DecryptError, match="no phase-1"):
        dec.decrypt(5, bytes(16))
    dec.set_ke(b"a", b"b")
    with pytest.raises(DecryptError, match="multiple"):
        dec.decrypt(0, bytes(12))
    with pytest.raises(Exception, match="cannot give"):
        V1Decryptor(
            IkeV1Keys(cookie_i=b"c" * 8, encr_key=SecretBytes(bytes(16))),
            V1EncrAlg.AES_CBC,
            256,
            V1HashAlg.SHA,
        )


def test_payload_chain_plausibility() -> None:
    assert v1_payload_chain_ok(_body((8, b"x" * 20), (1, b"sa")))
    assert not v1_payload_chain_ok(b"\x00\x01\x00\x08" + bytes(12))  # RESERVED not zero
    assert not v1_payload_chain_ok(b"\x05\x00\x00\x08" + bytes(8))  # chain runs off the end
    assert not v1_payload_chain_ok(b"\x00\x00\x00\x40" + bytes(12))  # length past the end
