"""Keys were loaded but none names an SA of the capture: say so, with the SPIs on each side."""

from __future__ import annotations

from collections.abc import Iterable

from ...reconstruction.model import Finding, Report
from ..base import Check, CheckContext
from ..keyadvice import PLUTO_V1_FIX, pluto_v1_gap
from ..knowledge import CATALOGUE

SHOWN = 10  # SPIs listed per side


def _capture_spis(r: Report) -> list[str]:
    out = [f"IKEv{sa.version} SA {sa.key}" for sa in r.ike_sas if sa.spi_r or sa.version == 1]
    out += [f"ESP SPI {f.spi:08x} {f.src} -> {f.dst}" for f in r.esp_flows]
    out += [f"AH SPI {f.spi:08x} {f.src} -> {f.dst}" for f in r.ah_flows]
    return out


def _listed(side: str, items: list[str]) -> str:
    more = f", … {len(items) - SHOWN} more" if len(items) > SHOWN else ""
    return f"{side}: " + ", ".join(items[:SHOWN]) + more


class UnmatchedKeysCheck(Check):
    name = "keys-unmatched"
    finding_ids = ("keys-unmatched",)

    def run(self, ctx: CheckContext) -> Iterable[Finding]:
        r = ctx.report
        capture = _capture_spis(r)
        if not r.key_records or not capture:
            return
        used = (
            any(sa.keys_available for sa in r.ike_sas)
            or any(f.keys for f in r.esp_flows)
            or any(f.verified or f.integrity_failed for f in r.ah_flows)
        )
        if used:
            return
        keys = [f"{k.kind.upper()} {k.spi} ({k.source})" for k in r.key_records]
        n = len(r.key_records)
        gap = pluto_v1_gap(r)  # the IKEv1 SAs could not match: pluto never logs their keys
        yield self.finding(
            "keys-unmatched",
            title=f"{n} key record(s) loaded, none matches an SA here",
            evidence=[_listed("keys", keys), _listed("capture", capture)] + ([gap.evidence] if gap else []),
            remediation=f"{CATALOGUE['keys-unmatched'].remediation} {PLUTO_V1_FIX}" if gap else None,
            cause="The key source is a libreswan pluto log, which never holds IKEv1 IKE SA keys; the "
            "CHILD SA keys in it are for other SPIs (another session or host, or rekeyed since)."
            if gap
            else None,
            data={"key_spis": [k.spi for k in r.key_records], "capture": capture[:100]},
        )
