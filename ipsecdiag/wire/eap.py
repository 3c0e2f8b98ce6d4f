"""The body of an IKEv2 EAP payload (RFC 7296 §3.16): one EAP packet (RFC 3748 §4).

Code | Identifier | Length | Type | Type-Data. The method parts that say why authentication
failed are read: Identity (§5.1), MD5-Challenge (§5.4), MS-CHAPv2 (draft-kamath-pppext-eap-
mschapv2 §2, RFC 2759 §6: the ``E=`` error of a Failure-Request) and the TLS-based methods'
flags and message length (RFC 5216 §3.1 TLS, RFC 5281 §9.1 TTLS, PEAP).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .buffer import Buffer
from .errors import MalformedMessage
from .registry import EapCode, EapType, name_of

MSCHAPV2_OPCODES = {1: "Challenge", 2: "Response", 3: "Success", 4: "Failure", 7: "Change-Password"}
# RFC 2759 §6 failure codes as MS-CHAPv2 servers send them.
MSCHAPV2_ERRORS = {
    646: "restricted logon hours",
    647: "account disabled",
    648: "password expired",
    649: "no dial-in permission",
    691: "authentication failure (wrong user name or password)",
    709: "error changing password",
}
_TLS_TYPES = (EapType.TLS, EapType.TTLS, EapType.PEAP, EapType.FAST)
_FIELD = re.compile(r"([A-Z])=(\S*)")


@dataclass(frozen=True)
class EapPacket:
    code: int
    identifier: int
    type: int | None = None  # only Request and Response carry one
    identity: str | None = None  # Identity Response
    mschapv2_opcode: int | None = None
    mschapv2_id: int | None = None
    name: str | None = None  # MS-CHAPv2 Challenge/Response Name (the server / the user name)
    error: int | None = None  # MS-CHAPv2 Failure-Request E=
    message: str | None = None  # MS-CHAPv2 Success/Failure M=
    retry: bool | None = None  # MS-CHAPv2 Failure-Request R=1
    tls_flags: str | None = None  # "LMS" subset (length included, more fragments, start)
    tls_length: int | None = None
    extra: dict[str, str] = field(default_factory=dict, hash=False)

    def summary(self) -> str:
        """One line for the ladder: 'Request/MSCHAPV2 Failure E=691 (authentication failure ...)'."""
        out = name_of(EapCode, self.code).capitalize()
        if self.type is not None:
            out += "/" + name_of(EapType, self.type)
        if self.identity is not None:
            out += f" {self.identity!r}"
        if self.mschapv2_opcode is not None:
            out += " " + MSCHAPV2_OPCODES.get(self.mschapv2_opcode, f"op {self.mschapv2_opcode}")
            if self.name:
                out += f" name {self.name!r}"
        if self.error is not None:
            out += f" E={self.error} ({MSCHAPV2_ERRORS.get(self.error, 'unknown error')})"
        if self.tls_flags is not None:
            out += f" flags {self.tls_flags or '-'}"
        return out

    def as_dict(self) -> dict[str, object]:
        d: dict[str, object] = {"code": name_of(EapCode, self.code), "identifier": self.identifier}
        if self.type is not None:
            d["type"] = name_of(EapType, self.type)
        for k in ("identity", "name", "error", "message", "retry", "tls_flags", "tls_length"):
            v = getattr(self, k)
            if v is not None:
                d[k] = v
        if self.mschapv2_opcode is not None:
            d["mschapv2_opcode"] = MSCHAPV2_OPCODES.get(self.mschapv2_opcode, str(self.mschapv2_opcode))
        if self.error is not None:
            d["error_text"] = MSCHAPV2_ERRORS.get(self.error, "unknown error")
        return d


def parse_eap(data: bytes) -> EapPacket:
    """Parse one EAP packet; a length field that disagrees with the payload is an error."""
    b = Buffer(data)
    code = b.pull_uint8("EAP.code")
    ident = b.pull_uint8("EAP.identifier")
    length = b.pull_uint16("EAP.length")
    if length < 4 or length > len(data):
        raise MalformedMessage(2, "EAP.length", f"{length} outside 4..{len(data)}")
    if code not in (EapCode.REQUEST, EapCode.RESPONSE):
        return EapPacket(code, ident)
    b = Buffer(data[:length], start=4)
    etype = b.pull_uint8("EAP.type")
    body = data[5:length]
    if etype == EapType.IDENTITY and code == EapCode.RESPONSE:
        return EapPacket(code, ident, etype, identity=body.decode("utf-8", "replace"))
    if etype == EapType.MSCHAPV2:
        return _mschapv2(code, ident, body)
    if etype in _TLS_TYPES:
        tb = Buffer(body)
        flags = tb.pull_uint8("EAP-TLS.flags")
        text = "".join(c for bit, c in ((0x80, "L"), (0x40, "M"), (0x20, "S")) if flags & bit)
        tls_len = tb.pull_uint32("EAP-TLS.length") if flags & 0x80 else None
        return EapPacket(code, ident, etype, tls_flags=text, tls_length=tls_len)
    return EapPacket(code, ident, etype)


def _mschapv2(code: int, ident: int, body: bytes) -> EapPacket:
    b = Buffer(body, base=5)
    op = b.pull_uint8("MSCHAPv2.opcode")
    if len(body) == 1:  # the peer's acknowledgement of Success/Failure is the OpCode alone
        return EapPacket(code, ident, EapType.MSCHAPV2, mschapv2_opcode=op)
    ms_id = b.pull_uint8("MSCHAPv2.id")
    b.pull_uint16("MSCHAPv2.ms_length")
    rest = b.pull_rest()
    if op in (1, 2):  # Challenge / Response: Value-Size | Value | Name
        size = rest[0] if rest else 0
        name = rest[1 + size :].decode("utf-8", "replace") if len(rest) > size else ""
        return EapPacket(code, ident, EapType.MSCHAPV2, mschapv2_opcode=op, mschapv2_id=ms_id, name=name)
    text = rest.decode("ascii", "replace")
    fields = dict(_FIELD.findall(text.split(" M=")[0]))
    msg = text.split("M=", 1)[1] if "M=" in text else None
    err = int(fields["E"]) if op == 4 and fields.get("E", "").isdigit() else None
    retry = fields.get("R") == "1" if op == 4 and "R" in fields else None
    return EapPacket(
        code, ident, EapType.MSCHAPV2, mschapv2_opcode=op, mschapv2_id=ms_id, error=err, message=msg, retry=retry
    )
