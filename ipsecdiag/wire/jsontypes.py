"""The shape of JSON documents the package builds and reads (reports, key files, findings' data).

One definition for every layer (``wire/`` imports nothing, so all may import this). ``Json`` is
an object; values nest. A builder's dict literal is typed ``Json`` where it is made, so the
JSON writer and the renderers see what a finding's ``data`` or a report section may hold
without an untyped escape hatch.
"""

from __future__ import annotations

from typing import TypeAlias

JsonScalar: TypeAlias = "str | int | float | bool | None"
JsonValue: TypeAlias = "JsonScalar | list[JsonValue] | tuple[JsonValue, ...] | dict[str, JsonValue]"
Json: TypeAlias = "dict[str, JsonValue]"
