"""charon debug logs: every lab scenario's keys must equal the lab's own extractor (keys.json)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from corpus import CORPUS, needs_corpus

from ipsecdiag.keys._swnames import encr_token, integ_token
from ipsecdiag.keys.load import parse_text
from ipsecdiag.keys.model import ChildSaKeys, IkeSaKeys, IkeV1Keys, PendingIkeKeys
from ipsecdiag.keys.strongswan import looks_like_charon_log, parse_charon_log
from ipsecdiag.wire.registry import EncrId, IntegId, PrfId, V1EncrAlg, V1HashAlg

LAB = CORPUS / "lab"
SCENARIOS = sorted(p.name for p in LAB.iterdir()) if LAB.is_dir() else []


def _log(scenario: str, side: str) -> str:
    return (LAB / scenario / f"charon-{side}.log").read_text()


def _truth(scenario: str) -> dict:
    return json.loads((LAB / scenario / "keys.json").read_text())


def _ike_equal(k: IkeSaKeys | IkeV1Keys, sa: dict) -> None:
    enc_alg, _ = encr_token(sa["encryption"]["alg"])
    if sa["ike_version"] == 1:
        assert isinstance(k, IkeV1Keys)
        assert (k.cookie_i.hex(), k.cookie_r.hex() if k.cookie_r else None) == (sa["spi_i"], sa["spi_r"])
        assert k.encr_key.hex() == sa["encryption_key"]
        assert k.skeyid_a.hex() == sa["skeyid_a"] and k.skeyid_d.hex() == sa["skeyid_d"]
        assert k.encr == V1EncrAlg[EncrId(enc_alg).name.removeprefix("ENCR_")]
        assert k.encr_key_bits == sa["encryption"]["key_bits"]
        assert k.hash_alg == V1HashAlg[sa["prf"].removeprefix("PRF_HMAC_").replace("SHA1", "SHA")]
        return
    assert isinstance(k, IkeSaKeys)
    assert (k.spi_i.hex(), k.spi_r.hex()) == (sa["spi_i"], sa["spi_r"])
    assert k.encr == enc_alg and k.encr_key_bits == sa["encryption"]["key_bits"]
    assert k.integ == (integ_token(sa["integrity"]["alg"]) if sa["integrity"]["alg"] else IntegId.NONE)
    assert k.prf == PrfId[sa["prf"]]
    for f in ("sk_ei", "sk_er", "sk_ai", "sk_ar", "sk_d", "sk_pi", "sk_pr"):
        assert getattr(k, f).hex() == sa[f], f


def _child_equal(k: ChildSaKeys, c: dict, *, addresses: dict) -> None:
    assert k.protocol == c["protocol"].lower()
    assert (k.src, k.dst) == (addresses["src"], addresses["dst"])
    assert k.encr == encr_token(c["encryption"]["alg"])[0]
    assert k.encr_key_bits == c["encryption"]["key_bits"]
    assert k.encr_key.hex() == c["encryption"]["key"]
    assert k.integ == (integ_token(c["integrity"]["alg"]) if c["integrity"]["alg"] else IntegId.NONE)
    assert k.integ_key.hex() == c["integrity"]["key"]
    assert k.esn is (c["esn"] == "EXT_SEQ")
    assert k.mode == c["mode"]


@needs_corpus
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_initiator_log_equals_lab_keys_json(scenario: str) -> None:
    res = parse_charon_log(_log(scenario, "initiator"), name="charon-initiator.log")
    truth = _truth(scenario)
    assert res.warnings == []
    ike = [k for k in res.keys if not isinstance(k, ChildSaKeys)]
    child = {k.spi: k for k in res.keys if isinstance(k, ChildSaKeys)}
    assert len(ike) == len(truth["ike_sas"])
    for k, sa in zip(ike, truth["ike_sas"], strict=True):
        _ike_equal(k, sa)
        assert re.fullmatch(r"charon-initiator\.log:\d+", k.source)
    assert set(child) == {int(c["spi"], 16) for c in truth["child_sas"]}
    for c in truth["child_sas"]:
        _child_equal(child[int(c["spi"], 16)], c, addresses=c)


@needs_corpus
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_responder_log_gives_the_same_keys(scenario: str) -> None:
    """The responder derives the same keys; it sees the peer's addresses after NAT (ikev2-natt)."""
    res = parse_charon_log(_log(scenario, "responder"), name="charon-responder.log")
    truth = _truth(scenario)
    ike = [k for k in res.keys if not isinstance(k, ChildSaKeys)]
    for k, sa in zip(ike, truth["ike_sas"], strict=True):
        _ike_equal(k, sa)
    child = {k.spi: k for k in res.keys if isinstance(k, ChildSaKeys)}
    assert set(child) == {int(c["spi"], 16) for c in truth["child_sas"]}
    for c in truth["child_sas"]:
        _child_equal(child[int(c["spi"], 16)], c, addresses=c["addresses_seen_by_peer"])


