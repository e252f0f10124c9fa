"""Snapshot days that cannot be computed: the supported date range, the rows outside it, and
failed days kept dirty with their reason and a retry with exponential backoff."""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.db import connection
from django.db.models import Q
from django.db.models.expressions import RawSQL

from kpis.aggregates import bounds
from pipeline.dirty import local_day
from pipeline.models import Activity, Deal, DealStageChange, DirtyDay, Lead, StageTransition
from tenants.models import Tenant

# Tenant-local days outside these are never computed: their periods cannot be labelled.
FIRST_DAY = date(1970, 1, 1)
LAST_DAY = date(2100, 12, 31)
OUT_OF_RANGE = f"outside the supported date range ({FIRST_DAY}..{LAST_DAY})"

RETRY_FIRST = timedelta(minutes=1)
RETRY_MAX = timedelta(hours=1)
ERROR_LENGTH = 300
# Rows described per table, timestamp and side of the range (the extremes come first).
OUTSIDE_ROWS_CAP = 100

_EPOCH = {
    "postgresql": "extract(epoch FROM {column})::float8",
    # NOTE: julianday() reads any stored text without Python's date conversions.
    "sqlite": "(julianday({column}) - 2440587.5) * 86400.0",
}
_TIMESTAMPS = (
    (Activity, "activity", "occurred_at"),
    (Lead, "lead", "created_at"),
    (StageTransition, "stage transition", "at"),
    (Deal, "deal", "created_at"),
    (Deal, "deal", "closed_at"),
    (DealStageChange, "deal stage change", "at"),
)


@dataclass(frozen=True)
class FailedDay:
    """A dirty day whose refresh failed: why, how often in a row, and when it is retried."""

    day: date
    error: str
    attempts: int
    failed_at: datetime
    retry_at: datetime | None


def is_supported(day: date) -> bool:
    return FIRST_DAY <= day <= LAST_DAY


def supported_instants(zone: zoneinfo.ZoneInfo) -> tuple[datetime, datetime]:
    """[lo, hi): the instants of the supported local days in `zone`."""
    return bounds(FIRST_DAY, LAST_DAY + timedelta(days=1), zone)


def due(now: datetime) -> Q:
    """Dirty days to refresh now: never failed, or whose retry time has come."""
    return Q(retry_at__isnull=True) | Q(retry_at__lte=now)


def retry_delay(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failure in a row: 1, 2, 4, ... minutes, at most 1 h."""
    return min(RETRY_FIRST * 2 ** min(max(attempts, 1) - 1, 16), RETRY_MAX)


def error_text(error: BaseException) -> str:
    """A short, printable reason: the exception's class and the first line of its message
    (never a traceback or the statement)."""
    lines = str(error).strip().splitlines()
    text = f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
    return "".join(char if char.isprintable() else " " for char in text)[:ERROR_LENGTH]


def record_failures(
    *,
    tenant: Tenant,
    errors: dict[date, str],
    now: datetime,
    previous: dict[date, int] | None = None,
) -> list[FailedDay]:
    """Keep each day of `errors` dirty with its failure: one more attempt, the reason, and
    the time of its retry. A day without a mark gets one (rows a rebuild found outside the
    range); `previous` gives attempts already made for days whose marks were dropped."""
    previous = previous or {}
    marks = {mark.day: mark for mark in DirtyDay.objects.filter(day__in=list(errors))}
    failed = []
    for day, error in sorted(errors.items()):
        mark = marks.get(day) or DirtyDay(
            tenant=tenant, day=day, rescan=True, attempts=previous.get(day, 0)
        )
        mark.attempts += 1
        mark.failed_at = now
        mark.error = error[:ERROR_LENGTH]
        mark.retry_at = now + retry_delay(mark.attempts)
        mark.save()
        failed.append(FailedDay(day, mark.error, mark.attempts, now, mark.retry_at))
    return failed


def _instant(epoch: float | None) -> datetime | None:
    if epoch is None:
        return None
    try:
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=epoch)
    except OverflowError:
        return None


def rows_outside(*, tenant: Tenant) -> dict[date, list[str]]:
    """The tenant's pipeline rows timed outside the supported range, described, by local day
    (the first or last date Python has when the value has no date there).

    Two index range reads per timestamp column, each capped (OUTSIDE_ROWS_CAP); the time is
    read as seconds since 1970 so no value, however far off, breaks the reading itself.
    """
    zone = zoneinfo.ZoneInfo(tenant.timezone)
    lo, hi = supported_instants(zone)
    found: dict[date, list[str]] = {}
    for model, label, field in _TIMESTAMPS:
        column = f'"{model._meta.db_table}"."{model._meta.get_field(field).column}"'
        epoch = RawSQL(_EPOCH[connection.vendor].format(column=column), ())
        for condition, order, fallback in (
            ({f"{field}__lt": lo}, field, date.min),
            ({f"{field}__gte": hi}, f"-{field}", date.max),
        ):
            rows = (
                model.objects.filter(**condition)
                .order_by(order)
                .annotate(_epoch=epoch)
                .values_list("pk", "_epoch")[:OUTSIDE_ROWS_CAP]
            )
            for pk, seconds in rows:
                moment = _instant(seconds)
                if moment is None:
                    day, shown = fallback, "beyond the years 1..9999"
                else:
                    day, shown = local_day(moment, zone), moment.isoformat()
                found.setdefault(day, []).append(f"{label} {pk} {field} {shown}")
    return found


def outside_errors(found: dict[date, list[str]]) -> dict[date, str]:
    """The failure reason of each day holding rows outside the supported range."""
    errors = {}
    for day, rows in found.items():
        more = f" and {len(rows) - 1} more" if len(rows) > 1 else ""
        errors[day] = f"{OUT_OF_RANGE}: {rows[0]}{more}"
    return errors


# Failed days listed by snapshot_health at most (the earliest first); the count is exact.
FAILED_DAYS_SHOWN = 100


@dataclass(frozen=True)
class SnapshotHealth:
    """How fresh a tenant's snapshots are: days waiting, days failing, a rebuild waiting."""

    pending_days: int
    failed_day_count: int
    failed_days: list[FailedDay]
    rebuild_requested_at: datetime | None


def snapshot_health(*, tenant: Tenant) -> SnapshotHealth:
    """The tenant's dirty days waiting for a first refresh, and those that failed (with why
    and when they are retried). Must run inside the tenant's context."""
    failed = list(
        DirtyDay.objects.filter(failed_at__isnull=False)
        .order_by("day")
        .values_list("day", "error", "attempts", "failed_at", "retry_at")[:FAILED_DAYS_SHOWN]
    )
    count = len(failed)
    if count == FAILED_DAYS_SHOWN:
        count = DirtyDay.objects.filter(failed_at__isnull=False).count()
    return SnapshotHealth(
        pending_days=DirtyDay.objects.filter(failed_at__isnull=True).count(),
        failed_day_count=count,
        failed_days=[FailedDay(*row) for row in failed],
        rebuild_requested_at=tenant.kpi_rebuild_requested_at,
    )
