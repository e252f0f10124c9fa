"""Input bounds of pipeline records: the time window, money, text and `attributes` limits.

One place for the limits that every path into the pipeline applies (batch rows, CSV, the
single-record mutations): a value outside them is refused with a typed error before it
reaches the database, where it would fail (NUL, lone surrogates, numeric overflow) or, worse,
be stored and break every later KPI refresh of the tenant (a year-1 timestamp).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from typing import Any

# Timestamps: from the Unix epoch to one day after now (clock skew).
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
CLOCK_SKEW = dt.timedelta(days=1)
# Real UTC offsets run from -12:00 to +14:00; PostgreSQL refuses beyond ±15:59.
MAX_OFFSET = dt.timedelta(hours=14)
# An ISO 8601 date-time with offset and microseconds has 32 characters.
MOMENT_MAX_LENGTH = 64
TIME_WINDOW = "between 1970-01-01T00:00:00Z and one day after now"

# Money: Deal.amount is numeric(16, 2).
MONEY_INTEGER_DIGITS = 14
MONEY_PLACES = Decimal("0.01")
MONEY_MAX_LENGTH = 40
_MONEY_LIMIT = Decimal(10**MONEY_INTEGER_DIGITS)
# ASCII digits only: Python's Decimal also reads "1_000", " 100 " and full-width digits.
MONEY_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,6})?")
INTEGER_TEXT = re.compile(r"[+-]?[0-9]{1,12}")

# A lead's free-form `attributes` (a JSON object).
ATTRIBUTES_MAX_CHARS = 16_384
ATTRIBUTES_MAX_DEPTH = 8
ATTRIBUTES_MAX_KEY = 100

_JSON = json.JSONEncoder(ensure_ascii=False, allow_nan=False)
_TOO_DEEP = f"Nested more than {ATTRIBUTES_MAX_DEPTH} levels deep."

NUL_MESSAGE = "Must not contain NUL characters."
SURROGATE_MESSAGE = "Must be valid Unicode (no lone surrogates)."


def latest(now: dt.datetime) -> dt.datetime:
    """The latest timestamp accepted when the request is handled at `now`."""
    return now + CLOCK_SKEW


def moment_problem(value: dt.datetime, latest_accepted: dt.datetime) -> str | None:
    """Why an aware datetime is refused (OUT_OF_RANGE), or None.

    Compared before any conversion: converting year 1 or 9999 to UTC may overflow.
    """
    offset = value.utcoffset()
    if offset is not None and not -MAX_OFFSET <= offset <= MAX_OFFSET:
        return "The UTC offset must be between -14:00 and +14:00."
    if not EARLIEST <= value <= latest_accepted:
        return f"Must be {TIME_WINDOW}."
    return None


def text_problem(value: str) -> str | None:
    """Why a string cannot be stored as text (NUL, lone surrogates), or None.

    TRICKY: PostgreSQL text cannot hold U+0000, and psycopg cannot encode a lone surrogate
    (JSON's "\\ud800") to UTF-8; SQLite takes both. `isascii()` is O(1) in CPython, so
    ASCII text skips the encoding check.
    """
    if "\x00" in value:
        return NUL_MESSAGE
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return SURROGATE_MESSAGE
    return None


def is_clean_text(value: Any, max_length: int) -> bool:
    """A string that may be used as a look-up key in SQL (bounded, storable)."""
    return isinstance(value, str) and len(value) <= max_length and text_problem(value) is None


def attributes_problem(value: dict[Any, Any]) -> tuple[bool, str] | None:
    """Why an `attributes` object is refused, or None: (too_long, message).

    Bounded in size (as JSON), depth and key length; numbers must be finite (PostgreSQL's
    jsonb has no NaN), and text must be storable (no NUL, no lone surrogates).
    """
    if not value:
        return None
    try:
        encoded = _JSON.encode(value)
    except RecursionError:
        return False, _TOO_DEEP
    except (TypeError, ValueError):
        return False, "Expected a JSON object (finite numbers, text, lists, objects)."
    if len(encoded) > ATTRIBUTES_MAX_CHARS:
        return True, f"At most {ATTRIBUTES_MAX_CHARS} characters as JSON."
    # NOTE: the encoder escapes U+0000 as \u0000 even with ensure_ascii=False.
    if "\\u0000" in encoded:
        return False, NUL_MESSAGE
    if text_problem(encoded) is not None:
        return False, SURROGATE_MESSAGE
    # Short JSON with few brackets can hold neither a long key nor deep nesting (most rows).
    if (
        len(encoded) <= ATTRIBUTES_MAX_KEY
        and encoded.count("{") + encoded.count("[") <= ATTRIBUTES_MAX_DEPTH
    ):
        return None
    # Bounded by the size check above: at most a few thousand nodes to walk.
    level: list[Any] = [value]
    for _ in range(ATTRIBUTES_MAX_DEPTH):
        nested: list[Any] = []
        for node in level:
            if type(node) is dict:
                for key, child in node.items():
                    if len(str(key)) > ATTRIBUTES_MAX_KEY:
                        return True, f"A key has at most {ATTRIBUTES_MAX_KEY} characters."
                    if isinstance(child, dict | list):
                        nested.append(child)
            else:
                nested.extend(child for child in node if isinstance(child, dict | list))
        if not nested:
            return None
        level = nested
    return False, _TOO_DEEP


class MoneyRefused(ValueError):
    """An amount that is refused; `code` is INVALID, NEGATIVE or OUT_OF_RANGE."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def money_parse(value: Any) -> Decimal:
    """An amount as stored (2 places), from a decimal string, an int or a Decimal.

    Raises MoneyRefused. Floats are refused (money is never binary floating point), as are
    strings with anything but ASCII digits, a point, a sign and an exponent; a sign on zero
    ("-0") counts as negative. Checked before `quantize`, which raises on 1e400.
    """
    if type(value) is str:
        if len(value) > MONEY_MAX_LENGTH or not MONEY_TEXT.fullmatch(value):
            raise MoneyRefused(
                "INVALID", 'Expected a decimal number in ASCII digits, e.g. "1200000.50".'
            )
        amount = Decimal(value)
    elif type(value) is int or isinstance(value, Decimal):
        amount = Decimal(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        amount = Decimal(int(value))
    else:
        raise MoneyRefused("INVALID", "Expected a decimal number as a string.")
    if not amount.is_finite():
        raise MoneyRefused("INVALID", "Expected a finite decimal number.")
    if amount.is_signed():
        raise MoneyRefused("NEGATIVE", "Must not be negative.")
    if amount >= _MONEY_LIMIT:
        raise MoneyRefused(
            "OUT_OF_RANGE", f"At most {MONEY_INTEGER_DIGITS} digits before the point."
        )
    # Safe now: quantize raises InvalidOperation when the result has too many digits (1e400).
    rounded = amount.quantize(MONEY_PLACES)
    if rounded != amount:
        raise MoneyRefused("INVALID", "At most 2 decimal places.")
    return rounded
