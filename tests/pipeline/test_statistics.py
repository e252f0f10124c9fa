"""Planner statistics upkeep after bulk loads (pipeline/statistics.py)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.db import connection, connections

from pipeline.models import Lead
from pipeline.statistics import analyze_stale_tables, stale_tables
from tenants.context import tenant_context

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def _last_analyzed(table: str) -> Any:
    with connections["owner"].cursor() as cursor:
        cursor.execute(
            "SELECT greatest(last_analyze, last_autoanalyze) FROM pg_stat_user_tables "
            "WHERE relname = %s",
            [table],
        )
        return cursor.fetchone()[0]


def _wait_until_stale(table: str) -> list[str]:
    """The server publishes a backend's counters asynchronously (at most once a second)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        stale = stale_tables()
        if table in stale:
            return stale
        time.sleep(0.2)
    return stale_tables()


@pytest.mark.postgres
def test_a_bulk_load_is_analysed_once_before_snapshot_work(settings: Any, tenant_a: Any) -> None:
    # given: upkeep on, and 2,000 leads loaded since the last analysis of their table
    settings.PLANNER_STATISTICS_UPKEEP = True
    analyze_stale_tables()
    with tenant_context(tenant_a):
        Lead.objects.bulk_create(Lead(tenant=tenant_a, company=f"C{i}") for i in range(2000))
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
    before = _last_analyzed("pipeline_lead")
    # when / then: the table is stale, gets analysed, and is not stale any more
    assert "pipeline_lead" in _wait_until_stale("pipeline_lead")
    assert "pipeline_lead" in analyze_stale_tables()
    assert _last_analyzed("pipeline_lead") != before
    assert "pipeline_lead" not in stale_tables()
    assert analyze_stale_tables() == []


def test_switched_off_it_neither_reads_nor_analyses(settings: Any) -> None:
    settings.PLANNER_STATISTICS_UPKEEP = False
    assert stale_tables() == []
    assert analyze_stale_tables() == []
