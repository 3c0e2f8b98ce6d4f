"""Keys of a rekeyed IKE SA recomputed from the old SA and the exchange (RFC 7296 §2.18).

SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr), with the old IKE SA's PRF ("the rekeying
exchange belongs to the old IKE SA"); the keys then follow RFC 7296 §2.14 with the new SA's
algorithms, nonces and SPIs. Used to check (or supply) the keys of a
:class:`~ipsecdiag.keys.model.PendingIkeKeys` record.
"""

from __future__ import annotations

import dataclasses

from ..keys.model import IkeSaKeys, PendingIkeKeys
from ..keys.rekey import RekeyExchange
from .prf import derive_ike_sa_keys, rekey_skeyseed


def derive_rekeyed_ike_sa(
    old: IkeSaKeys,
    shared_secret: bytes,
    ex: RekeyExchange,
    *,
    encr: int,
    integ: int,
    prf: int,
    encr_key_bits: int | None = None,
) -> IkeSaKeys:
    """The new IKE SA's keys (``old.prf`` and ``old.sk_d`` must be known)."""
    if old.prf is None or not old.sk_d:
        raise ValueError(f"IKE SA {old.spi_i.hex()}/{old.spi_r.hex()}: its PRF and SK_d are needed")
    seed = rekey_skeyseed(old.prf, old.sk_d.reveal(), shared_secret, ex.ni, ex.nr)
    keys = derive_ike_sa_keys(
        prf_id=prf,
        encr_id=encr,
        integ_id=integ,
        skeyseed_value=seed,
        ni=ex.ni,
        nr=ex.nr,
        spi_i=ex.new_spi_i,
        spi_r=ex.new_spi_r,
        encr_key_bits=encr_key_bits,
    )
    return dataclasses.replace(keys, source="derived (RFC 7296 §2.18)")


_COMPARED = ("sk_d", "sk_ai", "sk_ar", "sk_ei", "sk_er", "sk_pi", "sk_pr")


def verify_by_derivation(p: PendingIkeKeys, old: IkeSaKeys, ex: RekeyExchange) -> IkeSaKeys | None:
    """``p``'s keys under the exchange's SPIs if deriving them from ``ex`` gives the logged keys;
    None when they differ or the log lacks what the derivation needs (a ``keys.rekey`` Verifier)."""
    k = p.keys
    if not p.shared_secret or k.prf is None or old.prf is None or not old.sk_d:
        return None
    derived = derive_rekeyed_ike_sa(
        old, p.shared_secret.reveal(), ex, encr=k.encr, integ=k.integ, prf=k.prf, encr_key_bits=k.encr_key_bits
    )
    if any(getattr(k, f) and getattr(k, f) != getattr(derived, f) for f in _COMPARED) or not k.sk_ei:
        return None
    where = f"SPIs from {ex.source}, " if ex.source else ""
    return dataclasses.replace(
        k, spi_i=ex.new_spi_i, spi_r=ex.new_spi_r, source=f"{p.source} ({where}checked by RFC 7296 §2.18 derivation)"
    )
