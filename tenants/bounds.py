"""Bounds on input from outside: text (length, no NUL or control characters) and dates."""

from __future__ import annotations

import datetime as dt
import re

from tenants.errors import ErrorCode, PublicError, ValidationFailed

# Dates and period labels from outside name the years MIN_YEAR..MAX_YEAR only.
MIN_YEAR = 1970
MAX_YEAR = 2100
MIN_DAY = dt.date(MIN_YEAR, 1, 1)
MAX_DAY = dt.date(MAX_YEAR, 12, 31)


def day_in_bounds(day: dt.date) -> bool:
    return MIN_DAY <= day <= MAX_DAY


def day_check(day: dt.date, *, field: str) -> dt.date:
    """The date itself, or OUT_OF_RANGE naming `field` outside the years 1970..2100."""
    if not day_in_bounds(day):
        raise PublicError(
            f"{day.isoformat()} is outside the years {MIN_YEAR} to {MAX_YEAR}.",
            code=ErrorCode.OUT_OF_RANGE,
            field=field,
        )
    return day


# NUL and the C0 controls other than tab, line feed and carriage return: PostgreSQL refuses
# NUL in text outright, and the others only make trouble in names, headers and CSV exports.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def shown(text: str, limit: int = 40) -> str:
    """A client's text quoted for an error message, cut short (never echo 100 KB back)."""
    quoted = repr(text[:limit])
    return quoted if len(text) <= limit else f"{quoted}…"


def has_control_characters(text: str) -> bool:
    return _CONTROL.search(text) is not None


def text_check(
    value: str,
    *,
    field: str,
    max_length: int,
    what: str | None = None,
    required: bool = False,
) -> str:
    """The text itself, or ValidationFailed naming `field`: too long, empty when required,
    or holding NUL or another control character."""
    label = what or field
    if len(value) > max_length:
        raise ValidationFailed(
            f"{label[:1].upper()}{label[1:]} has at most {max_length} characters.",
            field=field,
        )
    if has_control_characters(value):
        raise ValidationFailed(
            f"{label[:1].upper()}{label[1:]} cannot contain NUL or other control characters.",
            field=field,
        )
    if required and not value.strip():
        raise ValidationFailed(f"{label[:1].upper()}{label[1:]} cannot be empty.", field=field)
    return value
