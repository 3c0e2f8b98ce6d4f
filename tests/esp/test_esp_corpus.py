"""Every keyed ESP capture in the corpus: all packets decrypt (nested ESP included), and agree
with tshark 4.0 frame by frame (next header; wherever tshark verified the ICV we did too), with
the tcpdump expected outputs and with packetgen's own plaintext copies."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest
from corpus import CORPUS, needs_corpus
from esp_frames import esp_packets, ip_packets, transport

from ipsecdiag.crypto.transforms import AUTH_HMAC_SHA2_256_96
from ipsecdiag.esp.sa import EspDecryptor, EspStatus
from ipsecdiag.keys.model import ChildSaKeys, SecretBytes
from ipsecdiag.wire.registry import EncrId, IntegId

EXT = CORPUS / "external"
TSHARK = shutil.which("tshark")

# Wireshark esp_sa names used by the corpus tables (TWOFISH-CBC has no implementation here).
_WS_ENCR = {
    "NULL": EncrId.ENCR_NULL,
    "AES-CBC [RFC3602]": EncrId.ENCR_AES_CBC,
    "TripleDES-CBC [RFC2451]": EncrId.ENCR_3DES,
    "DES-CBC [RFC2405]": EncrId.ENCR_DES,
    "BLOWFISH-CBC [RFC2451]": EncrId.ENCR_BLOWFISH,
    "AES-CTR [RFC3686]": EncrId.ENCR_AES_CTR,
    "AES-GCM with 16 octet ICV [RFC4106]": EncrId.ENCR_AES_GCM_16,
}
_WS_INTEG = {
    "NULL": 0,
    "HMAC-SHA-1-96 [RFC2404]": IntegId.AUTH_HMAC_SHA1_96,
    "HMAC-MD5-96 [RFC2403]": IntegId.AUTH_HMAC_MD5_96,
    "HMAC-SHA-256-128 [RFC4868]": IntegId.AUTH_HMAC_SHA2_256_128,
}

Row = tuple[int | None, str | None, str | None, ChildSaKeys | None]


def _ws_key(text: str) -> bytes:
    # Wireshark reads 0x-prefixed keys as hex (an odd nibble count is left-padded), others as ASCII.
    if text.startswith("0x"):
        h = text[2:]
        return bytes.fromhex(h.zfill(len(h) + len(h) % 2))
    return text.encode()


def ws_esp_sa(path: Path) -> list[Row]:
    rows: list[Row] = []
    for line in path.read_text().splitlines():
        if not line.startswith('"'):
            continue
        f = line[1:-1].split('","')
        spi = None if f[3] == "*" else int(f[3], 0)
        keys = None
        if f[4] in _WS_ENCR and f[6] in _WS_INTEG:
            keys = ChildSaKeys(
                spi=spi or 0,
                encr=_WS_ENCR[f[4]],
                encr_key=SecretBytes(_ws_key(f[5])),
                integ=_WS_INTEG[f[6]],
                integ_key=SecretBytes(_ws_key(f[7])),
                esn=False,
            )
        rows.append((spi, None if f[1] == "*" else f[1], None if f[2] == "*" else f[2], keys))
    return rows


def _lab_rows(d: Path) -> list[Row]:
    encr = {"AES_GCM_16": EncrId.ENCR_AES_GCM_16, "AES_CBC": EncrId.ENCR_AES_CBC}
    integ = {None: 0, "HMAC_SHA2_256_128": IntegId.AUTH_HMAC_SHA2_256_128}
    rows: list[Row] = []
    for c in json.loads((d / "keys.json").read_text())["child_sas"]:
        k = ChildSaKeys(
            spi=int(c["spi"], 16),
            encr=encr[c["encryption"]["alg"]],
            encr_key=SecretBytes.fromhex(c["encryption"]["key"]),
            integ=integ[c["integrity"]["alg"]],
            integ_key=SecretBytes.fromhex(c["integrity"]["key"] or ""),
            esn=None,  # let the decryptor find out
        )
        rows.append((k.spi, c["src"], c["dst"], k))
    return rows


def decrypt_capture(pcap: Path, rows: list[Row]) -> dict[int, list[tuple[int, int, bytes | None]]]:
    """Frame -> [(status, next header, payload)] for every ESP layer, nested ones included."""
    decs: dict[tuple[int, str | None, str | None], EspDecryptor] = {}
    out: dict[int, list[tuple[int, int, bytes | None]]] = {}

    def one(frame: int, data: bytes, off: int, end: int, src: str, dst: str) -> None:
        spi = struct.unpack_from("!I", data, off)[0]
        row = next(
            (r for r in rows if r[0] in (None, spi) and r[1] in (None, src) and r[2] in (None, dst)), None
        )
        if row is None or row[3] is None:
            out.setdefault(frame, []).append((EspStatus.UNSUPPORTED, -1, None))
            return
        dec = decs.get((spi, row[1], row[2]))
        if dec is None:
            dec = decs[(spi, row[1], row[2])] = EspDecryptor(replace(row[3], spi=spi))
        status, nh, payload, _ = dec.decrypt(data, off, end)
        out.setdefault(frame, []).append((status, nh, payload))
        if status == EspStatus.OK and nh in (4, 41) and payload:
            t = transport(payload, 0)
            if t is not None and t[0] == 50:  # ESP inside the tunnel
                one(frame, payload, t[3], t[4], t[1], t[2])

    for f in esp_packets(pcap):
        one(f.frame, f.data, f.off, f.end, f.src, f.dst)
    return out


def tshark_esp(pcap: Path, esp_sa: str) -> dict[int, list[tuple[str, str]]]:
    """Frame -> [(icv_good, next header)] per ESP layer, as tshark decrypts with ``esp_sa``."""
    with tempfile.TemporaryDirectory() as conf:
        Path(conf, "esp_sa").write_text(esp_sa)
        Path(conf, "preferences").write_text(
            "esp.enable_encryption_decode: TRUE\nesp.enable_authentication_check: TRUE\n"
        )
        fields = ["frame.number", "esp.icv_good", "esp.protocol"]
        cmd = [TSHARK or "tshark", "-n", "-r", str(pcap), "-Y", "esp", "-T", "fields", "-E", "occurrence=a"]
        res = subprocess.run(
            cmd + [a for f in fields for a in ("-e", f)],
            env={**os.environ, "WIRESHARK_CONFIG_DIR": conf},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    out = {}
    for line in res.stdout.splitlines():
        frame, good, proto = (line.split("\t") + ["", ""])[:3]
        goods, protos = good.split(","), proto.split(",")
        out[int(frame)] = [(goods[i] if i < len(goods) else "", protos[i]) for i in range(len(protos))]
    return out


WS_CASES = [
    ("wireshark-wiki/ipsec_esp_capture_1/capture.pcap", "wireshark-wiki/ipsec_esp_capture_1/esp_sa"),
    ("wireshark-wiki/ipsec_esp_capture_2/capture.pcap", "wireshark-wiki/ipsec_esp_capture_2/esp_sa"),
    ("wireshark-wiki/ipsec_esp_capture_3/capture.pcap", "wireshark-wiki/ipsec_esp_capture_3/esp_sa"),
    ("wireshark-wiki/ipsec_esp_capture_5/capture.pcap", "wireshark-wiki/ipsec_esp_capture_5/esp_sa"),
    ("wireshark-wiki/ipsec_ikev2_esp_natt/capture.pcapng", "wireshark-wiki/ipsec_ikev2_esp_natt/esp_sa"),
    ("zeek/ip6_esp.pcap", "wireshark-wiki/ipsec_esp_capture_1/esp_sa"),
]


@needs_corpus
@pytest.mark.parametrize(("capture", "table"), WS_CASES, ids=[c[0].split("/")[-2] for c in WS_CASES])
def test_wireshark_keyed_captures(capture: str, table: str) -> None:
    rows = ws_esp_sa(EXT / table)
    ours = decrypt_capture(EXT / capture, rows)
    assert ours
    for layers in ours.values():
        for status, _, _ in layers:
            # Only SAs whose cipher we do not implement (Twofish) may stay undecrypted.
            assert status in (EspStatus.OK, EspStatus.UNSUPPORTED)
    assert any(s == EspStatus.OK for layers in ours.values() for s, _, _ in layers)
    if TSHARK is None:
        pytest.skip("tshark not installed: compared against our own checks only")
    theirs = tshark_esp(EXT / capture, (EXT / table).read_text())
    for frame, layers in ours.items():
        for (status, nh, _), (icv_good, proto) in zip(layers, theirs[frame], strict=False):
            if status == EspStatus.OK:
                assert int(proto, 16) == nh, f"frame {frame}: next header {nh} vs tshark {proto}"
            elif icv_good == "1":
                assert status == EspStatus.UNSUPPORTED, f"frame {frame}: tshark verified, we said {status!r}"


@needs_corpus
@pytest.mark.parametrize(
    "scenario", sorted(p.name for p in (CORPUS / "lab").iterdir()) if CORPUS.is_dir() else []
)
def test_lab_captures(scenario: str) -> None:
    d = CORPUS / "lab" / scenario
    ours = decrypt_capture(d / "capture.pcap", _lab_rows(d))
    statuses = [s for layers in ours.values() for s, _, _ in layers]
    assert all(s == EspStatus.OK for s in statuses)
    # Scenarios that installed CHILD_SAs pinged through them.
    assert bool(statuses) == bool(json.loads((d / "keys.json").read_text())["child_sas"])
    if TSHARK is not None and statuses:
        theirs = tshark_esp(d / "capture.pcap", (d / "wireshark-keys" / "esp_sa").read_text())
        for frame, layers in ours.items():
            assert theirs[frame][0][0] == "1" and int(theirs[frame][0][1], 16) == layers[0][1]


def _tcpdump_inner(out_file: Path) -> list[tuple[str, str]]:
    """The innermost "IP a > b:" of each line of a tcpdump expected output."""
    pairs = []
    for line in out_file.read_text().splitlines():
        found = re.findall(r"IP (\S+) > (\S+?):", line)
        if found:
            pairs.append(found[-1])
    return pairs


def _ip_pair(payload: bytes) -> tuple[str, str]:
    t = transport(payload, 0)
    assert t is not None
    return t[1], t[2]


@needs_corpus
@pytest.mark.parametrize(
    ("capture", "expected", "secrets"),
    [
        # tcpdump -E "3des-cbc-hmac96:<key>": 3DES and a 12-byte ICV that tcpdump does not check.
        (
            "02-sunrise-sunset-esp.pcap",
            "esp1.out",
            {0x12345678: "4043434545464649494a4a4c4c4f4f515152525454575758"},
        ),
        (
            "08-sunrise-sunset-esp2.pcap",
            "esp2.out",
            {
                0x12345678: "43434545464649494a4a4c4c4f4f51515252545457575840",
                0xABCDABCD: "434545464649494a4a4c4c4f4f5151525254545757584043",
            },
        ),
        (
            "08-sunrise-sunset-aes.pcap",
            "esp5.out",
            {0xD1234567: "aaaabbbbccccdddd4043434545464649494a4a4c4c4f4f515152525454575758"},
        ),
    ],
)
def test_tcpdump_captures(capture: str, expected: str, secrets: dict[int, str]) -> None:
    d = EXT / "tcpdump"
    rows: list[Row] = []
    for spi, key in secrets.items():
        encr = EncrId.ENCR_3DES if len(key) == 48 else EncrId.ENCR_AES_CBC
        # An integrity algorithm with no key: strip a 12-byte ICV without checking it.
        keys = ChildSaKeys(
            spi=spi, encr=encr, encr_key=SecretBytes.fromhex(key), integ=IntegId.AUTH_HMAC_MD5_96, esn=False
        )
        rows.append((spi, None, None, keys))
    ours = decrypt_capture(d / capture, rows)
    innermost = []
    for frame in sorted(ours):
        status, nh, payload = ours[frame][-1]
        assert status == EspStatus.OK and nh == 4 and payload is not None
        innermost.append(_ip_pair(payload))
    assert innermost == _tcpdump_inner(d / expected)


def _packetgen(name: str, keys: ChildSaKeys) -> tuple[list[tuple[int, int, bytes | None]], bytes | None]:
    """Decrypt every ESP frame of a packetgen capture with ``keys``; also return the clear
    ("red") IP packet the file holds beside the protected one, if any."""
    path = EXT / "packetgen-plugin-ipsec" / name
    results = []
    for f in esp_packets(path):
        results.append(EspDecryptor(replace(keys, spi=f.spi)).decrypt(f.data, f.off, f.end)[:3])
    red = None
    for _, data, off in ip_packets(path):
        t = transport(data, off)
        if t is not None and t[0] != 50:
            red = data[off : t[4]]
    return results, red


@needs_corpus
def test_packetgen_captures() -> None:
    # Keys from packetgen-plugin-ipsec spec/esp_spec.rb; both SPIs of a file share the key.
    key, salt, hmac_key = bytes(range(16)), bytes.fromhex("80818283"), bytes(range(16, 32))
    cbc = ChildSaKeys(spi=0, encr=EncrId.ENCR_AES_CBC, encr_key=SecretBytes(key), esn=False)
    # HMAC-SHA-256 keyed with 16 bytes and truncated to 96 bits (packetgen's own choice).
    ctr = ChildSaKeys(
        spi=0, encr=EncrId.ENCR_AES_CTR, encr_key=SecretBytes(key + salt),
        integ=AUTH_HMAC_SHA2_256_96, integ_key=SecretBytes(hmac_key), esn=False,
    )  # fmt: skip
    gcm = ChildSaKeys(spi=0, encr=EncrId.ENCR_AES_GCM_16, encr_key=SecretBytes(key + salt), esn=False)
    for name, keys in (("esp4-cbc.pcapng", cbc), ("esp4-ctr-hmac.pcapng", ctr), ("esp4-gcm.pcapng", gcm)):
        results, red = _packetgen(name, keys)
        assert [r[:2] for r in results] == [(EspStatus.OK, 4)] * 2
        assert results[0][2] == red
    # The RFC 4868 truncation (128 bits) is not what packetgen computed.
    results, _ = _packetgen("esp4-ctr-hmac.pcapng", replace(ctr, integ=IntegId.AUTH_HMAC_SHA2_256_128))
    assert results[0][0] == EspStatus.INTEGRITY_FAILED

    # TFC (RFC 4303 §2.7): 916 zero octets after the inner packet stay in the payload.
    tfc = ChildSaKeys(
        spi=0,
        encr=EncrId.ENCR_AES_GCM_16,
        encr_key=SecretBytes.fromhex("d5a4eee309983f2da6f52fe84353ab16e6971987"),
        esn=False,
    )
    results, red = _packetgen("esp-tfc.pcapng", tfc)
    status, nh, payload = results[0]
    assert (status, nh) == (EspStatus.OK, 4) and payload is not None
    inner_len = struct.unpack_from("!H", payload, 2)[0]
    assert payload[:inner_len] == red and payload[inner_len:] == bytes(916)

    # ESN with high bits 0 (only the last packet's key is published; transport mode, ICMP).
    esn = ChildSaKeys(
        spi=0, encr=EncrId.ENCR_AES_GCM_16,
        encr_key=SecretBytes.fromhex("70b20243dbeb17a81078db80f14adf5e098b32445e0e5529b903e5140ba5883d" "bc6b7c64"), esn=None,
    )  # fmt: skip
    last = esp_packets(EXT / "packetgen-plugin-ipsec" / "esp-transport-esn.pcapng")[-1]
    dec = EspDecryptor(replace(esn, spi=last.spi))
    assert dec.decrypt(last.data, last.off, last.end)[:2] == (EspStatus.OK, 1)
    assert dec.esn is True
