"""CREATE_CHILD_SA (RFC 7296 §1.3).

Not implemented yet on this side: a request is answered with NO_ADDITIONAL_SAS, the notify
RFC 7296 §1.3 defines for a responder that will not create more CHILD SAs on this IKE SA (the
IKE SA stays up), and reported as a ProtocolError so the caller sees it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..wire.ikev2 import IkeHeader, Payload
from ..wire.registry import NotifyType
from .errors import Refuse

if TYPE_CHECKING:
    from .ike_sa import IkeSa


def handle_request(
    sa: IkeSa, h: IkeHeader, payloads: tuple[Payload, ...], src: Any, dst: Any, now: float
) -> None:
    raise Refuse(NotifyType.NO_ADDITIONAL_SAS, "CREATE_CHILD_SA is not supported by this endpoint yet")


def handle_response(
    sa: IkeSa, h: IkeHeader, payloads: tuple[Payload, ...], src: Any, now: float, context: dict[str, Any]
) -> None:
    raise Refuse(0, "CREATE_CHILD_SA response to a request we never send", respond=False)
