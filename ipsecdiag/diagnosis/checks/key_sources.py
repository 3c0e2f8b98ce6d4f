"""What the key sources said about themselves, as a warning in the report: a source without
usable keys, keys it cut short, rekeyed IKE SAs' keys that no decrypted exchange bound (or
whose derivation contradicted the exchange), and rekeyed keys bound without being checked."""

from __future__ import annotations

from collections.abc import Iterable

from ...reconstruction.model import Finding
from ..base import Check, CheckContext


class KeySourceCheck(Check):
    name = "key-sources"
    finding_ids = ("key-source-unused",)

    def run(self, ctx: CheckContext) -> Iterable[Finding]:
        notes = ctx.report.key_notes
        if not notes:
            return
        kinds = sorted({n.kind for n in notes})
        # "unverified": keys that were used, bound without a derivation check (keys/rekey.py)
        what = (
            "Rekeyed IKE SA keys used without verification"
            if kinds == ["unverified"]
            else "Key material given but not usable"
            + (" or not verified" if "unverified" in kinds else "")
        )
        yield self.finding(
            "key-source-unused",
            title=f"{what} ({len(notes)} note(s): {', '.join(kinds)})",
            evidence=[str(n) for n in notes[:30]] + ([f"… {len(notes) - 30} more"] if len(notes) > 30 else []),
            data={"notes": [{"source": n.source, "kind": n.kind, "reason": n.reason} for n in notes]},
        )
