"""Celery tasks of the pipeline app: planner statistics upkeep (bulk queue)."""

from __future__ import annotations

from celery import shared_task

from pipeline.statistics import analyze_stale_tables


@shared_task(name="pipeline.analyze_stale_tables", acks_late=True)
def analyze_stale_tables_task() -> list[str]:
    """ANALYZE the pipeline tables whose statistics lag a bulk load; returns their names."""
    return analyze_stale_tables()
