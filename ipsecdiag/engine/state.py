"""The IKE SA state machine as data (after h11's ``_state.py``).

Theory of operation
-------------------
Everything that decides *whether* a message or an action is legal lives in this file; the
handlers in the other modules only do the work. Two tables:

* :data:`RECEIVE` maps ``(role, state)`` to the messages that may arrive, keyed by
  ``(exchange type, is_response)``, and names the handler that processes each one. A message
  that is not in the table for the current state is a protocol error (the peer's fault): a
  request is answered with INVALID_SYNTAX when the SA has keys (RFC 7296 §2.21.2), dropped
  otherwise; an unexpected response is dropped (§2.21.1).
* :data:`TRANSITIONS` maps ``(role, state, trigger)`` to the next state. Triggers are the
  outcomes handlers report (``INIT_OK``, ``AUTH_OK``, ``FAILED``...); a trigger that is not in
  the table is a bug in the engine and raises :class:`LocalStateError` at once.

Message ids, retransmission and the window (size 1) are not states: see ``window.py``. EAP
rounds (several IKE_AUTH exchanges) stay in AUTH_SENT / INIT_DONE; RFC 9242 IKE_INTERMEDIATE
exchanges run in INTERMEDIATE (initiator) and INIT_DONE (responder).

Roles: the *original* initiator of the IKE SA stays ``INITIATOR`` for its whole life, even when
the responder later sends requests (INFORMATIONAL, CREATE_CHILD_SA): those are legal in
ESTABLISHED for both roles.
"""

from __future__ import annotations

from enum import Enum

from ..wire.registry import ExchangeType
from .config import Role

__all__ = ["RECEIVE", "TRANSITIONS", "LocalStateError", "State", "Trigger", "handler_for", "next_state"]


class State(Enum):
    INITIAL = "initial"  # nothing sent or received yet
    INIT_SENT = "init-sent"  # initiator: IKE_SA_INIT request outstanding
    INIT_DONE = "init-done"  # responder: IKE_SA_INIT answered, keys derived, waiting for IKE_AUTH
    INTERMEDIATE = "intermediate"  # initiator: IKE_INTERMEDIATE (RFC 9242) request outstanding
    AUTH_SENT = "auth-sent"  # initiator: IKE_AUTH request outstanding
    ESTABLISHED = "established"
    DELETING = "deleting"  # we sent the IKE SA Delete, waiting for its answer
    CLOSED = "closed"  # deleted, failed or timed out: nothing more is sent or accepted


class Trigger(Enum):
    INITIATE = "initiate"  # initiator queued IKE_SA_INIT
    INIT_RETRY = "init-retry"  # COOKIE, INVALID_KE_PAYLOAD or REDIRECT: IKE_SA_INIT again
    INIT_OK = "init-ok"  # IKE_SA_INIT done (initiator: response processed; responder: answered)
    INTERMEDIATE = "intermediate"  # initiator: an IKE_INTERMEDIATE exchange starts (RFC 9242)
    AUTH_OK = "auth-ok"  # IKE_AUTH done, the IKE SA is established
    DELETE_SENT = "delete-sent"
    DELETED = "deleted"  # the IKE SA delete completed (either side)
    FAILED = "failed"  # fatal error notify sent or received, timeout


_I, _R = Role.INITIATOR, Role.RESPONDER
_S = State
_T = Trigger
_X = ExchangeType

TRANSITIONS: dict[tuple[Role, State, Trigger], State] = {
    (_I, _S.INITIAL, _T.INITIATE): _S.INIT_SENT,
    (_I, _S.INIT_SENT, _T.INIT_RETRY): _S.INIT_SENT,
    (_I, _S.INIT_SENT, _T.INIT_OK): _S.AUTH_SENT,  # IKE_AUTH is queued with the keys
    (_I, _S.INIT_SENT, _T.INTERMEDIATE): _S.INTERMEDIATE,  # additional key exchanges first
    (_I, _S.INTERMEDIATE, _T.INTERMEDIATE): _S.INTERMEDIATE,
    (_I, _S.INTERMEDIATE, _T.INIT_OK): _S.AUTH_SENT,
    (_I, _S.AUTH_SENT, _T.AUTH_OK): _S.ESTABLISHED,
    (_R, _S.INITIAL, _T.INIT_OK): _S.INIT_DONE,
    (_R, _S.INIT_DONE, _T.AUTH_OK): _S.ESTABLISHED,
}
for _role in Role:
    TRANSITIONS[(_role, _S.ESTABLISHED, _T.DELETE_SENT)] = _S.DELETING
    for _st in (_S.INIT_DONE, _S.INTERMEDIATE, _S.AUTH_SENT, _S.ESTABLISHED, _S.DELETING):
        TRANSITIONS[(_role, _st, _T.DELETED)] = _S.CLOSED
    for _st in State:
        if _st is not _S.CLOSED:
            TRANSITIONS[(_role, _st, _T.FAILED)] = _S.CLOSED

# Handlers by name (methods of the dispatcher in ike_sa.py). Requests in ESTABLISHED are
# legal from both ends; responses are further matched to our outstanding request by id.
_ESTABLISHED = {
    (_X.INFORMATIONAL, False): "informational_request",
    (_X.INFORMATIONAL, True): "informational_response",
    (_X.CREATE_CHILD_SA, False): "create_child_request",
    (_X.CREATE_CHILD_SA, True): "create_child_response",
}

RECEIVE: dict[tuple[Role, State], dict[tuple[int, bool], str]] = {
    (_R, _S.INITIAL): {(_X.IKE_SA_INIT, False): "init_request"},
    (_I, _S.INIT_SENT): {(_X.IKE_SA_INIT, True): "init_response"},
    (_I, _S.INTERMEDIATE): {(_X.IKE_INTERMEDIATE, True): "intermediate_response"},
    (_R, _S.INIT_DONE): {
        (_X.IKE_INTERMEDIATE, False): "intermediate_request",
        (_X.IKE_AUTH, False): "auth_request",
        (_X.INFORMATIONAL, False): "informational_request",
    },
    (_I, _S.AUTH_SENT): {
        (_X.IKE_AUTH, True): "auth_response",
        (_X.INFORMATIONAL, False): "informational_request",
    },
    (_I, _S.ESTABLISHED): _ESTABLISHED,
    (_R, _S.ESTABLISHED): _ESTABLISHED,
    (_I, _S.DELETING): {
        (_X.INFORMATIONAL, True): "informational_response",
        (_X.INFORMATIONAL, False): "informational_request",
    },
}
RECEIVE[(_R, _S.DELETING)] = RECEIVE[(_I, _S.DELETING)]


class LocalStateError(RuntimeError):
    """The engine (or its caller) tried a transition the table does not have: a bug, not input."""


def next_state(role: Role, state: State, trigger: Trigger) -> State:
    try:
        return TRANSITIONS[(role, state, trigger)]
    except KeyError:
        raise LocalStateError(f"{role.value}: no transition from {state.value} on {trigger.value}") from None


def handler_for(role: Role, state: State, exchange: int, is_response: bool) -> str | None:
    """The handler name for a received message, or None when it does not fit this state."""
    return RECEIVE.get((role, state), {}).get((exchange, is_response))
