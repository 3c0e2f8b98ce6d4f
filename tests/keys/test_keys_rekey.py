"""Rekeyed IKE SAs: keys logged without SPIs, bound through the CREATE_CHILD_SA that created them.

The unit tests build a rekey chain with the RFC 7296 §2.18 derivation itself. A stored strongSwan
recording with three IKE SA rekeys (tests/keys/data/README.md) is bound from both peers' logs,
and the interop test records the same afresh (rekey_time 10 s, about 35 s).
"""

from __future__ import annotations

import dataclasses
import lzma
import re
import struct
import sys
import time
from pathlib import Path

import pytest
from corpus import REPO_ROOT
from pcapwalk import ip_packets, transport

from ipsecdiag.crypto.ikerekey import derive_rekeyed_ike_sa, verify_by_derivation
from ipsecdiag.crypto.prf import derive_ike_sa_keys
from ipsecdiag.crypto.sk import decrypt_sk
from ipsecdiag.keys.load import load_key_file
from ipsecdiag.keys.model import IkeSaKeys, KeyStore, PendingIkeKeys, SecretBytes
from ipsecdiag.keys.rekey import RekeyExchange, exchange_from_payloads, link_rekeys, link_store
from ipsecdiag.keys.strongswan import parse_charon_log
from ipsecdiag.wire.ikev2 import parse_payloads, peek_header
from ipsecdiag.wire.ikev2_payloads import NoncePayload
from ipsecdiag.wire.ikev2_sa import Proposal, SaPayload
from ipsecdiag.wire.registry import EncrId, IntegId, PrfId

sys.path.insert(0, str(REPO_ROOT / "tests" / "interop"))
from harness import Lab, PeerConfig, missing_prerequisites

PRF = int(PrfId.PRF_HMAC_SHA2_256)
GCM = int(EncrId.ENCR_AES_GCM_16)


def _old() -> IkeSaKeys:
    return derive_ike_sa_keys(
        prf_id=PRF,
        encr_id=GCM,
        integ_id=0,
        skeyseed_value=b"\x11" * 32,
        ni=b"\x01" * 32,
        nr=b"\x02" * 32,
        spi_i=bytes.fromhex("1111111111111111"),
        spi_r=bytes.fromhex("2222222222222222"),
        encr_key_bits=256,
    )


def _exchange(old: IkeSaKeys, n: int) -> RekeyExchange:
    return RekeyExchange(
        old.spi_i, old.spi_r, bytes([n]) * 8, bytes([n + 1]) * 8, bytes([n]) * 32, bytes([n + 2]) * 32, f"ex{n}"
    )


def _pending(old: IkeSaKeys, ex: RekeyExchange, secret: bytes, parent_source: str) -> PendingIkeKeys:
    new = derive_rekeyed_ike_sa(old, secret, ex, encr=GCM, integ=0, prf=PRF, encr_key_bits=256)
    blank = dataclasses.replace(new, spi_i=b"", spi_r=b"", source=f"log:{ex.source}")
    return PendingIkeKeys(blank, parent_source, shared_secret=SecretBytes(secret), source=f"log:{ex.source}")


def test_chain_of_rekeys_binds_link_by_link() -> None:
    old = _old()
    old = dataclasses.replace(old, source="log:1")
    ex1 = _exchange(old, 0x30)
    p1 = _pending(old, ex1, b"\xaa" * 32, "log:1")
    mid = derive_rekeyed_ike_sa(old, b"\xaa" * 32, ex1, encr=GCM, integ=0, prf=PRF, encr_key_bits=256)
    ex2 = _exchange(mid, 0x40)
    p2 = _pending(mid, ex2, b"\xbb" * 32, p1.source)
    # Given out of order, without a verifier: one exchange per rekeyed SA is unambiguous.
    links = link_rekeys([old], [p2, p1], [ex2, ex1])
    assert links.unresolved == []
    assert [(k.spi_i, k.spi_r) for k in links.bound] == [(ex1.new_spi_i, ex1.new_spi_r), (ex2.new_spi_i, ex2.new_spi_r)]
    assert links.bound[1].sk_ei == p2.keys.sk_ei and "SPIs from ex64" in links.bound[1].source


