"""Catalogue of known IKE Vendor ID payloads: bytes -> "strongSwan", "MS NT5 ISAKMPOAKLEY (Windows 7)".

Facts (values and names) come from the vendor-ID tables of strongSwan (isakmp_vendor.c,
ike_vendor.c), libreswan/Openswan (vendor.c), Wireshark (packet-isakmp.c), ike-scan
(ike-vendor-ids) and nmap (ike-fingerprints.lua). Most VIDs are MD5 hashes of a text; those
are written here as the text so the table says what it means (``_md5("RFC 3947")``), the
rest as the hex seen on the wire.

Matching: an exact value wins; otherwise the longest matching prefix entry, whose decoder
may read the suffix (a version number, capability bits) or reject the match (return None).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

Decoder = Callable[[bytes], "str | None"]


@dataclass(frozen=True)
class KnownVendorId:
    """``value`` is the whole VID, or its first bytes when ``prefix``; ``decode`` turns the
    remaining bytes into the display name (or None: not this vendor after all)."""

    name: str
    value: bytes
    prefix: bool = False
    decode: Decoder | None = None

    def describe(self, data: bytes) -> str | None:
        if self.decode is None:
            return self.name
        return self.decode(data[len(self.value) :])


def _md5(text: str) -> bytes:
    return hashlib.md5(text.encode(), usedforsecurity=False).digest()


def _fswan(text: str) -> bytes:
    """FreeS/WAN-style VID: "OE" + the first 10 MD5 bytes forced into 0x40..0x7f (printable)."""
    return b"OE" + bytes((c & 0x7F) | 0x40 for c in _md5(text)[:10])


def _h(hexstr: str) -> bytes:
    return bytes.fromhex(hexstr)


def _exact(name: str, value: bytes) -> KnownVendorId:
    return KnownVendorId(name, value)


def _prefix(name: str, value: bytes, decode: Decoder | None = None) -> KnownVendorId:
    return KnownVendorId(name, value, True, decode)


# -- suffix decoders ------------------------------------------------------------------------


def _printable(raw: bytes) -> str:
    return "".join(chr(c) if 32 <= c < 127 else "." for c in raw)


def _ascii_suffix(name: str) -> Decoder:
    return lambda s: f"{name} {_printable(s).strip()}".rstrip()


def _hex_suffix(name: str) -> Decoder:
    return lambda s: f"{name} ({s.hex()})" if s else name


def _fixed_length(name: str, total: int, prefix_len: int) -> Decoder:
    """Prefixes as short as "OE" only count when the VID has the implementation's fixed size."""
    return lambda s: name if prefix_len + len(s) == total else None


def _dpd(s: bytes) -> str:
    # RFC 3706 §7: the last two bytes are the major and minor version (1.0).
    if len(s) == 2 and s != b"\x01\x00":
        return f"DPD (RFC 3706) v{s[0]}.{s[1]}"
    return "DPD (RFC 3706)" if len(s) == 2 else f"DPD (RFC 3706) ({s.hex()})"


def _unity(s: bytes) -> str:
    return f"Cisco Unity {s[0]}.{s[1]}" if len(s) == 2 else _hex_suffix("Cisco Unity")(s)


def _cisco3k(s: bytes) -> str:
    # Observed values 0300 = 3.0.0, 0305 = 3.0.5, 0407 = 4.0.7 (libreswan, nmap).
    if len(s) == 2:
        return f"Cisco VPN 3000 Concentrator {s[0]}.0.{s[1]}"
    return _hex_suffix("Cisco VPN 3000 Concentrator")(s)


def _fragmentation(s: bytes) -> str:
    # 4 optional capability bytes: 0x80000000 = main/aggressive mode fragments (racoon,
    # strongSwan), Cisco also sets 0x40000000 (base mode).
    if len(s) == 4:
        return f"FRAGMENTATION (capabilities 0x{s.hex()})"
    return "FRAGMENTATION" if not s else f"FRAGMENTATION ({s.hex()})"


_WINDOWS = {
    2: "Windows 2000",
    3: "Windows XP",
    4: "Windows Server 2003",
    5: "Windows Vista",
    6: "Windows Server 2008",
    7: "Windows 7",
    8: "Windows Server 2008 R2",
    9: "Windows 8 or later",
}