def _strip_to_syslog(text: str) -> str:
    """The same log as syslog would store it: host/program prefix, no ms timestamps."""
    out = []
    for line in text.splitlines():
        m = re.match(r"^\S+ (\d+\[\w+\] .*)$", line)
        if m:
            out.append(f"Nov 28 00:51:06 gw charon[4242]: {m.group(1)}")
    return "\n".join(out)


@needs_corpus
def test_syslog_format_and_level_tags() -> None:
    text = _strip_to_syslog(_log("ikev2-cbc-sha256-ok", "initiator"))
    text = re.sub(r"\[(IKE|CHD|CFG|ENC)\] ", r"[\g<1>4] ", text)  # charondebug with log_level = yes
    assert looks_like_charon_log(text)
    res = parse_charon_log(text, name="syslog")
    truth = _truth("ikev2-cbc-sha256-ok")
    _ike_equal(res.keys[0], truth["ike_sas"][0])
    assert {k.spi for k in res.keys if isinstance(k, ChildSaKeys)} == {
        int(c["spi"], 16) for c in truth["child_sas"]
    }


@needs_corpus
def test_log_without_ike_sa_names_falls_back_to_threads() -> None:
    """charon's default filelog has no <conn|N> prefixes: group by thread instead."""
    text = re.sub(r" <[^>]*> ", " ", _log("ikev2-psk-ok", "initiator"))
    res = parse_charon_log(text)
    truth = _truth("ikev2-psk-ok")
    _ike_equal(res.keys[0], truth["ike_sas"][0])
    child = {k.spi: k for k in res.keys if isinstance(k, ChildSaKeys)}
    for c in truth["child_sas"]:
        _child_equal(child[int(c["spi"], 16)], c, addresses=c)


@needs_corpus
def test_responder_without_ike_sa_names_uses_latest_nat_d() -> None:
    # The responder derives Sk_* in another thread than the NAT-D of IKE_SA_INIT.
    text = re.sub(r" <[^>]*> ", " ", _log("ikev2-psk-ok", "responder"))
    res = parse_charon_log(text)
    _ike_equal(res.keys[0], _truth("ikev2-psk-ok")["ike_sas"][0])


REKEY_SNIPPET = """\
10[IKE] <c|1> activating IKE_REKEY task
10[ENC] <c|1> generating CREATE_CHILD_SA request 2 [ SA No KE ]
11[ENC] <c|1> parsed CREATE_CHILD_SA response 2 [ SA No KE ]
11[CFG] <c|1> selected proposal: IKE:AES_CBC_128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048
11[IKE] <c|1> Sk_d secret => 2 bytes @ 0x7f1bcc005840
11[IKE] <c|1>    0: 01 02                                            ..
11[IKE] <c|1> Sk_ai secret => 2 bytes @ 0x7f1bcc005840
11[IKE] <c|1>    0: 03 04                                            ..
11[IKE] <c|1> Sk_ar secret => 2 bytes @ 0x7f1bcc005840
11[IKE] <c|1>    0: 05 06                                            ..
11[IKE] <c|1> Sk_ei secret => 16 bytes @ 0x7f1bcc005840
11[IKE] <c|1>    0: 00 11 22 33 44 55 66 77 88 99 AA BB CC DD EE FF  .."3DUfw........
11[IKE] <c|1> Sk_er secret => 16 bytes @ 0x7f1bcc005840
11[IKE] <c|1>    0: FF EE DD CC BB AA 99 88 77 66 55 44 33 22 11 00  ........wfUD3"..
11[IKE] <c|1> Sk_pi secret => 2 bytes @ 0x7f1bcc005840
11[IKE] <c|1>    0: 07 08                                            ..
11[IKE] <c|1> Sk_pr secret => 2 bytes @ 0x7f1bcc005840
11[IKE] <c|1>    0: 09 0A                                            ..
11[IKE] <c|1> IKE_SA c[2] state change: CONNECTING => ESTABLISHED
11[IKE] <c|1> IKE_SA c[1] state change: ESTABLISHED => REKEYED
"""
CHECKOUT = """\
13[MGR] checkout IKEv2 SA with SPIs 1111111111111111_i 2222222222222222_r
13[MGR] IKE_SA c[2] successfully checked out
"""


