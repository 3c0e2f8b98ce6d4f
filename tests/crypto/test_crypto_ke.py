"""IKEv2 key exchange (ipsecdiag.crypto.ke): RFC known-answer vectors, group parameters checked
from first principles, round trips for every group, and the peer-value validation."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from ipsecdiag.crypto import ke as ke_module
from ipsecdiag.crypto.errors import CryptoError, UnsupportedAlgorithm
from ipsecdiag.crypto.ke import (
    _CURVES,
    InvalidKeyExchange,
    KeyExchange,
    group_weakness,
    new_key_exchange,
    public_value_size,
    supported_groups,
)
from ipsecdiag.crypto.modp_groups import MODP_GROUPS
from ipsecdiag.crypto.rng import DeterministicRandom
from ipsecdiag.wire.registry import KeGroup


def h(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


class _Fixed:
    """A random source that hands out prepared chunks, each exactly the size asked for."""

    def __init__(self, *chunks: bytes) -> None:
        self._chunks = list(chunks)

    def bytes(self, n: int) -> bytes:
        chunk = self._chunks.pop(0)
        assert len(chunk) == n, f"asked for {n} octets, prepared {len(chunk)}"
        return chunk


def _draw_for(value: int, bound: int) -> bytes:
    # what random_int_below(rng, bound) must read to return ``value``
    return value.to_bytes(((bound - 1).bit_length() + 7) // 8, "big")


def with_private(group: int, private: bytes) -> KeyExchange:
    """A key exchange whose private key is ``private`` (exponent / scalar / raw key octets),
    fed through the same random-source path as a live one."""
    if group in MODP_GROUPS:
        params, x = MODP_GROUPS[group], int.from_bytes(private, "big")
        if params.q is not None:
            source = _draw_for(x - 1, params.q - 1)
        else:
            assert params.exponent_bits is not None
            source = _draw_for(x - 2, (1 << params.exponent_bits) - 2)
        return new_key_exchange(group, _Fixed(source))
    if group in _CURVES:
        n = _CURVES[group].order
        return new_key_exchange(group, _Fixed(_draw_for(int.from_bytes(private, "big") - 1, n - 1)))
    return new_key_exchange(group, _Fixed(private))


# -- known answers -------------------------------------------------------------------------------

# (group, private_i, private_r, public_i, public_r, shared)
DH_VECTORS = [
    pytest.param(
        KeGroup.ECP_256,
        h("C88F01F510D9AC3F70A292DAA2316DE544E9AAB8AFE84049C62A9C57862D1433"),
        h("C6EF9C5D78AE012A011164ACB397CE2088685D8F06BF9BE0B283AB46476BEE53"),
        h("DAD0B65394221CF9B051E1FECA5787D098DFE637FC90B9EF945D0C3772581180"
          "5271A0461CDB8252D61F1C456FA3E59AB1F45B33ACCF5F58389E0577B8990BB3"),
        h("D12DFB5289C8D4F81208B70270398C342296970A0BCCB74C736FC7554494BF63"
          "56FBF3CA366CC23E8157854C13C58D6AAC23F046ADA30F8353E74F33039872AB"),
        h("D6840F6B42F6EDAFD13116E0E12565202FEF8E9ECE7DCE03812464D04B9442DE"),
        id="RFC5903-8.1-ECP256",  # RFC 5903 §8.1
    ),
    pytest.param(
        KeGroup.ECP_384,
        h("099F3C7034D4A2C699884D73A375A67F7624EF7C6B3C0F160647B67414DCE655E35B538041E649EE3FAEF896783AB194"),
        h("41CB0779B4BDB85D47846725FBEC3C9430FAB46CC8DC5060855CC9BDA0AA2942E0308312916B8ED2960E4BD55A7448FC"),
        h("667842D7D180AC2CDE6F74F37551F55755C7645C20EF73E31634FE72B4C55EE6DE3AC808ACB4BDB4C88732AEE95F41AA"
          "9482ED1FC0EEB9CAFC4984625CCFC23F65032149E0E144ADA024181535A0F38EEB9FCFF3C2C947DAE69B4C634573A81C"),
        h("E558DBEF53EECDE3D3FCCFC1AEA08A89A987475D12FD950D83CFA41732BC509D0D1AC43A0336DEF96FDA41D0774A3571"
          "DCFBEC7AACF3196472169E838430367F66EEBE3C6E70C416DD5F0C68759DD1FFF83FA40142209DFF5EAAD96DB9E6386C"),
        h("11187331C279962D93D604243FD592CB9D0A926F422E47187521287E7156C5C4D603135569B9E9D09CF5D4A270F59746"),
        id="RFC5903-8.2-ECP384",  # RFC 5903 §8.2
    ),
    pytest.param(
        KeGroup.ECP_521,
        h("0037ADE9319A89F4DABDB3EF411AACCCA5123C61ACAB57B5393DCE47608172A095AA85A30FE1C2952C6771D937BA9777"
          "F5957B2639BAB072462F68C27A57382D4A52"),
        h("0145BA99A847AF43793FDD0E872E7CDFA16BE30FDC780F97BCCC3F078380201E9C677D600B343757A3BDBF2A3163E4C2"
          "F869CCA7458AA4A4EFFC311F5CB151685EB9"),
        h("0015417E84DBF28C0AD3C278713349DC7DF153C897A1891BD98BAB4357C9ECBEE1E3BF42E00B8E380AEAE57C2D107564"
          "941885942AF5A7F4601723C4195D176CED3E"
          "017CAE20B6641D2EEB695786D8C946146239D099E18E1D5A514C739D7CB4A10AD8A788015AC405D7799DC75E7B7D5B6C"
          "F2261A6A7F1507438BF01BEB6CA3926F9582"),
        h("00D0B3975AC4B799F5BEA16D5E13E9AF971D5E9B984C9F39728B5E5739735A219B97C356436ADC6E95BB0352F6BE64A6"
          "C2912D4EF2D0433CED2B6171640012D9460F"
          "015C68226383956E3BD066E797B623C27CE0EAC2F551A10C2C724D9852077B87220B6536C5C408A1D2AEBB8E86D678AE"
          "49CB57091F4732296579AB44FCD17F0FC56A"),
        h("01144C7D79AE6956BC8EDB8E7C787C4521CB086FA64407F97894E5E6B2D79B04D1427E73CA4BAA240A34786859810C06"
          "B3C715A3A8CC3151F2BEE417996D19F3DDEA"),
        id="RFC5903-8.3-ECP521",  # RFC 5903 §8.3
    ),
    pytest.param(
        KeGroup.ECP_192,
        h("323fa3169d8e9c6593f59476bc142000ab5be0e249c43426"),
        h("631f95bb4a67632c9c476eee9ab695ab240a0499307fcf62"),
        h("cd46489ecfd6c105e7b3d32566e2b122e249abaadd870612 68887b4877df51dd4dc3d6fd11f0a26f8fd3844317916e9a"),
        h("519a121680e0045466ba21df2eee47f5973b500577ef13d5 ff613ab4d64cee3a20875bdb10f953f6b30ca072c60aa57f"),
        h("ad420182633f8526bfe954acda376f05e5ff4f837f54febe"),
        id="RFC5114-A.4-ECP192",  # RFC 5114 Appendix A.4 (192-bit Random ECP Group)
    ),
    pytest.param(
        KeGroup.ECP_224,
        h("b558eb6c288da707bbb4f8fbae2ab9e9cb62e3bc5c7573e22e26d37f"),
        h("ac3b1add3d9770e6f6a708ee9f3b8e0ab3b480e9f27f85c88b5e6d18"),
        h("49dfef309f81488c304cff5ab3ee5a2154367dc7833150e0a51f3eeb"
          "4f2b5ee45762c4f654c1a0c67f54cf88b016b51bce3d7c228d57adb4"),
        h("6b3ac96a8d0cde6a5599be8032edf10c162d0a8ad219506dcd42a207"
          "d491be99c213a7d1ca3706debfe305f361afcbb33e2609c8b1618ad5"),
        h("52272f50f46f4edc9151569092f46df2d96ecc3b6dc1714a4ea949fa"),
        id="RFC5114-A.5-ECP224",  # RFC 5114 Appendix A.5 (224-bit Random ECP Group)
    ),
    pytest.param(
        KeGroup.ECP_256_BP,
        h("81db1ee100150ff2ea338d708271be38300cb54241d79950f77b063039804f1d"),
        h("55e40bc41e37e3e2ad25c3c6654511ffa8474a91a0032087593852d3e7d76bd3"),
        h("44106e913f92bc02a1705d9953a8414db95e1aaa49e81d9e85f929a8e3100be5"
          "8ab4846f11caccb73ce49cbdd120f5a900a69fd32c272223f789ef10eb089bdc"),
        h("8d2d688c6cf93e1160ad04cc4429117dc2c41825e1e9fca0addd34e6f1b39f7b"
          "990c57520812be512641e47034832106bc7d3e8dd0e4c7f1136d7006547cec6a"),
        h("89afc39d41d3b327814b80940b042590f96556ec91e6ae7939bce31f3a18bf2b"),
        id="RFC7027-A.1-BP256",  # RFC 7027 Appendix A.1 (brainpoolP256r1; IKE use: RFC 6954)
    ),
    pytest.param(
        KeGroup.ECP_384_BP,
        h("1e20f5e048a5886f1f157c74e91bde2b98c8b52d58e5003d57053fc4b0bd65d6f15eb5d1ee1610df870795143627d042"),
        h("032640bc6003c59260f7250c3db58ce647f98e1260acce4acda3dd869f74e01f8ba5e0324309db6a9831497abac96670"),
        h("68b665dd91c195800650cdd363c625f4e742e8134667b767b1b476793588f885ab698c852d4a6e77a252d6380fcaf068"
          "55bc91a39c9ec01dee36017b7d673a931236d2f1f5c83942d049e3fa20607493e0d038ff2fd30c2ab67d15c85f7faa59"),
        h("4d44326f269a597a5b58bba565da5556ed7fd9a8a9eb76c25f46db69d19dc8ce6ad18e404b15738b2086df37e71d1eb4"
          "62d692136de56cbe93bf5fa3188ef58bc8a3a0ec6c1e151a21038a42e9185329b5b275903d192f8d4e1f32fe9cc78c48"),
        h("0bd9d3a7ea0b3d519d09d8e48d0785fb744a6b355e6304bc51c229fbbce239bbadf6403715c35d4fb2a5444f575d4f42"),
        id="RFC7027-A.2-BP384",  # RFC 7027 Appendix A.2 (brainpoolP384r1)
    ),
    pytest.param(
        KeGroup.ECP_512_BP,
        h("16302ff0dbbb5a8d733dab7141c1b45acbc8715939677f6a56850a38bd87bd59"
          "b09e80279609ff333eb9d4c061231fb26f92eeb04982a5f1d1764cad57665422"),
        h("230e18e1bcc88a362fa54e4ea3902009292f7f8033624fd471b5d8ace49d12cf"
          "abbc19963dab8e2f1eba00bffb29e4d72d13f2224562f405cb80503666b25429"),
        h("0a420517e406aac0acdce90fcd71487718d3b953efd7fbec5f7f27e28c614999"
          "9397e91e029e06457db2d3e640668b392c2a7e737a7f0bf04436d11640fd09fd"
          "72e6882e8db28aad36237cd25d580db23783961c8dc52dfa2ec138ad472a0fce"
          "f3887cf62b623b2a87de5c588301ea3e5fc269b373b60724f5e82a6ad147fde7"),
        h("9d45f66de5d67e2e6db6e93a59ce0bb48106097ff78a081de781cdb31fce8ccb"
          "aaea8dd4320c4119f1e9cd437a2eab3731fa9668ab268d871deda55a5473199f"
          "2fdc313095bcdd5fb3a91636f07a959c8e86b5636a1e930e8396049cb481961d"
          "365cc11453a06c719835475b12cb52fc3c383bce35e27ef194512b71876285fa"),
        h("a7927098655f1f9976fa50a9d566865dc530331846381c87256baf3226244b76"
          "d36403c024d7bbf0aa0803eaff405d3d24f11a9b5c0bef679fe1454b21c4cd1f"),
        id="RFC7027-A.3-BP512",  # RFC 7027 Appendix A.3 (brainpoolP512r1)
    ),
    pytest.param(
        KeGroup.CURVE25519,
        h("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"),
        h("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"),
        h("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"),
        h("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"),
        h("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"),
        id="RFC7748-6.1-X25519",  # RFC 7748 §6.1
    ),
    pytest.param(
        KeGroup.CURVE25519,
        h("751fb4308655b476b6789b7325f9ea8cddd16a58533ff6d9e60009464a5f9d94"),
        h("0a54645253290d60ddadd0e030bacd9e5501efdc220755a1e978f1b839a05688"),
        h("48d5ddd4061257ba166fa3f9bbdb74f1a4e81c089384fa77f790709f0dfbc766"),
        h("0be7c1f5aad87d7e448662673298a443478b859745179eaf564c79c0ef6eee25"),
        h("c74950607a12327f3204d94b6825bfb068b7f8319a9e3708ed3d43ce8130c950"),
        id="RFC8031-A-X25519",  # RFC 8031 Appendix A (IKEv2 with Curve25519)
    ),
    pytest.param(
        KeGroup.CURVE448,
        h("9a8f4925d1519f5775cf46b04b5800d4ee9ee8bae8bc5565d498c28dd9c9baf5"
          "74a9419744897391006382a6f127ab1d9ac2d8c0a598726b"),
        h("1c306a7ac2a0e2e0990b294470cba339e6453772b075811d8fad0d1d6927c120"
          "bb5ee8972b0d3e21374c9c921b09d1b0366f10b65173992d"),
        h("9b08f7cc31b7e3e67d22d5aea121074a273bd2b83de09c63faa73d2c22c5d9bb"
          "c836647241d953d40c5b12da88120d53177f80e532c41fa0"),
        h("3eb7a829b0cd20f5bcfc0b599b6feccf6da4627107bdb0d4f345b43027d8b972"
          "fc3e34fb4232a13ca706dcb57aec3dae07bdc1c67bf33609"),
        h("07fff4181ac6cc95ec1c16a94a0f74d12da232ce40a77552281d282bb60c0b56"
          "fd2464c335543936521c24403085d59a449a5037514a879d"),
        id="RFC7748-6.2-X448",  # RFC 7748 §6.2
    ),
    pytest.param(
        KeGroup.MODP_1024_160,
        h("B9A3B3AE8FEFC1A2930496507086F8455D48943E"),
        h("9392C9F9EB6A7A6A9022F7D83E7223C6835BBDDA"),
        h("2A853B3D92197501B9015B2DEB3ED84F5E021DCC3E52F109D3273D2B7521281CBABE0E76FF5727FA8ACCE26956BA9A1F"
          "CA26F20228D8693FEB10841D84A7360054ECE5A7F5B7A61AD3DFB3C60D2E43106D8727DA37DF9CCE95B478755D06BCEA"
          "8F9D45965F75A5F3D1DF3701165FC9E50C4279CEB07F989540AE96D5D88ED776"),
        h("717A6CB053371FF4A3B932941C1E5663F861A1D6AD34AE66576DFB98F6C6CBF9DDD5A56C7833F6BCFDFF095582AD868E"
          "440E8D09FD769E3CECCDC3D3B1E4CFA057776CAAF9739B6A9FEE8E7411F8D6DAC09D6A4EDB46CC2B5D5203090EAE6126"
          "311E53FD2C14B574E6A3109A3DA1BE41BDCEAA186F5CE06716A2B6A07B3C33FE"),
        h("5C804F454D30D9C4DF85271F93528C91DF6B48AB5F80B3B59CAAC1B28F8ACBA9CD3E39F3CB614525D9521D2E644C53B8"
          "07B810F340062F257D7D6FBFE8D5E8F072E9B6E9AFDA9413EAFB2E8B0699B1FB5A0CACEDDEAEAD7E9CFBB36AE2B42083"
          "5BD83A19FB0B5E96BF8FA4D09E345525167ECD9155416F46F408ED31B63C6E6D"),
        id="RFC5114-A.1-MODP1024-160",  # RFC 5114 Appendix A.1
    ),
    pytest.param(
        KeGroup.MODP_2048_224,
        h("22e62601dbffd06708a680f747f361f76d8f4f721a0548e483294b0c"),
        h("4ff3bc96c7fc6a6d71d3b363800a7cdfef6fc41b4417ea15353b7590"),
        h("1b3a63451bd886e699e67b494e288bd7f8e0d370badda7a0efd2fde7d8f66145cc9f280419975eb808877c8a4c0c8e0b"
          "d48d4a5401eb1e8776bfeee134c03831ac273cd9d635ab0ce006a42a887e3f52fb8766b650f38078bc8ee8580cefe243"
          "968cfc4f8dc3db084554171d41bf2e861b7bb4d69dd0e01ea387cbaa5ca672afcbe8bdb9d62d4ce15f17dd36f91ed1ee"
          "dd65ca4a06455cb94cd40a52ec360e84b3c926e22c4380a3bf309d56849768b7f52cfdf655fd053a7ef706979e7e5806"
          "b17dfae53ad2a5bc568ebb529a7a61d68d256f8fc97c074a861d827e2ebc8c6134553115b70e7103920aa16d85e52bcb"
          "ab8d786a68178fa8ff7c2f5c71648d6f"),
        h("4dcee992a9762a13f2f83844ad3d77ee0e31c9718b3db6c2035d3961182c3e0ba247ec4182d760cd48d99599970622a1"
          "881bba2dc822939c78c3912c6661fa5438b20766222b75e24c2e3ad0c7287236129525ee15b5dd7998aa04c4a9696cac"
          "d7172083a97a81664ead2c479e444e4c0654cc19e28d7703cee8dacd6126f5d665ec52c67255db92014b037eb621a2ac"
          "8e365de071ffc1400acf077a12913dd8de89473437ab7ba346743c1b215dd9c12164a7e4053118d199bec8ef6fc56117"
          "0c84c87d10ee9a674a1fa8ffe13bdfba1d44de48946d68dc0cdd777635a7ab5bfb1e4bb7b856f96827734c184138e915"
          "d9c3002ebce53120546a7e2002142b6c"),
        h("34d9bddc1b42176c313fea034c21034d074a6313bb4ecdb3703fff424567a46bdf75530ede0a9da5229de7d76732286c"
          "bc0f91da4c3c852fc099c679531d94c78ab03d9decb0a4e4ca8b2bb4591c4021cf8ce3a20a541d33994017d0200ae2c9"
          "516e2ff5145779269e862b0fb474a2d56dc31ed569a7700b4c4ab16b22a45513531ef523d71212077b5a169bdeffad7a"
          "d9608284c7795b6d5a5183b87066de17d8d671c9ebd8ec89544d45ec061593d442c62ab9ce3b1cb9943a1d23a5ea3bcf"
          "21a01471e67e003e7f8a69c728be490b2fc88cfeb92db6a215e5d03c17c464c9ac1a46e203e13f952995fb03c69d3cc4"
          "7fcb510b6998ffd3aa6de73cf9f63869"),
        id="RFC5114-A.2-MODP2048-224",  # RFC 5114 Appendix A.2
    ),
    pytest.param(
        KeGroup.MODP_2048_256,
        h("0881382cdb87660c6dc13e614938d5b9c8b2f248581cc5e31b35454397fce50e"),
        h("7d62a7e3ef36de617b13d1afb82c780d83a23bd4ee6705645121f371f546a53d"),
        h("2e9380c8323af97545bc4941deb0ec3742c62fe0ece824a6abdbe66c59bee0242911bfb967235ceba35ae13e4ec752be"
          "630b92dc4bde2847a9c62cb8152745421fb7eb60a63c0fe9159fcce726ce7cd8523d7450667ef840e4919121eb5f01c8"
          "c9b0d3d648a93bfb75689e8244ac134af544711ce79a02dcc34226684780dddcb498594106c37f5bc79856487af5ab02"
          "2a2e5e42f09897c1a85a11ea0212af04d9b4cebc937c3c1a3e15a8a0342e337615c84e7fe3b8b9b87fb1e73a15af12a3"
          "0d746e06dfc34f290d797ce51aa13aa785bf6658aff5e4b093003cbeaf665b3c2e113a3a4e905269341dc0711426685f"
          "4ef37e868a8126ff3f2279b57ca67e29"),
        h("575f0351bd2b1b817448bdf87a6c362c1e289d3903a30b9832c5741fa250363e7acbc7f77f3dacbc1f131add8e03367e"
          "ff8fbbb3e1c5784424809b25afe4d2262a1a6fd2fab64105ca30a674e07f7809852088632fc049233791ad4edd083a97"
          "8b883ee618bc5e0dd047415f2d95e683cf14826b5fbe10d3ce41c6c120c78ab20008c698bf7f0bcab9d7f407bed0f43a"
          "fb2970f57f8d12043963e66ddd320d599ad9936c8f44137c08b180ec5e985cebe186f3d549677e80607331ee17af3380"
          "a725b0782317d7dd43f59d7af9568a9bb63a84d365f92244ed120988219302f42924c7ca90b89d24f71b0ab697823d7d"
          "eb1aff5b0e8e4a45d49f7f53757e1913"),
        h("86c70bf8d0bb81bb01078a17219cb7d27203db2a19c877f1d1f19fd7d77ef22546a68f005ad52dc84553b78fc60330be"
          "51ea7c0672cac1515e4b35c047b9a551b88f39dc26da14a09ef74774d47c762dd177f9ed5bc2f11e52c879bd95098504"
          "cd9eecd8a8f9b3efbd1f008ac5853097d9d1837f2b18f77cd7be01af80a7c7b5ea3ca54cc02d0c116fee3f95bb873993"
          "85875d7e86747e676e728938acbff7098e05be4dcfb24052b83aeffb14783f029adbde7f53fae92084224090e007cee9"
          "4d4bf2bace9ffd4b57d2af7c724d0caa19bf0501f6f17b4aa10f425e3ea76080b4b9d6b3cefea115b2ceb8789bb8a3b0"
          "ea87febe63b6c8f846ec6db0c26c5d7c"),
        id="RFC5114-A.3-MODP2048-256",  # RFC 5114 Appendix A.3
    ),
]


@pytest.mark.parametrize(("group", "priv_i", "priv_r", "pub_i", "pub_r", "shared"), DH_VECTORS)
def test_known_answer(group: int, priv_i: bytes, priv_r: bytes, pub_i: bytes, pub_r: bytes, shared: bytes) -> None:
    initiator = with_private(group, priv_i)
    responder = with_private(group, priv_r)
    assert initiator.public_value() == pub_i
    assert responder.respond(pub_i) == (pub_r, shared)
    assert initiator.shared_secret(pub_r) == shared


# -- group parameters from first principles ------------------------------------------------------


def _pi_bits(bits: int) -> int:
    """floor(pi * 2^bits) by Machin's formula in integers (64 guard bits)."""

    def arctan_inv(x: int, one: int) -> int:
        total = term = one // x
        n, sign = 1, -1
        while term:
            term //= x * x
            total += sign * (term // (2 * n + 1))
            sign, n = -sign, n + 1
        return total

    one = 1 << (bits + 64)
    return (4 * (4 * arctan_inv(5, one) - arctan_inv(239, one))) >> 64


# RFC 2409 §6.1/6.2 and RFC 3526 §2-7: p = 2^n - 2^(n-64) - 1 + 2^64 * ([2^(n-130) pi] + c)
OAKLEY = {1: (768, 149686), 2: (1024, 129093), 5: (1536, 741804), 14: (2048, 124476),
          15: (3072, 1690314), 16: (4096, 240904), 17: (6144, 929484), 18: (8192, 4743158)}


@pytest.mark.parametrize("group", sorted(OAKLEY))
def test_oakley_primes_follow_the_rfc_formula(group: int) -> None:
    n, c = OAKLEY[group]
    expected = 2**n - 2 ** (n - 64) - 1 + 2**64 * (_pi_bits(n - 130) + c)
    params = MODP_GROUPS[group]
    assert params.p == expected and params.g == 2 and params.size == n // 8


def _probable_prime(n: int) -> bool:
    # Miller-Rabin with fixed bases: enough to catch a mistyped constant
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for a in (2, 3, 5):
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


@pytest.mark.parametrize("group", [1, 2, 5, 14])
def test_small_oakley_primes_are_safe_primes(group: int) -> None:
    p = MODP_GROUPS[group].p
    assert _probable_prime(p) and _probable_prime((p - 1) // 2)


@pytest.mark.parametrize("group", [22, 23, 24])
def test_rfc5114_groups_have_a_prime_order_subgroup(group: int) -> None:
    # RFC 5114 §2.1-2.3: q prime, q | p-1, g of order q
    g = MODP_GROUPS[group]
    assert g.q is not None
    assert _probable_prime(g.p) and _probable_prime(g.q)
    assert (g.p - 1) % g.q == 0 and pow(g.g, g.q, g.p) == 1 and g.g != 1


@pytest.mark.parametrize("group", sorted(_CURVES))
def test_curve_orders_are_the_base_point_orders(group: int) -> None:
    # (n-1)*G has G's x and another y, so it is -G and n*G is the point at infinity
    curve = _CURVES[group]
    gen = ec.derive_private_key(1, curve.curve()).public_key().public_numbers()
    minus = ec.derive_private_key(curve.order - 1, curve.curve()).public_key().public_numbers()
    assert minus.x == gen.x and minus.y != gen.y
    assert curve.field_size == (curve.curve().key_size + 7) // 8


# -- every group, both roles ---------------------------------------------------------------------


@pytest.mark.parametrize("group", supported_groups())
def test_round_trip_and_sizes(group: int) -> None:
    initiator = new_key_exchange(group, DeterministicRandom(f"initiator-{group}"))
    responder = new_key_exchange(group, DeterministicRandom(f"responder-{group}"))
    assert initiator.group == group and responder.group == group
    ke_i = initiator.public_value()
    ke_r, secret_r = responder.respond(ke_i)
    assert initiator.shared_secret(ke_r) == secret_r
    assert len(ke_i) == public_value_size(group, responder=False)
    assert len(ke_r) == public_value_size(group, responder=True)
    assert any(secret_r)
    if group in MODP_GROUPS:  # RFC 7296 §2.14: g^ir padded to the prime's length
        assert len(secret_r) == MODP_GROUPS[group].size
    elif group in _CURVES:  # RFC 5903 §7: the x coordinate only
        assert len(secret_r) == _CURVES[group].field_size
    assert repr(initiator).endswith(f"({KeGroup(group).name})")  # and nothing of the key


@pytest.mark.parametrize("group", supported_groups())
def test_seeded_source_reproduces_the_initiator(group: int) -> None:
    one = new_key_exchange(group, DeterministicRandom("same")).public_value()
    two = new_key_exchange(group, DeterministicRandom("same")).public_value()
    other = new_key_exchange(group, DeterministicRandom("other")).public_value()
    assert one == two != other


@pytest.mark.parametrize("group", supported_groups())
def test_seeded_source_reproduces_the_responder(group: int) -> None:
    ke_i = new_key_exchange(group, DeterministicRandom("i")).public_value()
    a = new_key_exchange(group, DeterministicRandom("r")).respond(ke_i)
    b = new_key_exchange(group, DeterministicRandom("r")).respond(ke_i)
    assert a == b


def test_the_issue_groups_are_all_supported() -> None:
    wanted = {1, 2, 5, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 28, 29, 30, 31, 32, 35, 36, 37}
    assert wanted <= set(supported_groups())


# -- validation of the peer's value --------------------------------------------------------------


def _reject(ke: KeyExchange, value: bytes, *fragments: str) -> None:
    with pytest.raises(InvalidKeyExchange) as info:
        ke.shared_secret(value)
    message = str(info.value)
    assert KeGroup(ke.group).name in message, message
    for fragment in fragments:
        assert fragment in message, message
    assert info.value.group == ke.group
    # the responder role validates the same way
    with pytest.raises(InvalidKeyExchange):
        new_key_exchange(ke.group, DeterministicRandom("r")).respond(value)


@pytest.mark.parametrize("group", sorted(MODP_GROUPS))
def test_modp_rejects_bad_public_values(group: int) -> None:
    params = MODP_GROUPS[group]
    ke = new_key_exchange(group, DeterministicRandom("v"))
    good = new_key_exchange(group, DeterministicRandom("w")).public_value()
    size, p = params.size, params.p
    _reject(ke, good[1:], f"{size - 1} octets, expected {size}")
    _reject(ke, b"\x00" + good, f"{size + 1} octets")
    for y, shown in ((0, "is 0"), (1, "is 1"), (p - 1, "is p-1"), (p, ">= p"), (2**(8 * size) - 1, ">= p")):
        _reject(ke, y.to_bytes(size, "big"), shown, "1 < y < p-1")
    assert len(ke.shared_secret(good)) == size  # the checks did not break the good path


@pytest.mark.parametrize("group", [22, 23, 24])
def test_rfc5114_groups_reject_values_outside_the_subgroup(group: int) -> None:
    # RFC 6989 §2.2: y must satisfy y^q = 1 mod p
    params = MODP_GROUPS[group]
    assert params.q is not None and pow(2, params.q, params.p) != 1
    ke = new_key_exchange(group, DeterministicRandom("v"))
    _reject(ke, (2).to_bytes(params.size, "big"), "order-q subgroup")


@pytest.mark.parametrize("group", sorted(_CURVES))
def test_ecp_rejects_points_off_the_curve(group: int) -> None:
    ke = new_key_exchange(group, DeterministicRandom("v"))
    good = new_key_exchange(group, DeterministicRandom("w")).public_value()
    size = 2 * _CURVES[group].field_size
    _reject(ke, good[:-1], f"{size - 1} octets, expected {size}")
    _reject(ke, b"\x04" + good, f"{size + 1} octets")  # the X9.62 prefix is not sent (RFC 5903 §7)
    off = good[:-1] + bytes([good[-1] ^ 1])  # y changed: not on the curve
    _reject(ke, off, "not on the curve")
    _reject(ke, bytes(size), "not on the curve")  # (0, 0)
    _reject(ke, b"\xff" * size, "not on the curve")  # coordinates >= p


@pytest.mark.parametrize(("group", "size"), [(KeGroup.CURVE25519, 32), (KeGroup.CURVE448, 56)])
def test_montgomery_rejects_small_order_points(group: int, size: int) -> None:
    ke = new_key_exchange(group, DeterministicRandom("v"))
    _reject(ke, bytes(size - 1), f"{size - 1} octets, expected {size}")
    _reject(ke, bytes(size), "all zero")  # u = 0 (RFC 7748 §6, RFC 8031 §2.3)
    _reject(ke, (1).to_bytes(size, "little"), "all zero")  # u = 1, of small order on both curves


MLKEM = [(KeGroup.ML_KEM_512, 800, 768), (KeGroup.ML_KEM_768, 1184, 1088), (KeGroup.ML_KEM_1024, 1568, 1568)]


@pytest.mark.parametrize(("group", "ek_size", "ct_size"), MLKEM)
def test_mlkem_as_a_key_exchange(group: int, ek_size: int, ct_size: int) -> None:
    initiator = new_key_exchange(group, DeterministicRandom("i"))
    responder = new_key_exchange(group, DeterministicRandom("r"))
    assert initiator.is_kem and responder.is_kem
    with pytest.raises(CryptoError, match="before public_value"):
        initiator.shared_secret(bytes(ct_size))
    ek = initiator.public_value()
    assert len(ek) == ek_size and initiator.public_value() == ek  # one key pair per exchange
    ciphertext, secret = responder.respond(ek)
    assert len(ciphertext) == ct_size and len(secret) == 32
    assert initiator.shared_secret(ciphertext) == secret
    # a different (forged) ciphertext decapsulates to the implicit-rejection secret (FIPS 203 §6.3)
    forged = bytes([ciphertext[0] ^ 1]) + ciphertext[1:]
    assert initiator.shared_secret(forged) != secret
    # the encapsulation's message comes from the injected source: a replay gives the same bytes
    assert new_key_exchange(group, DeterministicRandom("r")).respond(ek) == (ciphertext, secret)
    assert new_key_exchange(group, DeterministicRandom("r2")).respond(ek)[0] != ciphertext


@pytest.mark.parametrize(("group", "ek_size", "ct_size"), MLKEM)
def test_mlkem_rejects_bad_sizes_and_keys(group: int, ek_size: int, ct_size: int) -> None:
    initiator = new_key_exchange(group, DeterministicRandom("i"))
    ek = initiator.public_value()
    _reject(initiator, bytes(ct_size - 1), f"ciphertext is {ct_size - 1} octets, expected {ct_size}")
    _reject(initiator, bytes(ct_size + 1), "ciphertext")
    responder = new_key_exchange(group, DeterministicRandom("r"))
    with pytest.raises(InvalidKeyExchange, match=f"encapsulation key is {ek_size - 1} octets"):
        responder.respond(ek[:-1])
    # the first 12-bit coefficient set to 4095 >= q = 3329: FIPS 203 §7.2 modulus check
    bad = b"\xff" + bytes([ek[1] | 0x0F]) + ek[2:]
    with pytest.raises(InvalidKeyExchange, match="FIPS 203"):
        responder.respond(bad)


# -- metadata ------------------------------------------------------------------------------------


def test_weak_groups_are_flagged() -> None:
    for group in (1, 2, 5, 22, 23, 24, 25):
        reason = group_weakness(group)
        assert reason and len(reason.splitlines()) == 1
    for group in (22, 23, 24):
        assert "RFC 5114" in (group_weakness(group) or "")
    for group in (14, 15, 19, 20, 21, 31, 32, 36, 37):
        assert group_weakness(group) is None


def test_public_value_sizes_without_an_exchange() -> None:
    assert public_value_size(KeGroup.ML_KEM_512, responder=False) == 800
    assert public_value_size(KeGroup.ML_KEM_512, responder=True) == 768
    assert public_value_size(KeGroup.ECP_224_BP, responder=True) == 56
    assert public_value_size(999, responder=False) is None


@pytest.mark.parametrize("group", [0, 27, 33, 34, 38, 999])
def test_unsupported_groups_are_named(group: int) -> None:
    assert group not in supported_groups()
    with pytest.raises(UnsupportedAlgorithm) as info:
        new_key_exchange(group, DeterministicRandom("x"))
    assert info.value.name in str(info.value)


@pytest.mark.parametrize("group", [KeGroup.ML_KEM_768, KeGroup.ML_KEM_1024])
def test_mlkem_without_the_library_gives_the_same_bytes(group: int, monkeypatch: pytest.MonkeyPatch) -> None:
    with_library = new_key_exchange(group, DeterministicRandom("i"))
    ek = with_library.public_value()
    ciphertext, secret = new_key_exchange(group, DeterministicRandom("r")).respond(ek)
    monkeypatch.setattr(ke_module, "_library_mlkem", lambda _group: None)
    pure = new_key_exchange(group, DeterministicRandom("i"))
    assert pure.public_value() == ek
    assert pure.shared_secret(ciphertext) == secret == with_library.shared_secret(ciphertext)


@pytest.mark.parametrize("group", [KeGroup.MODP_1024, KeGroup.ECP_256, KeGroup.CURVE25519])
def test_leading_zero_octets_are_kept(group: int) -> None:
    # RFC 7296 §3.4 / §2.14 and RFC 5903 §7: fixed-length encodings, a value that happens to
    # start with 0x00 keeps that octet (a classic interop bug is to strip it).
    size = public_value_size(group, responder=False)
    seen_public = seen_secret = False
    for i in range(3000):  # each draw has a 1/256 chance per field; bounded search
        initiator = new_key_exchange(group, DeterministicRandom(f"lz-{i}"))
        ke_i = initiator.public_value()
        ke_r, secret = new_key_exchange(group, DeterministicRandom(f"lz-r-{i}")).respond(ke_i)
        assert len(ke_i) == size and initiator.shared_secret(ke_r) == secret
        seen_public |= ke_i[0] == 0
        if secret[0] == 0:
            seen_secret = True
            assert len(secret) in (size, size // 2)
        if seen_public and seen_secret:
            break
    assert seen_public and seen_secret


@pytest.mark.filterwarnings("ignore:Diffie-Hellman over finite fields")  # deprecated in cryptography
@pytest.mark.parametrize("group", [KeGroup.MODP_2048, KeGroup.MODP_4096, KeGroup.MODP_2048_256])
def test_modp_agrees_with_openssl(group: int) -> None:
    # An independent implementation of g^xy: OpenSSL through cryptography's DH.
    from cryptography.hazmat.primitives.asymmetric import dh

    params = MODP_GROUPS[group]
    numbers = dh.DHParameterNumbers(params.p, params.g, params.q)
    x = 0x1D2C3B4A5968778695A4B3C2D1E0F  # small but valid in every group here
    ours = with_private(group, x.to_bytes(16, "big"))
    assert int.from_bytes(ours.public_value(), "big") == pow(params.g, x, params.p)
    theirs = dh.DHPrivateNumbers(x, dh.DHPublicNumbers(pow(params.g, x, params.p), numbers)).private_key()
    peer = new_key_exchange(group, DeterministicRandom("peer")).public_value()
    their_secret = theirs.exchange(dh.DHPublicNumbers(int.from_bytes(peer, "big"), numbers).public_key())
    assert ours.shared_secret(peer) == their_secret.rjust(params.size, b"\x00")


# -- hostile input: any octets give a secret or an InvalidKeyExchange, nothing else ---------------

_HOSTILE_GROUPS = [g for g in supported_groups() if g not in (15, 16, 17, 18)]  # big MODP: slow


@pytest.mark.parametrize("responder", [False, True])
@pytest.mark.parametrize("group", _HOSTILE_GROUPS)
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_hostile_values_never_escape_as_other_errors(group: int, responder: bool, data: st.DataObject) -> None:
    # responder=True: we are the responder and the initiator's value is hostile, and vice versa
    size = public_value_size(group, responder=not responder)
    assert size is not None
    value = data.draw(st.one_of(st.binary(max_size=2 * size), st.binary(min_size=size, max_size=size)))
    ke = new_key_exchange(group, DeterministicRandom("hostile"))
    try:
        if responder:
            ours, secret = ke.respond(value)
            assert len(ours) == public_value_size(group, responder=True)
        else:
            ke.public_value()
            secret = ke.shared_secret(value)
    except InvalidKeyExchange:
        return
    assert len(secret) > 0 and len(value) == size
