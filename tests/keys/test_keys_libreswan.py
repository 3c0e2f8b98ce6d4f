"""libreswan 4.10 pluto logs recorded against strongSwan (see tests/keys/data/README.md).

charon's log of the same IKE SA is the reference for every key pluto's log yields.
"""

from __future__ import annotations

import dataclasses
import lzma
import re
import struct
from pathlib import Path

import pytest
from pcapwalk import ip_packets, transport

from ipsecdiag.crypto.sk import decrypt_sk
from ipsecdiag.keys.convert import convert
from ipsecdiag.keys.libreswan import looks_like_pluto_log, parse_pluto_log
from ipsecdiag.keys.load import detect_format, parse_text
from ipsecdiag.keys.model import ChildSaKeys, IkeSaKeys, KeyStore, PendingIkeKeys
from ipsecdiag.keys.rekey import link_store
from ipsecdiag.keys.strongswan import parse_charon_log
from ipsecdiag.wire.ikev2 import peek_header
from ipsecdiag.wire.registry import EncrId, IntegId

DATA = Path(__file__).parent / "data"
CASES = ["gcm", "sha512"]
IKE_AUTH = 35


def _pluto(case: str) -> str:
    return lzma.decompress((DATA / f"pluto-4.10-{case}.log.xz").read_bytes()).decode()


def _charon(case: str) -> str:
    return lzma.decompress((DATA / f"charon-vs-pluto-{case}.log.xz").read_bytes()).decode()


def _ike(keys: list) -> IkeSaKeys:
    [k] = [k for k in keys if isinstance(k, IkeSaKeys)]
    return k


@pytest.mark.parametrize("case", CASES)
def test_recorded_pluto_log_gives_charons_ike_keys(case: str) -> None:
    text = _pluto(case)
    first_key_line = next(i for i, ln in enumerate(text.splitlines(), 1) if "| ikev2 I 0x" in ln)
    assert first_key_line > 7000  # recognised by content, not by its first lines
    assert looks_like_pluto_log(text) and detect_format(text) == "pluto"
    res = parse_text(text, name="pluto.log")
    assert (res.format, res.warnings, res.notes) == ("pluto", [], [])
    mine, ref = _ike(res.keys), _ike(parse_charon_log(_charon(case)).keys)
    fields = ("spi_i", "spi_r", "encr", "encr_key_bits", "integ", "sk_ei", "sk_er", "sk_ai", "sk_ar")
    assert [getattr(mine, f) for f in fields] == [getattr(ref, f) for f in fields]
    assert mine.incomplete == "" and mine.source == f"pluto.log:{first_key_line}"


@pytest.mark.parametrize("case", CASES)
def test_recorded_pluto_keys_decrypt_the_captured_ike_auth(case: str) -> None:
    keys = _ike(parse_pluto_log(_pluto(case)).keys)
    n = 0
    for _f, data, off in ip_packets(DATA / f"charon-vs-pluto-{case}.pcap"):
        t = transport(data, off)
        if t is None or t[0] != 17 or 4500 not in struct.unpack_from("!HH", data, t[3]):
            continue
        msg = data[t[3] + 12 : t[4]]  # after the UDP header and the non-ESP marker
        h = peek_header(msg)
        if h.exchange_type == IKE_AUTH:
            assert decrypt_sk(keys, msg, 28, from_initiator=h.is_initiator)
            n += 1
    assert n == 2


def test_recorded_aead_keys_get_their_salt_and_cut_keys_their_tail() -> None:
    gcm, sha = (_ike(parse_pluto_log(_pluto(c)).keys) for c in CASES)
    assert (gcm.encr, gcm.integ, len(gcm.sk_ei)) == (EncrId.ENCR_AES_GCM_16, IntegId.NONE, 36)
    assert (sha.integ, len(sha.sk_ai)) == (IntegId.AUTH_HMAC_SHA2_512_256, 64)
    # The ikev2 lines alone have 32 octets each: what "crypt private" without "all" would give.
    printed = re.search(r"ikev2 I \S+ \S+ sha512:0x([0-9a-f]+)", _pluto("sha512"))
    assert printed is not None and len(printed.group(1)) == 64


