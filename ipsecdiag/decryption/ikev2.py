"""Decryption hooks for the single analysis pass: IKEv2 SK/SKF, IKEv1, ESP.

``install_decryption(rec)`` wires them into a :class:`Reconstructor` when key material is
loaded. Decrypted IKE payloads are attached to their :class:`MessageRecord` (``inner``,
``payloads``, ``notifies``); CHILD SAs, traffic selectors and IKE SA rekeys learnt from them
are added to the IKE SA record.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..reconstruction.ike_sas import V2Decrypted
from ..reconstruction.model import IkeSaRecord, MessageRecord
from ..wire import ikev2 as v2
from ..wire.errors import WireError

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..capture.writer import RecordEncoder
    from ..crypto.sk import SkContext
    from ..keys.model import IkeSaKeys
    from ..keys.rekey import RekeyExchange
    from ..reconstruction.reconstructor import Reconstructor
    from .esp import FailSink, PlainSink


def install_decryption(
    rec: Reconstructor,
    *,
    plain: PlainSink | None = None,
    fail: FailSink | None = None,
    allow_pool: bool = True,
    encoder: RecordEncoder | None = None,
    raw_out: Callable[[bytes], None] | None = None,
) -> None:
    """Decrypt IKE and ESP during the pass. ``plain``/``fail`` receive every ESP packet that
    did / did not decrypt (for ``ipsecdiag decrypt``). Large captures decrypt ESP in worker
    processes (see :mod:`.decrypt_pool`) unless ``allow_pool`` is False; there, given an
    ``encoder`` and ``raw_out``, the workers build the output records themselves and
    ``raw_out`` receives them in place of ``plain``."""
    keys = rec.keys
    if not keys:
        return
    ike = IkeV2Decryptor(rec)
    rec.ike.decrypt_hook = ike.decrypt
    if keys.pending():
        rec.ike.on_ike_rekey = ike.bind_rekey
    from .ikev1 import IkeV1DecryptHook

    rec.ike.v1_decrypt_hook = IkeV1DecryptHook(rec).decrypt
    if not any(getattr(k, "protocol", None) == "esp" for k in keys):
        return
    from .pool import PooledEspDecryptHook, use_pool

    workers = use_pool(rec.capture_bytes) if allow_pool else 0
    if workers:
        pooled = PooledEspDecryptHook(
            rec, plain=plain, fail=fail, workers=workers, encoder=encoder, raw_out=raw_out
        )
        rec.esp.hook = pooled
        rec.finishers.append(pooled.finish)
        rec.closers.append(pooled.close)
    else:
        from .esp import EspDecryptHook

        rec.esp.hook = EspDecryptHook(rec, plain=plain, fail=fail)


def _sk_offset(msg: v2.IkeMessage) -> int:
    """Offset of the SK/SKF generic payload header: it is the last payload of the message."""
    sk = msg.encrypted
    h = msg.header
    body = len(sk.data) + (8 if isinstance(sk, v2.SkfPayload) else 4)
    return h.length - body


class IkeV2Decryptor:
    def __init__(self, rec: Reconstructor) -> None:
        self.keys = rec.keys
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
