"""``ip xfrm state`` output as iproute2 prints it (samples follow real output layouts)."""

from __future__ import annotations

import pytest

from ipsecdiag.keys.algorithms import AUTH_HMAC_RIPEMD160_96, AUTH_HMAC_SHA2_256_96
from ipsecdiag.keys.errors import KeyFileError
from ipsecdiag.keys.model import ChildSaKeys, SecretBytes
from ipsecdiag.keys.xfrm import format_xfrm_commands, looks_like_xfrm, parse_xfrm_state
from ipsecdiag.wire.registry import EncrId, IntegId

# strongSwan + kernel ESP, NAT-T, ESN, one inbound and one outbound SA (tab-indented like `ip x s`).
ESN_GCM = """\
src 3.85.251.173 dst 10.88.100.246
\tproto esp spi 0xb9e564dc reqid 16389 mode tunnel
\treplay-window 0 flag af-unspec esn
\taead rfc4106(gcm(aes)) 0x6ad2a89ad3ff0c5cd3389ba419ce04e7b3a37621bd5f90e58635a63adcb63e1a605987c2 128
\tencap type espinudp sport 4500 dport 4500 addr 0.0.0.0
\tanti-replay esn context:
\t seq-hi 0x1, seq 0x1d, oseq-hi 0x0, oseq 0x0
\t replay_window 128, bitmap-length 4
\t 00000000 00000000 00000000 1fffffff
src 10.88.100.246 dst 3.85.251.173
\tproto esp spi 0x0b81df6e reqid 16389 mode tunnel
\treplay-window 0 flag af-unspec esn
\taead rfc4106(gcm(aes)) 0xb717b9ffb3ec46f35ec83b4dd124f64d2f32793c0709b0c01ac72a924430a7571eb417ae 128
\tencap type espinudp sport 4500 dport 4500 addr 0.0.0.0
\tanti-replay esn context:
\t seq-hi 0x0, seq 0x0, oseq-hi 0x2, oseq 0x18
\t replay_window 128, bitmap-length 4
\t 00000000 00000000 00000000 00000000
"""

# `ip -s xfrm state`: SPI with its decimal value, lifetime and statistics lines.
STATS_CBC = """\
src 10.1.232.10 dst 10.1.28.190
    proto esp spi 0xa62a05aa(2787771818) reqid 16393(0x00004009) mode transport
    replay-window 32 seq 0x00000000 flag af-unspec (0x00100000)
    auth-trunc hmac(sha1) 0x8c59f680c8ea1e667b665d8424e2ab749cec12dc 96
    enc cbc(aes) 0x2818a489fe84929c8ab72907e9ce2f0eac6f16f2258bd22240f4087e0326badb
    anti-replay context: seq 0x0, oseq 0x5, bitmap 0x00000000
    sel src 0.0.0.0/0 dst 0.0.0.0/0 uid 0
    lifetime config:
      limit: soft (INF)(bytes), hard (INF)(bytes)
      limit: soft (INF)(packets), hard (INF)(packets)
      expire add: soft 3307(sec), hard 3600(sec)
      expire use: soft 0(sec), hard 0(sec)
    lifetime current:
      420(bytes), 5(packets)
      add 2024-08-29 12:33:12 use 2024-08-29 12:33:13
    stats:
      replay-window 0 replay 0 failed 0
"""

# Newer iproute2 with SA direction: counters on the context line, "flag" on its own line.
DIR_OUT = """\
src 2001:db8:1:2::45 dst 2001:db8:1:2::23
\tproto esp spi 0x64b502a7 reqid 16393 mode iptfs
\tflag af-unspec esn
\taead rfc4106(gcm(aes)) 0x4bf7846c1418b14213487da785fb4019cfa47396c8c1968fb3a38559e7e39709fa87dfd9 128
\tlastused 2024-08-29 09:30:00
\tanti-replay esn context:\t oseq-hi 0x3, oseq 0xa
\tdir out
"""


