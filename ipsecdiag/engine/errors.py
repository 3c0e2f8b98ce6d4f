"""Failures inside a handler, carried up to the dispatcher (after aioquic's QuicConnectionError).

A handler raises :class:`Refuse` with the Notify the failure produces; the dispatcher in
``ike_sa.py`` turns it into the answer (when ``respond``), a
:class:`~ipsecdiag.engine.events.ProtocolError` event and, when ``fatal``, the end of the IKE SA.
"""

from __future__ import annotations

from ..wire.registry import NotifyType, name_of


class Refuse(Exception):
    """The message just received cannot be accepted.

    ``notify``: the Notify type to answer with (for a request) or that explains the failure;
    0 for a failure no Notify names. ``fault``: ``"peer"`` (its message is wrong) or ``"ours"``
    (it refused our request, or our configuration cannot go on). ``received``: the notify came
    from the peer. ``respond``: answer a request with this notify. ``fatal``: the IKE SA ends.
    ``stateless``: the answer does not consume the message id (IKE_SA_INIT rejections, §2.6).
    """

    def __init__(
        self,
        notify: int,
        detail: str,
        *,
        fault: str = "peer",
        received: bool = False,
        respond: bool = True,
        fatal: bool = False,
        data: bytes = b"",
        stateless: bool = False,
    ) -> None:
        super().__init__(detail)
        self.notify = notify
        self.detail = detail
        self.fault = fault
        self.received = received
        self.respond = respond
        self.fatal = fatal
        self.data = data
        self.stateless = stateless

    @property
    def notify_name(self) -> str:
        return name_of(NotifyType, self.notify) if self.notify else ""


class Drop(Exception):
    """Discard the datagram silently (RFC 7296 §2.21.1-2); ``reason`` is counted."""

    def __init__(self, reason: str, kind: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind  # the counter name (default: the reason up to its first detail)
