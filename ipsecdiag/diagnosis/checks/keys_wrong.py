"""Keys that verify nothing, and ICV failures among packets that verify.

With the right keys every packet of an SA passes its integrity check (RFC 4303 §3.4.4, RFC 7296
§3.14) unless the path corrupts it. So an SA whose every ESP packet or every encrypted IKE
message fails with the keys found for its SPIs has the wrong keys (an error: nothing of it can
be read, and the user must hear it), while a few failures among packets that verify are the
packets' fault: ``esp-integrity-failure`` with their frames.
"""

from __future__ import annotations

from collections.abc import Iterable

from ...reconstruction.model import EspFlow, Finding, IkeSaRecord, MessageRecord
from ..base import Check, CheckContext

# The IKEv2 decryptor's words for an ICV that did not verify (decryption/ikev2.py).
_IKE_ICV_FAILED = "integrity check failed"
# The IKEv1 decryptor's words for a message whose decrypted payloads do not hold together
# (decryption/ikev1.py): IKEv1 has no ICV, the payload chain is the test.
_V1_UNREADABLE = ("decryption with the supplied key failed", "decrypted payloads do not parse")


def _where(source: str) -> str:
    return f"keys from {source}" if source else "keys (source not named)"


class WrongKeysCheck(Check):
    name = "keys-wrong"
    finding_ids = ("keys-wrong", "esp-integrity-failure")

    def run(self, ctx: CheckContext) -> Iterable[Finding]:
        r = ctx.report
        for sa in r.ike_sas:
            found = self._ike(sa)
            if found is not None:
                yield found
        for f in r.esp_flows:
            if not f.keys or not f.integrity_failed:
                continue
            yield self._esp_wrong(f) if f.decrypted == 0 else self._esp_some(f)

    def _ike(self, sa: IkeSaRecord) -> Finding | None:
        msgs = [m for e in sa.exchanges for m in e.all_messages() if m.encrypted]
        if sa.version == 1:
            return self._ikev1(sa, msgs)
        failed = [m for m in msgs if (m.decrypt_error or "").startswith(_IKE_ICV_FAILED)]
        if not failed or any(m.decrypted for m in msgs):
            return None
        return self.finding(
            "keys-wrong",
            title=f"The keys for IKE SA {sa.key} verify none of its {len(failed)} encrypted message(s)",
            frames=[m.first_frame for m in failed],
            evidence=[
                f"IKE SA {sa.key}: {_where(sa.key_source)}",
                f"{len(failed)} of {len(msgs)} encrypted message(s) failed their integrity check, none decrypted",
            ],
            ike_sa=sa.key,
            data={"key_source": sa.key_source, "failed": len(failed), "encrypted": len(msgs)},
        )

    def _ikev1(self, sa: IkeSaRecord, msgs: list[MessageRecord]) -> Finding | None:
        """IKEv1 has no ICV (RFC 2409): wrong keys show as decrypted payloads that do not form an
        ISAKMP payload chain. One message missing from the capture spoils only the next one's IV,
        and the first encrypted phase 1 message takes its IV from the KE payloads (RFC 2409
        Appendix B), so when every message fails, that first one included, the keys are wrong."""
        failed = [m for m in msgs if (m.decrypt_error or "").startswith(_V1_UNREADABLE)]
        p1 = [m for e in sa.exchanges if e.message_id == 0 for m in e.messages if m.encrypted]
        if not failed or len(failed) != len(msgs) or not p1 or p1[0] not in failed:
            return None
        return self.finding(
            "keys-wrong",
            title=f"The keys for ISAKMP SA {sa.key} decrypt none of its {len(failed)} encrypted message(s)",
            frames=[m.first_frame for m in failed],
            evidence=[
                f"ISAKMP SA {sa.key}: {_where(sa.key_source)}",
                f"none of its {len(msgs)} encrypted message(s) decrypts to ISAKMP payloads that parse, from "
                f"the first encrypted phase 1 message (frame {p1[0].first_frame}) on, whose IV the KE "
                "payloads give: not a message missing from the capture",
            ],
            explanation=(
                f"IKEv1 messages carry no integrity check value; with the right keys every encrypted message "
                f"decrypts to a chain of ISAKMP payloads. With the keys given for ISAKMP SA {sa.key} none does: "
                "the encryption key (or the cipher the key source names) is not this SA's."
            ),
            ike_sa=sa.key,
            data={"key_source": sa.key_source, "failed": len(failed), "encrypted": len(msgs)},
        )

    def _esp_wrong(self, f: EspFlow) -> Finding:
        return self.finding(
            "keys-wrong",
            title=f"The keys for ESP SPI 0x{f.spi:08x} verify none of its {f.integrity_failed} packet(s)",
            frames=f.failed_frames,
            evidence=[
                f"ESP SPI 0x{f.spi:08x} {f.src} -> {f.dst}: {_where(f.key_source)}",
                f"{f.integrity_failed} of {f.packets} packet(s) failed their ICV, none verified"
                + (" (key matched by SPI only: its addresses differ)" if f.key_matched_by_spi_only else ""),
            ],
            ike_sa=f.child_sa,
            data={"spi": f"{f.spi:08x}", "key_source": f.key_source, "failed": f.integrity_failed},
        )

    def _esp_some(self, f: EspFlow) -> Finding:
        shown = ", ".join(map(str, f.failed_frames))
        more = f" (first {len(f.failed_frames)})" if len(f.failed_frames) < f.integrity_failed else ""
        return self.finding(
            "esp-integrity-failure",
            title=f"{f.integrity_failed} ESP packet(s) of SPI 0x{f.spi:08x} failed their ICV among "
            f"{f.decrypted} that verified",
            frames=f.failed_frames,
            evidence=[
                f"ESP SPI 0x{f.spi:08x} {f.src} -> {f.dst}: {f.decrypted} verified, "
                f"{f.integrity_failed} failed, frames {shown}{more}",
                _where(f.key_source),
            ],
            ike_sa=f.child_sa,
            data={"spi": f"{f.spi:08x}", "failed": f.integrity_failed, "verified": f.decrypted},
        )
