"""Whether an IKEv2 SA whose IKE_AUTH could not be read was established, from what followed.

Established means both AUTH payloads were sent and accepted (RFC 7296 §2.15). Decrypted, the
IKE_AUTH exchange says so (``state_basis`` "seen"). Without keys the AUTH payloads and any
AUTHENTICATION_FAILED answer are encrypted, but the protocol leaves evidence outside them:

* A failed IKE_AUTH ends the IKE SA (RFC 7296 §2.21.2): neither side starts another exchange on
  its SPIs, except the initiator's one INFORMATIONAL carrying AUTHENTICATION_FAILED (a Notify
  payload) right after the IKE_AUTH response, when it rejected the responder's AUTH. So a
  CREATE_CHILD_SA, an exchange the responder starts, a second request of the initiator after
  IKE_AUTH, or an initiator INFORMATIONAL too small to hold a Notify payload or sent long after
  the IKE_AUTH response are exchanges only an established IKE SA has (RFC 7296 §1.3, §1.4).
* The CHILD SA negotiated in IKE_AUTH is used only when it succeeded: ESP in both directions
  between the two peers (on the IKE ports when UDP-encapsulated), first seen after the IKE_AUTH
  response while no other IKE SA between them set up CHILD SAs. One direction proves nothing:
  the responder installs its CHILD SA before the initiator checks the responder's AUTH.

Such an SA is ``established`` with ``state_basis`` "inferred" and ``state_evidence`` naming what
showed it. An IKE_AUTH answered and followed by none of this stays ``incomplete``.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable

from ..crypto.errors import UnsupportedAlgorithm
from ..crypto.transforms import encr_spec, integ_spec
from ..wire.registry import EncrId, ExchangeType, IntegId
from .model import EspFlow, ExchangeRecord, IkeSaRecord

# How long after the IKE_AUTH response an initiator that rejected the responder's AUTH may take
# to send its AUTHENTICATION_FAILED INFORMATIONAL: it checks the AUTH (and the certificate chain,
# revocation fetches included) as soon as the response arrives. A first INFORMATIONAL later than
# this is not that notice.
AUTH_FAILED_NOTICE_SECONDS = 10.0
# The IKEv2 exchanges that set up CHILD SAs (RFC 7296 §1.2, §1.3).
CHILD_EXCHANGES = frozenset({ExchangeType.IKE_AUTH, ExchangeType.CREATE_CHILD_SA})
_NOTIFY_MIN = 8  # a Notify payload without SPI or data (RFC 7296 §3.10)


def sk_message_size(proposal: dict[str, str] | None, plaintext: int) -> int | None:
    """Length of the smallest IKEv2 message whose SK payload holds ``plaintext`` octets of inner
    payloads under the negotiated cipher (RFC 7296 §3.14: IV, padding to the block with its
    length octet, ICV); None when the proposal does not say."""
    p = proposal or {}
    try:
        e = encr_spec(int(EncrId[p["encr"]]))
        icv = e.icv_size if e.aead else integ_spec(int(IntegId[p["integ"]])).icv_size
    except (KeyError, UnsupportedAlgorithm):
        return None
    block = max(e.block_size, 1)
    return 28 + 4 + e.iv_size + block * ((plaintext + 1 + block - 1) // block) + icv


def last_auth(sa: IkeSaRecord) -> ExchangeRecord | None:
    """The IKE SA's last IKE_AUTH round (EAP takes several)."""
    auth = [e for e in sa.exchanges if e.exchange_type == ExchangeType.IKE_AUTH and e.initiated_by_initiator]
    return max(auth, key=lambda e: e.message_id) if auth else None


def _frame(e: ExchangeRecord) -> int:
    m = e.request or e.response
    return m.first_frame if m is not None else 0


def later_exchange_evidence(sa: IkeSaRecord) -> str | None:
    """What later exchange on this IKEv2 SA shows it was established, or None. Only for an SA
    whose IKE_AUTH did not show the outcome (not decrypted) and carried no failure."""
    auth = last_auth(sa)
    later = [
        e
        for e in sa.exchanges
        if e.exchange_type in (ExchangeType.CREATE_CHILD_SA, ExchangeType.INFORMATIONAL)
    ]
    if auth is None:
        # Set up before the capture started (or a rekeyed IKE SA): its exchanges show it.
        answered = next((e for e in later if e.response is not None), None)
        if answered is None:
            return None
        return f"answered {answered.type} at frame {_frame(answered)} (its IKE_AUTH is not in the capture)"
    if auth.response is None:
        return None
    t = auth.response.ts
    notice = sk_message_size(sa.proposal, _NOTIFY_MIN)
    for e in sorted(later, key=lambda x: x.first_ts):
        if e.first_ts < t:
            continue
        frame, req = _frame(e), e.request
        if e.exchange_type == ExchangeType.CREATE_CHILD_SA:
            return f"CREATE_CHILD_SA at frame {frame}"
        if not e.initiated_by_initiator:
            return f"INFORMATIONAL started by the responder at frame {frame}"
        if e.message_id > auth.message_id + 1:
            return f"a second request of the initiator after IKE_AUTH (message id {e.message_id}, frame {frame})"
        if req is None:
            continue
        if req.decrypted:
            return f"decrypted INFORMATIONAL at frame {frame}"
        if req.ts - t >= AUTH_FAILED_NOTICE_SECONDS:
            return f"INFORMATIONAL {req.ts - t:.0f} s after the IKE_AUTH response (frame {frame})"
        if notice is not None and req.size < notice:
            return (
                f"INFORMATIONAL at frame {frame} ({req.size} bytes) too small to carry the "
                "AUTHENTICATION_FAILED notify"
            )
    return None