def test_esn_gcm_pair() -> None:
    assert looks_like_xfrm(ESN_GCM)
    res = parse_xfrm_state(ESN_GCM, name="xfrm.txt")
    assert res.warnings == []
    inbound, outbound = res.keys
    assert isinstance(inbound, ChildSaKeys) and isinstance(outbound, ChildSaKeys)
    assert (inbound.spi, inbound.src, inbound.dst) == (0xB9E564DC, "3.85.251.173", "10.88.100.246")
    # rfc4106 key = 32-octet AES key + 4-octet salt (RFC 4106 §8.1)
    assert (inbound.encr, inbound.encr_key_bits, len(inbound.encr_key)) == (EncrId.ENCR_AES_GCM_16, 256, 36)
    assert (inbound.integ, inbound.mode, inbound.esn) == (IntegId.NONE, "tunnel", True)
    # ESN high bits of the side that moved: seq-hi for a receiving SA, oseq-hi for a sending one.
    assert (inbound.esn_high, outbound.esn_high) == (1, 2)
    assert inbound.source == "xfrm.txt:1" and outbound.source == "xfrm.txt:10"


def test_ip_s_output_with_statistics() -> None:
    (k,) = parse_xfrm_state(STATS_CBC).keys
    assert isinstance(k, ChildSaKeys)
    assert (k.spi, k.mode, k.esn, k.esn_high) == (0xA62A05AA, "transport", False, None)
    assert (k.encr, k.encr_key_bits, k.integ) == (EncrId.ENCR_AES_CBC, 256, IntegId.AUTH_HMAC_SHA1_96)
    assert k.integ_key.hex() == "8c59f680c8ea1e667b665d8424e2ab749cec12dc"


def test_newer_layout_with_direction() -> None:
    (k,) = parse_xfrm_state(DIR_OUT).keys
    assert isinstance(k, ChildSaKeys)
    assert (k.src, k.esn, k.esn_high, k.mode) == ("2001:db8:1:2::45", True, 3, None)


@pytest.mark.parametrize(
    ("lines", "encr", "bits", "integ"),
    [
        ("\tauth hmac(sha256) 0x" + "11" * 32 + "\n\tenc cbc(des3_ede) 0x" + "22" * 24, EncrId.ENCR_3DES, 192,
         AUTH_HMAC_SHA2_256_96),  # plain "auth": the kernel's 96-bit default for sha256
        ("\tauth-trunc hmac(sha256) 0x" + "11" * 32 + " 128\n\tenc rfc3686(ctr(aes)) 0x" + "22" * 20,
         EncrId.ENCR_AES_CTR, 128, IntegId.AUTH_HMAC_SHA2_256_128),
        ("\tauth-trunc hmac(sha512) 0x" + "11" * 64 + " 256\n\tenc cbc(aes) 0x" + "22" * 24,
         EncrId.ENCR_AES_CBC, 192, IntegId.AUTH_HMAC_SHA2_512_256),
        ("\tauth-trunc xcbc(aes) 0x" + "11" * 16 + " 96\n\tenc ecb(cipher_null) \"\"", EncrId.ENCR_NULL, None,
         IntegId.AUTH_AES_XCBC_96),
        ("\tauth-trunc cmac(aes) 0x" + "11" * 16 + " 96\n\tenc cbc(aes) 0x" + "22" * 16, EncrId.ENCR_AES_CBC, 128,
         IntegId.AUTH_AES_CMAC_96),
        ("\tauth hmac(rmd160) 0x" + "11" * 20 + "\n\tenc cbc(aes) 0x" + "22" * 16, EncrId.ENCR_AES_CBC, 128,
         AUTH_HMAC_RIPEMD160_96),
        ("\taead rfc4309(ccm(aes)) 0x" + "22" * 19 + " 64", EncrId.ENCR_AES_CCM_8, 128, IntegId.NONE),
        ("\taead rfc4309(ccm(aes)) 0x" + "22" * 35 + " 96", EncrId.ENCR_AES_CCM_12, 256, IntegId.NONE),
        ("\taead rfc4106(gcm(aes)) 0x" + "22" * 28 + " 64", EncrId.ENCR_AES_GCM_8, 192, IntegId.NONE),
        ("\taead rfc7539esp(chacha20,poly1305) 0x" + "22" * 36 + " 128", EncrId.ENCR_CHACHA20_POLY1305, 256,
         IntegId.NONE),
        ("\taead rfc4543(gcm(aes)) 0x" + "22" * 20 + " 128", EncrId.ENCR_NULL_AUTH_AES_GMAC, 128, IntegId.NONE),
    ],
)  # fmt: skip
def test_linux_algorithm_names(lines: str, encr: int, bits: int | None, integ: int) -> None:
    text = "src 192.0.2.1 dst 192.0.2.2\n\tproto esp spi 0x00001000 reqid 1 mode tunnel\n" + lines + "\n"
    (k,) = parse_xfrm_state(text).keys
    assert isinstance(k, ChildSaKeys)
    assert (k.encr, k.encr_key_bits, k.integ) == (encr, bits, integ)


