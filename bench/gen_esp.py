"""Generate a large, deterministic ESP capture for the throughput benchmarks.

Ethernet/IPv4 frames carrying tunnel-mode ESP (IP protocol 50) or ESP-in-UDP on port 4500
(RFC 3948), spread over ``sas`` SAs; inner packets are IPv4/UDP of 64..1336 bytes (mean ~700).
Written with the project's own :class:`~ipsecdiag.capture.writer.PcapWriter`.

Ciphers:
  "none"            NULL encryption, no ICV (RFC 4303 with ENCR_NULL/AUTH_NONE): frames are
                    built from a few precomputed templates per SA, only the sequence number
                    changes, so a million packets take a few seconds.
  "aes-gcm-128"     RFC 4106, 16-octet ICV, 8-byte IV = the sequence number.
  "aes-cbc-sha256"  RFC 3602 AES-128-CBC + RFC 4868 HMAC-SHA-256-128.
With real encryption the ICV covers the sequence number, so every packet is encrypted (one
AEAD/HMAC object per SA, reused); that is what a decryption benchmark has to verify anyway.
``keys_out`` receives the SAs in Wireshark's esp_sa format.

Usage: python bench/gen_esp.py OUT.pcap COUNT [--sas N] [--encap-ratio R]
       [--cipher none|aes-gcm-128|aes-cbc-sha256] [--seed S] [--keys-out esp_sa]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import random
import struct
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ipsecdiag.capture.writer import PcapWriter

CIPHERS = ("none", "aes-gcm-128", "aes-cbc-sha256")
VARIANTS = 16  # distinct inner packets per SA
NATT_PORT = 4500
ESP_PROTO = 50
UDP_PROTO = 17
NH_IPV4 = 4  # ESP next header for a tunnelled IPv4 packet
BASE_TS = 1_700_000_000.0
INTERVAL = 0.0001  # 10k packets per second of capture time

_IP4 = struct.Struct("!BBHHHBBH4s4s")


@dataclass
class GenSa:
    spi: int
    src: str
    dst: str
    encap: bool
    enc_key: bytes = b""
    auth_key: bytes = b""
    packets: int = 0
    seq: int = 0


@dataclass
class GenSummary:
    path: str
    packets: int
    bytes: int
    seconds: float
    cipher: str
    sas: list[GenSa] = field(default_factory=list)


def _checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _ipv4(src: bytes, dst: bytes, proto: int, payload_len: int) -> bytes:
    """IPv4 header with DF set and id 0 (RFC 6864 allows it for atomic datagrams)."""
    hdr = _IP4.pack(0x45, 0, 20 + payload_len, 0, 0x4000, 64, proto, 0, src, dst)
    return hdr[:10] + _checksum(hdr).to_bytes(2, "big") + hdr[12:]


def _inner(rng: random.Random, sa_index: int) -> bytes:
    size = rng.randint(64, 1336)
    src = bytes([172, 16, sa_index & 0xFF, 1])
    dst = bytes([172, 17, sa_index & 0xFF, 1])
    body = rng.randbytes(size - 28)
    udp = struct.pack("!HHHH", 10000 + sa_index, 5001, 8 + len(body), 0)
    return _ipv4(src, dst, UDP_PROTO, 8 + len(body)) + udp + body


def _trailer(inner: bytes, align: int) -> bytes:
    """inner + RFC 4303 padding (1, 2, 3, ...) + pad length + next header."""
    pad = -(len(inner) + 2) % align
    return inner + bytes(range(1, pad + 1)) + bytes([pad, NH_IPV4])


def _outer(sa: GenSa, esp_len: int, mac: bytes) -> bytes:
    """Ethernet + IPv4 (+ UDP 4500) headers for an ESP packet of ``esp_len`` bytes."""
    src = bytes(int(x) for x in sa.src.split("."))
    dst = bytes(int(x) for x in sa.dst.split("."))
    eth = b"\x02\x00\x00\x00\x00\x02" + mac + b"\x08\x00"
    if sa.encap:
        udp = struct.pack("!HHHH", NATT_PORT, NATT_PORT, 8 + esp_len, 0)
        return eth + _ipv4(src, dst, UDP_PROTO, 8 + esp_len) + udp
    return eth + _ipv4(src, dst, ESP_PROTO, esp_len)


def _make_sas(rng: random.Random, sas: int, encap_ratio: float, cipher: str) -> list[GenSa]:
    n_encap = round(sas * encap_ratio)
    out = []
    for i in range(sas):
        spi = rng.getrandbits(32) | 0x1000  # 1..255 are reserved (RFC 4303 §2.1)
        src = f"10.{(i >> 8) & 0xFF}.{i & 0xFF}.1"
        dst = f"10.{128 + ((i >> 8) & 0x7F)}.{i & 0xFF}.1"
        sa = GenSa(spi, src, dst, encap=i < n_encap)
        if cipher == "aes-gcm-128":
            sa.enc_key = rng.randbytes(20)  # 16-byte key + 4-byte salt (RFC 4106 §8.1)
        elif cipher == "aes-cbc-sha256":
            sa.enc_key = rng.randbytes(16)
            sa.auth_key = rng.randbytes(32)
        out.append(sa)
    return out


def esp_sa_lines(sas: list[GenSa], cipher: str) -> list[str]:
    """Wireshark ``esp_sa`` UAT rows for the generated SAs."""
    lines = []
    for sa in sas:
        head = f'"IPv4","{sa.src}","{sa.dst}","0x{sa.spi:08x}",'
        if cipher == "aes-gcm-128":
            tail = f'"AES-GCM with 16 octet ICV [RFC4106]","0x{sa.enc_key.hex()}","NULL",""'
        elif cipher == "aes-cbc-sha256":
            tail = (
                f'"AES-CBC [RFC3602]","0x{sa.enc_key.hex()}",'
                f'"HMAC-SHA-256-128 [RFC4868]","0x{sa.auth_key.hex()}"'
            )
        else:
            tail = '"NULL","","NULL",""'
        lines.append(head + tail)
    return lines


def generate(
    path: str | Path,
    count: int,
    sas: int = 8,
    encap_ratio: float = 0.5,
    cipher: str = "none",
    seed: int = 1,
    keys_out: str | Path | None = None,
) -> GenSummary:
    """Write ``count`` ESP frames to ``path`` (pcap); optionally the esp_sa key file."""
    if cipher not in CIPHERS:
        raise ValueError(f"cipher must be one of {', '.join(CIPHERS)}")
    if sas < 1 or count < 0 or not 0.0 <= encap_ratio <= 1.0:
        raise ValueError("need sas >= 1, count >= 0 and 0 <= encap_ratio <= 1")
    started = time.perf_counter()
    rng = random.Random(seed)
    sa_list = _make_sas(rng, sas, encap_ratio, cipher)
    mac = b"\x02\x00\x00\x00\x00\x01"
    # Per SA: VARIANTS plaintexts (inner packet + ESP trailer) and their outer headers.
    align = 16 if cipher == "aes-cbc-sha256" else 4
    plain = [[_trailer(_inner(rng, i), align) for _ in range(VARIANTS)] for i in range(sas)]
    choices = [rng.randrange(sas * VARIANTS) for _ in range(4096)]
    nbytes = 0
    with PcapWriter(path, 1) as w:
        if cipher == "none":
            # (outer headers + SPI, rest of ESP after the sequence number) per SA and variant.
            templates = [
                [(_outer(sa, 8 + len(pt), mac) + sa.spi.to_bytes(4, "big"), pt) for pt in plain[i]]
                for i, sa in enumerate(sa_list)
            ]
            for n in range(count):
                c = choices[n & 4095]
                i, v = divmod(c, VARIANTS)
                sa = sa_list[i]
                sa.seq += 1
                head, tail = templates[i][v]
                frame = head + sa.seq.to_bytes(4, "big") + tail
                w.write(BASE_TS + n * INTERVAL, frame)
                nbytes += len(frame)
        else:
            nbytes = _encrypted(w, count, sa_list, plain, choices, cipher, mac)
    for sa in sa_list:
        sa.packets = sa.seq
    if keys_out is not None:
        Path(keys_out).write_text("\n".join(esp_sa_lines(sa_list, cipher)) + "\n")
    return GenSummary(str(path), count, nbytes, time.perf_counter() - started, cipher, sa_list)


def _encrypted(
    w: PcapWriter,
    count: int,
    sa_list: list[GenSa],
    plain: list[list[bytes]],
    choices: list[int],
    cipher: str,
    mac: bytes,
) -> int:
    nbytes = 0
    gcm = cipher == "aes-gcm-128"
    if gcm:
        aeads = [AESGCM(sa.enc_key[:16]) for sa in sa_list]
        esp_len = [[8 + 8 + len(pt) + 16 for pt in row] for row in plain]
    else:
        macs = [hmac.new(sa.auth_key, digestmod=hashlib.sha256) for sa in sa_list]
        aes = [algorithms.AES(sa.enc_key) for sa in sa_list]
        esp_len = [[8 + 16 + len(pt) + 16 for pt in row] for row in plain]
    heads = [[_outer(sa, n, mac) for n in esp_len[i]] for i, sa in enumerate(sa_list)]
    ivrng = random.Random(count)  # CBC IVs: unpredictable enough for a benchmark, reproducible
    for n in range(count):
        c = choices[n & 4095]
        i, v = divmod(c, VARIANTS)
        sa = sa_list[i]
        sa.seq += 1
        hdr = sa.spi.to_bytes(4, "big") + sa.seq.to_bytes(4, "big")
        if gcm:
            iv = sa.seq.to_bytes(8, "big")
            esp = hdr + iv + aeads[i].encrypt(sa.enc_key[16:] + iv, plain[i][v], hdr)
        else:
            iv = ivrng.randbytes(16)
            enc = Cipher(aes[i], modes.CBC(iv)).encryptor()
            body = hdr + iv + enc.update(plain[i][v]) + enc.finalize()
            h = macs[i].copy()
            h.update(body)
            esp = body + h.digest()[:16]
        frame = heads[i][v] + esp
        w.write(BASE_TS + n * INTERVAL, frame)
        nbytes += len(frame)
    return nbytes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("count", type=int)
    ap.add_argument("--sas", type=int, default=8)
    ap.add_argument("--encap-ratio", type=float, default=0.5)
    ap.add_argument("--cipher", choices=CIPHERS, default="none")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keys-out")
    a = ap.parse_args(argv)
    s = generate(a.out, a.count, a.sas, a.encap_ratio, a.cipher, a.seed, a.keys_out)
    print(f"{s.packets} packets, {s.bytes} bytes in {s.seconds:.1f} s -> {s.path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
