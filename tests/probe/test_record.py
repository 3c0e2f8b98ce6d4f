"""The session recording: synthetic IP/UDP packets, the pcapng and the key files beside it."""

from __future__ import annotations

import shutil
import stat
import struct
import subprocess
from pathlib import Path

import pytest

from ipsecdiag.capture.reader import open_capture
from ipsecdiag.keys.keyfile import parse_keyfile
from ipsecdiag.keys.model import ChildSaKeys, IkeSaKeys, SecretBytes
from ipsecdiag.probe.record import Datagram, SessionRecord, _checksum, ip_udp_packet, keys_paths
from ipsecdiag.wire.registry import EncrId, IntegId, PrfId

# An IKE header (SPIi, SPIr 0, next payload none, version 2.0, IKE_SA_INIT, flags I, id 0, len 28)
IKE_HDR = bytes(range(1, 9)) + bytes(8) + bytes([0, 0x20, 34, 0x08]) + bytes(4) + (28).to_bytes(4, "big")


def test_ipv4_udp_checksums_verify() -> None:
    pkt = ip_udp_packet(("192.0.2.2", 500), ("198.51.100.2", 500), IKE_HDR, ident=7)
    assert len(pkt) == 20 + 8 + len(IKE_HDR)
    assert _checksum(pkt[:20]) == 0  # a correct IPv4 header sums to zero
    total, ident = struct.unpack("!HH", pkt[2:6])
    assert (total, ident) == (len(pkt), 7)
    pseudo = pkt[12:20] + struct.pack("!BBH", 0, 17, 8 + len(IKE_HDR))
    assert _checksum(pseudo + pkt[20:]) == 0


def test_ipv6_udp_checksum_verifies() -> None:
    payload = b"\x00\x00\x00\x00" + IKE_HDR  # with the non-ESP marker, as on port 4500
    pkt = ip_udp_packet(("2001:db8::2", 4500), ("2001:db8:1::2", 4500), payload)
    assert pkt[0] >> 4 == 6 and pkt[6] == 17
    ulen = 8 + len(payload)
    pseudo = pkt[8:40] + struct.pack("!IxxxB", ulen, 17)
    assert _checksum(pseudo + pkt[40:]) == 0


def test_mixed_families_and_impossible_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="families"):
        ip_udp_packet(("192.0.2.2", 500), ("2001:db8::1", 500), b"")
    with pytest.raises(ValueError, match="cannot exist"):
        ip_udp_packet(("192.0.2.2", 500), ("192.0.2.3", 500), bytes(65530))


def test_keys_paths_sit_beside_the_capture() -> None:
    assert keys_paths(Path("/x/session.pcapng")) == (Path("/x/session.keys.toml"), Path("/x/session.wireshark"))
    assert keys_paths(Path("run1")) == (Path("run1.keys.toml"), Path("run1.wireshark"))


def _ike_keys() -> IkeSaKeys:
    return IkeSaKeys(
        spi_i=bytes(range(1, 9)),
        spi_r=bytes(range(9, 17)),
        encr=int(EncrId.ENCR_AES_GCM_16),
        sk_ei=SecretBytes(bytes(36)),
        sk_er=SecretBytes(bytes(range(36))),
        encr_key_bits=256,
        prf=int(PrfId.PRF_HMAC_SHA2_256),
        sk_d=SecretBytes(bytes(32)),
        sk_pi=SecretBytes(bytes(32)),
        sk_pr=SecretBytes(bytes(32)),
    )


def _child_keys() -> ChildSaKeys:
    return ChildSaKeys(
        spi=0xC0FFEE01,
        encr=int(EncrId.ENCR_AES_CBC),
        encr_key=SecretBytes(bytes(16)),
        integ=int(IntegId.AUTH_HMAC_SHA2_256_128),
        integ_key=SecretBytes(bytes(32)),
        src="192.0.2.2",
        dst="198.51.100.2",
        encr_key_bits=128,
        mode="tunnel",
    )


def _record() -> SessionRecord:
    rec = SessionRecord()
    rec.add(Datagram(1_700_000_000.25, ("192.0.2.2", 500), ("198.51.100.2", 500), IKE_HDR, True))
    marker = b"\x00\x00\x00\x00"
    rec.add(Datagram(1_700_000_000.5, ("198.51.100.2", 4500), ("192.0.2.2", 4500), marker + IKE_HDR, False))
    return rec


def test_pcapng_reads_back_in_order_with_timestamps(tmp_path: Path) -> None:
    rec = _record()
    out = rec.write(tmp_path / "s.pcapng")
    assert out.frames == 2 and out.keyfile is None  # no keys, no key files
    with open_capture(tmp_path / "s.pcapng") as cap:
        frames = list(cap)
    assert [round(f[1], 3) for f in frames] == [1_700_000_000.25, 1_700_000_000.5]
    assert frames[0][2] == 101 and frames[0][3][28:] == IKE_HDR
    assert (rec.sent, rec.received) == (1, 1)


def test_key_files_are_private_and_parse(tmp_path: Path) -> None:
    rec = _record()
    rec.add_keys([_ike_keys(), _child_keys(), _ike_keys()])  # a repeat is kept once
    out = rec.write(tmp_path / "s.pcapng")
    assert out.keyfile == tmp_path / "s.keys.toml" and out.key_records == 2
    assert stat.S_IMODE(out.keyfile.stat().st_mode) == 0o600
    parsed = parse_keyfile(out.keyfile.read_text())
    assert sorted(type(k).__name__ for k in parsed.keys) == ["ChildSaKeys", "IkeSaKeys"]
    assert out.wireshark_dir is not None
    assert stat.S_IMODE(out.wireshark_dir.stat().st_mode) == 0o700
    for name in ("ikev2_decryption_table", "esp_sa"):
        assert stat.S_IMODE((out.wireshark_dir / name).stat().st_mode) == 0o600


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_tshark_dissects_the_recording_with_valid_checksums(tmp_path: Path) -> None:
    _record().write(tmp_path / "s.pcapng")
    res = subprocess.run(
        ["tshark", "-n", "-r", str(tmp_path / "s.pcapng"), "-o", "udp.check_checksum:TRUE",
         "-o", "ip.check_checksum:TRUE", "-T", "fields", "-e", "udp.srcport", "-e", "isakmp.ispi",
         "-e", "udp.checksum.status", "-e", "ip.checksum.status"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    rows = [line.split("\t") for line in res.stdout.splitlines()]
    assert [r[0] for r in rows] == ["500", "4500"]
    assert all(r[1] == "0102030405060708" for r in rows)
    assert all(r[2] == "1" and r[3] == "1" for r in rows), rows  # 1 = "Good" (0 bad, 2 unverified)
