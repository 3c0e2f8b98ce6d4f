"""What a key source cannot hold, for the key findings that explain why nothing was decrypted.

libreswan's pluto keeps the IKEv1 IKE SA keys (SKEYID_e and the encryption key derived from it,
RFC 2409 §5 and Appendix B) inside NSS and prints no byte of them at any ``plutodebug`` level
(the dump of a key's bytes is compiled out); with ``plutodebug="crypt private"`` it logs the
IKEv2 IKE SA keys (``| ikev2 I/R`` lines) and the CHILD SA keys it installs (``ESP enckey``
dumps, ``kernel: add_sa()``), for IKEv1 Quick Mode SAs too. Only Openswan-era pluto printed
IKEv1 ``| enc key:`` dumps (keys/libreswan.py reads them). So a pluto log given for an IKEv1
capture decrypts ESP at best, never the IKEv1 messages, and saying "supply a charon log" alone
would not help a libreswan user.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..reconstruction.model import Report

PLUTO_V1_FIX = (
    "libreswan's pluto cannot give the IKEv1 IKE SA keys: take them from the other peer if it logs "
    'them (strongSwan charon at level 4, `charondebug="ike 4"`, logs SKEYID_e and the encryption '
    "key) and give that log with `--keys`. pluto's CHILD SA keys (`ESP enckey` and `kernel: "
    'add_sa()` lines with `plutodebug="crypt private"`) or `ip -s xfrm state` on either peer '
    "decrypt the ESP."
)


@dataclass(frozen=True)
class PlutoV1Gap:
    sources: list[str]  # the pluto logs given
    ike_sas: list[str]  # keys of the IKEv1 SAs whose messages stay encrypted

    @property
    def evidence(self) -> str:
        logs = ", ".join(self.sources)
        return (
            f"{logs}: a libreswan pluto log, and pluto logs no IKEv1 IKE SA keys at any plutodebug "
            f"level (it keeps them inside NSS): the encrypted messages of {len(self.ike_sas)} IKEv1 "
            "SA(s) here cannot be read with it (its CHILD SA keys can decrypt ESP only)"
        )


def pluto_v1_gap(r: Report) -> PlutoV1Gap | None:
    """The pluto logs given when IKEv1 SAs of the capture have encrypted messages and no keys."""
    plutos = sorted(src for src, fmt in r.key_formats.items() if fmt == "pluto")
    if not plutos:
        return None
    unread = [
        sa.key
        for sa in r.ike_sas
        if sa.version == 1
        and not sa.keys_available
        and any(m.encrypted for e in sa.exchanges for m in e.messages)
    ]
    return PlutoV1Gap(plutos, unread) if unread else None
