"""Display of a DER distinguished name (ID_DER_ASN1_DN identities of IKEv1 and IKEv2).

A distinguished name is SEQUENCE OF SET OF SEQUENCE { OID, value } (RFC 5280 §4.1.2.4).
Only that much DER is needed here, so it is walked by hand instead of pulling in an ASN.1
library (the wire layer does not call `cryptography`).
"""

from __future__ import annotations

_DN_ATTRS = {
    "2.5.4.3": "CN",
    "2.5.4.4": "SN",
    "2.5.4.5": "serialNumber",
    "2.5.4.6": "C",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.9": "street",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "2.5.4.12": "T",
    "2.5.4.42": "G",
    "2.5.4.46": "dnQualifier",
    "1.2.840.113549.1.9.1": "E",
    "0.9.2342.19200300.100.1.1": "UID",
    "0.9.2342.19200300.100.1.25": "DC",
}
_DER_STRINGS = {
    0x0C: "utf-8",
    0x13: "ascii",
    0x14: "latin-1",
    0x16: "ascii",
    0x1A: "ascii",
    0x1E: "utf-16-be",
}


class _DerError(ValueError):
    pass


def _der_items(data: bytes) -> list[tuple[int, bytes]]:
    items: list[tuple[int, bytes]] = []
    i = 0
    while i < len(data):
        if i + 2 > len(data):
            raise _DerError("truncated header")
        tag, length = data[i], data[i + 1]
        i += 2
        if length & 0x80:
            count = length & 0x7F
            if count == 0 or count > 4 or i + count > len(data):
                raise _DerError("bad length")
            length = int.from_bytes(data[i : i + count], "big")
            i += count
        if i + length > len(data):
            raise _DerError("truncated value")
        items.append((tag, data[i : i + length]))
        i += length
    return items


def _oid_text(raw: bytes) -> str:
    if not raw or raw[-1] & 0x80:
        raise _DerError("bad OID")
    arcs: list[int] = []
    value = 0
    for byte in raw:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in [first, arcs[0] - 40 * first, *arcs[1:]])


def der_dn_text(der: bytes) -> str | None:
    """ "C=CH, O=strongSwan, CN=moon" (DER order, as strongSwan prints) or None if not a DN."""
    try:
        top = _der_items(der)
        if len(top) != 1 or top[0][0] != 0x30:
            return None
        parts: list[str] = []
        for set_tag, rdn in _der_items(top[0][1]):
            if set_tag != 0x31:
                return None
            for seq_tag, atv in _der_items(rdn):
                pair = _der_items(atv)
                if seq_tag != 0x30 or len(pair) != 2 or pair[0][0] != 0x06:
                    return None
                oid = _oid_text(pair[0][1])
                vtag, value = pair[1]
                enc = _DER_STRINGS.get(vtag)
                text = value.decode(enc, errors="replace") if enc else "#" + value.hex()
                parts.append(f"{_DN_ATTRS.get(oid, oid)}={text}")
    except _DerError:
        return None
    return ", ".join(parts)
