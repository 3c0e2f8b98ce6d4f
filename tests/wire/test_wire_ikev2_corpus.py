"""IKEv2 codec against real captures from ../shared/corpus, with tshark as the oracle.

Expected values in the known-answer tests were read with tshark 4.0 (no keys configured), e.g.
``tshark -r f -T fields -e isakmp.typepayload -e isakmp.notify.msgtype -e isakmp.tf.id.encr``.
tshark's ``isakmp.typepayload`` also lists the proposal (2) and transform (3) substructures,
which are dropped before comparing payload chains.
"""

from __future__ import annotations

import bisect
import os
import shutil
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
from corpus import CORPUS, needs_corpus
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.utils import RawPcapReader

from ipsecdiag.wire.errors import MalformedMessage, UnsupportedVersion
from ipsecdiag.wire.ikev2 import (
    CertReqPayload,
    KePayload,
    NoncePayload,
    NotifyPayload,
    SaPayload,
    SkfPayload,
    SkPayload,
    notify_names,
    parse_header_and_chain,
    parse_message,
    payload_names,
    proposal_summary,
    serialize_message,
    transform_label,
)
from ipsecdiag.wire.registry import ExchangeType, KeGroup, NotifyType

pytestmark = needs_corpus
IKE_PORTS = {500, 4500}


def _frames(path: Path) -> Iterator[tuple[int, int | None, bytes]]:
    """(frame number, link type, bytes) for every frame; pcap and pcapng alike."""
    with RawPcapReader(str(path)) as reader:
        for frame, (data, meta) in enumerate(reader, 1):
            yield frame, getattr(meta, "linktype", getattr(reader, "linktype", None)), data


def _l3(linktype: int | None, data: bytes) -> bytes | None:
    """The IP packet inside a frame, for the link types the corpus uses."""
    if linktype == 0:  # BSD loopback: 4-byte address family
        return data[4:]
    if linktype in (12, 14, 101, 228, 229):  # raw IP
        return data
    if linktype == 113:  # Linux cooked v1
        return data[16:]
    if linktype == 276:  # Linux cooked v2
        return data[20:]
    if linktype == 1:  # Ethernet, possibly VLAN-tagged
        pos, ethertype = 12, int.from_bytes(data[12:14])
        while ethertype in (0x8100, 0x88A8):
            pos += 4
            ethertype = int.from_bytes(data[pos : pos + 2])
        return data[pos + 2 :] if ethertype in (0x0800, 0x86DD) else None
    return None


def _udp_datagrams(path: Path) -> Iterator[tuple[int, int, int, bytes]]:
    """(frame, sport, dport, UDP payload); IPv4 fragments reassembled at their last frame."""
    pending: dict[bytes, dict[int, bytes]] = {}
    for frame, linktype, data in _frames(path):
        ip = _l3(linktype, data)
        if not ip:
            continue
        if ip[0] >> 4 == 4 and len(ip) >= 20 and ip[9] == 17:
            ihl, total = (ip[0] & 0x0F) * 4, int.from_bytes(ip[2:4])
            frag = int.from_bytes(ip[6:8])
            udp = ip[ihl:total]
            if frag & 0x3FFF:  # MF set or offset > 0
                key = ip[4:6] + ip[12:20]
                parts = pending.setdefault(key, {})
                parts[(frag & 0x1FFF) * 8] = udp
                if frag & 0x2000:
                    continue
                udp, pos = b"", 0
                for off in sorted(parts):
                    if off != pos:
                        break
                    udp += parts[off]
                    pos += len(parts[off])
                else:
                    del pending[key]
                    yield frame, int.from_bytes(udp[0:2]), int.from_bytes(udp[2:4]), udp[8:]
                continue
        elif ip[0] >> 4 == 6 and len(ip) >= 40 and ip[6] == 17:
            udp = ip[40 : 40 + int.from_bytes(ip[4:6])]
        else:
            continue
        if len(udp) >= 8:
            yield frame, int.from_bytes(udp[0:2]), int.from_bytes(udp[2:4]), udp[8 : int.from_bytes(udp[4:6])]


