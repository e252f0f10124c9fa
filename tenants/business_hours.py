"""Business hours of a tenant (default 09:00-18:00 local on its working days): business time
between two instants, and the deadline N business hours after an instant.

Working days are the KPI calendar's (weekdays minus public holidays and closures: pass
`days_off(...)` from `tenants.calendars`). Opening and closing are local clock times, so
they follow daylight-saving changes; durations are measured in real (UTC) time.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

OPENS = time(9, 0)
CLOSES = time(18, 0)
# The longest window looked back or ahead over is 720 business hours (80 working days): a
# year covers it whatever the holidays and closures.
LOOKBACK_DAYS = 370


@dataclass(frozen=True)
class BusinessHours:
    """A tenant's business calendar, enough to measure business time without a query."""

    zone: zoneinfo.ZoneInfo
    off: frozenset[date] | set[date]
    opens: time = OPENS
    closes: time = CLOSES

    def between(self, start: datetime, end: datetime) -> timedelta:
        return working_hours_between(
            start, end, zone=self.zone, off=self.off, opens=self.opens, closes=self.closes
        )

    def deadline(self, start: datetime, hours: float) -> datetime | None:
        return business_deadline(
            start, hours, zone=self.zone, off=self.off, opens=self.opens, closes=self.closes
        )


def _is_working(day: date, off: set[date] | frozenset[date]) -> bool:
    return day.weekday() < 5 and day not in off


def _day_hours(
    day: date, zone: zoneinfo.ZoneInfo, opens: time, closes: time
) -> tuple[datetime, datetime]:
    # NOTE: converted to UTC so that subtracting two of them gives real elapsed time (Python
    # subtracts wall clocks when both sides share one tzinfo).
    return (
        datetime.combine(day, opens, tzinfo=zone).astimezone(UTC),
        datetime.combine(day, closes, tzinfo=zone).astimezone(UTC),
    )


def window_start(
    *,
    now: datetime,
    hours: int,
    zone: zoneinfo.ZoneInfo,
    off: set[date] | frozenset[date],
    opens: time = OPENS,
    closes: time = CLOSES,
) -> datetime | None:
    """The instant from which exactly `hours` working hours run up to `now`; None when the
    lookback holds fewer (cannot happen for hours <= 720)."""
    remaining = timedelta(hours=hours)
    now = now.astimezone(UTC)
    day = now.astimezone(zone).date()
    for _ in range(LOOKBACK_DAYS):
        if _is_working(day, off):
            day_opens, day_closes = _day_hours(day, zone, opens, closes)
            end = min(day_closes, now)
            if end > day_opens:
                available = end - day_opens
                if available >= remaining:
                    return end - remaining
                remaining -= available
        day -= timedelta(days=1)
    return None


def working_hours_between(
    start: datetime,
    end: datetime,
    *,
    zone: zoneinfo.ZoneInfo,
    off: set[date] | frozenset[date],
    opens: time = OPENS,
    closes: time = CLOSES,
) -> timedelta:
    """The business time in [start, end): its overlap with business hours on working days."""
    total = timedelta(0)
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    day = start.astimezone(zone).date()
    last = end.astimezone(zone).date()
    while day <= last:
        if _is_working(day, off):
            day_opens, day_closes = _day_hours(day, zone, opens, closes)
            low, high = max(day_opens, start), min(day_closes, end)
            if high > low:
                total += high - low
        day += timedelta(days=1)
    return total


def business_deadline(
    start: datetime,
    hours: float,
    *,
    zone: zoneinfo.ZoneInfo,
    off: set[date] | frozenset[date],
    opens: time = OPENS,
    closes: time = CLOSES,
) -> datetime | None:
    """The first instant at which `hours` business hours after `start` have elapsed (a window
    that runs out at closing time ends there, not at the next opening); None beyond the
    lookahead (cannot happen for hours <= 720)."""
    remaining = timedelta(hours=hours)
    start = start.astimezone(UTC)
    if remaining <= timedelta(0):
        return start
    day = start.astimezone(zone).date()
    for _ in range(LOOKBACK_DAYS):
        if _is_working(day, off):
            day_opens, day_closes = _day_hours(day, zone, opens, closes)
            low = max(day_opens, start)
            if day_closes > low:
                available = day_closes - low
                if available >= remaining:
                    return low + remaining
                remaining -= available
        day += timedelta(days=1)
    return None
