"""Key material as data: a redacted secret type, per-SA key records and a store keyed by SPIs.

Every key parser (Wireshark tables, ``ip xfrm state``, charon logs, our TOML key file)
produces these records; crypto and analysis only consume them.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field


class SecretBytes:
    """Bytes that never show up in a repr, a log line or a report by accident.

    Use :meth:`reveal` where the raw key is really needed (crypto) and :meth:`hex`
    only behind an explicit ``--show-keys``.
    """

    __slots__ = ("_b",)

    def __init__(self, data: bytes | bytearray | memoryview = b"") -> None:
        self._b = bytes(data)

    @classmethod
    def fromhex(cls, text: str) -> SecretBytes:
        t = text.strip().lower()
        if t.startswith("0x"):
            t = t[2:]
        return cls(bytes.fromhex(t.replace(":", "").replace(" ", "")))

    def reveal(self) -> bytes:
        return self._b

    def hex(self) -> str:
        return self._b.hex()

    def __len__(self) -> int:
        return len(self._b)

    def __bool__(self) -> bool:
        return bool(self._b)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SecretBytes):
            return hmac.compare_digest(self._b, other._b)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._b)

    def __repr__(self) -> str:
        return f"SecretBytes(<redacted {len(self._b)} bytes>)"

    __str__ = __repr__


def _empty() -> SecretBytes:
    return SecretBytes()


@dataclass(frozen=True)
class IkeSaKeys:
    """Keys protecting one IKEv2 SA's SK payloads (RFC 7296 §2.14).

    For AEAD and counter-mode ciphers ``sk_ei``/``sk_er`` include the salt (as Wireshark and
    charon print them). ``encr``/``integ``/``prf`` are IANA transform ids
    (:class:`~ipsecdiag.wire.registry.EncrId` etc.); ``encr_key_bits`` is the cipher key
    length without salt, or None when implied by the key length.
    """

    spi_i: bytes
    spi_r: bytes
    encr: int
    sk_ei: SecretBytes
    sk_er: SecretBytes
    integ: int = 0
    sk_ai: SecretBytes = field(default_factory=_empty)
    sk_ar: SecretBytes = field(default_factory=_empty)
    encr_key_bits: int | None = None
    prf: int | None = None
    sk_d: SecretBytes = field(default_factory=_empty)
    sk_pi: SecretBytes = field(default_factory=_empty)
    sk_pr: SecretBytes = field(default_factory=_empty)
    source: str = ""
    # Why these keys cannot be used (e.g. the source cut them short), or "" when usable.
    incomplete: str = ""
    # The source's own name of the cipher when the id alone does not say it (private ids).
    encr_label: str = ""


@dataclass(frozen=True)
class IkeV1Keys:
    """Keys for an IKEv1 (ISAKMP) SA, as Wireshark's ``ikev1_decryption_table``: the initiator
    cookie and the encryption key (RFC 2409 Appendix B ``Ka``). The cipher is taken from the
    negotiated SA when the capture holds it; ``encr``/``hash_alg`` (V1EncrAlg/V1HashAlg) may
    pin it when known from the key source.
    """

    cookie_i: bytes
    encr_key: SecretBytes
    cookie_r: bytes | None = None
    encr: int | None = None
    encr_key_bits: int | None = None
    hash_alg: int | None = None
    skeyid_a: SecretBytes = field(default_factory=_empty)
    skeyid_d: SecretBytes = field(default_factory=_empty)
    source: str = ""


@dataclass(frozen=True)
class ChildSaKeys:
    """Keys for one direction of an ESP or AH SA.

    ``src``/``dst`` are the outer addresses as text, or None for a wildcard (``*`` in Wireshark's
    esp_sa). ``encr_key`` includes the salt for AEAD/CTR ciphers. ``esn`` is None when the source
    does not say (then the decryptor tries both and infers).
    """

    spi: int
    encr: int
    encr_key: SecretBytes
    integ: int = 0
    integ_key: SecretBytes = field(default_factory=_empty)
    protocol: str = "esp"  # "esp" | "ah"
    src: str | None = None
    dst: str | None = None
    encr_key_bits: int | None = None
    esn: bool | None = None
    esn_high: int | None = None
    mode: str | None = None  # "tunnel" | "transport" | "beet"
    source: str = ""
    # ESP-in-UDP (RFC 3948): (UDP source port, destination port) of this SA's packets.
    encap: tuple[int, int] | None = None
    incomplete: str = ""
    encr_label: str = ""
    integ_label: str = ""


@dataclass(frozen=True)
class PendingIkeKeys:
    """Keys of an IKE SA created by rekeying another one (CREATE_CHILD_SA, RFC 7296 §1.3.2)
    whose own SPIs the source does not give.

    ``keys`` has empty SPIs. The rekeyed (parent) IKE SA is named by its SPIs when known, and
    always by the ``source`` label of its key record, which may itself be pending (a chain of
    rekeys). A linking step binds the SPIs: the decrypted CREATE_CHILD_SA that created the SA
    carries them in its SA payloads, and with ``shared_secret`` and the exchange's nonces the
    keys can be derived and checked (RFC 7296 §2.18).
    """

    keys: IkeSaKeys
    parent_source: str
    parent_spis: tuple[bytes, bytes] | None = None
    shared_secret: SecretBytes = field(default_factory=_empty)
    ni: bytes = b""
    nr: bytes = b""
    source: str = ""

    def describe(self) -> str:
        parent = (
            f"IKE SA {self.parent_spis[0].hex()}/{self.parent_spis[1].hex()}"
            if self.parent_spis
            else f"the IKE SA keyed at {self.parent_source}"
        )
        return f"keys for an IKE SA created by a rekey of {parent}, SPIs unknown"


AnyKeys = IkeSaKeys | IkeV1Keys | ChildSaKeys
KeyRecord = AnyKeys | PendingIkeKeys

# ChildSaKeys.spi for a Wireshark esp_sa row with SPI "*": it applies to every SPI between its
# addresses (looked up only when no row names the SPI itself).
ANY_SPI = -1


@dataclass(frozen=True)
class KeySourceNote:
    """Something about a whole key source the user must hear, while the analysis goes on.

    ``kind``: ``"no-keys"`` (recognised, but nothing usable in it; ``reason`` says why),
    ``"incomplete"`` (some records cut short by the source), ``"pending"`` (rekeyed IKE SAs whose
    SPIs must come from the capture).
    """

    source: str
    kind: str
    reason: str

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}"


def addr_matches(pattern: str, addr: str) -> bool:
    """Does ``addr`` match a key source's address: exact (any IPv6 spelling), a prefix such as
    ``10.0.0.0/24``, or Wireshark's per-octet wildcards such as ``10.*.*.1``?"""
    if pattern == addr or pattern == "*":
        return True
    try:
        ip = ipaddress.ip_address(addr)
        if "/" in pattern:
            return ip in ipaddress.ip_network(pattern, strict=False)
        if "*" in pattern:
            parts = pattern.split(".")
            octets = str(ip).split(".")
            return len(parts) == len(octets) == 4 and all(
                p in ("*", o) for p, o in zip(parts, octets, strict=True)
            )
        return ip == ipaddress.ip_address(pattern)
    except ValueError:
        return False


