"""Vendor-ID catalogue: known values from the public tables, suffix decoding, table hygiene."""

from __future__ import annotations

import hashlib

import pytest

from ipsecdiag.wire.vendors import KNOWN_VENDOR_IDS, identify_vendor, lookup_vendor

# (hex as published by Wireshark packet-isakmp.c / ike-scan / nmap / strongSwan, expected name)
KNOWN = [
    ("afcad71368a1f1c96b8696fc77570100", "DPD (RFC 3706)"),  # RFC 3706 §7
    ("4a131c81070358455c5728f20e95452f", "NAT-T (RFC 3947)"),  # RFC 3947 §3.1, MD5("RFC 3947")
    ("4485152d18b6bbcd0be8a8469579ddcc", "draft-ietf-ipsec-nat-t-ike-00"),
    ("16f6ca16e4a4066d83821a0f0aeaa862", "draft-ietf-ipsec-nat-t-ike-01"),
    ("cd60464335df21f87cfdb2fc68b6a448", "draft-ietf-ipsec-nat-t-ike-02"),
    ("90cb80913ebb696e086381b5ec427b1f", "draft-ietf-ipsec-nat-t-ike-02\\n"),
    ("7d9419a65310ca6f2c179d9215529d56", "draft-ietf-ipsec-nat-t-ike-03"),
    ("42ea5b6f898d9773a575df26e7dd19e1", "draft-ietf-ipsec-nat-t-ike-09"),
    ("4df37928e9fc4fd1b3262170d515c662", "draft-ietf-ipsec-nat-t-ike"),
    ("27bab5dc01ea0760ea4e3190ac27c0d0", "draft-stenberg-ipsec-nat-traversal-01"),
    ("50760f624c63e5c53eea386c685ca083", "draft-huttunen-ipsec-esp-in-udp-01 (ESPThruNAT)"),
    ("09002689dfd6b712", "XAUTH"),
    ("09002689dfd6b71280a224dec33b81e5", "draft-beaulieu-ike-xauth-02"),
    ("4048b7d56ebce88525e7de7f00d6c2d3", "FRAGMENTATION"),
    ("4048b7d56ebce88525e7de7f00d6c2d380000000", "FRAGMENTATION (capabilities 0x80000000)"),
    ("4048b7d56ebce88525e7de7f00d6c2d3c0000000", "FRAGMENTATION (capabilities 0xc0000000)"),
    ("882fe56d6fd20dbc2251613b2ebe5beb", "strongSwan"),  # strongSwan isakmp_vendor.c
    ("2d1f406118fbd5d28474791ffa00488a", "strongSwan 4.2.3"),  # nmap ike-fingerprints
    ("85b6cbec480d5c8cd9882c825ac2c244", "strongSwan 2.2.0"),
    ("12f5f28c457168a9702d9fe274cc0100", "Cisco Unity 1.0"),
    ("1f07f70eaa6514d3b0fa96542a500407", "Cisco VPN 3000 Concentrator 4.0.7"),
    ("434953434f2d44454c4554452d524541534f4e", "Cisco Delete Reason"),
    ("434953434f2d44594e414d49432d524f555445", "Cisco Dynamic Route"),
    ("464c455856504e2d535550504f52544544", "Cisco FlexVPN Supported"),
    ("1e2b516905991c7d7c96fcbfb587e46100000002", "MS NT5 ISAKMPOAKLEY (Windows 2000)"),
    ("1e2b516905991c7d7c96fcbfb587e46100000007", "MS NT5 ISAKMPOAKLEY (Windows 7)"),
    ("1e2b516905991c7d7c96fcbfb587e4610000002a", "MS NT5 ISAKMPOAKLEY (version 42)"),
    ("fb1de3cdf341b7ea16b7e5be0855f120", "MS-Negotiation Discovery Capable"),
    ("e3a5966a76379fe707228231e5ce8652", "IKE CGA version 1 (Microsoft)"),
    ("26244d38eddb61b3172a36e3d0cfb819", "Vid-Initial-Contact (Microsoft)"),
    ("214ca4faffa7f32d6748e5303395ae83", "MS-MamieExists (AuthIP supported)"),
    ("01528bbbc00696121849ab9a1c5b2a5100000002", "Microsoft KEY_MODS (IKEv2)"),
    ("8299031757a36082c6a621de000502d7", "Fortinet FortiGate (release 5, build 727)"),
    ("b4f01ca951e9da8d0bafbbd34ad3044e", "Fortinet Endpoint Control"),
    ("4c53427b6d465d1b337bb755a37a7fef", "Fortinet FortiClient Connect license"),
    ("699369228741c6d4ca094c93e242c9de19e7b7c60000000500000500", "Juniper NetScreen (06)"),
    ("f4ed19e0c114eb516faaac0ee37daf2807b4381f000000010000138b0000000000000000", "Check Point (Firewall-1 NG FP3)"),
    ("404bf439522ca3f6", "SonicWall"),
    ("625027749d5ab97f5616c1602765cf480a3b7d0b", "ZyXEL ZyWALL"),
    ("7003cbc1097dbe9c2600ba6983bc8b35", "KAME/racoon"),
    ("f14b94b7bff1fef02773b8c49feded26", "Shrew Soft"),
    ("4865617274426561745f4e6f74696679386b0100", "Heartbeat Notify (386b0100)"),
    ("4f4548724b6e5e68557c604f", "Openswan 2.2.0"),  # FreeS/WAN-style hash of "Openswan 2.2.0"
    ("4f45706c75746f756e697430", "Openswan/FreeS/WAN"),  # "OEplutounit0" (Openswan unit tests)
    (b"OE-Libreswan-4.12".hex(), "Libreswan 4.12"),
    ("47bbe7c993f1fc13b4e6d0db565c68e5010201010201010310382e302e3020284275696c6420313029000000",
     "SafeNet SoftRemote 8.0.0 (Build 10)"),
    ("fbf47614984031fa8e3bb6198089b223", "SSH IPSEC Express 1.1.0"),
    ("eb4b0d96276b4e220ad16221a7b2a5e6", "SSH Sentinel 1.4.1"),
    ("ad2c0dd0b9c32083ccba25b8861ec455", "GSS-API Authentication Method for IKE"),
    ("621b04bb09882ac1e15935fefa24aeee", "GSSAPI"),
]  # fmt: skip


