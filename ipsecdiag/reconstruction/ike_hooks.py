"""What the IKE reconstruction asks of the decryption stage and what it gets back.

The decryptors (decryption/ikev2.py, decryption/ikev1.py) only decrypt: each returns one of these
results, and the :class:`~.ike_sas.IkeReconstructor` records it on the message and learns from it
(decrypted.py). Kept apart from the pass so the contract between the two stages reads on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..wire import ikev1 as v1
from ..wire import ikev2 as v2
from .model import ExchangeRecord, IkeSaRecord, MessageRecord


@dataclass(frozen=True)
class V2Decrypted:
    """What the IKEv2 decryptor made of one message's SK/SKF payload(s): the inner payloads, or
    why there are none (``error``: integrity or algorithm; ``malformed``: the plaintext did not
    parse). The reconstructor records it on the message and learns from it."""

    inner: tuple[v2.Payload, ...] = ()
    error: str | None = None
    malformed: str | None = None


@dataclass(frozen=True)
class V1Decrypted:
    """What the IKEv1 decryptor made of one encrypted message: its payloads, or why not."""

    inner: tuple[v1.V1Payload, ...] = ()
    error: str | None = None
    # Phase 1 (its KE payloads, its last CBC block) comes later in the capture: the reconstructor
    # asks again once the whole capture is read, in time order (IV chain, RFC 2409 Appendix B).
    later: bool = False


# The IKEv1 decryptor: (sa, exchange, record, parsed message) -> result, None without keys.
V1DecryptHook = Callable[[IkeSaRecord, ExchangeRecord, MessageRecord, v1.V1Message], "V1Decrypted | None"]
# The IKEv2 decryptor: (sa, record, [(datagram bytes, parsed message)] of its fragments) ->
# the result, or None when there are no keys for this IKE SA.
DecryptHook = Callable[[IkeSaRecord, MessageRecord, list[tuple[bytes, v2.IkeMessage]]], "V2Decrypted | None"]
