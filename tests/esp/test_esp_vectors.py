"""Published ESP packet vectors: decrypt them, and rebuild them byte for byte with the IV they use."""

from __future__ import annotations

import pytest

from ipsecdiag.crypto.ciphers import make_cipher
from ipsecdiag.esp.sa import EspDecryptor, EspEncryptor, EspStatus
from ipsecdiag.keys.model import ChildSaKeys, SecretBytes
from ipsecdiag.wire.registry import EncrId


def _h(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


def _keys(
    spi: int, encr: int, key: bytes, *, esn: bool | None = False, esn_high: int | None = None
) -> ChildSaKeys:
    return ChildSaKeys(spi=spi, encr=encr, encr_key=SecretBytes(key), esn=esn, esn_high=esn_high)


def _check(keys: ChildSaKeys, packet: bytes, payload: bytes, next_header: int, iv: bytes, seq: int) -> None:
    status, nh, inner, hi = EspDecryptor(keys).decrypt(b"pre" + packet + b"post", 3, 3 + len(packet))
    assert (status, nh, inner, hi) == (EspStatus.OK, next_header, payload, seq >> 32)
    again = EspEncryptor(keys, lambda n: iv).encrypt(payload, next_header, seq=seq)
    assert again == packet


# RFC 3602 §4 test cases #5-#8: AES-CBC ESP packets (no integrity), default padding.
RFC3602 = [
    (
        "90d382b410eeba7ad938c46cec1a82bf", 0x4321, 1, "e96e8c08ab465763fd098d45dd3ff893", 1,
        "08000ebda70a00008e9c083db95b070008090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20212223"
        "2425262728292a2b2c2d2e2f3031323334353637",
        "0000432100000001e96e8c08ab465763fd098d45dd3ff893f663c25d325c18c6a9453e194e120849a4870b66"
        "cc6b9965330013b4898dc856a4699e523a55db080b59ec3a8e4b7e52775b07d1db34ed9c538ab50c551b874a"
        "a269add047ad2d5913ac19b7cfbad4a6",
    ),
    (
        "90d382b410eeba7ad938c46cec1a82bf", 0x4321, 8, "69d08df7d203329db093fc4924e5bd80", 1,
        "0800b5e8a80a0500a69c083d0b660e00777777777777777777777777",
        "000043210000000869d08df7d203329db093fc4924e5bd80f51995881ec4e0c4488987ce742e8109689bb379"
        "d2d750c0d915dca346a89f75",
    ),
    (
        "0123456789abcdef0123456789abcdef", 0x8765, 2, "f4e765244f6407adf13dc1380f673f37", 4,
        "45000054090400004001f988c0a87b03c0a87bc808009f76a90a0100b49c083d02a2040008090a0b0c0d0e0f"
        "101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637",
        "0000876500000002f4e765244f6407adf13dc1380f673f37773b5241a4c449225e4f3ce5ed611b0c237ca96c"
        "f74a93013c1b0ea1a0cf70f8e4ecaec78ac53aad7a0f022b859243c647752e94a859352b8a4d4d2decd136e5"
        "c177f132ad3fbfb2201ac9904c74ee0a109e0ca1e4dfe9d5a100b842f1c22f0d",
    ),
    (
        "0123456789abcdef0123456789abcdef", 0x8765, 5, "85d47224b5f3dd5d2101d4ea8dffab22", 4,
        "45000044090c00004001f990c0a87b03c0a87bc80800d63caa0a0200c69c083da3de0300" + "ff" * 32,
        "000087650000000585d47224b5f3dd5d2101d4ea8dffab2215b92683819596a8047232cc00f7048fe45318e1"
        "1f8a0f62ede3c3fc61203bb50f980a08c9843fd3a1b06d5c07ff9639b7eb7dfb3512e5de435e7207ed971ef3"
        "d2726d9b5ef6affc6d17a0decbb13892",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("key", "spi", "seq", "iv", "nh", "payload", "packet"), RFC3602)
def test_rfc3602_aes_cbc_esp(
    key: str, spi: int, seq: int, iv: str, nh: int, payload: str, packet: str
) -> None:
    _check(_keys(spi, EncrId.ENCR_AES_CBC, _h(key)), _h(packet), _h(payload), nh, _h(iv), seq)


# draft-mcgrew-gcm-test-01 §5: AES-GCM-16 ESP packets. (key, salt, SPI, ESN?, sequence number,
# plaintext = payload | padding | pad length | next header, packet). With ESN only the low half of
# the 64-bit sequence number is on the wire; the AAD is SPI | seq-hi | seq-lo.
MCGREW = [
    ("4c80cdefbb5d10da906ac73c3613a634", "2e443b68", 0x4321, True, 0x8765432100000000,
     "45000048699a000080114db7c0a80102 c0a801010a9bf15638d3010000010000 00000000045f736970045f7564700373"
     "69700963796265726369747902646b00 0021000101020201",
     "00004321000000004956ed7e3b244cfe fecf537e729d5b07dc30df528dd22b76 8d1b98736696a6fd348509fa13ceac34"
     "cfa2436f14a3f3cf65925bf1f4a13c5d 15b21e1884f5ff6247aeabb786b93bce 61bc17d768fd9732459018148f6cbe72"
     "2fd04796562dfdb4"),
    ("feffe9928665731c6d6a8f9467308308", "cafebabe", 0xA5F8, False, 0x0A,
     "4500003e698f000080114dccc0a80102 c0a801010a980035002a2343b2d00100 00010000000000000373697009637962"
     "65726369747902646b00000100010001",
     "0000a5f80000000afacedbaddecaf888 deb22cd9b07c72c16e3a65beeb8df304 a5a5897d33ae530f1ba76d5d114d2a5c"
     "3de81827c10e9a4f51330d0eec416642 cfbb85a5b47e48a4ec3b9ba95d918bd1 83b70d3aa8bc6ee4c309e9d85a41ad4a"),
    ("abbccddef00112233445566778899aababbccddef00112233445566778899aab", "11223344", 0x4A2CBFE3, False, 2,
     "4500003069a6400080062690c0a80102 9389155e0a9e008b2dc57ee000000000 7002400020bf0000020405b401010402"
     "01020201",
     "4a2cbfe3000000020102030405060708 ff425c9b724599df7a3bcd510194e00d 6a78107f1b0b1cbf06efae9d65a5d763"
     "748a637985771d347f0545659f14e99d ef842d8eb335f4eecfdbf831824b4c49 15956c96"),
    ("00000000000000000000000000000000", "00000000", 0, False, 1,
     "4500003c99c500008001cb7a40679318 010101010800075c0200440061626364 65666768696a6b6c6d6e6f7071727374"
     "75767761626364656667686901020201",
     "00000000000000010000000000000000 4688daf2f973a392732909c331d56d60 f694abaa414b5e7ff5fdcdfff5e9a284"
     "456476492719ffb64de7d9dca1e1d894 bc3bd57873ed4d181d19d4d5c8c18af3 f821d496eeb096e98ad2b69e4799c71d"),
    ("3de09874b388e6491988d0c3607eae1f", "57690e43", 0x42F67E3F, True, 0x1010101010101010,
     "4500003c99c300008001cb7c40679318 010101010800085c0200430061626364 65666768696a6b6c6d6e6f7071727374"
     "75767761626364656667686901020201",
     "42f67e3f101010104e280000a2fca1a3 fba2caa4853cf9f0f22cb10d86dd83b0 fec75691cf1a04b00d1138ec9c357917"
     "65acbd8701ad79845bf9fe3fba487bc9 1755e6662b4c8d0d1f5e22739530320a e0d731cc978ecafaeae88f00e80d6e48"),
    ("3de09874b388e6491988d0c3607eae1f", "57690e43", 0x42F67E3F, True, 0x1010101010101010,
     "4500001c42a200008001441f406793b6 e00000020a00f5ff01020201",
     "42f67e3f101010104e280000a2fca1a3 fba2ca845e5df9f0f22c3e6e86dd831e 1fc65792cd1af9130e1379ed369f071f"
     "35e034be95f112e4e7d05d35"),
    ("feffe9928665731c6d6a8f9467308308feffe9928665731c", "cafebabe", 0xA5F8, False, 0x0A,
     "45000028a4ad4000400678800a01038f 0a010612802306b8cb712602dd6bb03e 501016d075680001",
     "0000a5f80000000afacedbaddecaf888 a5b1f8066029aea40e598b8122de0242 0938b3ab33f828e687b8858b5bfbdbd0"
     "315b27452144cc7795457b9652037f53 18027b5b4cd7a636"),
    ("abbccddef00112233445566778899aab", "decaf888", 0x100, True, 1,
     "4500004933ba00007f119106c3fb1d10 c2b1d326c02831ce0035dd7b800302d5 00004e20001e8c18d75b81dc91baa047"
     "6b91b924b280389d92c963bac046ec95 9b6266c04722b14923010101",
     "0000010000000001cafedebaceface74 18a6fd42f72cbf4ab2a2ea901f73d814 e3e7f243d95412e1c349c1d2fbec168f"
     "9190feebaf2cb01984e65863965d7472 b79da345e0e780191f0d2f0e0f496c22 6f2127b27db35724e7845d68651f57e6"
     "5f354f75ff17015769623436"),
    ("abbccddef00112233445566778899aababbccddef00112233445566778899aab", "73616c74", 0x17405E67, True,
     0x156F3126DD0DB99B,
     "45080028732c00004006e9f90a010612 0a01038f06b88023dd6bafbecb712602 50101f646d540001",
     "17405e67dd0db99b616e640169766563 f2d69ecdbd5a0d5b8d5ef38bad4da58d 1f278fde98ef67549d524a3018d9a57f"
     "f4d3a31ce673119e451626c2415771e3 b7eebca614c89b35"),
    ("3de09874b388e6491988d0c3607eae1f", "57690e43", 0x42F67E3F, True, 0x1010101010101010,
     "45000049333e00007f119182c3fb1d10 c2b1d326c02831ce0035cb458003025b 000001e0001e8c18d65759d52284a035"
     "2c71475c8880391c764d6e5ee0496b32 5ae270c03899493915010101",
     "42f67e3f101010104e280000a2fca1a3 fba2cad12fc1f9f00d3cebf305410db8 3d7784b607323d220f24b0a97d541828"
     "00cadb0f68d99ef0e0c0c89ae9bea888 4e52d65bc1afd0740f742444747b5b39 ab533163aad4550ee5160975cdb608c5"
     "769189609763b8e18caa81e2"),
    ("abbccddef00112233445566778899aababbccddef00112233445566778899aab", "73616c74", 0x17405E67, True,
     0x156F3126DD0DB99B,
     "636973636f0172756c65730174686501 6e6574776501646566696e6501746865 746563686e6f6c6f6769657301746861"
     "7477696c6c01646566696e65746f6d6f 72726f7701020201",
     "17405e67dd0db99b616e640169766563 d4b7ed86a1777f2ea13d6973d324c69e 7b43f826fb56831226508bebd2dceb18"
     "d0a6df10e5487df074113e14c641024e 3e6773d91a62ee429b043a10e3efe6b0 12a49363412364f8c0cac587f249e56b"
     "11e24f30e44ccc76"),
    ("7d773d00c144c525ac619d18c84a3f47", "d9664267", 0x335467AE, False, 0xFFFFFFFF, "01020201",
     "335467aeffffffff43457e9182443bc6 437f866bcb3f699fe9b0822bac961c45 04bef270"),
    ("abbccddef00112233445566778899aab", "decaf888", 0x100, True, 1,
     "746f016265016f72016e6f7401746f01 62650001",
     "0000010000000001cafedebaceface74 29c9fc69a197d038ccdd14e2ddfcaa05 43332164412503524303ed3c6c5f2838"
     "43af8c3e"),
    ("6c6567616c697a656d6172696a75616e61616e64646f69746265666f72656961", "7475726e", 0x796B6963, True,
     0xFFFFFFFFFFFFFFFF,
     "45000030da3a00008001df3bc0a80005 c0a800010800c6cd0200070061626364 65666768696a6b6c6d6e6f7071727374"
     "01020201",
     "796b6963ffffffff333021696765746d f97ab2aa356d8edce17644ac8c78e25d d24dedbb29ebf1b64a274b39b49c3a86"
     "4cd3d78ca4ae68a32b42458fb57dbe82 1dcc63b9d0937ba2945f669368661a32 9fb4c053"),
]  # fmt: skip


@pytest.mark.parametrize(("key", "salt", "spi", "esn", "seq", "plain", "packet"), MCGREW)
def test_mcgrew_gcm_esp_packets(
    key: str, salt: str, spi: int, esn: bool, seq: int, plain: str, packet: str
) -> None:
    pkt, pt = _h(packet), _h(plain)
    payload, nh = pt[: len(pt) - 2 - pt[-2]], pt[-1]
    material = _h(key) + _h(salt)
    keys = _keys(spi, EncrId.ENCR_AES_GCM_16, material, esn=esn, esn_high=(seq >> 32) if esn else None)
    _check(keys, pkt, payload, nh, pkt[8:16], seq)
    # The other ESN setting builds a different AAD, and the tag fails.
    other = _keys(spi, EncrId.ENCR_AES_GCM_16, material, esn=not esn, esn_high=seq >> 32)
    assert EspDecryptor(other).decrypt(pkt, 0, len(pkt))[0] == EspStatus.INTEGRITY_FAILED


def test_rfc7634_appendix_a_chacha20_poly1305() -> None:
    # RFC 7634 Appendix A: tunnel-mode ESP, SPI 01020304, sequence 5, IV 1011121314151617.
    key = bytes(range(0x80, 0xA0)) + bytes.fromhex("a0a1a2a3")
    plain = _h("""
        45 00 00 54 a6 f2 00 00 40 01 e7 78 c6 33 64 05 c0 00 02 05 08 00 5b 7a 3a 08 00 00
        55 3b ec 10 00 07 36 27 08 09 0a 0b 0c 0d 0e 0f 10 11 12 13 14 15 16 17 18 19 1a 1b
        1c 1d 1e 1f 20 21 22 23 24 25 26 27 28 29 2a 2b 2c 2d 2e 2f 30 31 32 33 34 35 36 37
        01 02 02 04""")
    packet = _h("01020304 00000005 1011121314151617") + _h("""
        24 03 94 28 b9 7f 41 7e 3c 13 75 3a 4f 05 08 7b 67 c3 52 e6 a7 fa b1 b9 82 d4 66 ef
        40 7a e5 c6 14 ee 80 99 d5 28 44 eb 61 aa 95 df ab 4c 02 f7 2a a7 1e 7c 4c 4f 64 c9
        be fe 2f ac c6 38 e8 f3 cb ec 16 3f ac 46 9b 50 27 73 f6 fb 94 e6 64 da 91 65 b8 28
        29 f6 41 e0 76 aa a8 26 6b 7f b0 f7 b1 1b 36 99 07 e1 ad 43""")
    _check(
        _keys(0x01020304, EncrId.ENCR_CHACHA20_POLY1305, key),
        packet,
        plain[:-4],
        4,
        _h("1011121314151617"),
        5,
    )


def test_gmac_esp_vector() -> None:
    # ENCR_NULL_AUTH_AES_GMAC (RFC 4543): an AES-128 GMAC ESP packet from a public test
    # configuration (key f89370ca..., salt 2f5af3fc, SPI 91909dc9, seq 1, IV 73e18b4108000000);
    # the whole packet up to the ICV is authenticated, nothing is encrypted.
    iv = _h("73e18b4108000000")
    inner = _h("4500006400050000ff01a28a0c0000010d0000090800294d0005000000000000016f5389" + "abcd" * 32)
    packet = _h("91909dc900000001") + iv + inner + _h("01020204") + _h("8ff59c004238788f41a38a69c8fe3855")
    keys = _keys(0x91909DC9, EncrId.ENCR_NULL_AUTH_AES_GMAC, _h("f89370ca901af1a99070273f0e90db57 2f5af3fc"))
    _check(keys, packet, inner, 4, iv, 1)
    tampered = bytearray(packet)
    tampered[40] ^= 1  # a payload byte: covered although not encrypted
    assert EspDecryptor(keys).decrypt(bytes(tampered), 0, len(packet))[0] == EspStatus.INTEGRITY_FAILED


# RFC 3686 §6 test vectors #1-#3 (AES-CTR with the nonce | IV | counter block), at cipher level.
@pytest.mark.parametrize(
    ("key", "nonce", "iv", "plain", "cipher"),
    [
        ("ae6852f8121067cc4bf7a5765577f39e", "00000030", "0000000000000000", b"Single block msg".hex(),
         "e4095d4fb7a7b3792d6175a3261311b8"),
        ("7e24067817fae0d743d6ce1f32539163", "006cb6db", "c0543b59da48d90b", bytes(range(32)).hex(),
         "5104a106168a72d9790d41ee8edad388eb2e1efc46da57c8fce630df9141be28"),
        ("7691be035e5020a8ac6e618529f9a0dc", "00e0017b", "27777f3f4a1786f0", bytes(range(36)).hex(),
         "c1cf48a89f2ffdd9cf4652e9efdb72d74540a42bde6d7836d59a5ceaaef3105325b2072f"),
    ],
)  # fmt: skip
def test_rfc3686_aes_ctr(key: str, nonce: str, iv: str, plain: str, cipher: str) -> None:
    c = make_cipher(EncrId.ENCR_AES_CTR, _h(key + nonce))
    assert c.decrypt(_h(iv), _h(plain)).hex() == cipher  # type: ignore[union-attr]
    assert c.decrypt(_h(iv), _h(cipher)).hex() == plain  # type: ignore[union-attr]