@pytest.mark.parametrize(("case", "why"), [
    ("gcm", "SK_ei is printed without its 4-octet salt (pluto omits AEAD/CTR salts)"),
    ("sha512", "SK_ai has 32 of its 64 octets (pluto prints at most 32 octets of a key)"),
])  # fmt: skip
def test_without_key_dumps_cut_keys_are_incomplete_records(case: str, why: str) -> None:
    # Drop the extraction dumps (the "crypt" part of plutodebug=all) and their hex rows.
    lines, skip = [], False
    for ln in _pluto(case).splitlines():
        body = ln.split(": | ", 1)[-1]
        if "extracting all" in body or body.startswith("unwrapped:"):
            skip = True
            continue
        if skip and re.match(r"^\s+[0-9a-f]{2} ", body):
            continue
        skip = False
        lines.append(ln)
    res = parse_text("\n".join(lines), name="p.log")
    ike = _ike(res.keys)
    assert ike.incomplete == why
    store = KeyStore(res.keys)
    assert store.ike(ike.spi_i, ike.spi_r) is None and store.incomplete() == [ike]
    assert [n.kind for n in res.notes] == ["incomplete"] and why in res.notes[0].reason


@pytest.mark.parametrize("case", CASES)
def test_recorded_esp_sa_with_udp_encapsulation(case: str) -> None:
    res = parse_pluto_log(_pluto(case), name="pluto.log")
    [esp] = [k for k in res.keys if isinstance(k, ChildSaKeys)]
    # pluto is the responder at 198.51.100.2; its outbound SA carries the initiator's SPI.
    assert (esp.src, esp.dst, esp.mode, esp.encap) == ("198.51.100.2", "192.0.2.2", "tunnel", (4500, 4500))
    assert f"[{esp.spi:08x}]=espinudp" in _pluto(case)
    expected = (EncrId.ENCR_AES_GCM_16, 36, IntegId.NONE) if case == "gcm" else (
        EncrId.ENCR_AES_CBC, 32, IntegId.AUTH_HMAC_SHA2_512_256)
    assert (esp.encr, len(esp.encr_key), esp.integ) == expected
    assert esp.encr_key_bits == 256 and esp.incomplete == ""


def test_convert_pluto_log_to_xfrm_writes_the_encapsulation(tmp_path: Path) -> None:
    src = tmp_path / "pluto.log"
    src.write_text(_pluto("gcm"))
    out = tmp_path / "sas.sh"
    summary = convert([src], "xfrm", out)
    assert summary.formats == {str(src): "pluto"} and summary.records_out == 1
    [cmd] = [ln for ln in out.read_text().splitlines() if ln.startswith("ip xfrm")]
    assert cmd.startswith("ip xfrm state add src 198.51.100.2 dst 192.0.2.2 proto esp spi 0x")
    assert cmd.endswith(" encap espinudp 4500 4500 0.0.0.0")


def test_pluto_log_without_debug_lines_is_recognised_without_keys() -> None:
    plain = [ln for ln in _pluto("gcm").splitlines() if ": | " not in ln]
    for lines in (plain, [ln for ln in plain if "Starting Pluto" not in ln]):
        res = parse_text("\n".join(lines), name="p")
        assert res.format == "pluto" and res.keys == []
        assert [str(n) for n in res.notes] == [
            'p: no usable keys: the log has no debug lines (`| …`): pluto logs keys only with '
            'plutodebug="crypt private" (or "all")'
        ]


def test_recorded_log_cut_before_the_keys_is_a_warning_not_an_error() -> None:
    text = "\n".join(_pluto("gcm").splitlines()[:6000])  # the SA never got far enough
    res = parse_text(text, name="pluto.log")
    assert res.format == "pluto" and res.keys == []
    [note] = res.notes
    assert note.kind == "no-keys" and str(note).startswith("pluto.log: no usable keys: no `ikev2 I/R` key lines")


