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


@pytest.mark.postgres
def test_an_unseen_tenants_batch_probes_the_unique_external_id_index(
    tenant_a: Any, tenant_b: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Statistics that cover only tenant A estimate about one row for tenant B: the probe
    of existing external ids must still take the unique index, not an index on tenant_id
    alone that would read all of B's rows for every staged row."""
    from django.utils import timezone

    from pipeline.ingestion.service import records_ingest
    from pipeline.models import Activity

    def batch(prefix: str) -> dict[str, Any]:
        at = timezone.now().isoformat()
        return {
            "source_system": "partner",
            "leads": [{"external_id": f"{prefix}-L", "company": "A社", "created_at": at}],
            "activities": [
                {"external_id": f"{prefix}-A{i}", "lead_external_id": f"{prefix}-L",
                 "type": "call", "occurred_at": at}
                for i in range(300)
            ],
        }  # fmt: skip

    # Only the ingestion's own statements are explained: no refresh runs inline (eager).
    monkeypatch.setattr("kpis.snapshots.scheduling._queue_once", lambda *args: False)
    # given planner statistics taken when only tenant A had activities
    with tenant_context(tenant_a):
        result = records_ingest(tenant=tenant_a, batch=batch("a"), actor_label="test")
        assert result.row_errors == []
        assert Activity.objects.count() == 300
    with connections["owner"].cursor() as cursor:
        cursor.execute("ANALYZE pipeline_activity")
    # when tenant B sends a batch, then sends it again (every row then exists)
    plans: list[str] = []

    def explain_probes(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if "CROSS JOIN LATERAL" in sql and "pipeline_activity" in sql:
            raw = connection.connection.cursor()
            raw.execute("EXPLAIN " + sql, params)
            plans.append("\n".join(row[0] for row in raw.fetchall()))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(explain_probes):
        for _ in range(2):
            with tenant_context(tenant_b):
                result = records_ingest(tenant=tenant_b, batch=batch("b"), actor_label="test")
                assert result.row_errors == []
    # then each probe reads the unique (tenant, source system, external id) index
    assert len(plans) == 2
    for plan in plans:
        assert "activity_unique_external_id" in plan, plan
