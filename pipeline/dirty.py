"""Marking the tenant-local days touched by a write, so their KPI snapshots are recomputed."""

from __future__ import annotations

import json
import zoneinfo
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime

from django.db import connection, transaction
from django.utils import timezone

from pipeline.models import DirtyKind
from pipeline.statistics import analyze_soon
from tenants.models import Tenant

DirtyListener = Callable[[int], None]
_listeners: list[DirtyListener] = []


def register_dirty_listener(listener: DirtyListener) -> DirtyListener:
    """Call `listener(tenant_id)` after the commit of a transaction that marked days dirty.

    The KPI app registers its snapshot refresh here; pipeline imports no KPI code.
    """
    if listener not in _listeners:
        _listeners.append(listener)
    return listener


# listener(tenant_id), called at once, in the writer's transaction, whenever days are marked
# (notified or not): for caches that must not serve a value from before the mark.
_marked_listeners: list[DirtyListener] = []


def register_marked_listener(listener: DirtyListener) -> DirtyListener:
    """Call `listener(tenant_id)` as soon as days of the tenant are marked dirty (before
    commit; a listener that needs the commit registers its own on_commit)."""
    if listener not in _marked_listeners:
        _marked_listeners.append(listener)
    return listener


def notify_days_dirty(tenant_id: int) -> None:
    """Tell the listeners, on commit, that `tenant_id` has dirty days (for bulk writers)."""
    for listener in _listeners:
        transaction.on_commit(lambda listener=listener: listener(tenant_id))


# Kinds other apps register for their own rows (bits above DirtyKind.ALL), by name.
_app_kinds: dict[str, DirtyKind] = {}
# DirtyDay.kinds is a PositiveSmallIntegerField: 15 bits, the first four built in.
_MAX_KIND = 1 << 14


def register_dirty_kind(name: str) -> DirtyKind:
    """A DirtyKind bit of its own for an app's rows (idempotent by name), to pass as
    `mark_days_dirty(kinds=...)` and to name in the measures those rows feed: a refresh
    then recomputes only those measures on the days marked."""
    if name in _app_kinds:
        return _app_kinds[name]
    bit = (DirtyKind.ALL + 1) << len(_app_kinds)
    if bit > _MAX_KIND:
        raise ValueError("No DirtyKind bit is left for another app.")
    _app_kinds[name] = DirtyKind(bit)
    return _app_kinds[name]


# Beyond this many added ids a day is recounted instead, its periods' distinct counts from
# raw rows (about a second for a fiscal year of a million activities): every mark rewrites
# the list, and a refresh reads each listed row on its own.
ADDED_ACTIVITIES_CAP = 50_000


# The instants a Python datetime can hold.
_FIRST_INSTANT = datetime(1, 1, 1, tzinfo=UTC)
_LAST_INSTANT = datetime.max.replace(tzinfo=UTC)


def local_day(moment: datetime, zone: zoneinfo.ZoneInfo) -> date:
    """The local date of an aware `moment` in `zone`, clamped to the dates Python has.

    TRICKY: 0001-01-01T00:00Z is in year 0 in New York and 9999-12-31T23:00Z in year 10000
    at UTC+14: such a row must still be marked (on the first or last date) so that its day
    is refreshed, found outside the supported range, and reported, rather than crash the
    write that marks it.
    """
    try:
        return moment.astimezone(zone).date()
    except OverflowError:
        return date.min if moment.year < 5000 else date.max


def _local_days(tenant: Tenant, datetimes: Iterable[datetime | None]) -> dict[datetime, date]:
    zone = zoneinfo.ZoneInfo(tenant.timezone)
    days = {}
    for moment in datetimes:
        if moment is None:
            continue
        if timezone.is_naive(moment):
            raise ValueError(f"mark_days_dirty needs aware datetimes, got {moment!r}.")
        days[moment] = local_day(moment, zone)
    return days


def mark_days_dirty(
    *,
    tenant: Tenant,
    datetimes: Iterable[datetime | None],
    rescan: bool = False,
    kinds: DirtyKind = DirtyKind.ALL,
) -> None:
    """Mark the tenant-local day of each of `datetimes` dirty (None values skipped).

    Every datetime must be aware; it is converted to `tenant.timezone` before taking the date.
    `rescan` says rows were changed or re-attributed rather than only added (see DirtyDay);
    `kinds` says which measures the change can move (all by default).
    """
    days = set(_local_days(tenant, datetimes).values())
    # Activities marked here are recounted in full: which rows changed is not known.
    added = None if kinds & DirtyKind.ACTIVITIES else []
    _upsert(tenant, {day: added for day in days}, rescan=rescan, kinds=kinds)