def test_rekeyed_ike_sa_takes_spis_from_manager_checkout() -> None:
    res = parse_charon_log(REKEY_SNIPPET + CHECKOUT, name="rekey.log")
    assert res.warnings == []
    (k,) = res.keys
    assert isinstance(k, IkeSaKeys)
    assert (k.spi_i.hex(), k.spi_r.hex()) == ("1111111111111111", "2222222222222222")
    assert (k.encr, k.encr_key_bits, k.integ) == (EncrId.ENCR_AES_CBC, 128, IntegId.AUTH_HMAC_SHA2_256_128)
    assert k.sk_ei.hex() == "00112233445566778899aabbccddeeff" and k.sk_pr.hex() == "090a"
    assert k.source == "rekey.log:5"


def test_rekeyed_ike_sa_without_spis_is_kept_pending() -> None:
    res = parse_charon_log(REKEY_SNIPPET, name="rekey.log")
    assert res.warnings == []
    (p,) = res.keys
    assert isinstance(p, PendingIkeKeys)
    assert (p.source, p.parent_source, p.parent_spis) == ("rekey.log:5", "rekey.log (IKE_SA #1, no keys logged)", None)
    assert p.keys.spi_i == b"" and p.keys.sk_ei.hex() == "00112233445566778899aabbccddeeff"
    assert p.describe() == (
        "keys for an IKE SA created by a rekey of the IKE SA keyed at rekey.log (IKE_SA #1, no keys logged), "
        "SPIs unknown"
    )


def test_truncated_hex_dump_is_reported_not_guessed() -> None:
    text = (
        "11[IKE] <c|1> Sk_d secret => 32 bytes @ 0x7f1bcc005840\n"
        "11[IKE] <c|1>    0: 67 08 01 54 60 9C FA 74 80 5E 6D 10 2D 3E C9 10  g..T`..t.^m.->..\n"
        "11[IKE] <c|1> reinitiating already active tasks\n"
    )
    res = parse_charon_log(text, name="x.log")
    assert res.keys == []
    assert res.warnings == ["x.log:1: hex dump of 'Sk_d secret' is truncated"]


def test_child_keys_without_role_are_not_guessed() -> None:
    """Without a parsed request/response we cannot tell _i from _r keys: say so."""
    text = (
        "14[CFG] <c|1> selected proposal: ESP:AES_GCM_16_128/NO_EXT_SEQ\n"
        "14[CHD] <c|1> encryption initiator key => 4 bytes @ 0x5592\n"
        "14[CHD] <c|1>    0: 01 02 03 04                                      ....\n"
        "14[CHD] <c|1> adding inbound ESP SA\n"
        "14[CHD] <c|1>   SPI 0x01ae6579, src 10.99.2.2 dst 10.99.1.2\n"
    )
    res = parse_charon_log(text, name="x.log")
    assert res.keys == []
    assert res.warnings == ["x.log:4: cannot tell which side initiated the exchange of SA 0x01ae6579"]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "garbage\n",
        "Nov 28 00:00:00 host kernel: something\n" * 5,
        (Path(__file__).parents[2] / "ipsecdiag" / "wire" / "registry.py").read_text(),
    ],
)
def test_non_logs_give_nothing(text: str) -> None:
    assert parse_charon_log(text).keys == []


def test_charon_log_without_key_dumps_says_why() -> None:
    text = (
        "2026-12-03T10:07:04.231 11[IKE] <c|1> initiating IKE_SA c[1] to 198.51.100.2\n"
        "2026-12-03T10:07:04.236 16[CFG] <c|1> selected proposal: IKE:AES_GCM_16_256/PRF_HMAC_SHA2_256/ECP_256\n"
        "2026-12-03T10:07:04.240 04[IKE] <c|1> IKE_SA c[1] established between 192.0.2.2[a]...198.51.100.2[b]\n"
    )
    res = parse_text(text, name="charon.log")
    assert res.format == "strongswan" and res.keys == []
    assert [str(n) for n in res.notes] == [
        "charon.log: no usable keys: no key dumps (`Sk_ei secret`, `encryption initiator key`): "
        "charon logs keys only with ike = 4 and chd = 4, and only once an SA gets that far"
    ]
