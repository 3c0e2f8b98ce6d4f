"""IKEv1 codec against real captures: known answers (read off tshark 4.0's dissection when the
tests were written), malformed captures, and a corpus-wide cross-check with tshark itself."""

from __future__ import annotations

import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from corpus import CORPUS, needs_corpus
from scapy.utils import RawPcapReader

from ipsecdiag.wire.errors import MalformedMessage
from ipsecdiag.wire.ikev1 import (
    V1CertReqPayload,
    V1IdPayload,
    V1Message,
    V1NotifyPayload,
    V1SaPayload,
    V1VendorIdPayload,
    parse_v1_message,
    serialize_v1_message,
    serialize_v1_payloads,
    v1_exchange_name,
    v1_notify_names,
    v1_payload_names,
    v1_proposal_summary,
)

pytestmark = needs_corpus

# -- reading captures (test-only: just enough L2-L4 to find UDP 500/4500) ---------------------


def _ip_offset(frame: bytes, linktype: int) -> int | None:
    lt = linktype & 0xFFFF  # upper bits of the pcap link type carry FCS information
    if lt == 1:  # Ethernet, possibly VLAN-tagged
        off, etype = 14, struct.unpack_from("!H", frame, 12)[0] if len(frame) >= 14 else 0
        while etype in (0x8100, 0x88A8) and len(frame) >= off + 4:
            etype, off = struct.unpack_from("!H", frame, off + 2)[0], off + 4
        return off if etype in (0x0800, 0x86DD) else None
    return {0: 4, 12: 0, 14: 0, 101: 0, 113: 16, 276: 20}.get(lt)


def _udp_payload(frame: bytes, off: int) -> tuple[int, int, bytes] | None:
    """(sport, dport, payload) of an unfragmented UDP datagram, else None."""
    if len(frame) < off + 1:
        return None
    if frame[off] >> 4 == 4 and len(frame) >= off + 20:
        ihl, total = (frame[off] & 0x0F) * 4, struct.unpack_from("!H", frame, off + 2)[0]
        if struct.unpack_from("!H", frame, off + 6)[0] & 0x3FFF or frame[off + 9] != 17:
            return None
        l4, end = off + ihl, off + total
    elif frame[off] >> 4 == 6 and len(frame) >= off + 40:
        if frame[off + 6] != 17:
            return None
        l4, end = off + 40, off + 40 + struct.unpack_from("!H", frame, off + 4)[0]
    else:
        return None
    if len(frame) < l4 + 8:
        return None
    sport, dport = struct.unpack_from("!HH", frame, l4)
    return sport, dport, frame[l4 + 8 : end]


def frames(path: Path, *, raw: bool = False) -> list[bytes | None]:
    """UDP 500/4500 IKE datagrams by 1-based frame number (non-ESP marker removed); with
    ``raw`` the UDP payload of every UDP frame, whatever its ports and first bytes."""
    out: list[bytes | None] = []
    reader = RawPcapReader(str(path))
    try:
        default_lt = getattr(reader, "linktype", 1)
        for frame, meta in reader:
            off = _ip_offset(frame, getattr(meta, "linktype", None) or default_lt)
            udp = None if off is None else _udp_payload(frame, off)
            ike = None
            if udp is not None:
                sport, dport, data = udp
                if raw:
                    ike = data
                elif 4500 in (sport, dport) and data[:4] == b"\x00\x00\x00\x00":
                    ike = data[4:]
                elif 500 in (sport, dport):
                    ike = data
            out.append(ike)
    finally:
        reader.close()
    return out


def message(rel: str, frame: int) -> V1Message:
    data = frames(CORPUS / rel)[frame - 1]
    assert data is not None
    return parse_v1_message(data)


def vendor_names(msg: V1Message) -> list[str | None]:
    return [p.vendor for p in msg.payloads if isinstance(p, V1VendorIdPayload)]


def sa_summaries(msg: V1Message) -> list[str]:
    return [v1_proposal_summary(pr) for p in msg.payloads if isinstance(p, V1SaPayload) for pr in p.proposals]


# -- known answers -------------------------------------------------------------------------------

