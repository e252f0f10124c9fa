"""Calendar periods in a tenant's time zone: days, ISO weeks, months, fiscal quarters and years.

Every period is a half-open range [start, end) of tenant-local dates; its instants are the
local midnights of `start` and `end` in the tenant's zone. Labels:

- day `2026-11-26`; week `2026-W48` (ISO week, Monday first, ISO year);
- month `2026-11`;
- fiscal quarter `FY2026-Q2` and fiscal year `FY2026`, labelled by the calendar year in which
  the fiscal year starts (with an April start, FY2026-Q2 is July to September 2026).

Labels and dates from outside are bounded to the years 1970..2100 (the year of the label: ISO
year for weeks, fiscal year for FY labels), so every period, its neighbours and the dates the
snapshots hold stay far from the limits of Python's dates. Digits are ASCII only.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db import models

from tenants.bounds import MAX_YEAR, MIN_YEAR, shown


class Grain(models.TextChoices):
    DAY = "day", "Day"
    WEEK = "week", "Week (ISO)"
    MONTH = "month", "Month"
    QUARTER = "quarter", "Fiscal quarter"
    YEAR = "year", "Fiscal year"


COARSE_GRAINS: tuple[str, ...] = (Grain.WEEK, Grain.MONTH, Grain.QUARTER, Grain.YEAR)


class PeriodError(ValueError):
    """A period label or range that cannot be understood."""


class PeriodOutOfRange(PeriodError):
    """A period or date outside the years MIN_YEAR..MAX_YEAR."""


# The longest label is a day (10 characters); anything much longer is not worth echoing.
_MAX_LABEL_LENGTH = 32


@dataclass(frozen=True, order=True)
class Period:
    """A half-open range [start, end) of tenant-local dates with its grain and label."""

    start: date
    end: date
    grain: str
    label: str
    fiscal_year_start_month: int = 4

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def year(self) -> int:
        """The year the label names: calendar year, ISO year (weeks) or fiscal year (FY)."""
        return int(self.label[2:6] if self.label.startswith("FY") else self.label[:4])

    @property
    def in_bounds(self) -> bool:
        """Whether the period's year is within MIN_YEAR..MAX_YEAR."""
        return MIN_YEAR <= self.year <= MAX_YEAR

    def contains(self, day: date) -> bool:
        return self.start <= day < self.end

    def bounds(self, tz: str | zoneinfo.ZoneInfo) -> tuple[datetime, datetime]:
        """The aware instants [start, end) of the period's local midnights in `tz`."""
        zone = zoneinfo.ZoneInfo(tz) if isinstance(tz, str) else tz
        return (
            datetime.combine(self.start, time.min, tzinfo=zone),
            datetime.combine(self.end, time.min, tzinfo=zone),
        )

    def previous(self) -> Period:
        return period_containing(
            self.grain, self.start - timedelta(days=1), self.fiscal_year_start_month
        )

    def next(self) -> Period:
        return period_containing(self.grain, self.end, self.fiscal_year_start_month)

    def same_period_last_year(self) -> Period:
        """The period of the same grain a year earlier (ISO week number kept for weeks)."""
        if self.grain == Grain.WEEK:
            iso_year, week, _ = self.start.isocalendar()
            week = min(week, _iso_weeks_in_year(iso_year - 1))
            return period_containing(
                Grain.WEEK,
                date.fromisocalendar(iso_year - 1, week, 1),
                self.fiscal_year_start_month,
            )
        return period_containing(
            self.grain, _shift_years(self.start, -1), self.fiscal_year_start_month
        )


def _shift_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _iso_weeks_in_year(iso_year: int) -> int:
    return date(iso_year, 12, 28).isocalendar()[1]


