"""Encrypted data without keys: say which SPIs lack keys and where to get them."""

from __future__ import annotations

from collections.abc import Iterable

from ...reconstruction.model import Finding
from ..base import Check, CheckContext
from ..keyadvice import PLUTO_V1_FIX, pluto_v1_gap


class MissingKeysCheck(Check):
    name = "keys"
    finding_ids = ("missing-keys",)

    def run(self, ctx: CheckContext) -> Iterable[Finding]:
        r = ctx.report
        ev: list[str] = []
        frames: list[int] = []
        ike_spis = []
        for sa in r.ike_sas:
            enc = [
                m
                for e in sa.exchanges
                for m in e.all_messages()
                if m.encrypted and not m.decrypted and m.decrypt_error is None
            ]
            if enc:
                ike_spis.append(sa.key)
                frames += [m.first_frame for m in enc]
                ev.append(f"IKEv{sa.version} SA {sa.key}: {len(enc)} encrypted message(s) without keys")
        esp = [f for f in r.esp_flows if not f.keys]
        for f in esp[:20]:
            ev.append(f"ESP SPI 0x{f.spi:08x} {f.src} -> {f.dst}: {f.packets} packet(s) without keys")
            frames.append(f.first_frame)
        if len(esp) > 20:
            ev.append(f"… and {len(esp) - 20} more ESP SPIs")
        if not ev:
            return
        gap = pluto_v1_gap(r)  # keys given, but from a source that cannot hold these
        yield self.finding(
            "missing-keys",
            frames=frames,
            evidence=ev + ([gap.evidence] if gap else []),
            cause="No keys for these SAs in the sources given; a libreswan pluto log never holds IKEv1 IKE SA keys."
            if gap
            else None,
            remediation=PLUTO_V1_FIX if gap else None,
            data={"ike_sas": ike_spis, "esp_spis": [f"{f.spi:08x}" for f in esp]},
        )