def _ms_nt5(s: bytes) -> str:
    if len(s) >= 4:
        v = int.from_bytes(s[:4], "big")
        return f"MS NT5 ISAKMPOAKLEY ({_WINDOWS.get(v, f'version {v}')})"
    return "MS NT5 ISAKMPOAKLEY"


def _ms_key_mods(s: bytes) -> str:
    kinds = {0: "IKE", 1: "AuthIP", 2: "IKEv2"}
    v = int.from_bytes(s, "big") if len(s) == 4 else -1
    return f"Microsoft KEY_MODS ({kinds.get(v, s.hex())})"


def _ms_authip_ke(s: bytes) -> str:
    groups = {0: "none", 1: "DH1", 2: "DH2", 3: "DH14", 4: "DH19", 5: "DH20", 6: "DH21", 7: "max"}
    v = int.from_bytes(s, "big") if len(s) == 4 else -1
    return f"Microsoft AuthIP initiator KE ({groups.get(v, s.hex())})"


_CP_VERSIONS = {
    2: "4.1",
    3: "4.1 SP1",
    4002: "4.1 SP2 or later",
    5000: "NG",
    5001: "NG FP1",
    5002: "NG FP2",
    5003: "NG FP3",
    5004: "NG AI",
    5005: "NG AI R55",
    5006: "NG AI R56",
}


def _checkpoint(s: bytes) -> str:
    # Product (4 bytes: 1 = Firewall-1, 2 = SecuRemote/SecureClient), version (4), ...
    if len(s) >= 8:
        product = {1: "Firewall-1", 2: "SecuRemote/SecureClient"}.get(int.from_bytes(s[:4], "big"), "")
        version = int.from_bytes(s[4:8], "big")
        detail = " ".join(x for x in (product, _CP_VERSIONS.get(version, f"version {version}")) if x)
        return f"Check Point ({detail})"
    return "Check Point"


def _fortigate(s: bytes) -> str:
    if len(s) >= 4:
        release, build = int.from_bytes(s[:2], "big"), int.from_bytes(s[2:4], "big")
        return f"Fortinet FortiGate (release {release}, build {build})"
    return "Fortinet FortiGate"


def _safenet(s: bytes) -> str:
    # 9 bytes of flags, the 9th being the length of an ASCII version: "8.0.0 (Build 10)".
    if len(s) > 9 and 9 + s[8] <= len(s):
        return f"SafeNet SoftRemote {_printable(s[9 : 9 + s[8]])}"
    return "SafeNet SoftRemote"


def _libreswan(s: bytes) -> str:
    return f"Libreswan {_printable(s)}" if s else "Libreswan"


# -- the table ------------------------------------------------------------------------------

_STRONGSWAN_VERSIONS = (
    [f"2.2.{i}" for i in range(3)]
    + [f"2.3.{i}" for i in range(3)]
    + [f"2.4.{i}" for i in range(5)]
    + [f"2.5.{i}" for i in range(8)]
    + [f"2.6.{i}" for i in range(5)]
    + [f"2.7.{i}" for i in range(4)]
    + [f"2.8.{i}" for i in range(12)]
    + [f"4.0.{i}" for i in range(8)]
    + [f"4.1.{i}" for i in range(12)]
    + [f"4.2.{i}" for i in range(18)]
    + [f"4.3.{i}" for i in range(6)]
)

_SSH_IPSEC_EXPRESS = {
    "1.1.0": "Ssh",
    "1.1.1": "Ssh",
    "1.1.2": "Ssh",
    "1.2.1": "Ssh",
    "1.2.2": "Ssh",
    "2.0.0": "SSH",
    "2.1.0": "SSH",
    "2.1.1": "SSH",
    "2.1.2": "SSH",
    "3.0.0": "SSH",
    "3.0.1": "SSH",
    "4.0.0": "SSH",
    "4.0.1": "SSH",
    "4.1.0": "SSH",
    "4.2.0": "SSH",
}