def _ways(sa: IkeSaRecord, auth: ExchangeRecord) -> tuple[tuple[str, int, str, int], tuple[str, int, str, int]]:
    """(src, sport, dst, dport) of the initiator's and the responder's ESP: the IKE_AUTH
    addresses and ports (after any NAT-T float to 4500), which UDP-encapsulated ESP shares."""
    req, resp = auth.request, auth.response
    assert resp is not None
    if req is not None:
        a = (req.src, req.sport, req.dst, req.dport)
    else:
        a = (resp.dst, resp.dport, resp.src, resp.sport)
    return a, (a[2], a[3], a[0], a[1])


def _fits(f: EspFlow, way: tuple[str, int, str, int], sa: IkeSaRecord) -> bool:
    if f.child_sa not in (None, sa.key):
        return False
    return f.encap == "none" or (f.sport, f.dport) == (way[1], way[3])


def child_setup_times(sa: IkeSaRecord) -> list[float]:
    """When the IKE SA answered an exchange that can create CHILD SAs (IKE_AUTH and
    CREATE_CHILD_SA responses, Quick Mode messages after the first), in time order: ESP with a
    new SPI between its peers that starts later may be one of its CHILD SAs."""
    if sa.version == 2:
        times = [e.response.ts for e in sa.exchanges if e.exchange_type in CHILD_EXCHANGES and e.response is not None]
    else:
        times = [m.ts for e in sa.exchanges if e.type == "QUICK_MODE" for m in e.messages[1:]]
    return sorted(times)


def infer_from_esp(sas: Iterable[IkeSaRecord], flows: list[EspFlow]) -> None:
    """Mark ``established`` (inferred) every IKEv2 SA left ``incomplete`` whose unread IKE_AUTH
    was answered and then ESP flowed both ways between its peers, this SA being the last one
    between them to set up CHILD SAs; an SA already inferred from later exchanges gets the ESP
    named first in its evidence."""
    sas = list(sas)
    # per host pair: when each IKE SA could have set up CHILD SAs; per direction: flows by start
    setups: dict[frozenset[str], list[tuple[float, int]]] = defaultdict(list)
    for sa in sas:
        setups[frozenset((sa.initiator[0], sa.responder[0]))] += [(t, id(sa)) for t in child_setup_times(sa)]
    for v in setups.values():
        v.sort()
    ways: dict[tuple[str, str], list[EspFlow]] = defaultdict(list)
    for f in flows:
        ways[(f.src, f.dst)].append(f)
    for v in ways.values():
        v.sort(key=lambda f: f.first_ts)
    starts = {k: [f.first_ts for f in v] for k, v in ways.items()}
    for sa in sas:
        unread = sa.state == "incomplete" or sa.state_basis == "inferred"
        auth = last_auth(sa) if sa.version == 2 and unread else None
        if auth is None or auth.response is None or auth.response.decrypted:
            continue
        t = auth.response.ts
        # ESP that starts once another IKE SA between the hosts set up CHILD SAs may be its
        pair = setups[frozenset((sa.initiator[0], sa.responder[0]))]
        at = bisect.bisect_right(pair, (t, float("inf")))
        until = next((u for u, who in pair[at:] if who != id(sa)), float("inf"))
        firsts = []
        for way in _ways(sa, auth):
            key = (way[0], way[2])
            cands, times = ways.get(key, []), starts.get(key, [])
            lo, hi = bisect.bisect_left(times, t), bisect.bisect_left(times, until)
            first = next((f for f in cands[lo:hi] if _fits(f, way, sa)), None)
            if first is None:
                break
            firsts.append(first.first_frame)
        else:
            esp = f"ESP both ways after IKE_AUTH (frames {firsts[0]}, {firsts[1]})"
            sa.state, sa.state_basis = "established", "inferred"
            sa.state_evidence = "; ".join(x for x in (esp, sa.state_evidence) if x)