@cache
def ikev2_messages(path: Path) -> tuple[tuple[int, bytes], ...]:
    """(frame, IKE message) for every IKEv2 datagram on UDP 500/4500 (non-ESP marker stripped)."""
    out = []
    for frame, sport, dport, data in _udp_datagrams(path):
        if not IKE_PORTS & {sport, dport}:
            continue
        if 4500 in (sport, dport):
            if len(data) < 4 or data[:4] != b"\x00\x00\x00\x00":
                continue  # ESP in UDP or a NAT keepalive
            data = data[4:]
        if len(data) >= 28 and data[17] >> 4 == 2:
            out.append((frame, data))
    return tuple(out)


def message(rel: str, frame: int) -> bytes:
    path = CORPUS / rel
    if not path.exists():
        pytest.skip(f"{rel} not in the corpus")
    return dict(ikev2_messages(path))[frame]


def corpus_files() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    return sorted(p for p in CORPUS.rglob("*") if p.suffix in (".pcap", ".pcapng"))


# -- known answers -------------------------------------------------------------------------


def test_strongswan_ike_sa_init_request() -> None:
    m = parse_message(message("lab/ikev2-psk-ok/capture.pcap", 1))
    h = m.header
    assert (h.spi_i.hex(), h.spi_r.hex()) == ("30ebb90272184072", "0000000000000000")
    assert (h.exchange_type, h.message_id, h.length, h.flags) == (ExchangeType.IKE_SA_INIT, 0, 264, 0x08)
    assert h.is_initiator and not h.is_response and h.exchange_name == "IKE_SA_INIT"
    assert payload_names(m.payloads) == ["SA", "KE", "Nonce", "N", "N", "N", "N", "N"]
    assert notify_names(m.payloads) == [
        "NAT_DETECTION_SOURCE_IP",
        "NAT_DETECTION_DESTINATION_IP",
        "IKEV2_FRAGMENTATION_SUPPORTED",
        "SIGNATURE_HASH_ALGORITHMS",
        "REDIRECT_SUPPORTED",
    ]
    sa, ke, nonce = m.payloads[:3]
    assert isinstance(sa, SaPayload) and isinstance(ke, KePayload) and isinstance(nonce, NoncePayload)
    (prop,) = sa.proposals
    assert proposal_summary(prop) == "IKE:AES_GCM_16_256/PRF_HMAC_SHA2_256/ECP_256"
    assert [transform_label(t) for t in prop.transforms] == [
        "ENCR_AES_GCM_16_256",
        "PRF_HMAC_SHA2_256",
        "ECP_256",
    ]
    assert (prop.number, prop.spi) == (1, b"")
    assert ke.group == KeGroup.ECP_256 and len(ke.data) == 64  # RFC 5903: x | y of P-256
    assert nonce.data.hex() == "bc518aa7b6af3d155589bc40e7e97d2dc412afd4aa5b146c5ca6c7fbcbb6e51b"
    sig = m.notifies[3]
    assert sig.signature_hash_algorithms() == (2, 3, 4, 5)
    assert serialize_message(m) == message("lab/ikev2-psk-ok/capture.pcap", 1)


def test_strongswan_ike_sa_init_response_and_encrypted_auth() -> None:
    resp = parse_message(message("lab/ikev2-psk-ok/capture.pcap", 2))
    assert resp.header.is_response and resp.header.spi_r.hex() == "5f6ab664d7700c9c"
    assert notify_names(resp.payloads)[-2:] == ["CHILDLESS_IKEV2_SUPPORTED", "MULTIPLE_AUTH_SUPPORTED"]
    auth = parse_message(message("lab/ikev2-psk-ok/capture.pcap", 3))
    assert (auth.header.exchange_type, auth.header.message_id, auth.header.length) == (35, 1, 261)
    (sk,) = auth.payloads
    assert isinstance(sk, SkPayload) and auth.encrypted is sk
    assert sk.first_inner_type == 35 and len(sk.data) == 233 - 4  # tshark: next IDi, length 233