_NETSCREEN = (
    "299ee8289f40a8973bc78687e2e7226b532c3b76",
    "3a15e1f3cf2a63582e3ac82d1c64cbe3b6d779e7",
    "47d2b126bfcd83489760e2cf8c5d4d5a03497c15",
    "4a4340b543e02b84c88a8b96a8af9ebe77d9accc",
    "64405f46f03b7660a23be116a1975058e69e8387",
    "699369228741c6d4ca094c93e242c9de19e7b7c6",
    "8c0dc6cf62a0ef1b5c6eabd1b67ba69866adf16a",
    "92d27a9ecb31d99246986d3453d0c3d57a222a61",
    "9b096d9ac3275a7d6fe8b91c583111b09efed1a0",
    "bf03746108d746c904f1f3547de24f78479fed12",
    "c2e80500f4cc5fbf5daaeed3bb59abaeee56c652",
    "c8660a62b03b1b6130bf781608d32a6a8d0fb89f",
    "f885da40b1e7a9abd17655ec5bbec0f21f0ed52e",
    "2a2bcac19b8e91b426107807e02e7249569d6fd3",
    "166f932d55eb64d8e4df4fd37e2313f0d0fd8451",
    "a35bfd05ca1ac0b3d2f24e9e82bfcbff9c9e52b5",
)