SURICATA = "external/suricata-verify/ikev1-rules/ikev1-isakmp-main-mode.pcap"
WIKI = "external/wireshark-wiki/attachment_ikev1_main_mode.pcap"
AGGRESSIVE = "external/zeek-spicy-ipsec/traces/ipsec-ikev1-isakmp-aggressive-mode.pcap"
ZEEK = "external/zeek-spicy-ipsec/traces/ipsec.cap"
LAB = "lab/ikev1-main-psk-ok/capture.pcap"
CERTS = "external/wireshark-testsuite/ikev1-certs.pcap"
OPENSWAN_M1 = "external/openswan-unit/lp109-v1rwnatQR1/v1rwnatM1.pcap"
OPENSWAN_QI1 = "external/openswan-unit/lp109-v1rwnatQR1/v1rwnatQI1.pcap"
TCPDUMP_4500 = "external/tcpdump/isakmp4500.pcap"
NATT_VIDS = ["NAT-T (RFC 3947)", "draft-ietf-ipsec-nat-t-ike-07", "draft-ietf-ipsec-nat-t-ike-03"]

# (file, frame, exchange, message id, encrypted, outer payloads)
SHAPES = [
    (SURICATA, 1, "MAIN_MODE", 0, False, ["SA", "V", "V", "V", "V"]),
    (SURICATA, 3, "MAIN_MODE", 0, False, ["KE", "Nonce", "V", "V", "V", "NAT-D", "NAT-D"]),
    (SURICATA, 4, "MAIN_MODE", 0, False, ["KE", "Nonce", "V", "V", "V", "V", "NAT-D", "NAT-D"]),
    (SURICATA, 5, "MAIN_MODE", 0, True, []),
    (SURICATA, 7, "QUICK_MODE", 0x635A2E6A, True, []),
    (WIKI, 1, "MAIN_MODE", 0, False, ["SA", "V", "V"]),
    (WIKI, 3, "MAIN_MODE", 0, False, ["KE", "Nonce"]),
    (WIKI, 10, "INFORMATIONAL", 0xCE064AAC, True, []),
    (AGGRESSIVE, 1, "AGGRESSIVE_MODE", 0, False, ["SA", "V", "V", "V", "V", "KE", "Nonce", "ID", "V", "V", "V"]),
    (AGGRESSIVE, 2, "AGGRESSIVE_MODE", 0, False,
     ["SA", "V", "V", "V", "V", "V", "KE", "ID", "Nonce", "HASH", "NAT-D", "NAT-D"]),
    (AGGRESSIVE, 4, "QUICK_MODE", 0xE22A74C1, True, []),
    (ZEEK, 3, "INFORMATIONAL", 0, False, ["N"]),
    (LAB, 3, "MAIN_MODE", 0, False, ["KE", "Nonce", "NAT-D", "NAT-D"]),
    (LAB, 5, "MAIN_MODE", 0, True, []),  # first message on UDP 4500 behind the non-ESP marker
    (LAB, 7, "QUICK_MODE", 0xF79CBBC1, True, []),
    (LAB, 50, "INFORMATIONAL", 0x0756B874, True, []),
    (CERTS, 4, "MAIN_MODE", 0, False, ["KE", "Nonce", "CR"]),
    (OPENSWAN_QI1, 1, "QUICK_MODE", 0x80010203, True, []),
    (TCPDUMP_4500, 35, "INFORMATIONAL", 0x02BDC64F, True, []),
]  # fmt: skip


@pytest.mark.parametrize(("rel", "frame", "exchange", "message_id", "encrypted", "names"), SHAPES)
def test_message_shapes(
    rel: str, frame: int, exchange: str, message_id: int, encrypted: bool, names: list[str]
) -> None:
    msg = message(rel, frame)
    assert v1_exchange_name(msg.header.exchange_type) == exchange
    assert msg.header.message_id == message_id
    assert (msg.encrypted_body is not None) == encrypted == msg.header.encrypted
    assert v1_payload_names(msg.payloads) == names
    data = frames(CORPUS / rel)[frame - 1]
    assert data is not None and serialize_v1_message(msg) == data[: msg.header.length]


