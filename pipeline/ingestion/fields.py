"""Field readers: how each value of a batch row is checked and converted, with its row errors.

A reader is a closure built once per batch and kind: `read(row, errors)` returns the
converted value and appends `(field, code, message)` for every problem. Readers take the
common case (a value of the right type) first, so a row of good values costs a few dict
look-ups and type checks; nothing is instantiated per row. `field` in an error is always the
client's camelCase name, whether the rows were keyed in snake_case (the service, CSV import,
the typed GraphQL inputs) or camelCase (the JSON GraphQL input).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from enum import StrEnum
from typing import Any, NamedTuple

from django.utils import timezone

from pipeline import bounds
from pipeline.ingestion.results import RowErrorCode
from tenants.errors import camel_case

Errors = list[tuple[str | None, RowErrorCode, str]]
Reader = Callable[[dict[str, Any], Errors], Any]

# PostgreSQL `integer` (Django's IntegerField and PositiveIntegerField).
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
# A row naming more unknown keys than this gets one error for the rest.
UNKNOWN_KEYS_REPORTED = 10
_FIELD_NAME_MAX = 100

_REQUIRED = "This field is required."
_INVALID_DATETIME = "Expected an ISO 8601 date-time."


class Naming(StrEnum):
    """How the keys of a batch's rows are spelled."""

    SNAKE = "snake"  # external_id: the service, CSV import and the typed GraphQL inputs
    CAMEL = "camel"  # externalId: the JSON GraphQL input, exactly as documented


class Field(NamedTuple):
    """One value of a row (`name`, as stored) and the row keys its reader looks at."""

    name: str
    keys: tuple[str, ...]
    read: Reader


class RowReader:
    """Reads one kind of row: refuses unknown keys, then runs every field's reader in order."""

    def __init__(self, naming: Naming, fields: Sequence[Field]):
        self.naming = naming
        self.fields = tuple(fields)
        self.readers = tuple(field.read for field in fields)
        self.allowed = frozenset(key for field in fields for key in field.keys)

    def read(self, raw: Any) -> tuple[list[Any], Errors]:
        errors: Errors = []
        if type(raw) is not dict and not isinstance(raw, dict):
            errors.append((None, RowErrorCode.INVALID, "A row must be an object."))
            raw = {}
        if not raw.keys() <= self.allowed:
            unknown = [key for key in raw if key not in self.allowed]
            for key in unknown[:UNKNOWN_KEYS_REPORTED]:
                errors.append(
                    (
                        self._field_name(key),
                        RowErrorCode.UNKNOWN_FIELD,
                        "Not a field of this kind of row.",
                    )
                )
            if len(unknown) > UNKNOWN_KEYS_REPORTED:
                more = len(unknown) - UNKNOWN_KEYS_REPORTED
                errors.append((None, RowErrorCode.UNKNOWN_FIELD, f"And {more} more unknown keys."))
        return [read(raw, errors) for read in self.readers], errors

    def _field_name(self, key: Any) -> str:
        """An unknown key as the error's `field`: bounded and storable (the result is kept)."""
        name = str(key)[:_FIELD_NAME_MAX]
        if bounds.text_problem(name) is not None:
            name = name.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")
        return camel_case(name) if self.naming is Naming.SNAKE else name