class KeyStore:
    """All key material for one run, looked up by SPIs (and addresses for child SAs).

    Records marked ``incomplete`` and pending rekey records are kept aside: lookups and
    iteration never return them (decrypting with a cut key would only look like wrong keys),
    :meth:`incomplete` and :meth:`pending` list them for the report.
    """

    def __init__(self, items: Iterable[KeyRecord] = ()) -> None:
        self._ike: dict[tuple[bytes, bytes], IkeSaKeys] = {}
        self._v1: dict[bytes, IkeV1Keys] = {}
        self._child: dict[int, list[ChildSaKeys]] = {}
        self._incomplete: list[IkeSaKeys | ChildSaKeys] = []
        self._pending: list[PendingIkeKeys] = []
        self._resolved: dict[str, IkeSaKeys] = {}
        # What the key sources said about themselves (no usable keys, cut keys, pending rekeys).
        self.notes: list[KeySourceNote] = []
        # Each key source (file or directory, as given) -> the format it was read as ("pluto",
        # "strongswan", ...): what a source cannot hold depends on it (pluto logs no IKEv1 IKE keys).
        self.formats: dict[str, str] = {}
        for k in items:
            self.add(k)

    def add(self, k: KeyRecord) -> None:
        if isinstance(k, PendingIkeKeys):
            self._pending.append(k)
        elif isinstance(k, IkeSaKeys | ChildSaKeys) and k.incomplete:
            self._incomplete.append(k)
        elif isinstance(k, IkeSaKeys):
            self._ike[(k.spi_i, k.spi_r)] = k
        elif isinstance(k, IkeV1Keys):
            self._v1[k.cookie_i] = k
        else:
            lst = self._child.setdefault(k.spi, [])
            if k not in lst:
                lst.append(k)

    def extend(self, items: Iterable[KeyRecord]) -> None:
        for k in items:
            self.add(k)

    def copy(self) -> KeyStore:
        """An independent store with the same records and notes: an analysis binds rekeyed IKE
        SAs into its own copy, so one capture's bindings never leak into another's report."""
        new = KeyStore()
        new._ike = dict(self._ike)
        new._v1 = dict(self._v1)
        new._child = {spi: list(v) for spi, v in self._child.items()}
        new._incomplete = list(self._incomplete)
        new._pending = list(self._pending)
        new._resolved = dict(self._resolved)
        new.notes = list(self.notes)
        new.formats = dict(self.formats)
        return new

    def incomplete(self) -> list[IkeSaKeys | ChildSaKeys]:
        return list(self._incomplete)

    def pending(self) -> list[PendingIkeKeys]:
        return list(self._pending)

    def resolve_pending(self, pending: PendingIkeKeys, keys: IkeSaKeys) -> None:
        """``pending`` got its SPIs: ``keys`` replaces it (and stands for it as a parent)."""
        self._pending = [p for p in self._pending if p is not pending]
        self._resolved[pending.source] = keys
        self.add(keys)

    def resolved(self) -> dict[str, IkeSaKeys]:
        """Bound keys by the ``source`` of the pending record they replaced."""
        return dict(self._resolved)

    def ike(self, spi_i: bytes, spi_r: bytes) -> IkeSaKeys | None:
        return self._ike.get((spi_i, spi_r))

    def ikev1(self, cookie_i: bytes) -> IkeV1Keys | None:
        return self._v1.get(cookie_i)

    def child(self, spi: int, src: str | None = None, dst: str | None = None) -> ChildSaKeys | None:
        """Best match for an SPI: exact addresses first, then address wildcards, then rows
        with a wildcard SPI for these addresses."""
        cands = self._child.get(spi)
        if not cands:
            if spi != ANY_SPI and ANY_SPI in self._child:
                found = self.child(ANY_SPI, src, dst)
                if found is not None and (found.src is not None or found.dst is not None):
                    return found
            return None
        return self._best(cands, src, dst)

    def child_by_spi(self, spi: int) -> ChildSaKeys | None:
        """The only record for ``spi`` whatever its addresses, or None (none or ambiguous).

        For keys logged on the other side of a NAT, whose addresses differ from the capture's;
        the integrity check then tells whether the match was right."""
        cands = self._child.get(spi)
        return cands[0] if cands and len(cands) == 1 else None

    @staticmethod
    def _best(cands: list[ChildSaKeys], src: str | None, dst: str | None) -> ChildSaKeys | None:
        best: ChildSaKeys | None = None
        best_score = -1
        for c in cands:
            if (c.src is not None and src is not None and not addr_matches(c.src, src)) or (
                c.dst is not None and dst is not None and not addr_matches(c.dst, dst)
            ):
                continue
            score = (c.src is not None) + (c.dst is not None)
            if score > best_score:
                best, best_score = c, score
        return best

    def has_child_spi(self, spi: int) -> bool:
        return spi in self._child

    def __iter__(self) -> Iterator[AnyKeys]:
        yield from self._ike.values()
        yield from self._v1.values()
        for lst in self._child.values():
            yield from lst

    def __len__(self) -> int:
        return len(self._ike) + len(self._v1) + sum(len(v) for v in self._child.values())

    def __bool__(self) -> bool:
        return len(self) > 0
