"""Key material from strongSwan charon debug logs (``ike = 4``, ``chd = 4``).

Works on filelog and syslog/journal lines, with or without timestamps, log levels (``[IKE4]``)
and ``<conn|N>`` IKE_SA prefixes. What charon prints and what we take from it:

* IKEv2 IKE SA: ``Sk_d/Sk_ai/Sk_ar/Sk_ei/Sk_er/Sk_pi/Sk_pr secret => N bytes`` hex dumps (AEAD
  ciphers: no ``Sk_a*``, ``Sk_e*`` end with the salt), algorithms from the preceding
  ``selected proposal: IKE:…``.
* IKEv1 IKE SA: ``SKEYID``, ``SKEYID_d/_a/_e`` and ``encryption key Ka`` dumps.
* SPIs/cookies are not printed with the keys. They come from the ``natd_chunk`` dump of the
  same IKE_SA (``SPIi | SPIr | IP | port``, RFC 7296 §2.23 / RFC 3947 §3) and, with ``mgr >= 2``,
  from ``checkout IKEv2 SA with SPIs …`` followed by ``IKE_SA name[N] successfully checked out``.
* An IKE SA created by a rekey (CREATE_CHILD_SA, RFC 7296 §1.3.2) has no NAT-D. Its creation is
  logged in the old SA's context (``<c|1> IKE_SA c[2] state change: CREATED => CONNECTING``);
  the exchange initiator logs the new keys in that old context too, the responder in the new
  one. Without manager lines its SPIs are unknown: it becomes a
  :class:`~ipsecdiag.keys.model.PendingIkeKeys` naming the rekeyed SA and carrying the logged
  ``shared Diffie Hellman secret``, for :mod:`ipsecdiag.keys.rekey` to bind from the capture.
* CHILD SA: ``encryption|integrity initiator|responder key`` dumps, then ``adding inbound|outbound
  ESP|AH SA`` + ``SPI 0x…, src … dst …``. "initiator" is the initiator of the exchange that
  created the CHILD SA (RFC 7296 §2.17: KEYMAT = encr_i | integ_i | encr_r | integ_r; traffic
  from the exchange initiator uses the ``_i`` keys). So the inbound SA of the exchange initiator
  takes the responder keys; which side we are follows from the last message of that IKE_SA
  (``parsed … response`` = we initiated). ESP-in-UDP (RFC 3948) when the IKE SA saw a NAT
  (``local/remote host is behind NAT`` or a faked one), with the IKE SA's current ports.

Events are grouped per IKE_SA (the ``<…|N>`` unique id) and fall back to the thread id when the
log has no IKE_SA names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ipsecdiag.keys._swnames import Proposal, parse_proposal
from ipsecdiag.keys.algorithms import encr_name, key_bits_for, parse_v1_encr_name, parse_v1_hash_name
from ipsecdiag.keys.errors import ParseResult, where
from ipsecdiag.keys.model import ChildSaKeys, IkeSaKeys, IkeV1Keys, PendingIkeKeys, SecretBytes
from ipsecdiag.wire.registry import EncrId, IntegId, PrfId

_LINE = re.compile(r"(?:^|\s)(?P<thr>\d{2,})\[(?P<grp>[A-Z]{3})\d?\] (?:<(?P<ike>[^>]*)> )?(?P<msg>.*)$")
_DUMP_HDR = re.compile(r"^(?P<name>\S.*?) => (?P<n>\d+) bytes @ \S+\s*$")
_DUMP_ROW = re.compile(r"^\s*(?P<off>\d+): (?P<hex>(?:[0-9A-Fa-f]{2} ){1,16})")
_MSG = re.compile(r"^(parsed|generating) (\S+) (request|response) \d+")
_ADDING = re.compile(r"^adding (inbound|outbound) (ESP|AH) SA")
_SPI = re.compile(r"^\s*SPI 0x([0-9a-fA-F]{1,8}), src (\S+) dst (\S+)")
_STATE = re.compile(r"IKE_SA (\S+)\[(\d+)\] state change: (\w+) => (\w+)")
_NAT = re.compile(r"^(?:local|remote) host is behind NAT|^faking NAT situation")
_PACKET = re.compile(r"^(sending|received) packet: from \S+\[(\d+)\] to \S+\[(\d+)\]")
_CHECKOUT = re.compile(r"checkout IKEv[12] SA with SPIs ([0-9a-f]{16})_i ([0-9a-f]{16})_r")
_CHECKED_OUT = re.compile(r"IKE_SA \S+\[(\d+)\] successfully checked out")
_CHILD_STATE = re.compile(r"CHILD_SA (\S+)\{\d+\} state change: CREATED => INSTALLING")
_CFG_CHILD = re.compile(r"^\s*child (\S+):\s*$")
_CFG_MODE = re.compile(r"^\s*mode = (\w+)\s*$")

_IKE_KEYS = ("Sk_d", "Sk_ai", "Sk_ar", "Sk_ei", "Sk_er", "Sk_pi", "Sk_pr")
_V1_KEYS = ("SKEYID", "SKEYID_d", "SKEYID_a", "SKEYID_e")
_CHILD_KEYS = {
    "encryption initiator key": "encr_i",
    "encryption responder key": "encr_r",
    "integrity initiator key": "integ_i",
    "integrity responder key": "integ_r",
}
# IKEv1 keeps the PRF hash as its "hash algorithm" (RFC 2409 Appendix A).
_V1_HASH_OF_PRF = {
    PrfId.PRF_HMAC_MD5: "MD5",
    PrfId.PRF_HMAC_SHA1: "SHA",
    PrfId.PRF_HMAC_SHA2_256: "SHA2_256",
    PrfId.PRF_HMAC_SHA2_384: "SHA2_384",
    PrfId.PRF_HMAC_SHA2_512: "SHA2_512",
}


@dataclass
class _Ctx:
    """What we know about one IKE_SA (or one thread when the log has no IKE_SA names)."""

    uid: int | None
    ike_prop: Proposal | None = None
    child_prop: Proposal | None = None
    last_msg: tuple[str, str, str] | None = None
    natd: tuple[bytes, bytes] | None = None
    ike_keys: dict[str, bytes] = field(default_factory=dict)
    ike_line: int = 0
    v1_keys: dict[str, bytes] = field(default_factory=dict)
    child: dict[str, bytes] = field(default_factory=dict)
    child_initiator: bool | None = None
    child_name: str | None = None
    rekeyed: list[_PendingIke] = field(default_factory=list)
    rekey_child: int | None = None  # IKE SA being created by a rekey of this one
    shared: bytes = b""  # the last "shared Diffie Hellman secret"
    nat: bool | None = None
    ports: tuple[int, int] | None = None  # (ours, peer's) of the last IKE packet of this SA


@dataclass
class _Dump:
    """A ``name => N bytes @ addr`` hex dump being collected (its rows follow in its thread)."""

    name: str
    size: int
    line: int
    ctx: _Ctx
    data: bytearray = field(default_factory=bytearray)


@dataclass
class _PendingIke:
    version: int
    uid: int | None
    keys: dict[str, bytes]
    prop: Proposal | None
    line: int
    ctx: _Ctx
    rekey: bool = False
    target: int | None = None
    parent: int | None = None
    shared: bytes = b""


class _Parser:
    def __init__(self, name: str) -> None:
        self.name = name
        self.res = ParseResult(format="strongswan")
        self.ctxs: dict[object, _Ctx] = {}
        self.dumps: dict[str, _Dump] = {}
        self.adding: dict[str, tuple[str, str, int, _Ctx]] = {}
        self.checkout: dict[str, tuple[bytes, bytes]] = {}
        self.uid_spis: dict[int, tuple[bytes, bytes]] = {}
        self.parent_of: dict[int, int] = {}  # IKE SA uid -> uid of the SA it rekeyed
        self.ike: list[_PendingIke] = []
        self.cfg_child: dict[str, str] = {}
        self.child_modes: dict[str, str] = {}
        self.last_natd: tuple[bytes, bytes] | None = None
        # Fallbacks for keys logged in another IKE_SA's context than their proposal (rekeys).
        self.last_ike_prop: Proposal | None = None
        self.last_child_prop: Proposal | None = None

    def ctx_for(self, thr: str, ike: str | None) -> _Ctx:
        uid = None
        if ike:
            tail = ike.rsplit("|", 1)[-1]
            uid = int(tail) if tail.isdigit() else None
        key: object = ("uid", uid) if uid is not None else ("thr", thr)
        if key not in self.ctxs:
            self.ctxs[key] = _Ctx(uid)
        return self.ctxs[key]

    def feed(self, no: int, raw: str) -> None:
        m = _LINE.search(raw)
        if not m:
            return
        thr, msg = m.group("thr"), m.group("msg")
        pending = self.dumps.get(thr)
        if pending is not None:
            row = _DUMP_ROW.match(msg)
            if row and int(row.group("off")) == len(pending.data):
                pending.data += bytes.fromhex(row.group("hex").replace(" ", ""))
                if len(pending.data) >= pending.size:
                    del self.dumps[thr]
                    self.on_dump(pending, bytes(pending.data[: pending.size]))
                return
            del self.dumps[thr]
            self.res.warnings.append(
                f"{where(self.name, pending.line)}: hex dump of {pending.name!r} is truncated"
            )
        ctx = self.ctx_for(thr, m.group("ike"))
        hdr = _DUMP_HDR.match(msg)
        if hdr:
            dump = _Dump(hdr.group("name"), int(hdr.group("n")), no, ctx)
            if dump.size == 0:
                self.on_dump(dump, b"")
            else:
                self.dumps[thr] = dump
            return
        self.on_message(no, thr, ctx, msg, m.group("grp"))

    # -------------------------------------------------------------------------------- events

    def on_message(self, no: int, thr: str, ctx: _Ctx, msg: str, grp: str) -> None:
        if msg.startswith("selected proposal: "):
            prop = parse_proposal(msg.split(": ", 1)[1])
            if prop.protocol == "IKE":
                ctx.ike_prop = self.last_ike_prop = prop
            else:
                ctx.child_prop = self.last_child_prop = prop
        elif mm := _MSG.match(msg):
            ctx.last_msg = (mm.group(1), mm.group(2), mm.group(3))
        elif mm := _ADDING.match(msg):
            self.adding[thr] = (mm.group(1), mm.group(2).lower(), no, ctx)
        elif (mm := _SPI.match(msg)) and thr in self.adding:
            self.on_child_sa(
                *self.adding.pop(thr), spi=int(mm.group(1), 16), src=mm.group(2), dst=mm.group(3)
            )
        elif mm := _STATE.search(msg):
            uid = int(mm.group(2))
            if uid != ctx.uid and ctx.uid is not None and mm.group(3) == "CREATED":
                # Another IKE SA created in this one's context: a rekey of this one.
                self.parent_of[uid] = ctx.uid
                ctx.rekey_child = uid
                self.uid_ctx(uid).nat = ctx.nat
            for p in ctx.rekeyed:
                if p.target is None and uid != ctx.uid and mm.group(4) == "ESTABLISHED":
                    p.target = uid
            ctx.rekeyed = [p for p in ctx.rekeyed if p.target is None]
            if uid == ctx.rekey_child and mm.group(4) != "CONNECTING":
                ctx.rekey_child = None
        elif _NAT.match(msg):
            ctx.nat = True
        elif mm := _PACKET.match(msg):
            a, b = int(mm.group(2)), int(mm.group(3))
            ctx.ports = (a, b) if mm.group(1) == "sending" else (b, a)
        elif mm := _CHECKOUT.search(msg):
            spi_r = bytes.fromhex(mm.group(2))
            if any(spi_r):
                self.checkout[thr] = (bytes.fromhex(mm.group(1)), spi_r)
        elif (mm := _CHECKED_OUT.search(msg)) and thr in self.checkout:
            self.uid_spis.setdefault(int(mm.group(1)), self.checkout.pop(thr))
        elif mm := _CHILD_STATE.search(msg):
            ctx.child_name = mm.group(1)
        elif grp == "CFG":
            if mm := _CFG_CHILD.match(msg):
                self.cfg_child[thr] = mm.group(1)
            elif (mm := _CFG_MODE.match(msg)) and thr in self.cfg_child:
                self.child_modes[self.cfg_child[thr]] = mm.group(1).lower()

    def on_dump(self, d: _Dump, data: bytes) -> None:
        ctx = d.ctx
        key = d.name.removesuffix(" secret")
        if d.name == "shared Diffie Hellman secret":
            ctx.shared = data
        elif d.name == "natd_chunk" and len(data) >= 16 and any(data[8:16]):
            ctx.natd = (data[:8], data[8:16])
            self.last_natd = ctx.natd
            if ctx.uid is not None:
                self.uid_spis.setdefault(ctx.uid, ctx.natd)
        elif d.name.endswith(" secret") and key in _IKE_KEYS:
            if key == "Sk_d":
                ctx.ike_keys, ctx.ike_line = {}, d.line
            ctx.ike_keys[key] = data
            if key == "Sk_pr":
                self.finish_ike(ctx)
        elif d.name in _V1_KEYS:
            if d.name == "SKEYID":
                ctx.v1_keys = {}
            ctx.v1_keys[d.name] = data
        elif d.name == "encryption key Ka":
            prop = ctx.ike_prop or self.last_ike_prop
            self.ike.append(_PendingIke(1, ctx.uid, {**ctx.v1_keys, "Ka": data}, prop, d.line, ctx))
            ctx.v1_keys = {}
        elif d.name in _CHILD_KEYS:
            slot = _CHILD_KEYS[d.name]
            if slot in ctx.child:
                ctx.child = {}
            if not ctx.child:
                last = ctx.last_msg
                ctx.child_initiator = (
                    None if last is None else (last[0] == "parsed" and last[2] == "response")
                )
            ctx.child[slot] = data

    def finish_ike(self, ctx: _Ctx) -> None:
        # Keys logged in the context of an SA whose CREATE_CHILD_SA is creating another one
        # (the exchange initiator's view) belong to that new SA; the responder logs them in the
        # new SA's own context, whose parent is known from its creation line.
        rekey = ctx.last_msg is not None and ctx.last_msg[1] == "CREATE_CHILD_SA"
        prop = ctx.ike_prop or self.last_ike_prop
        p = _PendingIke(2, ctx.uid, dict(ctx.ike_keys), prop, ctx.ike_line, ctx, rekey=rekey, shared=ctx.shared)
        if rekey:
            p.parent, p.target = ctx.uid, ctx.rekey_child
            if p.target is None:
                ctx.rekeyed.append(p)
        elif ctx.uid is not None and ctx.uid in self.parent_of:
            p.parent = self.parent_of[ctx.uid]
        self.ike.append(p)
        # One logged g^ir derives one key set: a later SA in this context (a rekey whose secret
        # was not logged) must not inherit it, or the §2.18 check would call its keys wrong
        # when it can only say "cannot check".
        ctx.ike_keys, ctx.shared = {}, b""

    def uid_ctx(self, uid: int) -> _Ctx:
        return self.ctxs.setdefault(("uid", uid), _Ctx(uid))

    def on_child_sa(
        self, direction: str, proto: str, line: int, ctx: _Ctx, *, spi: int, src: str, dst: str
    ) -> None:
        label = where(self.name, line)
        if not ctx.child:
            self.res.warnings.append(
                f"{label}: {proto.upper()} SA 0x{spi:08x} installed but no keys logged (chd < 4?)"
            )
            return
        if ctx.child_initiator is None:
            self.res.warnings.append(
                f"{label}: cannot tell which side initiated the exchange of SA 0x{spi:08x}"
            )
            return
        # Traffic from the exchange initiator uses the _i keys (RFC 7296 §2.17).
        use_i = (direction == "outbound") == ctx.child_initiator
        s = "i" if use_i else "r"
        prop = ctx.child_prop or self.last_child_prop
        ekey = ctx.child.get("encr_" + s, b"")
        encr = (prop.encr if prop and prop.encr is not None else None) if proto == "esp" else EncrId.ENCR_NULL
        if encr is None:
            self.res.warnings.append(f"{label}: no selected ESP proposal before SA 0x{spi:08x}; skipped")
            return
        bits = prop.encr_bits if prop and prop.encr_bits else key_bits_for(encr, len(ekey))
        if encr == EncrId.ENCR_3DES:
            bits = 192
        self.res.keys.append(
            ChildSaKeys(
                spi=spi,
                encr=int(encr),
                encr_key=SecretBytes(ekey),
                integ=int(prop.integ) if prop and prop.integ is not None else int(IntegId.NONE),
                integ_key=SecretBytes(ctx.child.get("integ_" + s, b"")),
                protocol=proto,
                src=src,
                dst=dst,
                encr_key_bits=bits if proto == "esp" else None,
                esn=prop.esn if prop else None,
                mode=self.child_modes.get(ctx.child_name or ""),
                source=label,
                encap=_encap(ctx, direction),
            )
        )

    # -------------------------------------------------------------------------------- finish

    def finish(self) -> ParseResult:
        for t, d in self.dumps.items():
            self.res.warnings.append(
                f"{where(self.name, d.line)}: hex dump of {d.name!r} is truncated (thread {t})"
            )
        ike_out: list[IkeSaKeys | IkeV1Keys | PendingIkeKeys] = []
        owner = {id(p): p.target if p.rekey else p.uid for p in self.ike}
        label_of = {owner[id(p)]: where(self.name, p.line) for p in self.ike if owner[id(p)] is not None}
        for p in self.ike:
            label = where(self.name, p.line)
            uid = owner[id(p)]
            spis = self.uid_spis.get(uid) if uid is not None else None
            if spis is None and uid is None and not p.rekey:
                spis = p.ctx.natd or self.last_natd
            if spis is None and p.version == 2 and p.parent is not None and p.prop and p.prop.encr is not None:
                keys = self.ike_record(p, (b"", b""), label)
                assert isinstance(keys, IkeSaKeys)
                ike_out.append(
                    PendingIkeKeys(
                        keys=keys,
                        parent_source=label_of.get(p.parent, f"{self.name} (IKE_SA #{p.parent}, no keys logged)"),
                        parent_spis=self.uid_spis.get(p.parent),
                        shared_secret=SecretBytes(p.shared),
                        source=label,
                    )
                )
                continue
            if spis is None:
                why = (
                    "rekeyed IKE SA: the log has no SPIs for it (log mgr >= 2)"
                    if p.rekey
                    else "no natd_chunk or manager checkout line for this IKE_SA"
                )
                self.res.warnings.append(f"{label}: IKEv{p.version} SA keys without SPIs ({why}); skipped")
                continue
            if p.prop is None or p.prop.encr is None:
                self.res.warnings.append(f"{label}: no selected IKE proposal before these keys; skipped")
                continue
            ike_out.append(self.ike_record(p, spis, label))
        self.res.keys[:0] = ike_out
        if not self.res.keys and not self.res.warnings:
            self.res.empty_reason = (
                "no key dumps (`Sk_ei secret`, `encryption initiator key`): charon logs keys only "
                "with ike = 4 and chd = 4, and only once an SA gets that far"
            )
        return self.res

    def ike_record(self, p: _PendingIke, spis: tuple[bytes, bytes], label: str) -> IkeSaKeys | IkeV1Keys:
        prop = p.prop
        assert prop is not None and prop.encr is not None
        k = p.keys
        if p.version == 1:
            hash_name = _V1_HASH_OF_PRF.get(prop.prf or 0)
            v1_encr = parse_v1_encr_name(encr_name(prop.encr).removeprefix("ENCR_"))
            return IkeV1Keys(
                cookie_i=spis[0],
                encr_key=SecretBytes(k["Ka"]),
                cookie_r=spis[1],
                encr=v1_encr,
                encr_key_bits=192 if prop.encr == EncrId.ENCR_3DES else prop.encr_bits,
                hash_alg=parse_v1_hash_name(hash_name) if hash_name else None,
                skeyid_a=SecretBytes(k.get("SKEYID_a", b"")),
                skeyid_d=SecretBytes(k.get("SKEYID_d", b"")),
                source=label,
            )
        sk_ei = k.get("Sk_ei", b"")
        bits = prop.encr_bits or key_bits_for(prop.encr, len(sk_ei))
        return IkeSaKeys(
            spi_i=spis[0],
            spi_r=spis[1],
            encr=int(prop.encr),
            sk_ei=SecretBytes(sk_ei),
            sk_er=SecretBytes(k.get("Sk_er", b"")),
            integ=int(prop.integ) if prop.integ is not None else int(IntegId.NONE),
            sk_ai=SecretBytes(k.get("Sk_ai", b"")),
            sk_ar=SecretBytes(k.get("Sk_ar", b"")),
            encr_key_bits=192 if prop.encr == EncrId.ENCR_3DES else bits,
            prf=prop.prf,
            sk_d=SecretBytes(k.get("Sk_d", b"")),
            sk_pi=SecretBytes(k.get("Sk_pi", b"")),
            sk_pr=SecretBytes(k.get("Sk_pr", b"")),
            source=label,
        )


def _encap(ctx: _Ctx, direction: str) -> tuple[int, int] | None:
    """UDP ports of an ESP-in-UDP SA (RFC 3948): those of the IKE SA that saw a NAT."""
    if not ctx.nat or ctx.ports is None:
        return None
    ours, peer = ctx.ports
    return (ours, peer) if direction == "outbound" else (peer, ours)


def looks_like_charon_log(text: str) -> bool:
    """Three charon lines anywhere (a syslog file may hold other daemons' lines first)."""
    hits = 0
    for line in text.splitlines():
        if _LINE.search(line):
            hits += 1
            if hits >= 3:
                return True
    return False


def parse_charon_log(text: str, *, name: str = "charon.log") -> ParseResult:
    """IKE and CHILD SA keys from a charon log; skipped SAs are explained in ``warnings``."""
    parser = _Parser(name)
    for no, raw in enumerate(text.splitlines(), 1):
        parser.feed(no, raw)
    return parser.finish()