class Fields:
    """Reader factories for one naming: `fields.text("company", max_length=200)`.

    `now` is the batch's time: timestamps after it plus a day (clock skew) are refused.
    """

    def __init__(self, naming: Naming, *, now: dt.datetime | None = None):
        self.naming = naming
        self.latest = bounds.latest(now or timezone.now())

    def key(self, name: str) -> str:
        return name if self.naming is Naming.SNAKE else camel_case(name)

    def text(self, name: str, *, max_length: int, required: bool = False) -> Field:
        key, field = self.key(name), camel_case(name)

        def read(row: dict[str, Any], errors: Errors) -> str:
            value = row.get(key)
            if type(value) is not str or not value:
                if value is None or value == "":
                    if required:
                        errors.append((field, RowErrorCode.REQUIRED, _REQUIRED))
                    return ""
                if not isinstance(value, str):
                    errors.append((field, RowErrorCode.INVALID, "Expected a string."))
                    return ""
            if len(value) > max_length:
                errors.append((field, RowErrorCode.TOO_LONG, f"At most {max_length} characters."))
            problem = bounds.text_problem(value)
            if problem is not None:
                errors.append((field, RowErrorCode.INVALID, problem))
            return value

        return Field(name, (key,), read)

    def integer(self, name: str, *, minimum: int = INT_MIN, default: int | None = None) -> Field:
        key, field = self.key(name), camel_case(name)
        below = RowErrorCode.NEGATIVE if minimum == 0 else RowErrorCode.OUT_OF_RANGE

        def read(row: dict[str, Any], errors: Errors) -> int | None:
            value = row.get(key)
            if type(value) is int:
                if minimum <= value <= INT_MAX:
                    return value
                if value < minimum:
                    errors.append((field, below, f"Must be at least {minimum}."))
                else:
                    errors.append((field, RowErrorCode.OUT_OF_RANGE, f"Must be at most {INT_MAX}."))
                return value
            if value is None or value == "":
                return default
            if isinstance(value, bool) or not isinstance(value, int):
                errors.append((field, RowErrorCode.INVALID, "Expected an integer."))
                return default
            return read({key: int(value)}, errors)  # an int subclass (an IntEnum)

        return Field(name, (key,), read)

    def boolean(self, name: str, *, default: bool) -> Field:
        key, field = self.key(name), camel_case(name)

        def read(row: dict[str, Any], errors: Errors) -> bool:
            value = row.get(key)
            if value is True or value is False:
                return value
            if value is None:
                return default
            errors.append((field, RowErrorCode.INVALID, "Expected true or false."))
            return default

        return Field(name, (key,), read)

    def choice(self, name: str, choices: Iterable[str], *, required: bool = False) -> Field:
        key, field = self.key(name), camel_case(name)
        allowed = [str(choice) for choice in choices]
        allowed_set = frozenset(allowed)
        message = f"Expected one of: {', '.join(allowed)}."

        def read(row: dict[str, Any], errors: Errors) -> str:
            value = row.get(key)
            if type(value) is str and value in allowed_set:
                return value
            if value is None or value == "":
                if required:
                    errors.append((field, RowErrorCode.REQUIRED, _REQUIRED))
                return ""
            if isinstance(value, str) and value in allowed_set:
                return str(value)
            errors.append((field, RowErrorCode.INVALID_CHOICE, message))
            return ""

        return Field(name, (key,), read)

    def moment(self, name: str, *, required: bool = False) -> Field:
        key, field = self.key(name), camel_case(name)
        parse = dt.datetime.fromisoformat
        latest = self.latest
        # Any local time in these years is inside the window, with any offset up to ±14:00.
        first_year = bounds.EARLIEST.year + 1
        last_year = (latest - bounds.MAX_OFFSET - dt.timedelta(hours=1)).year - 1

        def read(row: dict[str, Any], errors: Errors) -> dt.datetime | None:
            value = row.get(key)
            if type(value) is str and value:
                # ASCII only: no full-width digits; bounded: no megabyte strings to parse.
                if len(value) > bounds.MOMENT_MAX_LENGTH or not value.isascii():
                    errors.append((field, RowErrorCode.INVALID_DATETIME, _INVALID_DATETIME))
                    return None
                try:
                    parsed = parse(value)
                except ValueError:
                    errors.append((field, RowErrorCode.INVALID_DATETIME, _INVALID_DATETIME))
                    return None
            elif value is None or value == "":
                if required:
                    errors.append((field, RowErrorCode.REQUIRED, _REQUIRED))
                return None
            elif isinstance(value, dt.datetime):
                parsed = value
            else:
                # A JSON number, boolean, list or object: not a date-time.
                errors.append((field, RowErrorCode.INVALID_DATETIME, _INVALID_DATETIME))
                return None
            offset = parsed.utcoffset()
            if offset is None:
                errors.append(
                    (
                        field,
                        RowErrorCode.NAIVE_DATETIME,
                        "Give the time zone offset (e.g. +09:00 or Z).",
                    )
                )
                return None
            # The common case, by cheap checks: a real offset, and a local year that lies
            # inside the window whatever the offset (exact aware comparisons cost more).
            if (
                first_year <= parsed.year <= last_year
                and -bounds.MAX_OFFSET <= offset <= bounds.MAX_OFFSET
            ):
                return parsed
            if (
                -bounds.MAX_OFFSET <= offset <= bounds.MAX_OFFSET
                and bounds.EARLIEST <= parsed <= latest
            ):
                return parsed
            problem = bounds.moment_problem(parsed, latest)
            errors.append((field, RowErrorCode.OUT_OF_RANGE, problem or _INVALID_DATETIME))
            return None

        return Field(name, (key,), read)

    def money(self, name: str, *, required: bool = False) -> Field:
        key, field = self.key(name), camel_case(name)
        parse = bounds.money_parse

        def read(row: dict[str, Any], errors: Errors) -> Decimal | None:
            value = row.get(key)
            if value is None or value == "":
                if required:
                    errors.append((field, RowErrorCode.REQUIRED, _REQUIRED))
                return None
            try:
                return parse(value)
            except bounds.MoneyRefused as refused:
                errors.append((field, RowErrorCode(refused.code), refused.message))
                return None

        return Field(name, (key,), read)

    def mapping(self, name: str) -> Field:
        key, field = self.key(name), camel_case(name)

        def read(row: dict[str, Any], errors: Errors) -> dict[str, Any]:
            value = row.get(key)
            if value is None:
                return {}
            if not isinstance(value, dict):
                errors.append((field, RowErrorCode.INVALID, "Expected an object."))
                return {}
            problem = bounds.attributes_problem(value)
            if problem is not None:
                too_long, message = problem
                code = RowErrorCode.TOO_LONG if too_long else RowErrorCode.INVALID
                errors.append((field, code, message))
                return {}
            return value

        return Field(name, (key,), read)

    def reference(
        self,
        name: str,
        *,
        key_name: str,
        lookup: Callable[[], dict[str, int]],
        message: str,
        max_length: int,
        required: bool = False,
    ) -> Field:
        """A row referring to another row by a text key (an external id, a team's name)."""
        text = self.text(key_name, max_length=max_length, required=required)
        field = camel_case(key_name)

        def read(row: dict[str, Any], errors: Errors) -> int | None:
            value = text.read(row, errors)
            if not value:
                return None
            pk = lookup().get(value)
            if pk is None:
                errors.append((field, RowErrorCode.UNKNOWN_REFERENCE, message))
            return pk

        return Field(name, text.keys, read)

    def member(
        self, prefix: str, *, lookup: Callable[[], tuple[dict[str, int | None], dict[str, int]]]
    ) -> Field:
        """The Membership id of `<prefix>_email` or `<prefix>_username`, or None if neither."""
        email = self.text(f"{prefix}_email", max_length=254)
        username = self.text(f"{prefix}_username", max_length=150)
        email_field, username_field = (
            camel_case(f"{prefix}_email"),
            camel_case(f"{prefix}_username"),
        )

        def read(row: dict[str, Any], errors: Errors) -> int | None:
            by_email = email.read(row, errors)
            by_username = username.read(row, errors)
            if not by_email and not by_username:
                return None
            emails, usernames = lookup()
            pk = emails.get(by_email.lower()) if by_email else usernames.get(by_username)
            if pk is None:
                errors.append(
                    (
                        email_field if by_email else username_field,
                        RowErrorCode.UNKNOWN_REFERENCE,
                        "No member of this workspace matches.",
                    )
                )
            return pk

        return Field(f"{prefix}_id", (*email.keys, *username.keys), read)