@pytest.mark.parametrize(
    ("rel", "frame", "vendors"),
    [
        (SURICATA, 1, [*NATT_VIDS, "draft-ietf-ipsec-nat-t-ike-02\\n"]),
        (SURICATA, 2, ["NAT-T (RFC 3947)"]),
        (SURICATA, 4, ["Cisco Unity 1.0", "DPD (RFC 3706)", None, "XAUTH"]),
        (WIKI, 1, ["DPD (RFC 3706)", None]),
        (ZEEK, 1, ["strongSwan", "Cisco Unity 1.0", "XAUTH", "DPD (RFC 3706)", "NAT-T (RFC 3947)",
                   "draft-ietf-ipsec-nat-t-ike-03", "draft-ietf-ipsec-nat-t-ike-02",
                   "draft-ietf-ipsec-nat-t-ike-02\\n", "draft-ietf-ipsec-nat-t-ike-00"]),
        (LAB, 1, ["XAUTH", "DPD (RFC 3706)", "FRAGMENTATION (capabilities 0x80000000)", "NAT-T (RFC 3947)",
                  "draft-ietf-ipsec-nat-t-ike-02\\n"]),
        (CERTS, 2, ["DPD (RFC 3706)", "draft-stenberg-ipsec-nat-traversal-01", "draft-stenberg-ipsec-nat-traversal-02",
                    "draft-ietf-ipsec-nat-t-ike-00", "draft-ietf-ipsec-nat-t-ike-02", "draft-ietf-ipsec-nat-t-ike-02\\n",
                    "draft-ietf-ipsec-nat-t-ike-03", "NAT-T (RFC 3947)", "Juniper NetScreen (06)"]),
        (OPENSWAN_M1, 1, ["Openswan/FreeS/WAN", "DPD (RFC 3706)", "NAT-T (RFC 3947)", "draft-ietf-ipsec-nat-t-ike-03",
                          "draft-ietf-ipsec-nat-t-ike-02\\n", "draft-ietf-ipsec-nat-t-ike-02",
                          "draft-ietf-ipsec-nat-t-ike-00"]),
    ],
)  # fmt: skip
def test_vendor_ids(rel: str, frame: int, vendors: list[str | None]) -> None:
    assert vendor_names(message(rel, frame)) == vendors


@pytest.mark.parametrize(
    ("rel", "frame", "summaries"),
    [
        (SURICATA, 1, ["IKE:AES_CBC_128/SHA1/MODP_1024/PRE_SHARED_KEY"]),
        (AGGRESSIVE, 2, ["IKE:AES_CBC_128/SHA1/MODP_1024/PRE_SHARED_KEY"]),
        (ZEEK, 1, ["IKE:3DES_CBC/SHA1/MODP_1024/PRE_SHARED_KEY"]),
        (LAB, 1, ["IKE:AES_CBC_256/SHA2_256/MODP_2048/PRE_SHARED_KEY"]),
        (CERTS, 1, ["IKE:3DES_CBC/MD5/MODP_1024/RSA_SIGNATURES"]),
        (OPENSWAN_M1, 1, ["IKE:3DES_CBC/MD5/MODP_2048/RSA_SIGNATURES"]),
    ],
)
def test_sa_summaries(rel: str, frame: int, summaries: list[str]) -> None:
    assert sa_summaries(message(rel, frame)) == summaries


def test_aggressive_mode_identity_and_notify() -> None:
    ids = [p for p in message(AGGRESSIVE, 1).payloads if isinstance(p, V1IdPayload)]
    assert [(i.id_type, i.protocol_id, i.port, i.display()) for i in ids] == [(1, 17, 0, "192.168.12.2")]
    n = message(ZEEK, 3)
    assert v1_notify_names(n.payloads) == ["NO_PROPOSAL_CHOSEN"]
    assert isinstance(n.payloads[0], V1NotifyPayload) and n.payloads[0].spi == b""


def test_certificate_request_names_its_ca() -> None:
    (cr,) = [p for p in message(CERTS, 4).payloads if isinstance(p, V1CertReqPayload)]
    assert cr.encoding == 4  # X.509 Certificate - Signature
    from ipsecdiag.wire.ikev1 import der_dn_text

    assert der_dn_text(cr.data) == "DC=at, DC=geblergasse95, CN=SchendlZertifikate"


