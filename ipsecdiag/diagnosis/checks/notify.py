"""Error notifies without a dedicated diagnosis become ``error-notify``, named and explained.

NO_PROPOSAL_CHOSEN and INVALID_KE_PAYLOAD belong to :mod:`.proposals`, AUTHENTICATION_FAILED
(and IKEv1's hash/signature failures) to :mod:`.auth`, TS_UNACCEPTABLE, SINGLE_PAIR_REQUIRED
and IKEv1's Quick Mode INVALID_ID_INFORMATION to :mod:`.selectors`. Notifies inside SK payloads
are only visible after decryption (then they are in ``MessageRecord.notifies`` too), so every
check serves both cases.
"""

from __future__ import annotations

from collections.abc import Iterable

from ...reconstruction.model import ExchangeRecord, Finding, IkeSaRecord, MessageRecord, Severity
from ..base import Check, CheckContext
from ..common import AUTH_NOTIFIES_V1, AUTH_NOTIFIES_V2, quick_modes_before, sentence, where, who
from ..knowledge import NOTIFY_HELP

# Handled by the dedicated checks (the names are the same in IKEv1 and IKEv2).
_DEDICATED = frozenset(
    {"NO_PROPOSAL_CHOSEN", "INVALID_KE_PAYLOAD", "TS_UNACCEPTABLE", "SINGLE_PAIR_REQUIRED", "INVALID_SPI"}
)  # INVALID_SPI: esp-unknown-spi in .esp_flows


def has_dedicated_check(sa: IkeSaRecord, m: MessageRecord, name: str) -> bool:
    if name in _DEDICATED:
        return True
    if sa.version == 2:
        return name in AUTH_NOTIFIES_V2
    if name in AUTH_NOTIFIES_V1:
        return True
    return name == "INVALID_ID_INFORMATION" and bool(quick_modes_before(sa, m))


class ErrorNotifyCheck(Check):
    name = "notify"
    finding_ids = ("error-notify",)
    severity_overrides = {
        "error-notify": "warning for TEMPORARY_FAILURE (RFC 7296 §2.25): the explanation says the requester "
        "is expected to retry",
    }

    def run(self, ctx: CheckContext) -> Iterable[Finding]:
        for sa in ctx.report.ike_sas:
            for ex in sa.exchanges:
                for m in ex.all_messages():
                    for n in dict.fromkeys(m.notifies):
                        if n in sa.error_notifies and not has_dedicated_check(sa, m, n):
                            yield self._finding(sa, ex, m, n)

    def _finding(self, sa: IkeSaRecord, ex: ExchangeRecord, m: MessageRecord, n: str) -> Finding:
        frames = list(m.frames)
        if ex.request is not None and ex.request is not m:
            frames += ex.request.frames
        sender = who(m)
        info = NOTIFY_HELP.get(n)
        expl = sentence(f"{sender} sent the error notify {n} in {where(ex)}.")
        if info is not None:
            expl += f" {info.meaning}"
        severity = None
        if n == "TEMPORARY_FAILURE":
            # RFC 7296 §2.25: "try again later" while the peer rekeys; the retry usually works
            severity = Severity.WARNING
            expl += " The requester is expected to retry after a short delay."
        return self.finding(
            "error-notify",
            severity=severity,
            frames=frames,
            evidence=[f"{sender} sent {n} in {where(ex)}, frame {m.first_frame}"],
            ike_sa=sa.key,
            title=f"Error notify {n}",
            explanation=expl,
            remediation=info.fix if info else "Check the peer's logs for the reason.",
            data={"notify": n},
        )