@pytest.mark.parametrize("fmt", [
    r"\1 gw pluto[4321]: ",  # syslog (rsyslog's traditional format)
    r"\1.123456 gw pluto[4321]: ",  # journalctl -o short-precise
])  # fmt: skip
def test_syslog_and_journal_lines_give_the_same_keys(fmt: str) -> None:
    text = _pluto("sha512")
    relined = re.sub(r"(?m)^([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d)\.\d+: ", fmt, text)
    relined = "Dec  3 10:08:20 gw systemd[1]: Started ipsec.service\n" + relined
    assert relined.count("pluto[4321]: | ikev2 I 0x") == 1
    res = parse_text(relined, name="syslog")
    assert res.format == "pluto" and res.notes == []
    assert _ike(res.keys) == dataclasses.replace(_ike(parse_pluto_log(text, name="syslog").keys), source=_ike(res.keys).source)


def test_esn_announced_before_the_sa_is_recorded() -> None:
    text = _pluto("gcm").replace("| kernel: add_sa() level=0", "| kernel: Enabling ESN\n| kernel: add_sa() level=0", 1)
    [esp] = [k for k in parse_pluto_log(text).keys if isinstance(k, ChildSaKeys)]
    assert esp.esn is True
    [plain] = [k for k in parse_pluto_log(_pluto("gcm")).keys if isinstance(k, ChildSaKeys)]
    assert plain.esn is None  # not said: the decryptor tries both


def test_charons_pending_rekeyed_sa_takes_its_spis_from_the_peers_pluto_log() -> None:
    """charon logs the rekeyed IKE SA's keys without SPIs; pluto logs the same SA's keys with them."""
    pluto = parse_pluto_log(lzma.decompress((DATA / "pluto-4.10-ike-rekey.log.xz").read_bytes()).decode(), name="p")
    charon = parse_charon_log(_charon("ike-rekey"), name="c")
    [pending] = [k for k in charon.keys if isinstance(k, PendingIkeKeys)]
    first, rekeyed = (k for k in pluto.keys if isinstance(k, IkeSaKeys))
    store = KeyStore([*charon.keys, *pluto.keys])
    links = link_store(store, [])
    assert links.resolved == [pending] and store.pending() == []
    bound = store.ike(rekeyed.spi_i, rekeyed.spi_r)
    assert bound is not None and bound.source == f"{pending.source} (SPIs from {rekeyed.source})"
    assert bound.sk_d == pending.keys.sk_d and bound.sk_d  # what pluto does not print is kept
    assert (bound.sk_ei, bound.sk_ar) == (rekeyed.sk_ei, rekeyed.sk_ar)
    assert pending.parent_spis == (first.spi_i, first.spi_r)
    # The capture's last exchange (the DELETE) is protected with the rekeyed SA's keys.
    last = None
    for _f, data, off in ip_packets(DATA / "charon-vs-pluto-ike-rekey.pcap"):
        t = transport(data, off)
        if t is not None and t[0] == 17:
            last = data[t[3] + 12 : t[4]]
    assert last is not None
    h = peek_header(last)
    assert (h.spi_i, h.spi_r) == (bound.spi_i, bound.spi_r)
    assert decrypt_sk(bound, last, 28, from_initiator=h.is_initiator) is not None


def test_esp_keys_without_their_sa_line_are_a_warning() -> None:
    text = "\n".join(ln for ln in _pluto("gcm").splitlines() if "add_sa()" not in ln)
    res = parse_pluto_log(text, name="p")
    assert not [k for k in res.keys if isinstance(k, ChildSaKeys)]
    assert res.warnings == [
        "p: ESP keys dumped without their `kernel: add_sa()` line, so their SPI is unknown "
        '(plutodebug="all crypt private" logs both); skipped'
    ]


def test_convert_passes_the_sources_notes_on(tmp_path: Path) -> None:
    src = tmp_path / "cut.log"
    src.write_text("\n".join(_pluto("gcm").splitlines()[:6000]))
    summary = convert([src], "toml", tmp_path / "k.toml")
    assert summary.records_out == 0
    assert any(w.startswith(f"{src}: no usable keys: no `ikev2 I/R` key lines") for w in summary.warnings)
