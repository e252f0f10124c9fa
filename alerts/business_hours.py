"""Working hours of a tenant (09:00-18:00 local on its working days): silence windows."""

from __future__ import annotations

import zoneinfo
from datetime import date, datetime, time, timedelta

# NOTE: tenants have no business hours of their own yet; DESIGN's default is 09:00-18:00.
OPENS = time(9, 0)
CLOSES = time(18, 0)
# The longest silence a rule may watch is 720 working hours (80 working days): a year back
# covers it whatever the holidays and closures.
LOOKBACK_DAYS = 370


def _is_working(day: date, off: set[date]) -> bool:
    return day.weekday() < 5 and day not in off


def _day_hours(day: date, zone: zoneinfo.ZoneInfo) -> tuple[datetime, datetime]:
    return datetime.combine(day, OPENS, tzinfo=zone), datetime.combine(day, CLOSES, tzinfo=zone)


def window_start(
    *, now: datetime, hours: int, zone: zoneinfo.ZoneInfo, off: set[date]
) -> datetime | None:
    """The instant from which exactly `hours` working hours run up to `now`; None when the
    lookback holds fewer (cannot happen for hours <= 720)."""
    remaining = timedelta(hours=hours)
    day = now.astimezone(zone).date()
    for _ in range(LOOKBACK_DAYS):
        if _is_working(day, off):
            opens, closes = _day_hours(day, zone)
            end = min(closes, now)
            if end > opens:
                available = end - opens
                if available >= remaining:
                    return end - remaining
                remaining -= available
        day -= timedelta(days=1)
    return None


def working_hours_between(
    start: datetime, end: datetime, *, zone: zoneinfo.ZoneInfo, off: set[date]
) -> timedelta:
    """The working time in [start, end)."""
    total = timedelta(0)
    day = start.astimezone(zone).date()
    last = end.astimezone(zone).date()
    while day <= last:
        if _is_working(day, off):
            opens, closes = _day_hours(day, zone)
            low, high = max(opens, start), min(closes, end)
            if high > low:
                total += high - low
        day += timedelta(days=1)
    return total
