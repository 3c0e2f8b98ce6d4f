"""All diagnoses, registered in one list. A check owns its finding ids (see knowledge.py)."""

from __future__ import annotations

from ..base import Check, CheckContext
from .auth import AuthCheck
from .capture_health import CaptureHealthCheck, MalformedCheck, TruncationCheck
from .certs import CertCheck
from .churn import ChurnCheck
from .dpd import DpdCheck
from .esp_flows import EspFlowCheck
from .fragmentation import IkeFragmentationCheck
from .half_open import HalfOpenCheck
from .key_sources import KeySourceCheck
from .keys import MissingKeysCheck
from .keys_unmatched import UnmatchedKeysCheck
from .keys_unsupported import UnsupportedAlgorithmCheck
from .keys_wrong import WrongKeysCheck
from .mtu import MtuCheck
from .natt import NatCheck
from .notify import ErrorNotifyCheck
from .posture import PostureCheck
from .proposals import ProposalCheck
from .redirect import RedirectCheck
from .replay import ReplayCheck
from .selectors import SelectorCheck
from .unanswered import UnansweredCheck
from .v1_stall import V1StallCheck

__all__ = ["Check", "CheckContext", "default_checks"]


def default_checks() -> list[Check]:
    return [
        ProposalCheck(),
        AuthCheck(),
        SelectorCheck(),
        CertCheck(),
        PostureCheck(),
        DpdCheck(),
        ChurnCheck(),
        ErrorNotifyCheck(),
        UnansweredCheck(),
        RedirectCheck(),
        V1StallCheck(),
        IkeFragmentationCheck(),
        NatCheck(),
        EspFlowCheck(),
        ReplayCheck(),
        MtuCheck(),
        MalformedCheck(),
        TruncationCheck(),
        CaptureHealthCheck(),
        HalfOpenCheck(),
        MissingKeysCheck(),
        WrongKeysCheck(),
        UnmatchedKeysCheck(),
        UnsupportedAlgorithmCheck(),
        KeySourceCheck(),
    ]