def test_ah_and_ipcomp_sas() -> None:
    text = (
        "src 192.0.2.1 dst 192.0.2.2\n\tproto ah spi 0x00002000 reqid 1 mode transport\n"
        "\tauth-trunc hmac(sha256) 0x" + "11" * 32 + " 128\n"
        "src 192.0.2.1 dst 192.0.2.2\n\tproto comp spi 0x00004e2a reqid 1 mode tunnel\n\tcomp deflate \n"
    )
    res = parse_xfrm_state(text, name="x")
    (ah,) = res.keys
    assert isinstance(ah, ChildSaKeys)
    assert (ah.protocol, ah.encr, len(ah.encr_key), ah.integ) == (
        "ah",
        EncrId.ENCR_NULL,
        0,
        IntegId.AUTH_HMAC_SHA2_256_128,
    )
    assert res.warnings == ["x:4: comp SA carries no ESP/AH keys; skipped"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "\tenc cbc(serpent) 0x" + "22" * 16,
            "x:3: unknown encryption algorithm 'cbc(serpent)' (expected one of",
        ),
        (
            "\taead rfc4106(gcm(aes)) 0x" + "22" * 20 + " 32",
            "x:3: rfc4106(gcm(aes)) with a 32-bit ICV has no IKEv2 transform",
        ),
        (
            "\tauth-trunc hmac(sha256) 0x" + "11" * 32 + " 64",
            "x:3: hmac(sha256) truncated to 64 bits has no IKEv2 transform",
        ),
        ("\tenc cbc(aes) 0x" + "2" * 31, "x:3: encryption key: odd number of hex digits (31)"),
        ("\tenc cbc(aes) 256", "x:3: encryption key '256'…: expected 0x-prefixed hex (keys hidden?)"),
    ],
)
def test_errors_name_the_line(line: str, message: str) -> None:
    text = "src 192.0.2.1 dst 192.0.2.2\n\tproto esp spi 0x00001000 reqid 1 mode tunnel\n" + line + "\n"
    with pytest.raises(KeyFileError) as e:
        parse_xfrm_state(text, name="x")
    assert str(e.value).startswith(message)


def test_esp_without_keys_is_a_warning() -> None:
    text = "src 192.0.2.1 dst 192.0.2.2\n\tproto esp spi 0x00001000 reqid 1 mode tunnel\n\treplay-window 0\n"
    res = parse_xfrm_state(text, name="x")
    assert res.keys == [] and res.warnings == [
        "x:1: ESP SA 0x00001000 without enc/aead line (keys hidden?); skipped"
    ]


