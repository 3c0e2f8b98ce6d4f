"""Key material from Openswan/libreswan pluto debug logs (``plutodebug="crypt private"``).

What the format allows:

* IKEv2 IKE SAs: pluto logs ``| ikev2 I 0x<SPIi> 0x<SPIr> <integ>:0x<SK_ai> <encr>:0x<SK_ei>``
  and the matching ``R`` line (SK_ar, SK_er) once the SA is up. These carry the SPIs and are read
  like tcpdump's secrets. Limits (libreswan): keys longer than 32 octets are cut and AES-GCM keys
  are printed without their salt; such SAs are skipped with a warning. SK_d/SK_pi/SK_pr are not
  printed.
* IKEv1 IKE SAs (Openswan's calc_skeyids_iv): ``| Skeyid_a:``, ``| Skeyid_d:``, ``| enc key:``
  hex dumps. The dumps carry no cookies: the cookies are taken from the closest preceding
  ``| ICOOKIE:``/``| RCOOKIE:`` dumps, which pluto prints when it looks the state up for the
  message being processed. With several IKE SAs negotiating at once that guess can be wrong.
  libreswan 4.x prints no IKEv1 keys at all.
* CHILD SAs: pluto prints ``our keymat``/``peer keymat`` without the SPI they belong to, so ESP
  keys are not taken from pluto logs.
"""

from __future__ import annotations

import re

from ipsecdiag.keys.errors import KeyFileError, ParseResult, where
from ipsecdiag.keys.model import IkeV1Keys, SecretBytes
from ipsecdiag.keys.tcpdump import IkeHalf, combine_ike, parse_ike_line

_BODY = re.compile(r"^(?:.*?\bpluto(?:\[\d+\])?: )?\| ?(?P<body>.*)$")
_LABELLED = re.compile(
    r"^(?P<label>skeyid(?:_[dae])?|enc key|icookie|rcookie):\s*(?P<hex>(?:[0-9a-f]{2}\s*)*)$", re.IGNORECASE
)
_CONT = re.compile(r"^\s+(?P<hex>(?:[0-9a-f]{2}\s*)+)$")
_AEAD_NAMES = ("gcm", "ccm", "chacha")


def looks_like_pluto_log(text: str) -> bool:
    lines = text.splitlines()[:2000]
    piped = sum(1 for ln in lines if _BODY.match(ln) and "| " in ln)
    markers = any(
        "| ikev2 I 0x" in ln or "| enc key:" in ln or "| Skeyid" in ln or "| ICOOKIE:" in ln for ln in lines
    )
    return markers and piped >= max(3, len([ln for ln in lines if ln.strip()]) // 2)


def parse_pluto_log(text: str, *, name: str = "pluto.log") -> ParseResult:
    res = ParseResult(format="pluto")
    halves: list[IkeHalf] = []
    dumps: dict[str, bytes] = {}
    current: tuple[str, int, bytearray] | None = None

    def close() -> None:
        nonlocal current
        if current is None:
            return
        label, line, data = current
        current = None
        dumps[label] = bytes(data)
        if label == "enc key":
            _v1_record(dumps, line, name=name, res=res)

    for no, raw in enumerate(text.splitlines(), 1):
        m = _BODY.match(raw)
        if not m:
            close()
            continue
        body = m.group("body")
        if current is not None and (c := _CONT.match(body)):
            current[2].extend(bytes.fromhex(c.group("hex").replace(" ", "")))
            continue
        close()
        if body.startswith("ikev2 I ") or body.startswith("ikev2 R "):
            tokens = body.split()
            if any(a in tokens[-1].lower().split(":", 1)[0] for a in _AEAD_NAMES):
                res.warnings.append(f"{where(name, no)}: pluto prints AEAD keys without their salt; skipped")
                continue
            try:
                half = parse_ike_line(body, name=name, no=no)
            except KeyFileError as e:  # one odd line must not lose the rest of a log
                res.warnings.append(f"{e}; skipped")
                continue
            if half is not None:
                halves.append(half)
            continue
        lm = _LABELLED.match(body)
        if lm:
            label = lm.group("label").lower()
            current = (label, no, bytearray(bytes.fromhex(lm.group("hex").replace(" ", ""))))
    close()
    combine_ike(halves, name=name, res=res)
    return res


def _v1_record(dumps: dict[str, bytes], line: int, *, name: str, res: ParseResult) -> None:
    cookie_i = dumps.get("icookie", b"")
    if len(cookie_i) != 8:
        res.warnings.append(f"{where(name, line)}: IKEv1 encryption key without a preceding ICOOKIE; skipped")
        return
    cookie_r = dumps.get("rcookie")
    res.keys.append(
        IkeV1Keys(
            cookie_i=cookie_i,
            encr_key=SecretBytes(dumps["enc key"]),
            cookie_r=cookie_r if cookie_r and len(cookie_r) == 8 and any(cookie_r) else None,
            skeyid_a=SecretBytes(dumps.get("skeyid_a", b"")),
            skeyid_d=SecretBytes(dumps.get("skeyid_d", b"")),
            source=where(name, line),
        )
    )