@pytest.mark.parametrize(("hexvalue", "name"), KNOWN)
def test_known_vendor_ids(hexvalue: str, name: str) -> None:
    assert identify_vendor(bytes.fromhex(hexvalue)) == name


def test_md5_derived_entries_match_their_published_hex() -> None:
    # The table derives most VIDs from MD5 of a text; a few published values pin that down.
    assert hashlib.md5(b"RFC 3947").hexdigest() == "4a131c81070358455c5728f20e95452f"
    assert hashlib.md5(b"strongSwan").hexdigest() == "882fe56d6fd20dbc2251613b2ebe5beb"
    assert hashlib.md5(b"FRAGMENTATION").hexdigest() == "4048b7d56ebce88525e7de7f00d6c2d3"
    assert hashlib.md5(b"MS NT5 ISAKMPOAKLEY").hexdigest() == "1e2b516905991c7d7c96fcbfb587e461"


def test_unknown_and_near_misses() -> None:
    assert identify_vendor(b"") is None
    assert identify_vendor(bytes(16)) is None
    assert identify_vendor(bytes.fromhex("4a131c81070358455c5728f20e95452e")) is None
    # "OE" is only Openswan when the VID has Openswan's 12-byte size.
    assert identify_vendor(b"OE" + bytes(14)) is None


def test_exact_value_beats_a_shorter_prefix() -> None:
    entry = lookup_vendor(bytes.fromhex("09002689dfd6b71280a224dec33b81e5"))
    assert entry is not None and not entry.prefix


def test_table_is_large_well_formed_and_unique() -> None:
    assert len(KNOWN_VENDOR_IDS) >= 60
    values = [e.value for e in KNOWN_VENDOR_IDS]
    assert len(values) == len(set(values)), "duplicate Vendor ID values"
    for e in KNOWN_VENDOR_IDS:
        assert isinstance(e.value, bytes) and e.value, e.name
        assert bytes.fromhex(e.value.hex()) == e.value
        assert e.name and e.name == e.name.strip()
        if not e.prefix:  # an exact entry must be what its own value looks up to
            assert lookup_vendor(e.value) == e
            assert identify_vendor(e.value) == e.name


def test_prefix_entries_decode_any_suffix_without_raising() -> None:
    for e in KNOWN_VENDOR_IDS:
        if e.prefix:
            for suffix in (b"", b"\x00", b"\xff" * 3, b"\x01\x02\x03\x04", bytes(range(40))):
                result = e.describe(e.value + suffix)
                assert result is None or isinstance(result, str)
