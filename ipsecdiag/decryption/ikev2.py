"""Decryption hooks for the single analysis pass: IKEv2 SK/SKF, IKEv1, ESP.

:class:`DecryptionSetup` builds them for a :class:`Reconstructor`, which receives the factory
in its constructor when key material is loaded. Decrypted IKE payloads are attached to their :class:`MessageRecord` (``inner``,
``payloads``, ``notifies``); CHILD SAs, traffic selectors and IKE SA rekeys learnt from them
are added to the IKE SA record.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ..reconstruction.ike_sas import V2Decrypted
from ..reconstruction.model import IkeSaRecord, MessageRecord
from ..reconstruction.reconstructor import Decryptors
from ..wire import ikev2 as v2
from ..wire.errors import WireError

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..capture.writer import RecordEncoder
    from ..crypto.sk import SkContext
    from ..esp.sa import EspDecryptor
    from ..keys.model import ChildSaKeys, IkeSaKeys, KeyStore
    from ..keys.rekey import RekeyExchange
    from ..reconstruction.esp_tracker import EspTracker, FlowState
    from .esp import FailSink, IpSink, PlainSink


@dataclass(frozen=True)
class DecryptionSetup:
    """The decryptor factory (:data:`~ipsecdiag.reconstruction.reconstructor.DecryptorFactory`)
    the Reconstructor calls in its constructor. ``plain``/``fail`` receive every ESP packet that
    did / did not decrypt (for ``ipsecdiag decrypt``). Large captures decrypt ESP in worker
    processes (see :mod:`.pool`) unless ``allow_pool`` is False; there, given an ``encoder``
    and ``raw_out``, the workers build the output records themselves and ``raw_out`` receives
    them in place of ``plain``."""

    plain: PlainSink | None = None
    fail: FailSink | None = None
    allow_pool: bool = True
    encoder: RecordEncoder | None = None
    raw_out: Callable[[bytes], None] | None = None
    ip_out: IpSink | None = None  # in-process: inner IP packets straight to the writer
    # in-process: builds each flow's decryptor (decrypt --jobs: from the state carried to a cut)
    make_decryptor: Callable[[ChildSaKeys, FlowState], EspDecryptor] | None = None

    def __call__(self, keys: KeyStore, tracker: EspTracker, capture_bytes: int) -> Decryptors:
        ike = IkeV2Decryptor(keys)
        from .ikev1 import IkeV1DecryptHook

        d = Decryptors(
            ike=ike.decrypt,
            ikev1=IkeV1DecryptHook(keys).decrypt,
            on_ike_rekey=ike.bind_rekey if keys.pending() else None,
        )
        if not any(getattr(k, "protocol", None) == "esp" for k in keys):
            return d
        from .pool import PooledEspDecryptHook, use_pool

        workers = use_pool(capture_bytes) if self.allow_pool else 0
        if workers:
            pooled = PooledEspDecryptHook(
                tracker,
                keys,
                plain=self.plain,
                fail=self.fail,
                workers=workers,
                encoder=self.encoder,
                raw_out=self.raw_out,
            )
            return replace(d, esp=pooled, finish=(pooled.finish,), close=(pooled.close,))
        from .esp import EspDecryptHook

        hook = EspDecryptHook(
            tracker, keys, plain=self.plain, fail=self.fail, ip_out=self.ip_out, make_decryptor=self.make_decryptor
        )
        # The bound method, not the instance: the tracker calls it for every ESP packet, and
        # calling an instance goes through __call__'s slot (about 60 ns more a call).
        return replace(d, esp=hook.__call__)


def _sk_offset(msg: v2.IkeMessage) -> int:
    """Offset of the SK/SKF generic payload header: it is the last payload of the message."""
    sk = msg.encrypted
    h = msg.header
    body = len(sk.data) + (8 if isinstance(sk, v2.SkfPayload) else 4)
    return h.length - body


class IkeV2Decryptor:
    def __init__(self, keys: KeyStore) -> None:
        self.keys = keys
        # Keyed SK contexts, one per IKE SA and direction, owned by this pass (not cached
        # process-wide): they and their key material go when the reconstructor does.
        self._contexts: dict[tuple[IkeSaKeys, bool], SkContext] = {}
        self._rekeys: list[RekeyExchange] = []

    def bind_rekey(self, ex: RekeyExchange) -> None:
        """A decrypted CREATE_CHILD_SA rekeyed an IKE SA: bind the pending keys it created (logged
        without SPIs), checked by recomputing them (RFC 7296 §2.18), so the new SA's messages
        decrypt. Earlier exchanges are passed again: a second source's pending record of the
        same SA (the peer's log) binds to an exchange the first one already took."""
        from ..crypto.ikerekey import verify_by_derivation
        from ..keys.rekey import link_store

        self._rekeys.append(ex)
        for _ in range(len(self.keys.pending())):
            if not link_store(self.keys, self._rekeys, verify=verify_by_derivation).bound:
                break

    def decrypt(
        self, sa: IkeSaRecord, m: MessageRecord, parts: list[tuple[bytes, v2.IkeMessage]]
    ) -> V2Decrypted | None:
        """Decrypt the SK/SKF payload(s) of ``m`` (None: no keys for this IKE SA). The
        reconstructor records the result and what it tells about the SA."""
        from ..crypto.errors import CryptoError
        from ..crypto.sk import SkContext

        h = parts[0][1].header
        k = self.keys.ike(h.spi_i, h.spi_r)
        if k is None:
            return None
        sa.key_source = k.source
        plain = b""
        try:
            for raw, msg in parts:
                direction = (k, msg.header.is_initiator)
                ctx = self._contexts.get(direction)
                if ctx is None:
                    ctx = self._contexts[direction] = SkContext(k, from_initiator=msg.header.is_initiator)
                plain += ctx.decrypt(raw[: msg.header.length], _sk_offset(msg))
        except CryptoError as e:
            return V2Decrypted(error=_crypto_text(e, sa))
        first = parts[0][1].encrypted.next_payload
        try:
            return V2Decrypted(inner=v2.parse_payloads(first, plain))
        except WireError as e:
            return V2Decrypted(malformed=str(e))


def _crypto_text(e: Exception, sa: IkeSaRecord) -> str:
    from ..crypto.errors import IntegrityError, UnsupportedAlgorithm

    if isinstance(e, IntegrityError):
        return f"integrity check failed with the supplied keys for IKE SA {sa.key}"
    if isinstance(e, UnsupportedAlgorithm):
        return f"cannot decrypt: {e}"
    return f"decryption failed: {e}"
