"""Key material from libreswan/Openswan pluto debug logs, recognised by content wherever it is.

Line forms: pluto's own log file (``logtime=yes``: ``Nov 28 01:36:44.771929: | …``), syslog or
journal lines (``… pluto[123]: | …``) and bare ``| …`` lines. Debug lines start with ``|``.
What pluto 4.x prints with ``plutodebug="crypt private"`` (or ``all``), and what we take:

* IKEv2 IKE SA, once established: ``| ikev2 I 0x<SPIi> 0x<SPIr> <integ>:0x<SK_ai> <encr><bits>:0x<SK_ei>``
  and an ``R`` line (SK_ar, SK_er), tcpdump ``-E`` names. pluto formats each key into a 32-octet
  buffer, so SK_a of SHA-384/512 are cut, and AEAD keys come without their salt (``none:`` for
  the integrity key). With ``crypt`` debugging pluto also dumps every key it extracts
  (``| ai extracting all 64 bytes of key@…`` then ``| unwrapped:`` rows) and the salts while
  computing SKEYSEED (``initiator salt`` / ``responder salt``): the full keys come from those.
  A key that stays short is kept as a record marked ``incomplete``, never used as if whole.
* CHILD SAs (pluto 4.x): ``| ESP enckey:`` and ``| ESP authkey:`` dumps, then
  ``| kernel: add_sa() level=0 outbound tunnel <net>-<p>-><src>[<spi>]=<encap>==><dst>-<p>-><net>
  replay_window=… <INTEG>:<octets> <ENCR>:<octets>``; ESP-in-UDP ports from the preceding
  ``kernel: natt/tcp sa encap_type=2(espinudp) sport=… dport=…``.
* IKEv1 IKE SAs (Openswan's calc_skeyids_iv): ``| Skeyid_a:``, ``| Skeyid_d:``, ``| enc key:``
  dumps; the cookies come from the closest preceding ``| ICOOKIE:``/``| RCOOKIE:`` dumps (a guess
  when several IKE SAs negotiate at once). libreswan 4.x prints no IKEv1 keys.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ipsecdiag.keys.algorithms import (
    AUTH_HMAC_SHA2_256_96,
    INTEG_KEY_BYTES,
    encr_name,
    key_bits_for,
    key_len_for,
    parse_encr_name,
    parse_integ_name,
    salt_len,
)
from ipsecdiag.keys.errors import ParseResult, where
from ipsecdiag.keys.model import ChildSaKeys, IkeSaKeys, IkeV1Keys, SecretBytes
from ipsecdiag.wire.registry import EncrId, IntegId

# Prefixes before "| ": pluto's logtime, syslog/journal with "pluto[pid]:", or none.
_PREFIX = r"(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d(?:\.\d+)?: |\d{4}-\d\d-\d\dT\S+?:? |.*?\bpluto(?:\[\d+\])?: )"
_BODY = re.compile(rf"^{_PREFIX}?\| ?(?P<body>.*)$")
_PLUTO_LINE = re.compile(rf"^{_PREFIX}")
_STATE_LINE = re.compile(rf'^{_PREFIX}"[^"]+"(?:\[\d+\])? .*#\d+: ')
_LABELLED = re.compile(
    r"^(?P<label>skeyid(?:_[dae])?|enc key|icookie|rcookie):\s*(?P<hex>(?:[0-9a-f]{2}\s*)*)$", re.IGNORECASE
)
_ROW = re.compile(r"^\s+(?P<hex>[0-9a-f]{2}(?: {1,2}[0-9a-f]{2}){0,15})(?:\s{3,}.*|\s*)$")
_DUMP_LABEL = re.compile(r"^(?P<label>ESP enckey|ESP authkey|AH authkey|unwrapped):\s*$")
_EXTRACT = re.compile(r"^(?P<label>.+?):? extracting all (?P<n>\d+) bytes of key@")
_SKEYSEED = re.compile(r"^calculating skeyseed using .*\bsalt-size=(?P<salt>\d+)")
_IKE_LINE = re.compile(
    r"^ikev2 (?P<role>[IR]) 0x(?P<spi_i>[0-9a-fA-F]{16}) 0x(?P<spi_r>[0-9a-fA-F]{16}) "
    r"(?P<integ>\w+):(?:0x)?(?P<akey>[0-9a-fA-F]*) (?P<encr>\w+?):(?:0x)?(?P<ekey>[0-9a-fA-F]*)\s*$"
)
_NATT = re.compile(r"natt/tcp sa encap_type=\d+\((?P<type>\w+)\) sport=(?P<sport>\d+) dport=(?P<dport>\d+)")
_ADD_SA = re.compile(
    r"add_sa\(\) level=\d+ (?P<dir>inbound|outbound) (?P<mode>\w+) \S*?->(?P<src>[^\s\[]+)"
    r"\[(?P<spi>[0-9a-fA-F]+)\]=(?P<encap>\S*?)==>(?P<dst>[^\s\[]+?)-\S+ replay_window=\d+ "
    r"(?P<integ>\w+):(?P<ilen>\d+) (?P<encr>\w+):(?P<elen>\d+)"
)

# tcpdump names pluto uses on the ikev2 lines (ike_alg *_tcpdump_name), longest first.
_IKE_ENCR = {
    "aes_gcm_16": EncrId.ENCR_AES_GCM_16,
    "aes_gcm_12": EncrId.ENCR_AES_GCM_12,
    "aes_gcm_8": EncrId.ENCR_AES_GCM_8,
    "aes_ccm_16": EncrId.ENCR_AES_CCM_16,
    "aes_ccm_12": EncrId.ENCR_AES_CCM_12,
    "aes_ccm_8": EncrId.ENCR_AES_CCM_8,
    "chacha20_poly1305": EncrId.ENCR_CHACHA20_POLY1305,
    "camellia_ctr": EncrId.ENCR_CAMELLIA_CTR,
    "camellia": EncrId.ENCR_CAMELLIA_CBC,
    "aes_ctr": EncrId.ENCR_AES_CTR,
    "aes": EncrId.ENCR_AES_CBC,
    "3des": EncrId.ENCR_3DES,
}
_IKE_ENCR_RE = re.compile(r"^(?P<name>" + "|".join(_IKE_ENCR) + r")_?(?P<bits>\d*)$")
_IKE_INTEG = {
    "none": IntegId.NONE,
    "md5": IntegId.AUTH_HMAC_MD5_96,
    "sha1": IntegId.AUTH_HMAC_SHA1_96,
    "sha256": IntegId.AUTH_HMAC_SHA2_256_128,
    "sha384": IntegId.AUTH_HMAC_SHA2_384_192,
    "sha512": IntegId.AUTH_HMAC_SHA2_512_256,
    "aes_xcbc": IntegId.AUTH_AES_XCBC_96,
    "aes_cmac": IntegId.AUTH_AES_CMAC_96,
}
# libreswan's fully qualified names (kernel add_sa line) that differ from IANA's.
_KERNEL_NAMES = {"3DES_CBC": int(EncrId.ENCR_3DES), "HMAC_SHA2_256_TRUNCBUG": AUTH_HMAC_SHA2_256_96}
_NO_KEYS = (
    "no `ikev2 I/R` key lines and no `ESP enckey` dumps: no SA was established while pluto logged, "
    'or plutodebug lacks "crypt private"'
)
_NO_DEBUG = 'the log has no debug lines (`| …`): pluto logs keys only with plutodebug="crypt private" (or "all")'


def looks_like_pluto_log(text: str) -> bool:
    """pluto lines anywhere: "Starting Pluto", or three of its state lines (``"conn"[1] … #1: …``
    after pluto's timestamp or a ``pluto[pid]:`` syslog prefix), or three debug lines with a key
    marker. Logs without debug lines are recognised too: they then yield a "no keys" note."""
    debug = state = 0
    marker = False
    for line in text.splitlines():
        if "Starting Pluto" in line:
            return True
        m = _BODY.match(line)
        if m and (line.startswith("|") or _PLUTO_LINE.match(line)):
            debug += 1
            body = m.group("body")
            marker = marker or body.startswith(("ikev2 I 0x", "ESP enckey:", "enc key:", "Skeyid", "ICOOKIE:"))
        elif _STATE_LINE.match(line):
            state += 1
        if (marker and debug >= 3) or state >= 3:
            return True
    return False


@dataclass
class _State:
    name: str
    res: ParseResult = field(default_factory=lambda: ParseResult(format="pluto"))
    dump: tuple[str, int, bytearray] | None = None  # label, line, bytes
    pending_extract: tuple[str, int] | None = None
    extracted: dict[str, bytes] = field(default_factory=dict)
    salt_size: int | None = None
    skeyseeds: int = 0  # SKEYSEED computations since the last R line
    halves: dict[tuple[bytes, bytes], dict[str, _Half]] = field(default_factory=dict)
    esp: dict[str, bytes] = field(default_factory=dict)
    natt: tuple[int, int] | None = None
    esn: bool | None = None  # "kernel: Enabling ESN" before the next add_sa()
    v1: dict[str, bytes] = field(default_factory=dict)
    debug_lines: int = 0


def parse_pluto_log(text: str, *, name: str = "pluto.log") -> ParseResult:
    st = _State(name)
    for no, raw in enumerate(text.splitlines(), 1):
        m = _BODY.match(raw)
        if not m:
            _close(st)
            continue
        st.debug_lines += 1
        body = m.group("body")
        if st.dump is not None and (row := _ROW.match(body)):
            st.dump[2].extend(bytes.fromhex(row.group("hex").replace(" ", "")))
            continue
        _close(st)
        _line(st, no, body)
    _close(st)
    if "ESP enckey" in st.esp:
        _orphan_esp(st, None)
    for spis, sides in st.halves.items():
        for h in sides.values():
            st.res.warnings.append(f"{where(st.name, h.line)}: only one half of IKE SA {spis[0].hex()}/{spis[1].hex()}")
    if not st.res.keys:
        st.res.empty_reason = _NO_DEBUG if st.debug_lines == 0 else _NO_KEYS
    return st.res


def _line(st: _State, no: int, body: str) -> None:
    if mm := _EXTRACT.match(body):
        st.pending_extract = (mm.group("label").strip().rstrip(":"), int(mm.group("n")))
    elif mm := _DUMP_LABEL.match(body):
        st.dump = (mm.group("label"), no, bytearray())
    elif mm := _SKEYSEED.match(body):
        st.skeyseeds += 1
        st.salt_size = int(mm.group("salt"))
        st.extracted = {}
    elif mm := _IKE_LINE.match(body):
        _ike_half(st, no, mm)
    elif body.endswith("Enabling ESN"):
        st.esn = True
    elif mm := _NATT.search(body):
        st.natt = (int(mm.group("sport")), int(mm.group("dport"))) if mm.group("type") == "espinudp" else None
    elif mm := _ADD_SA.search(body):
        _child(st, no, mm)
    elif lm := _LABELLED.match(body):
        label = lm.group("label").lower()
        st.dump = (label, no, bytearray(bytes.fromhex(lm.group("hex").replace(" ", ""))))


def _close(st: _State) -> None:
    """End of a hex dump: file its bytes under its label."""
    if st.dump is None:
        return
    label, line, data = st.dump
    st.dump = None
    if label == "unwrapped":
        # An "unwrapped" dump is padded to the cipher block: the announced size says how much is key.
        if st.pending_extract is not None:
            key_label, size = st.pending_extract
            st.extracted[key_label] = bytes(data[:size])
            st.pending_extract = None
    elif label in ("ESP enckey", "ESP authkey", "AH authkey"):
        if label == "ESP enckey" and "ESP enckey" in st.esp:
            _orphan_esp(st, line)
        st.esp[label] = bytes(data)
    else:
        st.v1[label] = bytes(data)
        if label == "enc key":
            _v1_record(st, line)


@dataclass(frozen=True)
class _Half:
    """One ``ikev2 I|R`` line with its keys completed where pluto's dumps allow."""

    line: int
    integ: int
    integ_key: bytes
    encr: int
    encr_key: bytes
    bits: int | None
    incomplete: str


def _ike_half(st: _State, no: int, mm: re.Match[str]) -> None:
    label = where(st.name, no)
    em = _IKE_ENCR_RE.match(mm.group("encr").lower())
    integ = _IKE_INTEG.get(mm.group("integ").lower())
    if em is None or integ is None:
        st.res.warnings.append(
            f"{label}: unknown pluto algorithm name {mm.group('integ')!r} or {mm.group('encr')!r}; skipped"
        )
        return
    encr = int(_IKE_ENCR[em.group("name")])
    bits = int(em.group("bits")) if em.group("bits") else None
    role = mm.group("role")
    side = role.lower()
    akey, a_why = _full_key(st, "a" + side, bytes.fromhex(mm.group("akey")), INTEG_KEY_BYTES.get(integ, 0))
    ekey, e_why = _full_key(
        st,
        "e" + side,
        bytes.fromhex(mm.group("ekey")),
        key_len_for(encr, bits) or 0,
        salt_octets=salt_len(encr),
        salt=_salt(st, encr, role),
    )
    spis = (bytes.fromhex(mm.group("spi_i")), bytes.fromhex(mm.group("spi_r")))
    st.halves.setdefault(spis, {})[role] = _Half(no, int(integ), akey, encr, ekey, bits, a_why or e_why)
    if role == "R":
        _ike_record(st, spis)
        st.skeyseeds = 0


def _salt(st: _State, encr: int, role: str) -> bytes | None:
    """The salt pluto dumped while computing this SA's SKEYSEED, if that dump surely is this SA's:
    exactly one SKEYSEED computation since the previous SA's key lines."""
    n = salt_len(encr)
    salt = st.extracted.get("initiator salt" if role == "I" else "responder salt", b"")
    if n and st.skeyseeds == 1 and st.salt_size == n and len(salt) == n:
        return salt
    return None


def _full_key(
    st: _State, label: str, printed: bytes, need: int, *, salt_octets: int = 0, salt: bytes | None = None
) -> tuple[bytes, str]:
    """The whole key: the printed one or the longer extracted dump it begins, then the salt.
    Returns (key, "") or (what there is, why it is incomplete)."""
    dumped = st.extracted.get(label)
    key = dumped if dumped and dumped.startswith(printed) and len(dumped) > len(printed) else printed
    if salt is not None and len(key) + len(salt) == need:
        key += salt
    if len(key) >= need:
        return key, ""
    gap = need - len(key)
    if salt_octets and gap == salt_octets:
        return key, f"SK_{label} is printed without its {gap}-octet salt (pluto omits AEAD/CTR salts)"
    return key, f"SK_{label} has {len(key)} of its {need} octets (pluto prints at most 32 octets of a key)"


def _ike_record(st: _State, spis: tuple[bytes, bytes]) -> None:
    sides = st.halves.pop(spis)
    i, r = sides.get("I"), sides.get("R")
    if i is None or r is None:
        h = i or r
        assert h is not None
        st.res.warnings.append(f"{where(st.name, h.line)}: only one half of IKE SA {spis[0].hex()}/{spis[1].hex()}")
        return
    st.res.keys.append(
        IkeSaKeys(
            spi_i=spis[0],
            spi_r=spis[1],
            encr=i.encr,
            sk_ei=SecretBytes(i.encr_key),
            sk_er=SecretBytes(r.encr_key),
            integ=i.integ,
            sk_ai=SecretBytes(i.integ_key),
            sk_ar=SecretBytes(r.integ_key),
            encr_key_bits=i.bits or key_bits_for(i.encr, len(i.encr_key)),
            source=where(st.name, i.line),
            incomplete=i.incomplete or r.incomplete,
        )
    )


def _kernel_alg(text: str, *, integ: bool) -> int | None:
    t = text.upper()
    if t in _KERNEL_NAMES:
        return _KERNEL_NAMES[t]
    return parse_integ_name(t) if integ else parse_encr_name(t)


def _child(st: _State, no: int, mm: re.Match[str]) -> None:
    label = where(st.name, no)
    esp, st.esp = st.esp, {}
    natt, st.natt = st.natt, None
    esn, st.esn = st.esn, None
    if "ESP enckey" not in esp:
        st.res.warnings.append(f"{label}: SA without a preceding `ESP enckey` dump (AH?); skipped")
        return
    encr = _kernel_alg(mm.group("encr"), integ=False)
    integ = _kernel_alg(mm.group("integ"), integ=True)
    spi = int(mm.group("spi"), 16)
    if encr is None or integ is None:
        st.res.warnings.append(
            f"{label}: ESP SA 0x{spi:08x}: unknown algorithm {mm.group('encr')} / {mm.group('integ')}; skipped"
        )
        return
    ekey, akey = esp["ESP enckey"], esp.get("ESP authkey", b"")
    bad = len(ekey) != int(mm.group("elen")) or len(akey) != int(mm.group("ilen"))
    encap = natt if mm.group("encap") == "espinudp" else None
    st.res.keys.append(
        ChildSaKeys(
            spi=spi,
            encr=encr,
            encr_key=SecretBytes(ekey),
            integ=integ,
            integ_key=SecretBytes(akey),
            src=mm.group("src"),
            dst=mm.group("dst"),
            encr_key_bits=key_bits_for(encr, len(ekey)),
            esn=esn,
            mode=mm.group("mode") if mm.group("mode") in ("tunnel", "transport") else None,
            source=label,
            encap=encap,
            incomplete=(
                f"key dumps ({len(ekey)}/{len(akey)} octets) do not match the SA's "
                f"{encr_name(encr)}:{mm.group('elen')} {mm.group('integ')}:{mm.group('ilen')}"
                if bad
                else ""
            ),
        )
    )


def _orphan_esp(st: _State, line: int | None) -> None:
    st.res.warnings.append(
        f"{where(st.name, line)}: ESP keys dumped without their `kernel: add_sa()` line, so their SPI is "
        'unknown (plutodebug="all crypt private" logs both); skipped'
    )
    st.esp = {}


def _v1_record(st: _State, line: int) -> None:
    dumps = st.v1
    cookie_i = dumps.get("icookie", b"")
    if len(cookie_i) != 8:
        st.res.warnings.append(f"{where(st.name, line)}: IKEv1 encryption key without a preceding ICOOKIE; skipped")
        return
    cookie_r = dumps.get("rcookie")
    st.res.keys.append(
        IkeV1Keys(
            cookie_i=cookie_i,
            encr_key=SecretBytes(dumps["enc key"]),
            cookie_r=cookie_r if cookie_r and len(cookie_r) == 8 and any(cookie_r) else None,
            skeyid_a=SecretBytes(dumps.get("skeyid_a", b"")),
            skeyid_d=SecretBytes(dumps.get("skeyid_d", b"")),
            source=where(st.name, line),
        )
    )
