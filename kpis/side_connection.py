"""Work that runs on a second database connection while the caller's statement runs.

PostgreSQL runs each statement of a connection on one core, and a rebuild's longest
statement (the activities) leaves the other cores idle. Statements that read only committed
rows can run meanwhile on a connection of their own, in the same tenant's context.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

from django.db import connections

from tenants.context import statement_timeout_raised, tenant_context

T = TypeVar("T")


def _on_own_connection(tenant_id: int, work: Callable[[], T]) -> T:
    # A thread gets its own Django connections; they are closed here so none outlives it.
    try:
        with tenant_context(tenant_id):
            statement_timeout_raised()  # a rebuild's reads: see kpi_snapshots_rebuild
            return work()
    finally:
        connections.close_all()


@contextmanager
def alongside(tenant_id: int, work: Callable[[], T]) -> Iterator[Future[T]]:
    """Run `work` in the tenant's context on another connection while the block runs.

    The block gets the work's future; leaving the block waits for the work, whatever
    happened in the block. The work sees only committed rows: never give it what the
    caller's transaction wrote and has not committed.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="kpis-side") as pool:
        yield pool.submit(_on_own_connection, tenant_id, work)