def test_duplicate_life_duration_uses_the_last_value() -> None:
    # Suricata's synthetic proposal repeats Life-Duration (86400, then Life-Type, then 65535).
    from ipsecdiag.wire.ikev1 import v1_phase1_params

    (sa,) = [p for p in message("external/suricata-verify/ikev1-duplicate-proposals/generated.pcap", 1).payloads
             if isinstance(p, V1SaPayload)]  # fmt: skip
    assert v1_phase1_params(sa.proposals[0].transforms[0])["life_seconds"] == 65535


# -- malformed captures ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rel", "frame", "field", "offset"),
    [
        # VID payload length 3 (< 4): the zeek analyzer's "payload bad length" case.
        (
            "external/zeek-spicy-ipsec/traces/ipsec-ikev1-payload-bad-length.pcap",
            1,
            "payload[1](V).length",
            90,
        ),
        # ISAKMP header length 0.
        ("external/zeek-spicy-ipsec/traces/ipsec-ikev1-zero-length.pcap", 1, "header.length", 24),
        # Fuzzed Delete: header length 1126274970 for a 639-byte datagram.
        ("external/tcpdump/isakmp-delete-segfault.pcap", 1, "header.length", 24),
        # Notifies keep announcing another Notify after the last one (tcpdump "no-none-np").
        ("external/tcpdump/isakmp-no-none-np.pcapng", 1, "payload[2](N)", 84),
        # Fuzzed UDP 4500 frame cut right after the UDP header (tcpdump's rfc3948 over-read).
        ("external/tcpdump/isakmp-rfc3948-oobr.pcap", 23, "header.cookie_i", 0),
    ],
)
def test_malformed_captures(rel: str, frame: int, field: str, offset: int) -> None:
    data = frames(CORPUS / rel, raw=True)[frame - 1]
    assert data is not None
    with pytest.raises(MalformedMessage) as e:
        parse_v1_message(data)
    assert (e.value.field, e.value.offset) == (field, offset)


# -- corpus-wide cross-check with tshark ---------------------------------------------------------

# Messages we reject although tshark dissects them without complaint, with the reason.
STRICTER_THAN_TSHARK = {
    ("external/tcpdump/isakmp-no-none-np.pcapng", 1): "the last Notify announces another payload",
}


def _capture_files() -> list[Path]:
    return sorted(p for p in CORPUS.rglob("*") if p.suffix in (".pcap", ".pcapng", ".cap"))


def _v1_datagrams() -> dict[Path, list[bytes | None]]:
    """Every capture holding at least one IKEv1-looking datagram, with all its frames."""
    found = {}
    for path in _capture_files():
        fr = frames(path)
        if any(d is not None and len(d) >= 28 and d[17] >> 4 == 1 for d in fr):
            found[path] = fr
    return found


def _children(field: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in field.findall("field") if c.get("name") == name]


def _tshark_payload(p: ET.Element) -> dict[str, object]:
    """What tshark saw in one outer payload: type, raw bytes, VID, notify type, SA transforms."""
    seen: dict[str, object] = {"type": int(p.get("show", "-1")), "raw": p.get("value", "")}
    for c in p.iter("field"):
        name = c.get("name")
        if name == "isakmp.vid_bytes":
            seen["vid"] = c.get("value")
        elif name == "isakmp.vid_string":
            seen["vid_name"] = c.get("show")
        elif name == "isakmp.notify.msgtype":
            seen["notify"] = int(c.get("show", "-1"))
    if seen["type"] == 1:
        proposals = []
        for prop in _children(p, "isakmp.typepayload"):
            transforms = []
            for tr in _children(prop, "isakmp.typepayload"):
                attrs = []
                for a in tr.findall("field"):
                    if a.get("name", "").endswith(".attr"):
                        t = next(x for x in a.findall("field") if x.get("name", "").endswith(".attr.type"))
                        v = next(x for x in a.findall("field") if x.get("name", "").endswith(".attr.value"))
                        attrs.append((int(t.get("value", "0"), 16) & 0x7FFF, v.get("value")))
                tid = _children(tr, "isakmp.trans.id")[0].get("show")
                transforms.append((int(tid or "0"), attrs))
            proposals.append(transforms)
        seen["proposals"] = proposals
    return seen