KNOWN_VENDOR_IDS: tuple[KnownVendorId, ...] = (
    # -- IETF extensions and drafts
    _exact("NAT-T (RFC 3947)", _md5("RFC 3947")),
    _exact("draft-ietf-ipsec-nat-t-ike", _md5("draft-ietf-ipsec-nat-t-ike")),
    *(
        _exact(f"draft-ietf-ipsec-nat-t-ike-{n:02d}", _md5(f"draft-ietf-ipsec-nat-t-ike-{n:02d}"))
        for n in range(10)
    ),
    # draft -02 printed its hash with a trailing newline; implementations send both.
    _exact("draft-ietf-ipsec-nat-t-ike-02\\n", _md5("draft-ietf-ipsec-nat-t-ike-02\n")),
    _exact("Testing NAT-T RFC", _h("c40fee00d5d39ddb1fc762e09b7cfea7")),
    _exact("RFC XXXX (Solaris NAT-T placeholder)", _md5("RFC XXXX")),
    _exact("draft-stenberg-ipsec-nat-traversal-01", _md5("draft-stenberg-ipsec-nat-traversal-01")),
    _exact("draft-stenberg-ipsec-nat-traversal-02", _md5("draft-stenberg-ipsec-nat-traversal-02")),
    _exact("draft-huttunen-ipsec-esp-in-udp-00", _md5("draft-huttunen-ipsec-esp-in-udp-00.txt")),
    _exact("draft-huttunen-ipsec-esp-in-udp-01 (ESPThruNAT)", _md5("ESPThruNAT")),
    _prefix("DPD (RFC 3706)", _h("afcad71368a1f1c96b8696fc7757"), _dpd),
    # XAUTH: the first 8 bytes of MD5("draft-ietf-ipsra-isakmp-xauth-06.txt").
    _prefix("XAUTH", _md5("draft-ietf-ipsra-isakmp-xauth-06.txt")[:8]),
    _exact("draft-beaulieu-ike-xauth-02", _h("09002689dfd6b71280a224dec33b81e5")),
    _prefix("FRAGMENTATION", _md5("FRAGMENTATION"), _fragmentation),
    _prefix("Heartbeat Notify", b"HeartBeat_Notify", _hex_suffix("Heartbeat Notify")),
    _exact("draft-ietf-ipsec-antireplay-00", _h("325df29a2319f2dd")),
    _exact("draft-ietf-ipsec-heartbeats-00", _h("8db7a41811221660")),
    _exact("IKE Challenge/Response", _h("ba290499c24e84e53a1d83a05e5f00c9")),
    _exact("IKE Challenge/Response", _h("0d33611a5d521b5e3c9c03d2fc107e12")),
    _exact("IKE Challenge/Response (revised)", _h("ad3251042cdc4652c9e0734ce5de4c7d")),
    _exact("IKE Challenge/Response (revised)", _h("013f11823f966fa91900f024ba66a86b")),
    _exact("GSS-API Authentication Method for IKE", _md5("A GSS-API Authentication Method for IKE")),
    _exact("GSS-API Authentication Method for IKE", _md5("A GSS-API Authentication Method for IKE\n")),
    _exact("GSSAPI", _md5("GSSAPI")),
    _exact("IKEv2 capable (Openswan/Libreswan)", b"IKEv2"),
    _exact("Opportunistic IPsec (Libreswan)", b"Opportunistic IPsec"),
    _prefix("OpenPGP", b"OpenPGP", _ascii_suffix("OpenPGP")),
    # -- strongSwan, Openswan, Libreswan, FreeS/WAN, racoon
    _exact("strongSwan", _md5("strongSwan")),
    *(_exact(f"strongSwan {v}", _md5(f"strongSwan {v}")) for v in _STRONGSWAN_VERSIONS),
    _prefix("Libreswan", b"OE-Libreswan-", _libreswan),
    _prefix("Libreswan 3.0-3.5", b"OEN", _fixed_length("Libreswan 3.0-3.5", 12, 3)),
    _prefix("Openswan (Xelerance)", b"OSW", _fixed_length("Openswan (Xelerance)", 12, 3)),
    _prefix("Openswan/FreeS/WAN", b"OE", _fixed_length("Openswan/FreeS/WAN", 12, 2)),
    _exact("FreeS/WAN 2.00", _fswan("Linux FreeS/WAN 2.00 PLUTO_SENDS_VENDORID")),
    _exact("FreeS/WAN 2.00 (X.509-1.3.1)", _fswan("Linux FreeS/WAN 2.00 X.509-1.3.1 PLUTO_SENDS_VENDORID")),
    _exact(
        "FreeS/WAN 2.00 (X.509-1.3.1 + LDAP)",
        _fswan("Linux FreeS/WAN 2.00 X.509-1.3.1 LDAP PLUTO_SENDS_VENDORID"),
    ),
    _exact("FreeS/WAN 2.00", _h("4f45486b7d44784d42676b5d")),  # as observed by nmap
    _exact("FreeS/WAN 2.01", _h("4f457c4f547e6e615b426e56")),
    _exact("FreeS/WAN 2.02", _h("4f456c6b44696d7f6b4c4e60")),
    _exact("FreeS/WAN 2.03", _h("4f45566671474962734e6264")),
    _exact("FreeS/WAN 2.04", _h("4f45704f736579505c6e5f6d")),
    _exact("FreeS/WAN 2.05", _h("4f457271785f4c7e496f4d54")),
    _exact("FreeS/WAN 2.06", _h("4f457e4c466e5d427c5c6b52")),
    _exact("Openswan 2.2.0", _fswan("Openswan 2.2.0")),
    _exact("Openswan 2.3.0", _h("4f4572696f5c77557f746249")),
    _exact("KAME/racoon", _md5("KAME/racoon")),
    _exact("IPsec-Tools (racoon)", _h("20a3622c1cea7ce37bee3ca484425276")),
    _prefix("OpenIKED", b"OpenIKED", _ascii_suffix("OpenIKED")),
    # -- Cisco
    _prefix("Cisco Unity", _h("12f5f28c457168a9702d9fe274cc"), _unity),
    _exact("Cisco Unity FW type", _h("800100018002000180030002")),
    # The VPN 3000 VID is a truncated MD5 of "ALTIGA GATEWAY" plus a 2-byte version.
    _prefix("Cisco VPN 3000 Concentrator", _h("1f07f70eaa6514d3b0fa96542a50"), _cisco3k),
    _prefix("Cisco IOS", _h("3e984048")),
    _exact("Cisco Delete Reason", b"CISCO-DELETE-REASON"),
    _exact("Cisco Dynamic Route", b"CISCO-DYNAMIC-ROUTE"),
    _exact("Cisco FlexVPN Supported", b"FLEXVPN-SUPPORTED"),
    _exact("Cisco GRE Mode", b"CISCO-GRE-MODE"),
    _exact("Cisco VPN Revision 2", b"CISCOVPN-REV-02"),
    _exact("Cisco Copyright (c) 2009", b"CISCO(COPYRIGHT)&Copyright (c) 2009 Cisco Systems, Inc."),
    # -- Microsoft
    _prefix("MS NT5 ISAKMPOAKLEY", _md5("MS NT5 ISAKMPOAKLEY"), _ms_nt5),
    _exact("Vid-Initial-Contact (Microsoft)", _md5("Vid-Initial-Contact")),
    _exact("MS-Negotiation Discovery Capable", _md5("MS-Negotiation Discovery Capable")),
    _exact("IKE CGA version 1 (Microsoft)", _md5("IKE CGA version 1")),
    # libreswan lists the same bytes raw as "AuthIP supported".
    _exact("MS-MamieExists (AuthIP supported)", _md5("MS-MamieExists")),
    _prefix("Microsoft KEY_MODS", _h("01528bbbc00696121849ab9a1c5b2a51"), _ms_key_mods),
    _prefix("Microsoft AuthIP initiator KE", _h("7bb93867d76c8d80df0f40fae8fc3b19"), _ms_authip_ke),
    _exact("Microsoft NLB/MSCS fast failover", _h("72872b95fcda2eb708efe322119b4971")),
    _exact("Microsoft Xbox One 2013", _h("8aa394cf8a5577dc3110c113b027a4f2")),
    _exact("Microsoft Xbox IKEv2 Negotiation", _h("660822b3a73a244149578d62e0eb46a0")),
    _prefix("Microsoft IPsec Security Realm Id", _h("686a8cbdfe634b405146fb2baf33e9e8")),
    # -- Fortinet
    _prefix("Fortinet FortiGate", _h("8299031757a36082c6a621de"), _fortigate),
    _exact("Fortinet FortiGate", _h("1d6e178f6c2c0be284985465450fe9d4")),
    _exact("Fortinet Endpoint Control", _md5("Fortinet Endpoint Control")),
    _exact("Fortinet FortiClient Connect license", _md5("forticlient connect license")),
    # -- Juniper / NetScreen (8 trailing bytes seen after these: two 4-byte values)
    *(_prefix(f"Juniper NetScreen ({i:02d})", _h(v)) for i, v in enumerate(_NETSCREEN, 1)),
    _prefix("Juniper SSG", _h("2c9d7e81995b9967d23f571ac641f9348122f1cc")),
    _prefix("Juniper NetScreen NS-5XP", _h("9436e8d67174ef9aed068d5ad5213f187a3f8ba6")),
    # -- Check Point: 20-byte prefix, then product, version, timestamp, reserved, features
    _prefix("Check Point", _h("f4ed19e0c114eb516faaac0ee37daf2807b4381f"), _checkpoint),
    _exact("Check Point R71 / CryptoPro GOST 1.0", _h("031017e07f7a82e3aa6950c999990100")),
    _exact("CryptoPro GOST 1.1", _h("031017e07f7a82e3aa6950c999990101")),
    # -- SonicWall, WatchGuard, SafeNet
    _prefix("SonicWall", _h("404bf439522ca3f6")),
    _prefix("SonicWall", _h("5b362bc820f6"), _hex_suffix("SonicWall")),
    _prefix(
        "SafeNet/WatchGuard/SonicWall client",
        _h("da8e9378"),
        _hex_suffix("SafeNet/WatchGuard/SonicWall client"),
    ),
    _prefix("SafeNet SoftRemote", _h("47bbe7c993f1fc13b4e6d0db565c68e5"), _safenet),
    # -- ZyXEL
    _exact("ZyXEL ZyWALL Router", _h("b858d1addd08c1e8adafea150608aa4497aa6cc8")),
    _exact("ZyXEL ZyWALL USG 100", _h("f758f22668750f03b08df6ebe1d0")),
    _exact("ZyXEL ZyWALL", _h("625027749d5ab97f5616c1602765cf480a3b7d0b")),
    # -- SSH Communications Security
    _exact("SSH Sentinel", _md5("SSH Sentinel")),
    *(_exact(f"SSH Sentinel {v}", _md5(f"SSH Sentinel {v}")) for v in ("1.1", "1.2", "1.3", "1.4", "1.4.1")),
    *(
        _exact(f"SSH IPSEC Express {v}", _md5(f"{who} Communications Security IPSEC Express version {v}"))
        for v, who in _SSH_IPSEC_EXPRESS.items()
    ),
    _exact("SSH IPSEC Express 4.1.1", _h("89f7b760d86b012acf263382394d962f")),
    _exact("SSH IPSEC Express 5.0", _h("b037a21aceccb5570f602546f97bde8c")),
    _exact("SSH IPSEC Express 5.0.0", _h("2b2dad97c4d140930053287f996850b0")),
    _exact("SSH IPSEC Express 5.1.0", _h("45e17f3abe93944cb202910c59ef806b")),
    _exact("SSH IPSEC Express 5.1.1", _h("5925859f7377ed7816d2fb81c01fa551")),
    _exact("SSH QuickSec 0.9.0", _h("37eba0c4136184e7daf8562a77060b4a")),
    _exact("SSH QuickSec 1.1.0", _h("5d72925e55948a9661a7fc48fdec7ff9")),
    _exact("SSH QuickSec 1.1.1", _h("777fbf4c5af6d1cdd4b895a05bf82594")),
    _exact("SSH QuickSec 1.1.2", _h("2cdf08e712ede8a5978761267cd19b91")),
    _exact("SSH QuickSec 1.1.3", _h("59e454a8c2cf02a34959121f1890bc87")),
    _exact("SSH QuickSec 2.1.0", _h("8f9cc94e01248ecdf147594c284b213b")),
    # -- other clients and gateways
    _exact("Shrew Soft", _h("f14b94b7bff1fef02773b8c49feded26")),
    _exact("Shrew Soft DPDv1_NG", _h("3b9031dce4fcf88b489a923963dd0c49")),
    _exact("NCP client", _h("101fb0b35c5a4f4c08b919f1cb9777b0")),
    _prefix("NCP Server", _h("c6f57ac398f493208145b758")),
    _prefix("NCP Client", _h("eb4c1b788afd4a9cb7730a68")),
    _prefix("Timestep", b"TIMESTEP", _ascii_suffix("Timestep")),
    _prefix("Nortel Contivity", b"BNES", _hex_suffix("Nortel Contivity")),
    _exact("Mac OS X", b"Mac OSX 10.x"),
    _prefix("Symantec Raptor", b"Raptor PowerVpn Server", _ascii_suffix("Symantec Raptor")),
    _exact("Stonesoft StoneGate", _h("c573b056d7faca36c2fba28374127cbf")),
    _exact("Stonesoft StoneGate", _h("baeb239037e17787d730eed9d95d48aa")),
    _exact("Secure Computing Sidewinder", _h("8404adf9cda05760b2ca292e4bff537b")),
    _exact("CyberGuard", _h("9aa1f3b43472a45d5f506aeb26c0f214")),
    _exact("DWR: Delete with reason", _h("2d7922c6b301d9b0e1342739e9cfbbd5")),
    _exact("Aruba Networks Remote AP", _h("ca3e2b854ba8030017dc1023a4fde2041f9f7463")),
    _exact("Aruba Networks Controller", _h("3c8e70bdf9c7d74add53e4100915dc2e4bb51274")),
    _exact("Aruba Networks VIA Client", _h("88f0e3149b3fa48b05aa7f685f0b766be186ccb8")),
    _prefix(
        "Aruba Networks VIA Auth Profile", b"VIA Auth Profile : ", _ascii_suffix("Aruba VIA Auth Profile")
    ),
    _exact("Lucent VPN Gateway 9", b"LVG9.2.245:BRICK:9.2.245"),
    _exact("Lucent VPN Client 7", b"LVC7.1.2:XP"),
    _prefix(
        "ELVIS-PLUS Zastava",
        _h("08db45e6cb01f80bb576e9a78c0f54e1300b8881"),
        _hex_suffix("ELVIS-PLUS Zastava"),
    ),
)

_EXACT: dict[bytes, KnownVendorId] = {}
for _e in KNOWN_VENDOR_IDS:
    if not _e.prefix:
        _EXACT.setdefault(_e.value, _e)
_PREFIXES: tuple[KnownVendorId, ...] = tuple(
    sorted((e for e in KNOWN_VENDOR_IDS if e.prefix), key=lambda e: len(e.value), reverse=True)
)


def lookup_vendor(data: bytes) -> KnownVendorId | None:
    """The catalogue entry that matches ``data`` (exact value first, then longest prefix)."""
    entry = _EXACT.get(data)
    if entry is not None:
        return entry
    for e in _PREFIXES:
        if data.startswith(e.value) and e.describe(data) is not None:
            return e
    return None


def identify_vendor(data: bytes) -> str | None:
    """Readable name of a Vendor ID payload's data, with a decoded version where known."""
    entry = lookup_vendor(data)
    return None if entry is None else entry.describe(data)
