"""Key schedules against strongSwan's own numbers: the lab charon logs (level 4) dump the DH
secret, the nonces (as the KEYMAT seed), SKEYSEED / SKEYID*, every SK_* and the CHILD_SA keys.
Recomputing them from the inputs checks RFC 7296 §2.14/§2.17 and RFC 2409 §5/§5.5/Appendix B
end to end."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from corpus import CORPUS, needs_corpus
from ike_frames import ike_messages, payload_chain

from ipsecdiag.crypto.prf import (
    child_keymat,
    derive_ike_sa_keys,
    skeyseed,
    v1_derive,
    v1_hash,
    v1_keymat,
    v1_skeyid_psk,
)
from ipsecdiag.wire.registry import EncrId, IntegId, PrfId, V1HashAlg

LAB = CORPUS / "lab"
_LABEL = re.compile(r"\] <[^>]*> (.+?) => (\d+) bytes @")
_ROW = re.compile(r"\] <[^>]*>\s+\d+: ")


def charon_dumps(path: Path) -> dict[str, list[bytes]]:
    """Every ``<label> => N bytes`` hex dump of a charon log, in order of appearance."""
    out: dict[str, list[bytes]] = {}
    lines = path.read_text(errors="replace").splitlines()
    i = 0
    while i < len(lines):
        m = _LABEL.search(lines[i])
        i += 1
        if not m:
            continue
        want, buf = int(m.group(2)), bytearray()
        while len(buf) < want and i < len(lines):
            r = _ROW.search(lines[i])
            if not r:
                break
            # 16 two-digit groups occupy the 48 columns after "NN: "; the ASCII column follows.
            buf += bytes.fromhex(lines[i][r.end() : r.end() + 48])
            i += 1
        out.setdefault(m.group(1), []).append(bytes(buf))
    return out


@needs_corpus
@pytest.mark.parametrize(
    ("scenario", "encr", "integ"),
    [
        ("ikev2-psk-ok", EncrId.ENCR_AES_GCM_16, 0),
        ("ikev2-cbc-sha256-ok", EncrId.ENCR_AES_CBC, IntegId.AUTH_HMAC_SHA2_256_128),
    ],
)
def test_ikev2_key_schedule_matches_charon(scenario: str, encr: int, integ: int) -> None:
    d = LAB / scenario
    dumps = charon_dumps(d / "charon-initiator.log")
    ike = json.loads((d / "keys.json").read_text())["ike_sas"][0]
    seed = dumps["seed"][0]  # Ni | Nr (the KEYMAT seed of the IKE_AUTH CHILD_SA, RFC 7296 §2.17)
    ni, nr = seed[:32], seed[32:]
    prf_id = PrfId.PRF_HMAC_SHA2_256
    # RFC 7296 §2.14: SKEYSEED = prf(Ni | Nr, g^ir)
    seed_value = skeyseed(prf_id, ni, nr, dumps["shared Diffie Hellman secret"][0])
    assert seed_value == dumps["SKEYSEED"][0]
    keys = derive_ike_sa_keys(
        prf_id=prf_id,
        encr_id=encr,
        integ_id=integ,
        skeyseed_value=seed_value,
        ni=ni,
        nr=nr,
        spi_i=bytes.fromhex(ike["spi_i"]),
        spi_r=bytes.fromhex(ike["spi_r"]),
        encr_key_bits=ike["encryption"]["key_bits"],
    )
    assert keys.sk_d.reveal() == dumps["Sk_d secret"][0]
    assert keys.sk_ei.reveal() == dumps["Sk_ei secret"][0] == bytes.fromhex(ike["sk_ei"])
    assert keys.sk_er.reveal() == dumps["Sk_er secret"][0]
    assert keys.sk_pi.reveal() == dumps["Sk_pi secret"][0]
    assert keys.sk_pr.reveal() == dumps["Sk_pr secret"][0]
    assert keys.sk_ai.hex() == ike["sk_ai"] and keys.sk_ar.hex() == ike["sk_ar"]
    # RFC 7296 §2.17: KEYMAT = prf+(SK_d, Ni | Nr), initiator->responder keys first.
    child = json.loads((d / "keys.json").read_text())["child_sas"]
    km = child_keymat(
        prf_id=prf_id,
        sk_d=keys.sk_d.reveal(),
        ni=ni,
        nr=nr,
        encr_id=encr,
        integ_id=integ,
        encr_key_bits=child[0]["encryption"]["key_bits"],
    )
    assert km.encr_i.reveal() == dumps["encryption initiator key"][0]
    assert km.encr_r.reveal() == dumps["encryption responder key"][0]
    if integ:
        assert km.integ_i.reveal() == dumps["integrity initiator key"][0]
        assert km.integ_r.reveal() == dumps["integrity responder key"][0]
    else:
        assert not km.integ_i and not km.integ_r


@needs_corpus
def test_ikev1_key_schedule_matches_charon() -> None:
    d = LAB / "ikev1-main-psk-ok"
    dumps = charon_dumps(d / "charon-initiator.log")
    ike = json.loads((d / "keys.json").read_text())["ike_sas"][0]
    psk = re.search(r'secret = "([^"]+)"', (d / "config" / "swanctl-initiator.conf").read_text())
    assert psk is not None
    p1 = _v1_cleartext_payloads(d / "capture.pcap")
    h = V1HashAlg.SHA2_256
    # RFC 2409 §5: pre-shared keys: SKEYID = prf(pre-shared-key, Ni_b | Nr_b), phase-1 nonces
    skeyid = v1_skeyid_psk(h, psk.group(1).encode(), p1[10][0], p1[10][1])
    assert skeyid == dumps["SKEYID"][0]
    mat = v1_derive(
        h,
        skeyid,
        dumps["shared Diffie Hellman secret"][0],
        bytes.fromhex(ike["spi_i"]),
        bytes.fromhex(ike["spi_r"]),
        32,
    )
    assert mat.skeyid_d.reveal() == dumps["SKEYID_d"][0]
    assert mat.skeyid_a.reveal() == dumps["SKEYID_a"][0]
    assert mat.skeyid_e.reveal() == dumps["SKEYID_e"][0]
    assert mat.ka.reveal() == dumps["encryption key Ka"][0] == bytes.fromhex(ike["encryption_key"])
    # RFC 2409 §5.5: KEYMAT per SA direction, encryption key then integrity key; charon logs
    # the seed protocol | SPI | Ni_b | Nr_b with the Quick Mode nonces.
    for label, role in (("initiator SA seed", "initiator"), ("responder SA seed", "responder")):
        seed = dumps[label][0]
        km = v1_keymat(h, mat.skeyid_d.reveal(), seed[0], seed[1:5], seed[5:37], seed[37:69], 64)
        assert km[:32] == dumps[f"encryption {role} key"][0]
        assert km[32:] == dumps[f"integrity {role} key"][0]


def _v1_cleartext_payloads(pcap: Path) -> dict[int, list[bytes]]:
    """Payload bodies of the unencrypted ISAKMP messages, by payload type, in capture order."""
    out: dict[int, list[bytes]] = {}
    for f in ike_messages(pcap):
        m = f.message
        if m[19] & 1 == 0 and m[16]:
            for t, off, ln in payload_chain(m, m[16], 28, len(m)):
                out.setdefault(t, []).append(m[off + 4 : off + ln])
    return out


@needs_corpus
def test_ikev1_initial_iv_matches_charon() -> None:
    d = LAB / "ikev1-main-psk-ok"
    kes = _v1_cleartext_payloads(d / "capture.pcap")[4]
    # RFC 2409 Appendix B: IV = hash(g^xi | g^xr) truncated to the block size.
    iv = v1_hash(V1HashAlg.SHA2_256, kes[0] + kes[1])[:16]
    assert iv == charon_dumps(d / "charon-initiator.log")["initial IV"][0]


def test_v1_ka_expansion_rfc2409_appendix_b() -> None:
    from ipsecdiag.crypto.prf import v1_ka, v1_prf

    e = b"\x11" * 20  # SHA-1 SKEYID_e, shorter than a 32-byte AES-256 key
    k1 = v1_prf(V1HashAlg.SHA, e, b"\x00")
    k2 = v1_prf(V1HashAlg.SHA, e, k1)
    assert v1_ka(V1HashAlg.SHA, e, 32) == (k1 + k2)[:32]
    assert v1_ka(V1HashAlg.SHA, e, 16) == e[:16]
