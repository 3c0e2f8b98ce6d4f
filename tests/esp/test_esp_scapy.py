"""Interop with scapy's SecurityAssociation: we decrypt what scapy protects and scapy decrypts
what we protect, for every cipher/integrity pair scapy implements correctly, with and without
ESN, over plain IP and UDP-encapsulated (RFC 3948).

Left out: scapy's AES-GCM with an 8- or 12-byte ICV, which always emits the full 16-byte tag
(it ignores ``crypt_icv_size`` for GCM); our truncated GCM is checked against GCM-16 instead.
"""

from __future__ import annotations

import itertools
import warnings

import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.ipsec import ESP, SecurityAssociation
from scapy.packet import Raw

from ipsecdiag.esp.sa import EspDecryptor, EspEncryptor, EspStatus
from ipsecdiag.keys.model import ChildSaKeys, SecretBytes
from ipsecdiag.wire.registry import EncrId, IntegId

# (scapy name, our id, key material length incl. salt, scapy crypt_icv_size)
CRYPT = [
    ("NULL", EncrId.ENCR_NULL, 0, None),
    ("AES-CBC", EncrId.ENCR_AES_CBC, 16, None),
    ("AES-CBC", EncrId.ENCR_AES_CBC, 32, None),
    ("AES-CTR", EncrId.ENCR_AES_CTR, 20, None),
    ("DES", EncrId.ENCR_DES, 8, None),
    ("3DES", EncrId.ENCR_3DES, 24, None),
    ("CAST", EncrId.ENCR_CAST, 16, None),
    ("Blowfish", EncrId.ENCR_BLOWFISH, 16, None),
]
AEAD = [
    ("AES-GCM", EncrId.ENCR_AES_GCM_16, 36, None),
    ("AES-NULL-GMAC", EncrId.ENCR_NULL_AUTH_AES_GMAC, 20, None),
    ("AES-CCM", EncrId.ENCR_AES_CCM_16, 19, None),
    ("AES-CCM", EncrId.ENCR_AES_CCM_8, 27, 8),
    ("AES-CCM", EncrId.ENCR_AES_CCM_12, 35, 12),
    ("CHACHA20-POLY1305", EncrId.ENCR_CHACHA20_POLY1305, 36, None),
]
AUTH = [
    ("NULL", 0, 0),
    ("HMAC-SHA1-96", IntegId.AUTH_HMAC_SHA1_96, 20),
    ("HMAC-MD5-96", IntegId.AUTH_HMAC_MD5_96, 16),
    ("SHA2-256-128", IntegId.AUTH_HMAC_SHA2_256_128, 32),
    ("SHA2-384-192", IntegId.AUTH_HMAC_SHA2_384_192, 48),
    ("SHA2-512-256", IntegId.AUTH_HMAC_SHA2_512_256, 64),
    ("AES-CMAC-96", IntegId.AUTH_AES_CMAC_96, 16),
]
CASES = [(c, a) for c, a in itertools.product(CRYPT, AUTH) if not (c[0] == "NULL" and a[0] == "NULL")] + [
    (c, AUTH[0]) for c in AEAD
]
ESN_HIGH = 0x2A


def _ids(case: tuple[tuple[object, ...], tuple[object, ...]]) -> str:
    (cn, _, klen, icv), (an, _, _) = case
    return f"{cn}-{klen}{'-' + str(icv) if icv else ''}/{an}"


_NATT = [
    c for c in CASES if c[1][0] in ("NULL", "SHA2-256-128") and c[0][0] in ("AES-GCM", "AES-CBC", "AES-CTR")
]
MATRIX = [(c, esn, False) for c in CASES for esn in (False, True)] + [
    (c, esn, True) for c in _NATT for esn in (False, True)
]


@pytest.mark.parametrize(
    ("case", "esn", "natt"),
    MATRIX,
    ids=[f"{_ids(c)}-{'esn' if e else 'seq32'}-{'udp4500' if n else 'ip'}" for c, e, n in MATRIX],
)
def test_scapy_interop(case: tuple[tuple, tuple], esn: bool, natt: bool) -> None:  # type: ignore[type-arg]
    (cname, encr, klen, icv), (aname, integ, alen) = case
    ck = bytes((i * 7 + klen) & 0xFF for i in range(klen))
    ak = bytes((i * 11 + alen) & 0xFF for i in range(alen))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scapy warns about the decrepit ciphers
        sa = SecurityAssociation(
            ESP,
            spi=0x0BADCAFE,
            seq_num=5,
            crypt_algo=cname,
            crypt_key=ck,
            crypt_icv_size=icv,
            auth_algo=aname,
            auth_key=ak or None,
            esn_en=esn,
            esn=ESN_HIGH if esn else 0,
            nat_t_header=UDP(sport=4500, dport=4500) if natt else None,
        )
        inner = IP(src="10.1.0.1", dst="10.2.0.1") / ICMP() / Raw(b"scapy says hi " * 5)
        wire = bytes(sa.encrypt(IP(src="192.0.2.1", dst="198.51.100.1") / inner))
    keys = ChildSaKeys(
        spi=0x0BADCAFE,
        encr=encr,
        encr_key=SecretBytes(ck),
        integ=integ,
        integ_key=SecretBytes(ak),
        esn=esn,
        esn_high=ESN_HIGH if esn else None,
    )
    off = 20 + (8 if natt else 0)
    # scapy protects in transport mode here: the next header is the inner packet's protocol.
    status, nh, payload, hi = EspDecryptor(keys).decrypt(wire, off, len(wire))
    assert (status, hi) == (EspStatus.OK, ESN_HIGH if esn else 0)
    assert payload is not None and payload.endswith(b"scapy says hi " * 5)

    ours = EspEncryptor(keys, lambda n: bytes(range(3, 3 + n))).encrypt(
        bytes(inner), 4, seq=(ESN_HIGH << 32 | 9) if esn else 9
    )
    outer = IP(src="192.0.2.1", dst="198.51.100.1", proto=17 if natt else 50)
    outer = IP(bytes(outer / UDP(sport=4500, dport=4500) / Raw(ours) if natt else outer / Raw(ours)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        back = sa.decrypt(outer)
    assert bytes(back).endswith(bytes(inner))