def mark_activities_added(
    *, tenant: Tenant, added: Iterable[tuple[int, datetime]], notify: bool = True
) -> None:
    """Mark the days of newly inserted activities (id, occurred_at), listing their ids so a
    refresh counts just them. Only for rows that are new: a changed row needs a rescan."""
    added = list(added)
    local = _local_days(tenant, (moment for _, moment in added))
    by_day: dict[date, list[int] | None] = {}
    for pk, moment in added:
        ids = by_day.setdefault(local[moment], [])
        ids.append(pk)
    for day, ids in by_day.items():
        if len(ids) > ADDED_ACTIVITIES_CAP:
            by_day[day] = None
    _upsert(tenant, by_day, rescan=False, kinds=DirtyKind.ACTIVITIES, notify=notify)
    # A large batch may leave the planner's statistics behind: analysed soon, off this path.
    analyze_soon(rows=len(added))


# NOTE: one upsert merges a new mark into a day already dirty: the kinds add up, a rescan
# stays, and the added ids are concatenated unless either side must recount the day's
# activities (null) or the list grows past the cap. ON CONFLICT DO UPDATE locks the row, so
# a write waits for a refresh handling the day and then marks it anew: none is lost.
_UPSERT = """
INSERT INTO pipeline_dirtyday (tenant_id, day, marked_at, rescan, kinds, added_activities)
VALUES {rows}
ON CONFLICT (tenant_id, day) DO UPDATE SET
    rescan = pipeline_dirtyday.rescan OR excluded.rescan,
    kinds = pipeline_dirtyday.kinds | excluded.kinds,
    added_activities = CASE
        WHEN pipeline_dirtyday.added_activities IS NULL OR excluded.added_activities IS NULL
            THEN NULL
        WHEN {length}(pipeline_dirtyday.added_activities)
             + {length}(excluded.added_activities) > {cap}
            THEN NULL
        ELSE {concat}
    END
"""
_DIALECTS = {
    "postgresql": {
        "row": "(%s, %s, %s, %s, %s, %s::jsonb)",
        "length": "jsonb_array_length",
        "concat": "pipeline_dirtyday.added_activities || excluded.added_activities",
    },
    "sqlite": {
        "row": "(%s, %s, %s, %s, %s, json(%s))",
        "length": "json_array_length",
        "concat": (
            "(SELECT json_group_array(value) FROM ("
            "SELECT value FROM json_each(pipeline_dirtyday.added_activities) UNION ALL "
            "SELECT value FROM json_each(excluded.added_activities)))"
        ),
    },
}


# The nightly rebuild skips a tenant whose data no write marked since its last rebuild.
_CHANGED = "UPDATE tenants_tenant SET kpi_changed_at = %s WHERE id = %s AND kpi_changed_at IS NULL"


def _upsert(
    tenant: Tenant,
    days: dict[date, list[int] | None],
    *,
    rescan: bool,
    kinds: DirtyKind,
    notify: bool = True,
) -> None:
    if not days:
        return
    dialect = _DIALECTS[connection.vendor]
    ordered = sorted(days)  # one lock order for every writer: no deadlocks between them
    sql = _UPSERT.format(
        rows=", ".join(dialect["row"] for _ in ordered),
        length=dialect["length"],
        concat=dialect["concat"],
        cap=ADDED_ACTIVITIES_CAP,
    )
    now = timezone.now()
    params: list[object] = []
    for day in ordered:
        added = days[day]
        params += [
            tenant.pk,
            day,
            now,
            rescan,
            int(kinds),
            None if added is None else json.dumps(added),
        ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        # NOTE: one statement per batch, and a no-op (no row lock) once the tenant is marked
        # changed: only the first batch after a rebuild writes the tenant row.
        cursor.execute(_CHANGED, [now, tenant.pk])
    for listener in _marked_listeners:
        listener(tenant.pk)
    if notify:
        notify_days_dirty(tenant.pk)


def mark_lead_history_dirty(*, tenant: Tenant, lead_ids: Iterable[int]) -> None:
    """Mark for a recount every day on which the leads have a row whose attribution follows
    the lead (its source, and its owner for leads created and deals): after a lead changed
    source or owner. Six set-based queries, whatever the number of leads.
    """
    from pipeline.models import Activity, Deal, DealStageChange, Lead, StageTransition

    lead_ids = list(set(lead_ids))
    if not lead_ids:
        return
    moments: list[datetime | None] = []
    for queryset, field in (
        (Lead.objects.filter(pk__in=lead_ids), "created_at"),
        (Activity.objects.filter(lead_id__in=lead_ids), "occurred_at"),
        (StageTransition.objects.filter(lead_id__in=lead_ids), "at"),
        (Deal.objects.filter(lead_id__in=lead_ids), "created_at"),
        (Deal.objects.filter(lead_id__in=lead_ids), "closed_at"),
        (DealStageChange.objects.filter(deal__lead_id__in=lead_ids), "at"),
    ):
        # TRICKY: a time stored by raw SQL can lie before year 1 (PostgreSQL keeps BC
        # times), which no Python datetime holds: reading it would fail the whole write.
        # Such a row is never counted anyway (see kpis.failures).
        within = {f"{field}__range": (_FIRST_INSTANT, _LAST_INSTANT)}
        moments.extend(queryset.filter(**within).values_list(field, flat=True))
    mark_days_dirty(tenant=tenant, datetimes=moments, rescan=True)
