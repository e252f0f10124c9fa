"""Benchmark: from a batch ingested over GraphQL to its effect visible in kpiTree.

A real server and a real Celery worker (Redis broker) run in subprocesses: the batch's
commit queues the tenant's refresh, the worker computes the dirty day, and the bench polls
kpiTree until the month's calls include the batch. The floor is the ingestion request alone.
"""

from __future__ import annotations

import datetime as dt
import statistics
import time
import uuid

from bench import _http

RUNS = 5
BATCH = 100
GOAL_SECONDS = 2.0
BROKER = "redis://127.0.0.1:6379/13"
INGEST = """
mutation($input: IngestRecordsInput!) {
  ingestRecords(input: $input) { activities { created rejected } errors { message } }
}"""
CALLS = """
query($period: String!) {
  kpiTree(period: $period) { nodes { kpi { key } actual { numerator pending } } }
}"""


def _calls(url: str, token: str, period: str) -> int:
    nodes = _http.post(url, token, CALLS, {"period": period})["kpiTree"]["nodes"]
    return next(
        int(n["actual"]["numerator"]) for n in nodes if n["kpi"] and n["kpi"]["key"] == "calls"
    )


def _once(url: str, token: str, period: str, at: dt.datetime) -> tuple[float, float]:
    before = _calls(url, token, period)
    activities = [
        {
            "externalId": f"fresh-{uuid.uuid4().hex}",
            "leadExternalId": f"demo-L{1 + i:07d}",
            "type": "call",
            "occurredAt": (at + dt.timedelta(seconds=i)).isoformat(),
            "callOutcome": "connected",
        }
        for i in range(BATCH)
    ]
    began = time.perf_counter()
    result = _http.post(
        url, token, INGEST, {"input": {"sourceSystem": "demo-seed", "activities": activities}}
    )["ingestRecords"]
    ingested = time.perf_counter() - began
    if result["activities"]["created"] != BATCH:
        raise RuntimeError(f"ingestion failed: {result}")
    while _calls(url, token, period) < before + BATCH:
        if time.perf_counter() - began > 120:
            raise RuntimeError("the batch never became visible")
        time.sleep(0.02)
    return time.perf_counter() - began, ingested


def main() -> None:
    from bench import snapshots

    snapshots._setup()
    from pipeline.models import Activity
    from tenants import services
    from tenants.context import tenant_context

    tenant = snapshots._tenant()
    _, token = services.api_token_create(
        tenant=tenant, name="bench-fresh", scopes=["kpis:read", "records:write"]
    )
    at = dt.datetime(2026, 9, 29, 1, 0, tzinfo=dt.UTC)
    period = "2026-09"
    snapshots._rebuild(tenant)
    snapshots._warm(tenant)  # as the rebuild task does
    env = _http.child_env(CELERY_BROKER_URL=BROKER, CACHE_URL=BROKER)
    _http.clear_shared_cache(BROKER)
    try:
        with _http.worker(env), _http.server(env) as url:
            cold, _ = _once(url, token, period, at)  # the first batch after the rebuild
            runs = [
                _once(url, token, period, at + dt.timedelta(minutes=run)) for run in range(RUNS)
            ]
    finally:
        with tenant_context(tenant):
            Activity.objects.filter(external_id__startswith="fresh-").delete()
        snapshots._rebuild(tenant)
        snapshots._warm(tenant)
    ours = statistics.median(seconds for seconds, _ in runs)
    floor = statistics.median(ingested for _, ingested in runs)
    print(
        f"  first batch after a rebuild: {cold:.2f} s; then "
        + ", ".join(f"{seconds:.2f}" for seconds, _ in runs)
        + " s"
    )
    print(
        f"bench freshness: ours {ours:.2f} s, floor {floor:.2f} s (the ingestion request), "
        f"ratio {ours / floor:.2f} (goal ours < {GOAL_SECONDS} s)"
    )


if __name__ == "__main__":
    main()