def test_two_rekey_exchanges_need_the_derivation_to_choose() -> None:
    old = dataclasses.replace(_old(), source="log:1")
    right, wrong = _exchange(old, 0x30), _exchange(old, 0x50)
    p = _pending(old, right, b"\xaa" * 32, "log:1")
    unsure = link_rekeys([old], [p], [wrong, right])
    assert unsure.bound == [] and "2 IKE rekey exchanges" in unsure.unresolved[0][1]
    sure = link_rekeys([old], [p], [wrong, right], verify=verify_by_derivation)
    [k] = sure.bound
    assert (k.spi_i, k.spi_r) == (right.new_spi_i, right.new_spi_r) and "RFC 7296 §2.18" in k.source


def test_derivation_rejects_keys_of_another_exchange_and_missing_secret() -> None:
    old = dataclasses.replace(_old(), source="log:1")
    ex = _exchange(old, 0x30)
    p = _pending(old, ex, b"\xaa" * 32, "log:1")
    assert verify_by_derivation(p, old, _exchange(old, 0x31)) is None
    no_secret = dataclasses.replace(p, shared_secret=SecretBytes())
    assert verify_by_derivation(no_secret, old, ex) is None
    assert link_rekeys([], [p], [ex]).unresolved[0][1] == "the rekeyed IKE SA's own keys/SPIs are unknown"


def test_store_keeps_pending_records_out_of_lookups() -> None:
    old = dataclasses.replace(_old(), source="log:1")
    p = _pending(old, _exchange(old, 0x30), b"\xaa" * 32, "log:1")
    store = KeyStore([old, p])
    assert list(store) == [old] and store.pending() == [p] and len(store) == 1
    ex = _exchange(old, 0x30)
    links = link_store(store, [ex], verify=verify_by_derivation)
    assert links.resolved == [p] and store.pending() == [] and len(store) == 2
    assert store.ike(ex.new_spi_i, ex.new_spi_r) == links.bound[0]


RESPONDER_REKEY = """\
11[ENC] <c|1> parsed CREATE_CHILD_SA request 2 [ SA No KE ]
11[CFG] <c|1> selected proposal: IKE:AES_GCM_16_256/PRF_HMAC_SHA2_256/ECP_256
11[IKE] <c|1> IKE_SA c[2] state change: CREATED => CONNECTING
11[IKE] <c|2> shared Diffie Hellman secret => 2 bytes @ 0x7f0c64005df0
11[IKE] <c|2>    0: AB CD                                            ..
11[IKE] <c|2> Sk_d secret => 2 bytes @ 0x7f0c64005df0
11[IKE] <c|2>    0: 01 02                                            ..
11[IKE] <c|2> Sk_ei secret => 4 bytes @ 0x7f0c64005df0
11[IKE] <c|2>    0: 00 11 22 33                                      .."3
11[IKE] <c|2> Sk_er secret => 4 bytes @ 0x7f0c64005df0
11[IKE] <c|2>    0: 44 55 66 77                                      DUfw
11[IKE] <c|2> Sk_pi secret => 2 bytes @ 0x7f0c64005df0
11[IKE] <c|2>    0: 07 08                                            ..
11[IKE] <c|2> Sk_pr secret => 2 bytes @ 0x7f0c64005df0
11[IKE] <c|2>    0: 09 0A                                            ..
11[IKE] <c|1> IKE_SA c[2] state change: CONNECTING => ESTABLISHED
"""


