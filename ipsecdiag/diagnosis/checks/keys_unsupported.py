"""Keys found for an SA whose algorithm is not implemented here: name the algorithm as the key
source did (Wireshark's "TWOFISH-CBC", ``cbc(twofish)``), not by a private number, and say the
SA's packets cannot be decrypted, instead of counting them silently."""

from __future__ import annotations

from collections.abc import Iterable

from ...reconstruction.model import Finding, Report
from ..base import Check, CheckContext

# The IKEv2 decryptor's words for a key it cannot use (decryption/ikev2.py).
_IKE_UNSUPPORTED = "cannot decrypt:"


def _named(r: Report, source: str, fallback: str) -> str:
    """The algorithm as the key record from ``source`` named it."""
    for k in r.key_records:
        if k.source == source and k.algorithm:
            return k.algorithm
    return fallback


class UnsupportedAlgorithmCheck(Check):
    name = "keys-unsupported"
    finding_ids = ("algorithm-unsupported",)

    def run(self, ctx: CheckContext) -> Iterable[Finding]:
        r = ctx.report
        # One finding per algorithm, listing every SA that uses it.
        sas: dict[str, list[str]] = {}
        frames: dict[str, list[int]] = {}
        why: dict[str, str] = {}
        for f in r.esp_flows:
            if f.keys and f.decrypt_problem and not f.decrypted:
                alg = _named(r, f.key_source, f.decrypt_problem)
                sas.setdefault(alg, []).append(
                    f"ESP SPI 0x{f.spi:08x} {f.src} -> {f.dst}: {f.packets} packet(s) not decrypted"
                    + (f" (keys from {f.key_source})" if f.key_source else "")
                )
                frames.setdefault(alg, []).append(f.first_frame)
                why.setdefault(alg, f.decrypt_problem)
        for sa in r.ike_sas:
            bad = [
                m
                for e in sa.exchanges
                for m in e.all_messages()
                if (m.decrypt_error or "").startswith(_IKE_UNSUPPORTED)
            ]
            if bad:
                problem = (bad[0].decrypt_error or "")[len(_IKE_UNSUPPORTED) :].strip()
                alg = _named(r, sa.key_source, problem)
                sas.setdefault(alg, []).append(
                    f"IKE SA {sa.key}: {len(bad)} message(s) not decrypted"
                    + (f" (keys from {sa.key_source})" if sa.key_source else "")
                )
                frames.setdefault(alg, []).append(bad[0].first_frame)
                why.setdefault(alg, problem)
        for alg, listed in sas.items():
            yield self.finding(
                "algorithm-unsupported",
                title=f"{alg} cannot be decrypted here ({len(listed)} SA(s))",
                frames=frames[alg],
                evidence=[*listed[:20], f"decryptor: {why[alg]}"],
                data={"algorithm": alg, "sas": len(listed)},
            )