def _ours(p: object) -> dict[str, object]:
    seen: dict[str, object] = {"type": p.payload_type}  # type: ignore[attr-defined]
    if isinstance(p, V1VendorIdPayload):
        seen["vid"] = p.data.hex()
    elif isinstance(p, V1NotifyPayload):
        seen["notify"] = p.notify_type
    elif isinstance(p, V1SaPayload):
        seen["proposals"] = [
            [(t.transform_id, [(a.type, a.raw.hex()) for a in t.attributes]) for t in pr.transforms]
            for pr in p.proposals
        ]
    return seen


@pytest.fixture(scope="module")
def tshark_view(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[dict[Path, list[bytes | None]], ET.Element]:
    if not (shutil.which("tshark") and shutil.which("mergecap")):
        pytest.skip("tshark/mergecap not installed: the tshark cross-check needs Wireshark 4.x")
    files = _v1_datagrams()
    merged = tmp_path_factory.mktemp("ikev1") / "merged.pcapng"
    subprocess.run(["mergecap", "-a", "-w", str(merged), *map(str, files)], check=True, capture_output=True)
    pdml = subprocess.run(
        ["tshark", "-r", str(merged), "-Y", "isakmp.mjver == 1", "-T", "pdml"],
        check=True,
        capture_output=True,
        timeout=120,
    ).stdout
    return files, ET.fromstring(pdml)


def test_every_ikev1_message_matches_tshark(
    tshark_view: tuple[dict[Path, list[bytes | None]], ET.Element],
) -> None:
    files, root = tshark_view
    index = [(path, n) for path, fr in files.items() for n in range(1, len(fr) + 1)]
    compared = 0
    for pkt in root.iter("packet"):
        frame_no = int(next(f for f in pkt.iter("field") if f.get("name") == "frame.number").get("show", "0"))
        path, n = index[frame_no - 1]
        rel = str(path.relative_to(CORPUS))
        data = files[path][n - 1]
        assert data is not None, f"{rel}#{n}: tshark sees ISAKMP where we see no UDP 500/4500 payload"
        proto = next(p for p in pkt.iter("proto") if p.get("name") == "isakmp")
        malformed = any(p.get("name") == "_ws.malformed" for p in pkt.iter("proto"))
        try:
            msg = parse_v1_message(data)
        except MalformedMessage:
            assert malformed or (rel, n) in STRICTER_THAN_TSHARK, f"{rel}#{n}: we reject what tshark accepts"
            continue
        if malformed:
            continue  # tshark gave up part-way; nothing reliable to compare against
        top = {f.get("name"): f for f in proto.findall("field")}
        where = f"{rel}#{n}"
        assert top["isakmp.ispi"].get("value") == msg.header.cookie_i.hex(), where
        assert top["isakmp.rspi"].get("value") == msg.header.cookie_r.hex(), where
        assert int(top["isakmp.exchangetype"].get("show", "-1")) == msg.header.exchange_type, where
        assert int(top["isakmp.messageid"].get("value", ""), 16) == msg.header.message_id, where
        assert int(top["isakmp.length"].get("show", "-1")) == msg.header.length, where
        assert int(top["isakmp.flags"].get("value", ""), 16) == msg.header.flags, where
        theirs = [_tshark_payload(p) for p in _children(proto, "isakmp.typepayload")]
        if msg.encrypted_body is not None:
            assert theirs == [], where
            compared += 1
            continue
        assert [t["type"] for t in theirs] == [p.payload_type for p in msg.payloads], where
        for i, (t, p) in enumerate(zip(theirs, msg.payloads, strict=True)):
            nxt = msg.payloads[i + 1].payload_type if i + 1 < len(msg.payloads) else 0
            one = serialize_v1_payloads([p])[1]
            assert bytes([nxt]) + one[1:] == bytes.fromhex(str(t["raw"])), f"{where} payload {i}"
            for key, value in _ours(p).items():
                assert t.get(key, value) == value, f"{where} payload {i} {key}"
            if t.get("vid_name", "Unknown Vendor ID") != "Unknown Vendor ID":
                assert isinstance(p, V1VendorIdPayload) and p.vendor is not None, f"{where}: {t['vid_name']}"
        compared += 1
    assert compared >= 80  # the corpus holds ~90 IKEv1 messages; most must take part
