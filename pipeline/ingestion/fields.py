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
import json
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, NamedTuple

from pipeline.ingestion.results import RowErrorCode
from tenants.errors import camel_case

Errors = list[tuple[str | None, RowErrorCode, str]]
Reader = Callable[[dict[str, Any], Errors], Any]

MONEY_PLACES = Decimal("0.01")
MONEY_MAX_DIGITS = 16
# PostgreSQL `integer` (Django's IntegerField and PositiveIntegerField).
INT_MIN, INT_MAX = -(2**31), 2**31 - 1

_REQUIRED = "This field is required."
_NUL = "Must not contain NUL characters."


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
            for key in raw:
                if key not in self.allowed:
                    name = camel_case(str(key)) if self.naming is Naming.SNAKE else str(key)
                    errors.append(
                        (name, RowErrorCode.UNKNOWN_FIELD, "Not a field of this kind of row.")
                    )
        return [read(raw, errors) for read in self.readers], errors


class Fields:
    """Reader factories for one naming: `fields.text("company", max_length=200)`."""

    def __init__(self, naming: Naming):
        self.naming = naming

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
            if "\x00" in value:
                errors.append((field, RowErrorCode.INVALID, _NUL))
            return value

        return Field(name, (key,), read)

    def integer(self, name: str, *, minimum: int = INT_MIN, default: int | None = None) -> Field:
        key, field = self.key(name), camel_case(name)
        below = RowErrorCode.NEGATIVE if minimum == 0 else RowErrorCode.INVALID

        def read(row: dict[str, Any], errors: Errors) -> int | None:
            value = row.get(key)
            if type(value) is int:
                if minimum <= value <= INT_MAX:
                    return value
                if value < minimum:
                    errors.append((field, below, f"Must be at least {minimum}."))
                else:
                    errors.append((field, RowErrorCode.INVALID, f"Must be at most {INT_MAX}."))
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

        def read(row: dict[str, Any], errors: Errors) -> dt.datetime | None:
            value = row.get(key)
            if type(value) is str and value:
                try:
                    parsed = parse(value)
                except ValueError:
                    errors.append(
                        (field, RowErrorCode.INVALID_DATETIME, "Expected an ISO 8601 date-time.")
                    )
                    return None
            elif value is None or value == "":
                if required:
                    errors.append((field, RowErrorCode.REQUIRED, _REQUIRED))
                return None
            elif isinstance(value, dt.datetime):
                parsed = value
            else:
                try:
                    parsed = parse(value)
                except (TypeError, ValueError):
                    errors.append(
                        (field, RowErrorCode.INVALID_DATETIME, "Expected an ISO 8601 date-time.")
                    )
                    return None
            if parsed.utcoffset() is None:
                errors.append(
                    (
                        field,
                        RowErrorCode.NAIVE_DATETIME,
                        "Give the time zone offset (e.g. +09:00 or Z).",
                    )
                )
                return None
            return parsed

        return Field(name, (key,), read)

    def money(self, name: str, *, required: bool = False) -> Field:
        key, field = self.key(name), camel_case(name)

        def read(row: dict[str, Any], errors: Errors) -> Decimal | None:
            value = row.get(key)
            if value is None or value == "":
                if required:
                    errors.append((field, RowErrorCode.REQUIRED, _REQUIRED))
                return None
            if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
                errors.append(
                    (field, RowErrorCode.INVALID, "Expected a decimal number as a string.")
                )
                return None
            try:
                amount = Decimal(value)
            except InvalidOperation:
                amount = Decimal("NaN")
            if not amount.is_finite():
                errors.append((field, RowErrorCode.INVALID, "Expected a decimal number."))
                return None
            if amount < 0:
                errors.append((field, RowErrorCode.NEGATIVE, "Must not be negative."))
                return None
            rounded = amount.quantize(MONEY_PLACES)
            if amount != rounded or len(rounded.as_tuple().digits) > MONEY_MAX_DIGITS:
                errors.append(
                    (field, RowErrorCode.INVALID, "At most 14 digits and 2 decimal places.")
                )
                return None
            return rounded

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
            if value:
                try:
                    encoded = json.dumps(value)
                except (TypeError, ValueError):
                    errors.append((field, RowErrorCode.INVALID, "Expected a JSON object."))
                    return {}
                # NOTE: PostgreSQL's jsonb cannot hold U+0000; refuse it here, per row.
                if "\\u0000" in encoded:
                    errors.append((field, RowErrorCode.INVALID, _NUL))
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
