"""The embedded IKEv2 endpoint: a sans-I/O state machine after aioquic and h11.

Datagrams, timer expiries and the current time go in; datagrams to send, the next timer and
events (frozen dataclasses in :mod:`.events`) come out. Nothing in this package opens a
socket, reads a clock or draws randomness itself: the caller passes ``now`` and a
:class:`~ipsecdiag.crypto.rng.RandomSource`. The contract with the prober is
``ENGINE_API.md`` (kept beside the helpers' notes) and the docstrings of :class:`IkeSa`.

Modules, in the order a message meets them:

* ``config``, ``events``: what goes in and what comes out (frozen data).
* ``ike_sa`` (public API, send path, timers) and ``receive`` (receive path) over ``window``
  (message ids, retransmission, response cache), ``protect`` (SK/SKF) and ``fragments``
  (RFC 7383).
* ``state``: the transition and receive tables; ``errors``: Refuse/Drop carried to the top.
* One module per exchange: ``init_exchange`` (+ ``cookies``), ``intermediate`` (RFC 9242/9370),
  ``auth_exchange`` (+ ``eap_exchange``, ``eap``, ``mschapv2``), ``child_sa`` (+ ``pool``),
  ``informational``, ``create_child``.
"""

from . import events
from .config import (
    CertAuth,
    ChildConfig,
    EapAuth,
    Endpoint,
    Identity,
    IkeConfig,
    PskAuth,
    RetransmitPolicy,
    Role,
    selector_for,
)
from .ike_sa import IkeSa
from .state import State
from .window import Datagram

__all__ = [
    "CertAuth",
    "ChildConfig",
    "Datagram",
    "EapAuth",
    "Endpoint",
    "Identity",
    "IkeConfig",
    "IkeSa",
    "PskAuth",
    "RetransmitPolicy",
    "Role",
    "State",
    "events",
    "selector_for",
]
