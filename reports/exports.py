"""CSV exports of series, leaderboards and report tables, from the same selectors as the API.

Cells that a spreadsheet would run as a formula (starting with =, +, -, @, tab or CR) are
prefixed with an apostrophe; numbers are written as the API shows them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

from kpis.numbers import shown

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = str(value)
    # NOTE: a negative number stays a number; any other text is defused.
    if text.startswith(_FORMULA_START) and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def csv_text(header: list[str], rows: Iterable[Iterable[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(value) for value in row])
    return out.getvalue()


def series_csv(points: list[tuple[Any, Any]]) -> str:
    """period, value, numerator, denominator[, comparison period, comparison value]."""
    return csv_text(
        ["period", "value", "numerator", "denominator", "comparison_period", "comparison_value"],
        (
            [
                value.period.label,
                shown(value.value),
                value.numerator,
                value.denominator,
                None if other is None else other.period.label,
                None if other is None else shown(other.value),
            ]
            for value, other in points
        ),
    )


def leaderboard_csv(entries: list[Any]) -> str:
    return csv_text(
        ["rank", "label", "scope_type", "scope_key", "value", "numerator", "denominator"],
        (
            [
                entry.rank,
                entry.label,
                entry.value.scope.type,
                entry.value.scope.key,
                shown(entry.value.value),
                entry.value.numerator,
                entry.value.denominator,
            ]
            for entry in entries
        ),
    )


def report_table_csv(data: dict[str, Any], table: str) -> str:
    """One table of a stored report: rep_table, movers, tree or funnel."""
    if table == "rep_table":
        rep_table = data["rep_table"]
        return csv_text(
            ["rep", *rep_table["kpis"]],
            ([row["label"], *row["values"]] for row in rep_table["rows"]),
        )
    if table == "movers":
        return csv_text(
            ["kpi", "value", "previous", "change_percent"],
            ([m["kpi"], m["value"], m["previous"], m["change_percent"]] for m in data["movers"]),
        )
    if table == "tree":
        return csv_text(
            ["depth", "label", "kpi", "actual", "target", "required", "attainment", "previous"],
            (
                [n["depth"], n["label"], n["kpi"], n["actual"], n["target"], n["required"],
                 n["attainment"], n["previous"]]
                for n in data["tree"]["nodes"]
            ),
        )  # fmt: skip
    return csv_text(
        ["stage", "count", "previous", "step_conversion", "drop_off"],
        (
            [s["stage"], s["count"], s["previous"], s["step_conversion"], s["drop_off"]]
            for s in data["funnel"]["steps"]
        ),
    )