def test_offered_proposal_and_no_proposal_chosen() -> None:
    req = parse_message(message("lab/ikev2-no-proposal/capture.pcap", 1))
    (sa,) = req.of_type(SaPayload)
    assert proposal_summary(sa.proposals[0]) == "IKE:AES_CBC_128/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1024"
    resp = parse_message(message("lab/ikev2-no-proposal/capture.pcap", 2))
    (n,) = resp.payloads
    assert isinstance(n, NotifyPayload) and n.name == "NO_PROPOSAL_CHOSEN" and n.is_error


def test_many_transforms_and_cookie_exchange() -> None:
    m1 = parse_message(message("external/tcpdump/ikev2four.pcap", 1))
    (sa,) = m1.of_type(SaPayload)
    assert proposal_summary(sa.proposals[0]) == (
        "IKE:AES_CBC_128/AES_CBC_256/AES_CBC_192/3DES/HMAC_SHA1_96/HMAC_MD5_96/AES_XCBC_96"
        "/PRF_HMAC_SHA1/PRF_HMAC_MD5/PRF_AES128_XCBC/MODP_1024/MODP_2048"
    )
    m2 = parse_message(message("external/tcpdump/ikev2four.pcap", 2))
    (cookie,) = m2.notifies
    assert cookie.cookie() == bytes.fromhex("00000001c2221e50c16e123f2b0c71aefcf0cb3b798782c6")
    m3 = parse_message(message("external/tcpdump/ikev2four.pcap", 3))
    assert payload_names(m3.payloads) == ["N", "SA", "KE", "Nonce", "N", "N"]
    assert m3.notifies[0].cookie() == cookie.cookie()  # RFC 7296 §2.6: echoed first


def test_redirect_and_redirected_from() -> None:
    init = parse_message(message("external/scapy/ikev2_notify_redirect.pcap", 1))
    assert (init.header.spi_i.hex(), init.header.spi_r) == ("88694881497528ad", bytes(8))
    redirect = parse_message(message("external/scapy/ikev2_notify_redirect.pcap", 2)).notifies[0]
    info = redirect.redirect()
    assert redirect.name == "REDIRECT" and info is not None
    assert (info.gw_type, info.display()) == (3, "moneybin.duckburg.disney.com")
    assert (
        info.nonce.hex() == "4bf3ea6cd0c6afe702c567fe7db3ff973424bb5e9de6af123a41975a6ffb266e9c5b4c915795132b"
    )
    retry = parse_message(message("external/scapy/ikev2_notify_redirect.pcap", 3))
    frm = next(n for n in retry.notifies if n.notify_type == NotifyType.REDIRECTED_FROM).redirect()
    assert frm is not None and (frm.gw_type, frm.display(), frm.nonce) == (1, "10.5.2.52", b"")


def test_certreq_ca_hashes_and_fragments() -> None:
    resp = parse_message(message("lab/ikev2-fragmentation/capture.pcap", 2))
    (creq,) = resp.of_type(CertReqPayload)
    assert creq.encoding == 4 and creq.ca_hashes() == (
        bytes.fromhex("b5e92f0ccca72c8e80bf980c09f092a855009988"),
        bytes.fromhex("052a14e58d596ba585879b77ca474019432416e2"),
    )
    frags = [
        parse_message(message("lab/ikev2-fragmentation/capture.pcap", f)).payloads[0] for f in (3, 4, 5, 6)
    ]
    assert all(isinstance(f, SkfPayload) for f in frags)
    # RFC 7383 §2.5: only fragment 1 names the first inner payload (IDi / IDr).
    assert [(f.fragment_number, f.total_fragments, f.next_payload) for f in frags] == [  # type: ignore[union-attr]
        (1, 2, 35),
        (2, 2, 0),
        (1, 2, 36),
        (2, 2, 0),
    ]
    assert len(frags[0].data) == 1220 - 8  # type: ignore[union-attr]