def test_responder_logs_rekeyed_keys_in_the_new_context() -> None:
    res = parse_charon_log(RESPONDER_REKEY, name="r.log")
    [p] = res.keys
    assert isinstance(p, PendingIkeKeys)
    assert p.source == "r.log:6" and p.parent_source == "r.log (IKE_SA #1, no keys logged)"
    assert p.shared_secret.hex() == "abcd" and p.keys.sk_ei.hex() == "00112233" and p.keys.spi_i == b""
    assert p.keys.encr == GCM and p.keys.integ == IntegId.NONE


# ------------------------------------------------------------------------------------ recorded

_missing = missing_prerequisites()
needs_lab = pytest.mark.skipif(bool(_missing), reason="strongSwan lab needs " + ", ".join(_missing))
CREATE_CHILD_SA = 36


@pytest.fixture(scope="module")
def rekeys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("ike-rekey")
    with Lab(out / "lab") as lab:
        lab.start_peer("responder", PeerConfig())
        lab.start_peer("initiator", PeerConfig(rekey_time=10))
        lab.start_capture(out / "capture.pcap")
        assert lab.initiate().ok
        deadline = time.monotonic() + 45
        while lab.list_sas("initiator").count("#4, ESTABLISHED") == 0 and time.monotonic() < deadline:
            lab.ping(count=4, interval=0.5)
        final = lab.list_sas("initiator")
        lab.terminate()
        time.sleep(0.3)
        lab.stop_capture()
    return out, final


def _ike_messages(pcap: Path) -> list[bytes]:
    msgs = []
    for _n, data, off in ip_packets(pcap):
        t = transport(data, off)
        if t is None or t[0] != 17:
            continue
        sport, dport = struct.unpack_from("!HH", data, t[3])
        body = data[t[3] + 8 : t[4]]
        if 4500 in (sport, dport):
            if body[:4] != b"\x00\x00\x00\x00":
                continue  # ESP-in-UDP
            body = body[4:]
        if len(body) >= 28:
            msgs.append(body)
    return msgs


def _exchanges(msgs: list[bytes], store: dict[tuple[bytes, bytes], IkeSaKeys]) -> list[RekeyExchange]:
    """IKE rekey exchanges of the IKE SAs whose keys we have."""
    sides: dict[tuple[bytes, bytes, int], dict[bool, tuple]] = {}
    for m in msgs:
        h = peek_header(m)
        keys = store.get((h.spi_i, h.spi_r))
        if keys is None or h.exchange_type != CREATE_CHILD_SA:
            continue
        inner = parse_payloads(m[28], decrypt_sk(keys, m, 28, from_initiator=h.is_initiator))
        sides.setdefault((h.spi_i, h.spi_r, h.message_id), {})[h.is_response] = inner
    found = [
        exchange_from_payloads(k[0], k[1], v[False], v[True], source=f"message {k[2]}")
        for k, v in sides.items()
        if len(v) == 2
    ]
    return [e for e in found if e is not None]


def _bind_chain(log: Path, pcap: Path) -> list[IkeSaKeys]:
    """Bind every pending record of ``log`` from ``pcap``, one link of the chain per round."""
    res = load_key_file(log)
    known = [k for k in res.keys if isinstance(k, IkeSaKeys)]
    pending = [k for k in res.keys if isinstance(k, PendingIkeKeys)]
    assert len(known) == 1 and len(pending) >= 3 and all(p.shared_secret for p in pending)
    assert [n.kind for n in res.notes] == ["pending"]
    msgs = _ike_messages(pcap)
    store = KeyStore(res.keys)
    for _ in range(len(pending)):  # each round decrypts the next link of the chain
        ikes = {(k.spi_i, k.spi_r): k for k in store if isinstance(k, IkeSaKeys)}
        link_store(store, _exchanges(msgs, ikes), verify=verify_by_derivation)
    assert store.pending() == []
    bound = [k for k in store if isinstance(k, IkeSaKeys) and k is not known[0]]
    assert len(bound) == len(pending)
    assert all("checked by RFC 7296 §2.18 derivation" in k.source for k in bound)
    return bound


DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("role", ["initiator", "responder"])
def test_stored_recording_of_three_ike_rekeys_binds_from_both_logs(tmp_path: Path, role: str) -> None:
    log = tmp_path / "charon.log"
    log.write_bytes(lzma.decompress((DATA / f"charon-ike-rekeys-{role}.log.xz").read_bytes()))
    bound = _bind_chain(log, DATA / "charon-ike-rekeys.pcap")
    assert len(bound) == 3
    # What `swanctl --list-sas` showed as the established IKE SA at the end of the recording.
    assert (bound[-1].spi_i.hex(), bound[-1].spi_r.hex()) == ("124a03c4d732e668", "4a709cf45f9cf490")


def test_rekey_without_its_logged_secret_is_unverified_not_mismatched(tmp_path: Path) -> None:
    """A rekey whose ``shared Diffie Hellman secret`` dump is absent from the log (a cut log, or
    one taken at a lower level around the rekey) carries no secret: its keys cannot be checked,
    which must not read as "the derivation contradicts them" with the original SA's secret."""
    lines = lzma.decompress((DATA / "charon-ike-rekeys-initiator.log.xz").read_bytes()).decode().splitlines()
    dumps = [i for i, ln in enumerate(lines) if "shared Diffie Hellman secret =>" in ln]
    assert len(dumps) == 4  # the first IKE SA's and three rekeys'
    drop = {i + k for i in dumps[1:] for k in range(3)}  # a rekey's dump: header and two rows
    log = tmp_path / "charon.log"
    log.write_text("\n".join(ln for i, ln in enumerate(lines) if i not in drop) + "\n")
    res = load_key_file(log)
    pending = [k for k in res.keys if isinstance(k, PendingIkeKeys)]
    assert len(pending) == 3 and not any(p.shared_secret for p in pending)
    store = KeyStore(res.keys)
    known = [k for k in store if isinstance(k, IkeSaKeys)]
    links = link_store(store, _exchanges(_ike_messages(DATA / "charon-ike-rekeys.pcap"), {
        (k.spi_i, k.spi_r): k for k in known}), verify=verify_by_derivation)
    assert not links.mismatched and len(links.unverified) == 1  # the first link: one candidate


@pytest.mark.interop
@needs_lab
@pytest.mark.parametrize("role", ["initiator", "responder"])
def test_recorded_ike_rekeys_bind_from_both_peers_logs(rekeys: tuple[Path, str], role: str) -> None:
    out, final = rekeys
    bound = _bind_chain(out / "lab" / role / "charon.log", out / "capture.pcap")
    # The last SA's SPIs are those swanctl lists as established.
    spi_i, spi_r = re.search(r"#\d+, ESTABLISHED, IKEv2, ([0-9a-f]{16})_i\*? ([0-9a-f]{16})_r", final).groups()
    assert (bound[-1].spi_i.hex(), bound[-1].spi_r.hex()) == (spi_i, spi_r)


def test_only_ike_rekey_exchanges_give_a_rekey_exchange() -> None:
    def sa(proto: int, spi: bytes) -> SaPayload:
        return SaPayload((Proposal(1, proto, spi, ()),))

    old = (b"\x01" * 8, b"\x02" * 8)
    req = [sa(1, b"\x03" * 8), NoncePayload(b"n" * 32)]
    resp = [sa(1, b"\x04" * 8), NoncePayload(b"m" * 32)]
    ex = exchange_from_payloads(*old, req, resp, source="frames 7-8")
    assert ex == RekeyExchange(*old, b"\x03" * 8, b"\x04" * 8, b"n" * 32, b"m" * 32, "frames 7-8")
    child = [sa(3, b"\x05" * 4), NoncePayload(b"n" * 32)]  # ESP: a CHILD SA (re)key
    assert exchange_from_payloads(*old, child, child) is None
    assert exchange_from_payloads(*old, req, [NoncePayload(b"m" * 32)]) is None  # refused
