"""Callbacks apps above pipeline register to hear that a tenant's records arrived.

`pipeline` imports no app above it: handoff registers here from its AppConfig.ready() to
qualify the new and changed leads, as kpis registers with pipeline.dirty.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import transaction

# listener(tenant_id): a partner batch or import chunk of the tenant was stored.
RecordsArrivedListener = Callable[[int], None]
_listeners: list[RecordsArrivedListener] = []


def register_records_arrived(listener: RecordsArrivedListener) -> RecordsArrivedListener:
    if listener not in _listeners:
        _listeners.append(listener)
    return listener


def run_records_arrived(tenant_id: int) -> None:
    """Tell the listeners, once the caller's transaction commits, that records of the
    tenant arrived. Outside a transaction they are told at once."""
    for listener in _listeners:
        transaction.on_commit(lambda listener=listener: listener(tenant_id))