def test_invalid_ke_payload_with_slack_and_without_data() -> None:
    padded = message("external/openswan-unit/lp08-parentR1/parentR1notify.pcap", 1)
    m = parse_message(padded)
    (n,) = m.notifies
    assert n.name == "INVALID_KE_PAYLOAD" and n.requested_group() == KeGroup.MODP_2048
    assert (m.header.length, m.slack) == (40, b"\x00\x00")  # payload ends at 38: Openswan pads
    # tshark marks the second one malformed (no group); structurally it is a valid Notify.
    bare = parse_message(message("external/openswan-unit/lp08-parentR1/parentR1notify.pcap", 2))
    assert bare.notifies[0].requested_group() is None


def test_chain_announcing_a_missing_payload() -> None:
    data = message("external/ndpi/ipsec_isakmp_esp.pcap", 192)
    with pytest.raises(MalformedMessage) as exc:
        parse_message(data)
    assert (exc.value.offset, exc.value.field) == (812, "IDi.generic header")
    chain = parse_header_and_chain(data)
    assert payload_names(chain.raw) == ["PAYLOAD_127"] and chain.error is not None


def test_tcpdump_segfault_packet_reports_field_path() -> None:
    data = message("external/tcpdump/ikev2pI2-segfault.pcapng", 1)
    with pytest.raises(MalformedMessage) as exc:
        parse_message(data)
    assert exc.value.field == "SA.proposal[1].transform[3].last substruc"
    assert exc.value.offset == 56
    chain = parse_header_and_chain(data)
    assert chain.types == [33] and chain.parsed == (None,)
    assert [e.field for e in chain.errors] == [
        "SA.proposal[1].transform[3].last substruc",
        "KE.payload length",
    ]


def test_short_id_payload_leaves_slack() -> None:
    m = parse_message(message("external/tcpdump/ikev2-id-normal.pcap", 1))
    (idi,) = m.payloads
    assert payload_names(m.payloads) == ["IDi"] and idi.data == b"\xde"  # type: ignore[union-attr]
    assert len(m.slack) == 76 - 28 - 9


# -- whole corpus vs tshark ----------------------------------------------------------------


TsharkRow = tuple[int, int, int, list[int]]


@pytest.fixture(scope="module")
def tshark_chains(tmp_path_factory: pytest.TempPathFactory) -> dict[Path, dict[int, TsharkRow]]:
    """tshark's view of every IKEv2 message in the corpus, by file and frame.

    One tshark run over the concatenated corpus (tshark's start-up dominates otherwise); frame
    numbers are mapped back to each file by its frame count.
    """
    if shutil.which("tshark") is None or shutil.which("mergecap") is None:
        pytest.skip("tshark/mergecap not installed")
    tmp = tmp_path_factory.mktemp("tshark")
    files = corpus_files()
    merged = tmp / "corpus.pcapng"
    subprocess.run(
        ["mergecap", "-a", "-F", "pcapng", "-w", str(merged), *map(str, files)], check=True, timeout=60
    )
    fields = ["frame.number", "isakmp.exchangetype", "isakmp.messageid", "isakmp.flags", "isakmp.typepayload"]
    cmd = ["tshark", "-n", "-r", str(merged), "-Y", "isakmp.version == 0x20", "-T", "fields"]
    cmd += ["-E", "occurrence=a", "-E", "aggregator=,"]
    for f in fields:
        cmd += ["-e", f]
    # An empty profile: no decryption tables, so tshark sees the same outer chain we do.
    env = {**os.environ, "WIRESHARK_CONFIG_DIR": str(tmp / "profile")}
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env, timeout=120).stdout
    starts, total = [], 0
    for f in files:
        starts.append(total)
        total += sum(1 for _ in _frames(f))
    rows: dict[Path, dict[int, TsharkRow]] = {f: {} for f in files}
    for line in out.splitlines():
        frame, exch, mid, flags, types = line.split("\t")
        index = bisect.bisect_right(starts, int(frame) - 1) - 1
        chain = [int(t) for t in types.split(",") if t and int(t) not in (2, 3)]
        rows[files[index]][int(frame) - starts[index]] = (int(exch), int(mid, 16), int(flags, 16), chain)
    return rows