def test_commands_round_trip_through_the_parser() -> None:
    """``ip xfrm state add`` arguments use the names `ip xfrm state` prints."""
    k = SecretBytes
    sas = [
        ChildSaKeys(0x1001, EncrId.ENCR_AES_GCM_12, k(b"\x01" * 20), src="192.0.2.1", dst="192.0.2.2",
                    encr_key_bits=128, esn=True, mode="tunnel"),
        ChildSaKeys(0x1002, EncrId.ENCR_AES_CBC, k(b"\x02" * 16), IntegId.AUTH_HMAC_SHA2_256_128, k(b"\x03" * 32),
                    src="192.0.2.2", dst="192.0.2.1", encr_key_bits=128, esn=False, mode="transport"),
        ChildSaKeys(0x1003, EncrId.ENCR_AES_CBC, k(b"\x02" * 16), dst="192.0.2.1"),
    ]  # fmt: skip
    lines, warnings = format_xfrm_commands(sas)
    assert warnings == ["ESP SA 0x00001003: ip xfrm needs both addresses; skipped"]
    assert lines[0] == (
        "ip xfrm state add src 192.0.2.1 dst 192.0.2.2 proto esp spi 0x00001001 mode tunnel "
        "replay-window 128 flag esn aead 'rfc4106(gcm(aes))' 0x" + "01" * 20 + " 96"
    )
    # Re-shape each command into the `ip xfrm state` listing layout and parse it back.
    listing = ""
    for line in lines:
        t = line.replace("'", "").split()
        listing += f"src {t[5]} dst {t[7]}\n\tproto {t[9]} spi {t[11]} reqid 1 mode {t[13]}\n"
        rest = " ".join(t[14:])
        if rest.startswith("replay-window"):
            listing += "\treplay-window 128 flag esn\n"
            rest = rest.split(" ", 4)[4]
        for part in ("aead", "enc", "auth-trunc"):
            rest = rest.replace(f" {part} ", f"\n\t{part} ")
        listing += "\t" + rest.strip() + "\n"
    back = parse_xfrm_state(listing).keys
    assert [(b.spi, b.encr, b.encr_key, b.integ, b.integ_key, b.esn, b.mode) for b in back] == [
        (s.spi, s.encr, s.encr_key, s.integ, s.integ_key, s.esn, s.mode) for s in sas[:2]
    ]


def test_esp_in_udp_ports_are_read_and_written() -> None:
    inbound, _outbound = parse_xfrm_state(ESN_GCM).keys
    assert isinstance(inbound, ChildSaKeys) and inbound.encap == (4500, 4500)
    assert parse_xfrm_state(STATS_CBC).keys[0].encap is None  # type: ignore[union-attr]
    natted = ChildSaKeys(0x1004, EncrId.ENCR_AES_GCM_16, SecretBytes(b"\x04" * 36), src="192.0.2.1",
                         dst="198.51.100.2", encr_key_bits=256, encap=(31337, 4500))  # fmt: skip
    [line], _ = format_xfrm_commands([natted])
    assert line.endswith(" encap espinudp 31337 4500 0.0.0.0")
    # `ip xfrm state` prints what `ip xfrm state add … encap …` set: the reader gets it back.
    listing = (
        "src 192.0.2.1 dst 198.51.100.2\n\tproto esp spi 0x00001004 reqid 1 mode tunnel\n"
        f"\taead rfc4106(gcm(aes)) 0x{'04' * 36} 128\n\tencap type espinudp sport 31337 dport 4500 addr 0.0.0.0\n"
    )
    assert parse_xfrm_state(listing).keys[0].encap == (31337, 4500)  # type: ignore[union-attr]
    tcp = listing.replace("espinudp", "espintcp")
    assert parse_xfrm_state(tcp).keys[0].encap is None  # type: ignore[union-attr]


def test_private_algorithms_keep_the_sources_name() -> None:
    text = (
        "src 192.0.2.1 dst 192.0.2.2\n\tproto esp spi 0x00002000 reqid 1 mode tunnel\n"
        f"\tauth-trunc hmac(rmd160) 0x{'05' * 20} 96\n\tenc cbc(twofish) 0x{'06' * 32}\n"
    )
    [k] = parse_xfrm_state(text).keys
    assert isinstance(k, ChildSaKeys)
    assert (k.encr_label, k.integ_label) == ("cbc(twofish)", "hmac(rmd160)")
    [gcm] = parse_xfrm_state(ESN_GCM).keys[:1]
    assert isinstance(gcm, ChildSaKeys) and (gcm.encr_label, gcm.integ_label) == ("", "")
