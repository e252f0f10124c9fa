"""SQL requirements as data: what inside sales must have established before a handoff to SQL.

`{"activity": {"activity": "connectedCall", "atLeast": 1, "days": 30},
  "requiredFields": ["budget", "authority", "need", "timeline"]}` (docs/handoff.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from handoff.conditions import ACTIVITY_KINDS, ATTRIBUTE_KEY, MAX_COUNT, MAX_DAYS
from tenants.errors import ValidationFailed

ROOT = "sqlRequirements"
MAX_FIELDS = 20


@dataclass(frozen=True)
class ActivityRequirement:
    activity: str
    at_least: int
    days: int | None  # None: at any time


@dataclass(frozen=True)
class Requirements:
    activity: ActivityRequirement | None
    required_fields: tuple[str, ...]


def _fail(path: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{path}: {message}", field=path)


def _int(value: Any, path: str, *, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(path, "must be a whole number.")
    if not low <= value <= high:
        raise _fail(path, f"must be {low} to {high}.")
    return value


def _activity(value: Any) -> ActivityRequirement | None:
    path = f"{ROOT}.activity"
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _fail(path, "must be an object or null.")
    unknown = sorted(set(value) - {"activity", "atLeast", "days"})
    if unknown:
        raise _fail(f"{path}.{unknown[0]}", "is not a known key here.")
    if value.get("activity") not in ACTIVITY_KINDS:
        raise _fail(f"{path}.activity", f"must be one of {', '.join(ACTIVITY_KINDS)}.")
    days = value.get("days")
    return ActivityRequirement(
        activity=value["activity"],
        at_least=_int(value.get("atLeast", 1), f"{path}.atLeast", low=1, high=MAX_COUNT),
        days=None if days is None else _int(days, f"{path}.days", low=1, high=MAX_DAYS),
    )


def _fields(value: Any) -> tuple[str, ...]:
    path = f"{ROOT}.requiredFields"
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _fail(path, "must be a list.")
    if len(value) > MAX_FIELDS:
        raise _fail(path, f"has at most {MAX_FIELDS} fields.")
    for i, key in enumerate(value):
        if not isinstance(key, str) or not ATTRIBUTE_KEY.match(key):
            raise _fail(
                f"{path}[{i}]", "must be 1-64 letters, digits, '_' or '-', starting with a letter."
            )
    if len(set(value)) != len(value):
        raise _fail(path, "names a field twice.")
    return tuple(value)


def parse_requirements(value: Any) -> Requirements:
    """The requirements of a stored or submitted sqlRequirements, or ValidationFailed whose
    field is the path of the bad part. `{}` requires nothing."""
    if not isinstance(value, dict):
        raise _fail(ROOT, "must be an object.")
    unknown = sorted(set(value) - {"activity", "requiredFields"})
    if unknown:
        raise _fail(f"{ROOT}.{unknown[0]}", "is not a known key here.")
    return Requirements(
        activity=_activity(value.get("activity")),
        required_fields=_fields(value.get("requiredFields")),
    )


def validate_requirements(value: Any) -> dict[str, Any]:
    """The sqlRequirements part's validator: the value itself once it parses."""
    parse_requirements(value)
    return value
