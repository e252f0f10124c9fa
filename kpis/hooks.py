"""Callbacks apps above kpis register to hear which periods a snapshot refresh rewrote.

`kpis` imports no app above it: alerts register here from their AppConfig.ready(), as kpis
itself registers with pipeline.dirty and tenants.hooks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date

from django.db import transaction

# listener(tenant_id, days): the tenant-local days whose snapshots (and enclosing periods)
# were rewritten; None means every day (a full rebuild).
PeriodsRefreshedListener = Callable[[int, "tuple[date, ...] | None"], None]
_listeners: list[PeriodsRefreshedListener] = []


def register_periods_refreshed(listener: PeriodsRefreshedListener) -> PeriodsRefreshedListener:
    if listener not in _listeners:
        _listeners.append(listener)
    return listener


def run_periods_refreshed(tenant_id: int, days: Iterable[date] | None) -> None:
    """Tell the listeners, once the caller's transaction commits, that `days` (None: all)
    of the tenant were refreshed. Outside a transaction they are told at once."""
    if not _listeners:
        return
    refreshed = None if days is None else tuple(sorted(set(days)))
    for listener in _listeners:
        transaction.on_commit(lambda listener=listener: listener(tenant_id, refreshed))
