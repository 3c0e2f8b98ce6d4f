"""The ``keys.json`` written by the lab's extractor (shared/lab/tools/extract_keys.py).

``{"ike_sas": [...], "child_sas": [...]}``: IKE SAs with strongSwan algorithm names
(``AES_GCM_16`` + ``key_bits``, ``HMAC_SHA2_256_128``, ``PRF_HMAC_SHA2_256``) and hex keys; CHILD SAs
with ``spi`` ``"0x…"``, ``src``/``dst``, the same algorithm names and ``esn`` ``NO_EXT_SEQ``/``EXT_SEQ``.
"""

from __future__ import annotations

import json

from ipsecdiag.keys import _swnames
from ipsecdiag.keys.algorithms import encr_name, key_bits_for, parse_v1_encr_name, parse_v1_hash_name
from ipsecdiag.keys.errors import KeyFileError, ParseResult, parse_hex
from ipsecdiag.keys.model import ChildSaKeys, IkeSaKeys, IkeV1Keys, SecretBytes
from ipsecdiag.wire.registry import EncrId, IntegId, PrfId

from ..wire.jsontypes import Json, JsonValue

_V1_HASH_OF_PRF = {"PRF_HMAC_MD5": "MD5", "PRF_HMAC_SHA1": "SHA", "PRF_HMAC_SHA2_256": "SHA2_256"}
_V1_HASH_OF_PRF |= {"PRF_HMAC_SHA2_384": "SHA2_384", "PRF_HMAC_SHA2_512": "SHA2_512"}


def looks_like_lab_json(text: str) -> bool:
    head = text.lstrip()[:4096]
    return head.startswith("{") and ('"ike_sas"' in head or '"child_sas"' in head)


class _Reader:
    def __init__(self, name: str) -> None:
        self.name = name

    def fail(self, where: str, message: str) -> KeyFileError:
        return KeyFileError(self.name, None, f"{where}: {message}")

    def get(self, obj: Json, key: str, where: str) -> JsonValue:
        if not isinstance(obj, dict) or key not in obj:
            raise self.fail(where, f"missing {key!r}")
        return obj[key]

    def items(self, doc: Json, key: str) -> list[Json]:
        value = doc.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.fail(key, "expected a list of objects")
        return value

    def obj(self, value: JsonValue, where: str) -> Json:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(where, "expected an object")
        return value

    def hex(self, value: JsonValue, where: str) -> bytes:
        if value in (None, ""):
            return b""
        if not isinstance(value, str):
            raise self.fail(where, "expected a hex string")
        return parse_hex(value, name=self.name, line_no=None, what=where)

    def encr(self, enc: Json, where: str) -> tuple[int, int | None]:
        alg = self.get(enc, "alg", where)
        got = _swnames.encr_token(str(alg)) if alg else None
        if got is None:
            raise self.fail(where, f"unknown encryption algorithm {alg!r}")
        bits = enc.get("key_bits") or got[1]
        return got[0], 192 if got[0] == EncrId.ENCR_3DES else bits

    def integ(self, integ: Json | None, where: str) -> int:
        alg = self.obj(integ, where).get("alg")
        if not alg:
            return int(IntegId.NONE)
        got = _swnames.integ_token(str(alg))
        if got is None:
            raise self.fail(where, f"unknown integrity algorithm {alg!r}")
        return got


