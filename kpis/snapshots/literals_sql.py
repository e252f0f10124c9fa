"""PostgreSQL array literals for the large array parameters of the snapshot statements.

NOTE: psycopg adapts a list element by element (about 8 ms per 10,000 numbers, and a
regular-expression check per string); formatting one literal per array, sent as a single
text parameter and cast in SQL (`%s::bigint[]`), is several times cheaper.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def numbers(values: Iterable[Any]) -> str:
    """An array literal of numbers (ints and Decimals print as valid input)."""
    return "{" + ",".join(map(str, values)) + "}"


def _quoted(value: Any) -> str:
    if value is None:
        return "NULL"
    text = str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def texts(values: Iterable[Any]) -> str:
    """An array literal of texts (or dates, as ISO text); every element is quoted, so any
    text is taken as it is (None is NULL)."""
    return "{" + ",".join(map(_quoted, values)) + "}"