@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: str(p.relative_to(CORPUS)))
def test_outer_chain_matches_tshark(path: Path, tshark_chains: dict[Path, dict[int, TsharkRow]]) -> None:
    ours = dict(ikev2_messages(path))
    theirs = tshark_chains[path]
    assert sorted(ours) == sorted(theirs)
    for frame, data in ours.items():
        chain = parse_header_and_chain(data)
        h = chain.header
        assert (h.exchange_type, h.message_id, h.flags, chain.types) == theirs[frame], frame
        try:
            m = parse_message(data)
        except MalformedMessage:
            assert chain.errors, frame  # the forgiving view saw the same problem
            continue
        assert not chain.errors and [p.payload_type for p in m.payloads] == chain.types
        if not m.slack:
            assert serialize_message(m) == data[: h.length], frame


# -- robustness on real bytes --------------------------------------------------------------


@cache
def _samples() -> tuple[bytes, ...]:
    picks = [
        ("lab/ikev2-psk-ok/capture.pcap", 1),
        ("lab/ikev2-psk-ok/capture.pcap", 3),
        ("lab/ikev2-fragmentation/capture.pcap", 2),
        ("lab/ikev2-fragmentation/capture.pcap", 4),
        ("external/tcpdump/ikev2four.pcap", 3),
        ("external/scapy/ikev2_notify_redirect.pcap", 2),
    ]
    return tuple(dict(ikev2_messages(CORPUS / rel))[f] for rel, f in picks if (CORPUS / rel).exists())


def _parse_everything(data: bytes) -> None:
    """Every entry point either returns or raises a WireError, and displays never fail."""
    try:
        m = parse_message(data)
    except (MalformedMessage, UnsupportedVersion):
        pass
    else:
        payload_names(m.payloads)
        notify_names(m.payloads)
        for p in m.payloads:
            if isinstance(p, SaPayload):
                [proposal_summary(x) for x in p.proposals]
            elif isinstance(p, NotifyPayload):
                p.redirect()
                p.signature_hash_algorithms()
    try:
        parse_header_and_chain(data)
    except (MalformedMessage, UnsupportedVersion):
        pass


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_real_messages_fail_cleanly(data: st.DataObject) -> None:
    samples = _samples()
    if not samples:
        pytest.skip("corpus samples missing")
    msg = bytearray(data.draw(st.sampled_from(samples)))
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(msg) - 1))
        msg[pos] = data.draw(st.integers(0, 255))
    _parse_everything(bytes(msg))


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_truncated_real_messages_fail_cleanly(data: st.DataObject) -> None:
    samples = _samples()
    if not samples:
        pytest.skip("corpus samples missing")
    msg = data.draw(st.sampled_from(samples))
    cut = data.draw(st.integers(0, len(msg) - 1))
    with pytest.raises((MalformedMessage, UnsupportedVersion)):
        parse_message(msg[:cut])


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_truncated_chains_behind_a_fixed_header_fail_cleanly(data: st.DataObject) -> None:
    # With the header Length patched to the cut, the parser meets the cut inside the chain.
    samples = _samples()
    if not samples:
        pytest.skip("corpus samples missing")
    msg = data.draw(st.sampled_from(samples))
    cut = data.draw(st.integers(28, len(msg) - 1))
    _parse_everything(msg[:24] + cut.to_bytes(4, "big") + msg[28:cut])