def parse_lab_json(text: str, *, name: str = "keys.json") -> ParseResult:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise KeyFileError(name, e.lineno, f"not valid JSON: {e.msg}") from None
    if not isinstance(doc, dict):
        raise KeyFileError(name, None, "expected a JSON object with ike_sas/child_sas")
    r = _Reader(name)
    res = ParseResult(format="lab-keys-json")
    for i, sa in enumerate(r.items(doc, "ike_sas")):
        w = f"ike_sas[{i}]"
        if not sa.get("spi_i") or not sa.get("spi_r"):
            res.warnings.append(f"{name}: {w}: no SPIs recorded; skipped")
            continue
        encr, bits = r.encr(r.obj(r.get(sa, "encryption", w), w + ".encryption"), w + ".encryption")
        prf_s = sa.get("prf")
        src = f"{name}:{w}"
        spi_i, spi_r = r.hex(sa["spi_i"], w + ".spi_i"), r.hex(sa["spi_r"], w + ".spi_r")
        if len(spi_i) != 8 or len(spi_r) != 8:
            raise r.fail(w, f"SPIs must be 8 octets, got {len(spi_i)} and {len(spi_r)}")
        if sa.get("ike_version") == 1:
            hash_name = _V1_HASH_OF_PRF.get(prf_s or "")
            res.keys.append(
                IkeV1Keys(
                    cookie_i=spi_i,
                    encr_key=SecretBytes(r.hex(r.get(sa, "encryption_key", w), w + ".encryption_key")),
                    cookie_r=spi_r,
                    encr=parse_v1_encr_name(encr_name(encr).removeprefix("ENCR_")),
                    encr_key_bits=bits,
                    hash_alg=parse_v1_hash_name(hash_name) if hash_name else None,
                    skeyid_a=SecretBytes(r.hex(sa.get("skeyid_a"), w + ".skeyid_a")),
                    skeyid_d=SecretBytes(r.hex(sa.get("skeyid_d"), w + ".skeyid_d")),
                    source=src,
                )
            )
            continue
        res.keys.append(
            IkeSaKeys(
                spi_i=spi_i,
                spi_r=spi_r,
                encr=encr,
                sk_ei=SecretBytes(r.hex(r.get(sa, "sk_ei", w), w + ".sk_ei")),
                sk_er=SecretBytes(r.hex(r.get(sa, "sk_er", w), w + ".sk_er")),
                integ=r.integ(sa.get("integrity"), w + ".integrity"),
                sk_ai=SecretBytes(r.hex(sa.get("sk_ai"), w + ".sk_ai")),
                sk_ar=SecretBytes(r.hex(sa.get("sk_ar"), w + ".sk_ar")),
                encr_key_bits=bits,
                prf=int(PrfId[prf_s]) if prf_s in PrfId.__members__ else None,
                sk_d=SecretBytes(r.hex(sa.get("sk_d"), w + ".sk_d")),
                sk_pi=SecretBytes(r.hex(sa.get("sk_pi"), w + ".sk_pi")),
                sk_pr=SecretBytes(r.hex(sa.get("sk_pr"), w + ".sk_pr")),
                source=src,
            )
        )
    for i, c in enumerate(r.items(doc, "child_sas")):
        w = f"child_sas[{i}]"
        proto = str(r.get(c, "protocol", w)).lower()
        spi_s = str(r.get(c, "spi", w))
        try:
            spi = int(spi_s, 16)
        except ValueError:
            raise r.fail(w, f"spi {spi_s!r} is not hex") from None
        if not 0 <= spi <= 0xFFFFFFFF:
            raise r.fail(w, f"spi {spi_s!r} does not fit in 32 bits")
        enc = r.obj(c.get("encryption"), w + ".encryption")
        encr, bits = r.encr(enc, w + ".encryption") if proto == "esp" else (int(EncrId.ENCR_NULL), None)
        key = r.hex(enc.get("key"), w + ".encryption.key")
        esn = {"EXT_SEQ": True, "NO_EXT_SEQ": False}.get(c.get("esn") or "")
        res.keys.append(
            ChildSaKeys(
                spi=spi,
                encr=encr,
                encr_key=SecretBytes(key),
                integ=r.integ(c.get("integrity"), w + ".integrity"),
                integ_key=SecretBytes(r.hex(r.obj(c.get("integrity"), w).get("key"), w + ".integrity.key")),
                protocol=proto,
                src=c.get("src"),
                dst=c.get("dst"),
                encr_key_bits=bits if bits is not None or proto != "esp" else key_bits_for(encr, len(key)),
                esn=esn,
                mode=c.get("mode"),
                source=f"{name}:{w}",
            )
        )
    return res
