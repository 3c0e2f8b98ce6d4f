"""All diagnoses, registered in one list. A check owns its finding ids (see knowledge.py)."""

from __future__ import annotations

from .auth import AuthCheck
from .base import Check, CheckContext
from .capture_health import MalformedCheck, TruncationCheck
from .keys import MissingKeysCheck
from .notify import ErrorNotifyCheck
from .proposals import ProposalCheck
from .selectors import SelectorCheck
from .unanswered import UnansweredCheck

__all__ = ["Check", "CheckContext", "default_checks"]


def default_checks() -> list[Check]:
    return [
        ProposalCheck(),
        AuthCheck(),
        SelectorCheck(),
        ErrorNotifyCheck(),
        UnansweredCheck(),
        MalformedCheck(),
        TruncationCheck(),
        MissingKeysCheck(),
    ]
