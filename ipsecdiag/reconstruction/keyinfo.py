"""What the report says about the key material of a run, without any key bytes.

``KeyNote``: something about a key source the reader must hear (no usable keys in it, keys the
source cut short, rekeyed IKE SAs whose SPIs were never found). ``KeyRef``: one loaded key
record by kind, SPI(s), source and algorithm, so the checks can say which SAs the keys name
when none of them is in the capture, and which cipher a source named that cannot be used here.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..keys.model import ChildSaKeys, IkeSaKeys, IkeV1Keys, KeyStore
from ..wire.registry import EncrId, IntegId, V1EncrAlg, name_of


@dataclass(frozen=True)
class KeyNote:
    source: str  # the key file (and line) it is about
    kind: str  # "no-keys" | "incomplete" | "pending"
    reason: str

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}"


@dataclass(frozen=True)
class KeyRef:
    kind: str  # "ike" | "ikev1" | "esp" | "ah"
    spi: str  # "spi_i/spi_r" (IKE), the initiator cookie (IKEv1), 8 hex digits (ESP/AH)
    source: str  # the key source's file and line
    algorithm: str  # the cipher as the key source named it ("" for AH or when it did not)


def _algorithm(k: IkeSaKeys | ChildSaKeys) -> str:
    if k.encr_label:
        return k.encr_label
    if isinstance(k, ChildSaKeys) and k.protocol == "ah":
        return k.integ_label or name_of(IntegId, k.integ)
    return name_of(EncrId, k.encr)


def key_refs(store: KeyStore) -> list[KeyRef]:
    out = []
    for k in store:
        if isinstance(k, IkeSaKeys):
            out.append(KeyRef("ike", f"{k.spi_i.hex()}/{k.spi_r.hex()}", k.source, _algorithm(k)))
        elif isinstance(k, IkeV1Keys):
            # IKEv1 ciphers are numbered in their own registry (RFC 2409 App. A): AES_CBC is 7.
            algorithm = name_of(V1EncrAlg, k.encr) if k.encr is not None else ""
            out.append(KeyRef("ikev1", k.cookie_i.hex(), k.source, algorithm))
        else:
            spi = "*" if k.spi < 0 else f"{k.spi:08x}"
            out.append(KeyRef(k.protocol, spi, k.source, _algorithm(k)))
    return out


def key_notes(store: KeyStore) -> list[KeyNote]:
    """The sources' own notes (no usable keys, records cut short), then every rekeyed IKE SA's
    keys whose SPIs no decrypted exchange gave."""
    # A source's "pending" note spoke before the capture was read: each record still pending
    # after it says so itself.
    notes = [KeyNote(n.source, n.kind, n.reason) for n in store.notes if n.kind != "pending"]
    refused = {n.source for n in store.notes if n.kind == "rekey-mismatch"}  # their note says why
    waiting = {p.source for p in store.pending()}
    for p in store.pending():
        if p.source in refused:
            continue
        why = (
            "the keys of the IKE SA it rekeyed were not bound either"
            if p.parent_source in waiting
            else "no decrypted CREATE_CHILD_SA in the capture bound them"
        )
        notes.append(KeyNote(p.source, "pending", f"not used: {p.describe()}; {why}"))
    return notes
