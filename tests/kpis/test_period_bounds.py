"""Period labels name the years 1970..2100 only, in ASCII digits (kpis/periods.py)."""

from __future__ import annotations

from datetime import date

import pytest

from kpis.periods import PeriodError, PeriodOutOfRange, parse_period


@pytest.mark.parametrize(
    ("label", "start", "end"),
    [
        ("1970-01-01", date(1970, 1, 1), date(1970, 1, 2)),
        ("1970-W01", date(1969, 12, 29), date(1970, 1, 5)),  # the ISO year 1970 starts in 1969
        ("2100-12", date(2100, 12, 1), date(2101, 1, 1)),
        ("FY2100", date(2100, 4, 1), date(2101, 4, 1)),
        ("2026-01\n", date(2026, 1, 1), date(2026, 2, 1)),  # surrounding white space is ignored
    ],
)
def test_labels_at_the_edges_are_periods(label: str, start: date, end: date) -> None:
    period = parse_period(label, 4)
    assert (period.start, period.end, period.in_bounds) == (start, end, True)


@pytest.mark.parametrize("label", ["9999-12", "0000-01", "FY0001-Q1", "1969-12-31", "2101-W01"])
def test_years_outside_1970_to_2100_are_out_of_range(label: str) -> None:
    with pytest.raises(PeriodOutOfRange) as caught:
        parse_period(label, 4)
    assert str(caught.value) == f"{label!r} is outside the years 1970 to 2100."


@pytest.mark.parametrize(
    ("label", "message"),
    [
        ("2100-W53", "'2100-W53' is not a valid week period: Invalid week: 53."),
        ("2026-13", "'2026-13' is not a valid month period: month must be in 1..12."),
        ("2026-02-30", "'2026-02-30' is not a valid day period: day is out of range for month."),
        ("FY2026-Q5", "'FY2026-Q5' is not a period label; use 2026-11-26, 2026-W48, 2026-11, "
                      "FY2026-Q2 or FY2026."),
        ("２０２６-０１", "'２０２６-０１' is not a period label: write digits as 0-9."),  # noqa: RUF001
        ("2026-01\x00", "'2026-01\\x00' is not a period label; use 2026-11-26, 2026-W48, "
                        "2026-11, FY2026-Q2 or FY2026."),
        ("9" * 10_000, f"{'9' * 40!r}… is not a period label; use 2026-11-26, 2026-W48, "
                       "2026-11, FY2026-Q2 or FY2026."),
    ],
)  # fmt: skip
def test_malformed_labels_are_period_errors(label: str, message: str) -> None:
    with pytest.raises(PeriodError) as caught:
        parse_period(label, 4)
    assert not isinstance(caught.value, PeriodOutOfRange)
    assert str(caught.value) == message


def test_neighbours_of_the_edges_are_out_of_bounds() -> None:
    first = parse_period("1970-01", 4)
    assert (first.previous().label, first.previous().in_bounds) == ("1969-12", False)
    assert first.same_period_last_year().in_bounds is False
    last = parse_period("2100-12", 4)
    assert (last.previous().label, last.previous().in_bounds) == ("2100-11", True)
