"""Proposals as comparable suites, and the configuration lines that produce them.

A :class:`Suite` is one proposal normalised to IKEv2 transform types and ids (IKEv1 phase 1
attributes and IPsec DOI transforms are mapped onto the IKEv2 registry, which shares its
numbers with the IPsec DOI ESP transform ids). That lets one code path compare an offered
proposal with one the peer is known to accept (RFC 7296 §3.3.6: each transform type present
must have an algorithm in common) and print both as strongSwan ``proposals``/``esp_proposals``
keywords and libreswan ``ike=``/``esp=`` strings.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property, lru_cache

from ..wire.ikev1_payloads import V1Proposal, V1SaPayload, V1Transform
from ..wire.ikev2_sa import SaPayload
from ..wire.registry import (
    EncrId,
    EsnId,
    IntegId,
    KeGroup,
    PrfId,
    ProtocolId,
    TransformType,
    V1AuthMethod,
    V1EncrAlg,
    V1HashAlg,
    V1IpsecAttr,
    V1IpsecAuthAlg,
    V1ProtocolId,
    name_of,
)

ENCR, PRF, INTEG, KE, ESN = (
    int(TransformType.ENCR),
    int(TransformType.PRF),
    int(TransformType.INTEG),
    int(TransformType.KE),
    int(TransformType.ESN),
)
KIND_NAMES = {ENCR: "encryption", PRF: "PRF", INTEG: "integrity", KE: "key exchange", ESN: "ESN"}

# Ciphers with integrity built in (RFC 5282, RFC 7634): no INTEG transform goes with them.
AEAD = frozenset(
    {
        EncrId.ENCR_AES_GCM_8,
        EncrId.ENCR_AES_GCM_12,
        EncrId.ENCR_AES_GCM_16,
        EncrId.ENCR_AES_CCM_8,
        EncrId.ENCR_AES_CCM_12,
        EncrId.ENCR_AES_CCM_16,
        EncrId.ENCR_CHACHA20_POLY1305,
        EncrId.ENCR_NULL_AUTH_AES_GMAC,
        EncrId.ENCR_CAMELLIA_CCM_8,
        EncrId.ENCR_CAMELLIA_CCM_12,
        EncrId.ENCR_CAMELLIA_CCM_16,
    }
)


@dataclass(frozen=True)
class Algo:
    """One transform: IKEv2 type and id, key length for variable-length ciphers."""

    type: int
    id: int
    bits: int | None = None

    @cached_property
    def iana(self) -> str:
        enum = {ENCR: EncrId, PRF: PrfId, INTEG: IntegId, KE: KeGroup, ESN: EsnId}.get(self.type)
        if enum is None:
            if TransformType.ADDKE1 <= self.type <= TransformType.ADDKE7:
                return f"ADDKE{self.type - TransformType.ADDKE1 + 1}_{name_of(KeGroup, self.id)}"
            return f"{name_of(TransformType, self.type)}_{self.id}"
        return name_of(enum, self.id)

    @cached_property
    def label(self) -> str:
        return f"{self.iana}_{self.bits}" if self.bits else self.iana


@dataclass(frozen=True)
class Suite:
    """One proposal: its protocol (IKE, ESP, AH) and transforms in wire order.

    ``auth`` carries the IKEv1 phase 1 authentication method (IKEv2 negotiates it elsewhere).
    """

    protocol: str
    algos: tuple[Algo, ...]
    version: int = 2
    number: int = 0
    auth: str | None = None
    spi: bytes = b""

    def of(self, t: int) -> tuple[Algo, ...]:
        return tuple(a for a in self.algos if a.type == t)

    def types(self) -> set[int]:
        return {a.type for a in self.algos}

    @property
    def has_ke(self) -> bool:
        return any(a.type == KE and a.id != KeGroup.NONE for a in self.algos)

    def iana_text(self) -> str:
        """``ESP:ENCR_AES_CBC_128/AUTH_HMAC_SHA2_256_128/NO_EXT_SEQ`` (strongSwan's order)."""
        order = {ENCR: 0, INTEG: 1, PRF: 2, KE: 3, ESN: 9}
        parts = [a.label for a in sorted(self.algos, key=lambda a: order.get(a.type, 5))]
        if self.auth:
            parts.append(self.auth)
        return f"{self.protocol}:{'/'.join(parts) or '(no transforms)'}"


# -- from the wire ------------------------------------------------------------------------


def suites_from_v2(sa_payload: SaPayload) -> list[Suite]:
    """Every proposal of an IKEv2 SA payload."""
    out = []
    for p in sa_payload.proposals:
        algos = tuple(Algo(t.type, t.id, t.key_length) for t in p.transforms)
        out.append(Suite(name_of(ProtocolId, p.protocol_id), algos, 2, p.number, spi=p.spi))
    return out


_V1_ENCR = {
    V1EncrAlg.DES_CBC: EncrId.ENCR_DES,
    V1EncrAlg.IDEA_CBC: EncrId.ENCR_IDEA,
    V1EncrAlg.BLOWFISH_CBC: EncrId.ENCR_BLOWFISH,
    V1EncrAlg.RC5_R16_B64_CBC: EncrId.ENCR_RC5,
    V1EncrAlg.TRIPLE_DES_CBC: EncrId.ENCR_3DES,
    V1EncrAlg.CAST_CBC: EncrId.ENCR_CAST,
    V1EncrAlg.AES_CBC: EncrId.ENCR_AES_CBC,
    V1EncrAlg.CAMELLIA_CBC: EncrId.ENCR_CAMELLIA_CBC,
}
# Phase 1 hash -> (integrity, PRF) it stands for (RFC 2409 §4: HMAC of the hash is the PRF).
_V1_HASH = {
    V1HashAlg.MD5: (IntegId.AUTH_HMAC_MD5_96, PrfId.PRF_HMAC_MD5),
    V1HashAlg.SHA: (IntegId.AUTH_HMAC_SHA1_96, PrfId.PRF_HMAC_SHA1),
    V1HashAlg.SHA2_256: (IntegId.AUTH_HMAC_SHA2_256_128, PrfId.PRF_HMAC_SHA2_256),
    V1HashAlg.SHA2_384: (IntegId.AUTH_HMAC_SHA2_384_192, PrfId.PRF_HMAC_SHA2_384),
    V1HashAlg.SHA2_512: (IntegId.AUTH_HMAC_SHA2_512_256, PrfId.PRF_HMAC_SHA2_512),
}
_V1_ESP_AUTH = {
    V1IpsecAuthAlg.HMAC_MD5: IntegId.AUTH_HMAC_MD5_96,
    V1IpsecAuthAlg.HMAC_SHA: IntegId.AUTH_HMAC_SHA1_96,
    V1IpsecAuthAlg.DES_MAC: IntegId.AUTH_DES_MAC,
    V1IpsecAuthAlg.KPDK: IntegId.AUTH_KPDK_MD5,
    V1IpsecAuthAlg.HMAC_SHA2_256: IntegId.AUTH_HMAC_SHA2_256_128,
    V1IpsecAuthAlg.HMAC_SHA2_384: IntegId.AUTH_HMAC_SHA2_384_192,
    V1IpsecAuthAlg.HMAC_SHA2_512: IntegId.AUTH_HMAC_SHA2_512_256,
    V1IpsecAuthAlg.AES_XCBC_MAC: IntegId.AUTH_AES_XCBC_96,
    V1IpsecAuthAlg.AES_128_GMAC: IntegId.AUTH_AES_128_GMAC,
    V1IpsecAuthAlg.AES_192_GMAC: IntegId.AUTH_AES_192_GMAC,
    V1IpsecAuthAlg.AES_256_GMAC: IntegId.AUTH_AES_256_GMAC,
}


def suites_from_v1(sa_payload: V1SaPayload) -> list[Suite]:
    """Every transform of an IKEv1 SA payload as a suite (IKEv1 transforms are alternatives)."""
    out: list[Suite] = []
    for p in sa_payload.proposals:
        for t in p.transforms:
            out.append(_v1_suite(p, t))
    return out


def _v1_suite(p: V1Proposal, t: V1Transform) -> Suite:
    attrs = {a.type: a.int_value for a in t.attributes if a.tv or len(a.raw) <= 4}
    algos: list[Algo] = []
    if p.protocol_id == V1ProtocolId.PROTO_ISAKMP:
        from ..wire.ikev1_display import v1_phase1_params

        q = v1_phase1_params(t)
        if q["encr_id"] is not None:
            enc = _V1_ENCR.get(q["encr_id"])  # type: ignore[call-overload]
            algos.append(
                Algo(ENCR, int(enc) if enc is not None else 0x8000 + int(q["encr_id"]), q["key_bits"])
            )  # type: ignore[arg-type]
        if q["hash_id"] is not None:
            pair = _V1_HASH.get(q["hash_id"])  # type: ignore[call-overload]
            if pair is not None:
                algos += [Algo(INTEG, int(pair[0])), Algo(PRF, int(pair[1]))]
        if q["group_id"] is not None:
            algos.append(Algo(KE, int(q["group_id"])))  # type: ignore[arg-type]
        auth = name_of(V1AuthMethod, int(q["auth_id"])) if q["auth_id"] is not None else None  # type: ignore[arg-type]
        return Suite("IKE", tuple(algos), 1, p.number, auth=auth, spi=p.spi)
    proto = {
        V1ProtocolId.PROTO_IPSEC_ESP: "ESP",
        V1ProtocolId.PROTO_IPSEC_AH: "AH",
    }.get(p.protocol_id, name_of(V1ProtocolId, p.protocol_id))
    if proto == "ESP":
        algos.append(Algo(ENCR, t.transform_id, attrs.get(V1IpsecAttr.KEY_LENGTH)))
    auth_alg = attrs.get(V1IpsecAttr.AUTHENTICATION_ALGORITHM)
    if auth_alg is not None:
        integ = _V1_ESP_AUTH.get(auth_alg)  # type: ignore[call-overload]
        algos.append(Algo(INTEG, int(integ) if integ is not None else 0x8000 + auth_alg))
    group = attrs.get(V1IpsecAttr.GROUP_DESCRIPTION)
    if group is not None:
        algos.append(Algo(KE, group))
    esn = attrs.get(V1IpsecAttr.EXTENDED_SEQUENCE_NUMBER)
    if esn is not None:
        algos.append(Algo(ESN, int(bool(esn))))
    return Suite(proto, tuple(algos), 1, p.number, spi=p.spi)


# -- comparing ----------------------------------------------------------------------------


def _same(a: Algo, b: Algo) -> bool:
    # A missing key length matches any (fixed-length ciphers, or a sloppy peer).
    return a.type == b.type and a.id == b.id and (a.bits is None or b.bits is None or a.bits == b.bits)


@dataclass(frozen=True)
class Comparison:
    """How an offered suite relates to one the peer accepts: common algorithms per type."""

    offered: Suite
    accepted: Suite
    common: dict[int, tuple[Algo, ...]]
    missing: tuple[int, ...]  # transform types without an algorithm in common

    @property
    def matches(self) -> bool:
        return not self.missing


def compare(offered: Suite, accepted: Suite) -> Comparison:
    """RFC 7296 §3.3.6: a proposal is acceptable when every transform type it lists has an
    algorithm the selector accepts, and no type is required by one side only (ESN, KE)."""
    common: dict[int, tuple[Algo, ...]] = {}
    missing: list[int] = []
    if offered.protocol != accepted.protocol:
        return Comparison(offered, accepted, {}, tuple(sorted(offered.types() | accepted.types())))
    for t in sorted(offered.types() | accepted.types()):
        o, a = offered.of(t), accepted.of(t)
        # "NONE" in one list stands for the absence of the type in the other (no PFS, no INTEG).
        o_none = not o or all(x.id == 0 and t in (KE, INTEG) for x in o)
        a_none = not a or all(x.id == 0 and t in (KE, INTEG) for x in a)
        if t in (KE, INTEG) and o_none and a_none:
            continue
        both = tuple(x for x in o if any(_same(x, y) for y in a))
        if both:
            common[t] = both
        elif t in (KE, INTEG) and (o_none or a_none) and any(x.id == 0 for x in o + a):
            common[t] = (Algo(t, 0),)
        else:
            missing.append(t)
    if offered.auth and accepted.auth and offered.auth != accepted.auth:
        missing.append(0)  # IKEv1 authentication method
    return Comparison(offered, accepted, common, tuple(missing))


def difference_text(c: Comparison) -> str:
    """``encryption: offered AES_CBC_128, accepted AES_GCM_16_256; PRF: ...``."""
    parts = []
    for t in c.missing:
        if t == 0:
            parts.append(f"authentication: offered {c.offered.auth}, accepted {c.accepted.auth}")
            continue
        o = ", ".join(a.label for a in c.offered.of(t)) or "none"
        a = ", ".join(a.label for a in c.accepted.of(t)) or "none"
        parts.append(f"{KIND_NAMES.get(t, name_of(TransformType, t))}: offered {o}, accepted {a}")
    return "; ".join(parts)


# -- strongSwan keywords (swanctl.conf proposals / esp_proposals) ---------------------------

_SS_AEAD = {
    EncrId.ENCR_AES_GCM_8: "gcm8",
    EncrId.ENCR_AES_GCM_12: "gcm12",
    EncrId.ENCR_AES_GCM_16: "gcm16",
    EncrId.ENCR_AES_CCM_8: "ccm8",
    EncrId.ENCR_AES_CCM_12: "ccm12",
    EncrId.ENCR_AES_CCM_16: "ccm16",
}
_SS_ENCR_FIXED = {
    EncrId.ENCR_DES: "des",
    EncrId.ENCR_3DES: "3des",
    EncrId.ENCR_CAST: "cast128",
    EncrId.ENCR_NULL: "null",
    EncrId.ENCR_CHACHA20_POLY1305: "chacha20poly1305",
}
_SS_INTEG = {
    IntegId.AUTH_HMAC_MD5_96: "md5",
    IntegId.AUTH_HMAC_MD5_128: "md5_128",
    IntegId.AUTH_HMAC_SHA1_96: "sha1",
    IntegId.AUTH_HMAC_SHA1_160: "sha1_160",
    IntegId.AUTH_AES_XCBC_96: "aesxcbc",
    IntegId.AUTH_AES_CMAC_96: "aescmac",
    IntegId.AUTH_HMAC_SHA2_256_128: "sha256",
    IntegId.AUTH_HMAC_SHA2_256_96: "sha256_96",
    IntegId.AUTH_HMAC_SHA2_384_192: "sha384",
    IntegId.AUTH_HMAC_SHA2_512_256: "sha512",
    IntegId.AUTH_AES_128_GMAC: "aes128gmac",
    IntegId.AUTH_AES_192_GMAC: "aes192gmac",
    IntegId.AUTH_AES_256_GMAC: "aes256gmac",
}
_SS_PRF = {
    PrfId.PRF_HMAC_MD5: "prfmd5",
    PrfId.PRF_HMAC_SHA1: "prfsha1",
    PrfId.PRF_AES128_XCBC: "prfaesxcbc",
    PrfId.PRF_HMAC_SHA2_256: "prfsha256",
    PrfId.PRF_HMAC_SHA2_384: "prfsha384",
    PrfId.PRF_HMAC_SHA2_512: "prfsha512",
    PrfId.PRF_AES128_CMAC: "prfaescmac",
}
# The PRF strongSwan derives from an integrity algorithm when a proposal names none.
_SS_IMPLIED_PRF = {
    IntegId.AUTH_HMAC_MD5_96: PrfId.PRF_HMAC_MD5,
    IntegId.AUTH_HMAC_SHA1_96: PrfId.PRF_HMAC_SHA1,
    IntegId.AUTH_AES_XCBC_96: PrfId.PRF_AES128_XCBC,
    IntegId.AUTH_AES_CMAC_96: PrfId.PRF_AES128_CMAC,
    IntegId.AUTH_HMAC_SHA2_256_128: PrfId.PRF_HMAC_SHA2_256,
    IntegId.AUTH_HMAC_SHA2_384_192: PrfId.PRF_HMAC_SHA2_384,
    IntegId.AUTH_HMAC_SHA2_512_256: PrfId.PRF_HMAC_SHA2_512,
}
_SS_KE = {
    KeGroup.MODP_768: "modp768",
    KeGroup.MODP_1024: "modp1024",
    KeGroup.MODP_1536: "modp1536",
    KeGroup.MODP_2048: "modp2048",
    KeGroup.MODP_3072: "modp3072",
    KeGroup.MODP_4096: "modp4096",
    KeGroup.MODP_6144: "modp6144",
    KeGroup.MODP_8192: "modp8192",
    KeGroup.MODP_1024_160: "modp1024s160",
    KeGroup.MODP_2048_224: "modp2048s224",
    KeGroup.MODP_2048_256: "modp2048s256",
    KeGroup.ECP_192: "ecp192",
    KeGroup.ECP_224: "ecp224",
    KeGroup.ECP_256: "ecp256",
    KeGroup.ECP_384: "ecp384",
    KeGroup.ECP_521: "ecp521",
    KeGroup.ECP_224_BP: "ecp224bp",
    KeGroup.ECP_256_BP: "ecp256bp",
    KeGroup.ECP_384_BP: "ecp384bp",
    KeGroup.ECP_512_BP: "ecp512bp",
    KeGroup.CURVE25519: "curve25519",  # strongSwan also accepts the alias x25519
    KeGroup.CURVE448: "curve448",
    KeGroup.ML_KEM_512: "mlkem512",
    KeGroup.ML_KEM_768: "mlkem768",
    KeGroup.ML_KEM_1024: "mlkem1024",
}


def strongswan_keyword(a: Algo) -> str | None:
    """The swanctl.conf keyword for one transform, or None when strongSwan has none."""
    if a.type == ENCR:
        if a.id in _SS_ENCR_FIXED:
            return _SS_ENCR_FIXED[a.id]
        bits = a.bits or 128
        if a.id in _SS_AEAD:
            return f"aes{bits}{_SS_AEAD[a.id]}"
        if a.id == EncrId.ENCR_AES_CBC:
            return f"aes{bits}"
        if a.id == EncrId.ENCR_AES_CTR:
            return f"aes{bits}ctr"
        if a.id == EncrId.ENCR_NULL_AUTH_AES_GMAC:
            return f"aes{bits}gmac"
        if a.id == EncrId.ENCR_CAMELLIA_CBC:
            return f"camellia{bits}"
        if a.id == EncrId.ENCR_CAMELLIA_CTR:
            return f"camellia{bits}ctr"
        if a.id == EncrId.ENCR_BLOWFISH:
            return f"blowfish{bits}"
        return None
    if a.type == INTEG:
        return _SS_INTEG.get(a.id)  # type: ignore[call-overload]
    if a.type == PRF:
        return _SS_PRF.get(a.id)  # type: ignore[call-overload]
    if a.type == KE:
        return _SS_KE.get(a.id)  # type: ignore[call-overload]
    if a.type == ESN:
        return "esn" if a.id == EsnId.EXT_SEQ else "noesn"
    if TransformType.ADDKE1 <= a.type <= TransformType.ADDKE7:
        ke = _SS_KE.get(a.id)  # type: ignore[call-overload]
        return f"ke{a.type - TransformType.ADDKE1 + 1}_{ke}" if ke else None
    return None


@lru_cache(maxsize=1024)
def strongswan_proposal(s: Suite) -> str:
    """``aes256gcm16-prfsha384-ecp384`` / ``aes128-sha256-modp2048`` / ``aes256gcm16-esn``.

    Implied parts are left out as a person would write them: a PRF equal to the one strongSwan
    derives from the integrity algorithm, ``noesn`` alone (the default), KE ``NONE``.
    """
    words: list[str] = []
    integ_ids = {a.id for a in s.of(INTEG)}
    implied = {_SS_IMPLIED_PRF[i] for i in integ_ids if i in _SS_IMPLIED_PRF}
    prfs = s.of(PRF)
    skip_prf = bool(prfs) and {a.id for a in prfs} <= implied and len(prfs) == len(implied)
    esn = s.of(ESN)
    for t in (ENCR, INTEG, PRF, KE, *range(TransformType.ADDKE1, TransformType.ADDKE7 + 1), ESN):
        algos = s.of(t)
        if t == PRF and skip_prf:
            continue
        if t == ESN and all(a.id == EsnId.NO_EXT_SEQ for a in esn):
            continue
        for a in algos:
            if a.type in (INTEG, KE) and a.id == 0:
                continue
            words.append(strongswan_keyword(a) or a.label.lower())
    return "-".join(dict.fromkeys(words)) or "(empty)"


# -- libreswan (ipsec.conf ike= / esp=) ----------------------------------------------------

_LS_INTEG = {
    IntegId.AUTH_HMAC_MD5_96: "md5",
    IntegId.AUTH_HMAC_SHA1_96: "sha1",
    IntegId.AUTH_AES_XCBC_96: "aes_xcbc",
    IntegId.AUTH_AES_CMAC_96: "aes_cmac",
    IntegId.AUTH_HMAC_SHA2_256_128: "sha2_256",
    IntegId.AUTH_HMAC_SHA2_384_192: "sha2_384",
    IntegId.AUTH_HMAC_SHA2_512_256: "sha2_512",
}
_LS_PRF = {
    PrfId.PRF_HMAC_MD5: "md5",
    PrfId.PRF_HMAC_SHA1: "sha1",
    PrfId.PRF_AES128_XCBC: "aes_xcbc",
    PrfId.PRF_AES128_CMAC: "aes_cmac",
    PrfId.PRF_HMAC_SHA2_256: "sha2_256",
    PrfId.PRF_HMAC_SHA2_384: "sha2_384",
    PrfId.PRF_HMAC_SHA2_512: "sha2_512",
}
_LS_AEAD = {
    EncrId.ENCR_AES_GCM_16: "aes_gcm",
    EncrId.ENCR_AES_GCM_12: "aes_gcm_b",
    EncrId.ENCR_AES_GCM_8: "aes_gcm_a",
    EncrId.ENCR_AES_CCM_16: "aes_ccm",
    EncrId.ENCR_AES_CCM_12: "aes_ccm_b",
    EncrId.ENCR_AES_CCM_8: "aes_ccm_a",
}


def libreswan_keyword(a: Algo) -> str | None:
    if a.type == ENCR:
        bits = a.bits or 128
        if a.id in _LS_AEAD:
            return f"{_LS_AEAD[a.id]}{bits}"  # type: ignore[index]
        fixed = {
            EncrId.ENCR_3DES: "3des",
            EncrId.ENCR_DES: "des",
            EncrId.ENCR_NULL: "null",
            EncrId.ENCR_CHACHA20_POLY1305: "chacha20_poly1305",
            EncrId.ENCR_NULL_AUTH_AES_GMAC: "null_auth_aes_gmac",
        }
        if a.id in fixed:
            return fixed[a.id]  # type: ignore[index]
        prefix = {
            EncrId.ENCR_AES_CBC: "aes",
            EncrId.ENCR_AES_CTR: "aes_ctr",
            EncrId.ENCR_CAMELLIA_CBC: "camellia",
        }.get(a.id)  # type: ignore[call-overload]
        return f"{prefix}{bits}" if prefix else None
    if a.type == INTEG:
        return _LS_INTEG.get(a.id)  # type: ignore[call-overload]
    if a.type == PRF:
        return _LS_PRF.get(a.id)  # type: ignore[call-overload]
    if a.type == KE:
        if a.id == KeGroup.NONE:
            return None
        name = name_of(KeGroup, a.id)
        return (
            name.lower().replace("_", "")
            if name.startswith("MODP_") and name.count("_") == 1
            else f"dh{a.id}"
        )
    return None


def _ls_join(algos: Iterable[Algo]) -> str:
    return "+".join(dict.fromkeys(libreswan_keyword(a) or a.label.lower() for a in algos))


@lru_cache(maxsize=1024)
def libreswan_proposal(s: Suite) -> str:
    """``aes256-sha2_256;modp2048`` (IKE) / ``aes_gcm256`` (ESP) / ``aes_gcm256-sha2_384;dh20``.

    libreswan writes ``cipher-hash;group``: for IKE with an AEAD cipher the hash is the PRF,
    otherwise it is the integrity algorithm (the PRF follows it); the group after ``;`` is the
    IKE key exchange, or for ESP the PFS group.
    """
    encr = _ls_join(s.of(ENCR))
    integ = [a for a in s.of(INTEG) if a.id != 0]
    aead = all(a.id in AEAD for a in s.of(ENCR)) and bool(s.of(ENCR))
    if s.protocol == "IKE" and (aead or not integ):
        hashes = _ls_join(s.of(PRF))
    else:
        hashes = _ls_join(integ)
    text = encr + (f"-{hashes}" if hashes else "")
    kes = [a for a in s.of(KE) if a.id != 0]
    if kes:
        text += ";" + _ls_join(kes)
    return text


def config_lines(suites: list[Suite], *, child: bool) -> dict[str, str]:
    """strongSwan and libreswan lines that configure exactly ``suites`` (in preference order)."""
    ss = ", ".join(dict.fromkeys(strongswan_proposal(s) for s in suites))
    ls = ",".join(dict.fromkeys(libreswan_proposal(s) for s in suites))
    if child:
        proto = suites[0].protocol.lower() if suites else "esp"
        return {"strongswan": f"{proto}_proposals = {ss}", "libreswan": f"{proto}={ls}"}
    return {"strongswan": f"proposals = {ss}", "libreswan": f"ike={ls}"}
