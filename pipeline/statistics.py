"""Planner statistics of the pipeline tables after bulk loads, when autovacuum lags (or is off).

A snapshot rebuild right after a large import plans its joins and window sorts from the
statistics of the tables it reads; with none (a table never analysed) or stale ones (a
table that grew tenfold since), PostgreSQL picks nested loops sized for a handful of rows
and a rebuild that takes a third of a second takes minutes (seen: 0.35 s -> 90 s for 6,000
leads). Autovacuum's analyse catches up eventually, and not at all where it is switched
off. So `analyze_stale_tables` reads the table counters (one query) and analyses only the
tables that changed by more than a fifth since their last analysis, through the schema
owner's connection (ANALYZE needs the owner; the app role is not). It runs off every
tenant's request path, on the bulk queue: every few minutes (beat), before a rebuild (the
rebuild task and command), after a seed, and soon after a large ingestion batch
(`analyze_soon`), so no tenant's refresh pays for another tenant's bulk load.
Elsewhere (SQLite, no owner alias, or `PLANNER_STATISTICS_UPKEEP = False`, as in tests) it
does nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.conf import settings
from django.core.cache import cache
from django.db import connections, transaction

from pipeline.models import Activity, Deal, DealStageChange, DirtyDay, Lead, StageTransition
from tenants.task_queue import enqueue

logger = logging.getLogger(__name__)

PIPELINE_TABLES: tuple[str, ...] = tuple(
    model._meta.db_table
    for model in (Lead, Activity, StageTransition, Deal, DealStageChange, DirtyDay)
)
STALE_SHARE = 0.2  # of the rows at the last analysis, as autovacuum_analyze_scale_factor
STALE_MIN_ROWS = 1_000  # below that, plans do not go wrong enough to matter
# A write of at least this many rows queues an analysis at once rather than at the next beat.
ANALYZE_SOON_ROWS = 5_000
ANALYZE_SOON_KEY = "pipeline:analyze-queued"
ANALYZE_SOON_TTL_SECONDS = 60

_STALE = """
SELECT relname FROM pg_stat_user_tables
WHERE schemaname = current_schema() AND relname = ANY(%s)
  AND n_mod_since_analyze > greatest(%s, %s * n_live_tup)
"""


def stale_tables(tables: Iterable[str] = PIPELINE_TABLES) -> list[str]:
    """The tables among `tables` whose statistics lag their contents (PostgreSQL only)."""
    if not _enabled():
        return []
    with connections["owner"].cursor() as cursor:
        # NOTE: a never-analysed table counts every row it holds as modified, so a first
        # load is caught by the same condition.
        cursor.execute(_STALE, [sorted(set(tables)), STALE_MIN_ROWS, STALE_SHARE])
        return sorted(row[0] for row in cursor.fetchall())


def analyze_stale_tables(tables: Iterable[str] = PIPELINE_TABLES) -> list[str]:
    """ANALYZE the stale ones among `tables`; returns their names.

    The counters are the server's view: a backend publishes its changes at most once a
    second, so a load that just committed may show up only on the next call.
    """
    stale = stale_tables(tables)
    if stale:
        analyze_tables(stale)
        logger.info("Analysed tables with stale planner statistics: %s", ", ".join(stale))
    return stale


def analyze_soon(*, rows: int) -> bool:
    """After the caller's transaction commits, queue one statistics upkeep on the bulk queue
    when it wrote at least ANALYZE_SOON_ROWS rows (at most one queued a minute, whatever
    the tenants). Returns whether it will queue."""
    if rows < ANALYZE_SOON_ROWS or not _enabled():
        return False
    if not cache.add(ANALYZE_SOON_KEY, 1, timeout=ANALYZE_SOON_TTL_SECONDS):
        return False
    transaction.on_commit(lambda: enqueue("pipeline.analyze_stale_tables"))
    return True


def analyze_tables(tables: Iterable[str] = PIPELINE_TABLES) -> None:
    """ANALYZE `tables` now (after a bulk load the caller made itself)."""
    if not _enabled():
        return
    with connections["owner"].cursor() as cursor:
        for table in sorted(set(tables)):
            cursor.execute(f'ANALYZE "{table}"')


def _enabled() -> bool:
    return (
        getattr(settings, "PLANNER_STATISTICS_UPKEEP", True)
        and "owner" in connections.databases
        and connections["owner"].vendor == "postgresql"
    )
