"""All diagnoses, registered in one list. A check owns its finding ids (see knowledge.py)."""

from __future__ import annotations

from .base import Check, CheckContext
from .capture_health import MalformedCheck, TruncationCheck
from .keys import MissingKeysCheck
from .notify import ErrorNotifyCheck
from .unanswered import UnansweredCheck

__all__ = ["Check", "CheckContext", "default_checks"]


def default_checks() -> list[Check]:
    return [
        ErrorNotifyCheck(),
        UnansweredCheck(),
        MalformedCheck(),
        TruncationCheck(),
        MissingKeysCheck(),
    ]