def _add_months(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


def _check_fiscal_start(fiscal_year_start_month: int) -> None:
    if not 1 <= fiscal_year_start_month <= 12:
        raise PeriodError(
            f"Fiscal year start month must be 1 to 12, not {fiscal_year_start_month}."
        )


def fiscal_year_of(day: date, fiscal_year_start_month: int) -> int:
    """The calendar year in which the fiscal year containing `day` starts."""
    return day.year if day.month >= fiscal_year_start_month else day.year - 1


def period_containing(grain: str, day: date, fiscal_year_start_month: int = 4) -> Period:
    """The period of `grain` that contains the tenant-local date `day`."""
    _check_fiscal_start(fiscal_year_start_month)
    fy = fiscal_year_start_month
    if grain == Grain.DAY:
        return Period(day, day + timedelta(days=1), Grain.DAY, day.isoformat(), fy)
    if grain == Grain.WEEK:
        start = day - timedelta(days=day.weekday())
        iso_year, week, _ = day.isocalendar()
        return Period(start, start + timedelta(days=7), Grain.WEEK, f"{iso_year}-W{week:02d}", fy)
    if grain == Grain.MONTH:
        start = day.replace(day=1)
        year, month = _add_months(day.year, day.month, 1)
        return Period(start, date(year, month, 1), Grain.MONTH, f"{day.year}-{day.month:02d}", fy)
    if grain in (Grain.QUARTER, Grain.YEAR):
        fiscal_year = fiscal_year_of(day, fy)
        months_in = (day.year - fiscal_year) * 12 + day.month - fy
        if grain == Grain.YEAR:
            end_year, end_month = _add_months(fiscal_year, fy, 12)
            return Period(
                date(fiscal_year, fy, 1),
                date(end_year, end_month, 1),
                Grain.YEAR,
                f"FY{fiscal_year}",
                fy,
            )
        quarter = months_in // 3
        start_year, start_month = _add_months(fiscal_year, fy, quarter * 3)
        end_year, end_month = _add_months(start_year, start_month, 3)
        return Period(
            date(start_year, start_month, 1),
            date(end_year, end_month, 1),
            Grain.QUARTER,
            f"FY{fiscal_year}-Q{quarter + 1}",
            fy,
        )
    raise PeriodError(f"Unknown grain {grain!r}.")


def periods_overlapping(
    grain: str, start: date, end: date, fiscal_year_start_month: int = 4
) -> list[Period]:
    """The periods of `grain` that overlap the dates [start, end), in order."""
    periods: list[Period] = []
    if end <= start:
        return periods
    period = period_containing(grain, start, fiscal_year_start_month)
    while period.start < end:
        periods.append(period)
        period = period.next()
    return periods


# NOTE: [0-9] and \Z, not \d and $: \d matches full-width and other Unicode digits
# (U+FF10..U+FF19), and $ matches before a trailing newline.
_LABELS = (
    (re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})\Z"), Grain.DAY),
    (re.compile(r"([0-9]{4})-W([0-9]{2})\Z"), Grain.WEEK),
    (re.compile(r"([0-9]{4})-([0-9]{2})\Z"), Grain.MONTH),
    (re.compile(r"FY([0-9]{4})-Q([1-4])\Z"), Grain.QUARTER),
    (re.compile(r"FY([0-9]{4})\Z"), Grain.YEAR),
)
_HINT = "use 2026-11-26, 2026-W48, 2026-11, FY2026-Q2 or FY2026"


def parse_period(label: str, fiscal_year_start_month: int = 4) -> Period:
    """The period named by `label` (see the module docstring); PeriodError if malformed."""
    _check_fiscal_start(fiscal_year_start_month)
    if len(label) > _MAX_LABEL_LENGTH:
        raise PeriodError(f"{shown(label)} is not a period label; {_HINT}.")
    text = label.strip(" \t\r\n")
    for pattern, grain in _LABELS:
        match = pattern.match(text)
        if not match:
            continue
        numbers = [int(part) for part in match.groups()]
        if not MIN_YEAR <= numbers[0] <= MAX_YEAR:
            raise PeriodOutOfRange(f"{shown(label)} is outside the years {MIN_YEAR} to {MAX_YEAR}.")
        try:
            if grain == Grain.DAY:
                day = date(*numbers)
            elif grain == Grain.WEEK:
                day = date.fromisocalendar(numbers[0], numbers[1], 1)
            elif grain == Grain.MONTH:
                day = date(numbers[0], numbers[1], 1)
            elif grain == Grain.QUARTER:
                year, month = _add_months(numbers[0], fiscal_year_start_month, 3 * (numbers[1] - 1))
                day = date(year, month, 1)
            else:
                day = date(numbers[0], fiscal_year_start_month, 1)
        except ValueError as exc:
            raise PeriodError(f"{shown(label)} is not a valid {grain} period: {exc}.") from exc
        return period_containing(grain, day, fiscal_year_start_month)
    if any(char.isdigit() and not char.isascii() for char in text):
        raise PeriodError(f"{shown(label)} is not a period label: write digits as 0-9.")
    raise PeriodError(f"{shown(label)} is not a period label; {_HINT}.")


def local_date(moment: datetime, tz: str | zoneinfo.ZoneInfo) -> date:
    """The tenant-local date of an aware instant."""
    zone = zoneinfo.ZoneInfo(tz) if isinstance(tz, str) else tz
    return moment.astimezone(zone).date()
