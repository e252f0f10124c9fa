"""Benchmark: kpiTree reads while the same tenant ingests, with a real worker refreshing.

READERS client threads read the tenant's month tree (the snapshot bench's tenant, 1,000,000
activities) as fast as the server answers, while another client ingests RATE activities a
second over GraphQL (one batch a second) for SECONDS; a real Celery worker (Redis broker)
refreshes after each batch. Measured: reads a second, their p99 latency, errors, and the
freshness after the last batch (its response to the tree counting every call, no longer
pending). The floor is the same readers on the same server with nothing ingested.

The server is gunicorn with WEB_WORKERS sync workers, as the Dockerfile runs it.
Knobs: BENCH_MIXED_SECONDS (60), BENCH_MIXED_RATE (1,000 rows a second), BENCH_MIXED_READERS
(8), BENCH_MIXED_WEB_WORKERS (3), BENCH_MIXED_BROKER (Redis, also the shared cache).
PostgreSQL only: `make bench`.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
import uuid
from typing import Any

from bench import _http

SECONDS = int(os.environ.get("BENCH_MIXED_SECONDS", "60"))
RATE = int(os.environ.get("BENCH_MIXED_RATE", "1000"))
READERS = int(os.environ.get("BENCH_MIXED_READERS", "8"))
WEB_WORKERS = int(os.environ.get("BENCH_MIXED_WEB_WORKERS", "3"))
BROKER = os.environ.get("BENCH_MIXED_BROKER", "redis://127.0.0.1:6379/13")
FLOOR_SECONDS = 15
GOAL_READS = 200.0
GOAL_P99_MS = 100.0
GOAL_FRESH_SECONDS = 1.0
PERIOD = "2026-09"
SOURCE = "demo-seed"
PREFIX = "mixed-"
TREE = """
query($period: String!) {
  kpiTree(period: $period, comparison: PREVIOUS_PERIOD) {
    projectedKgi bottleneckNodeId headcount workingDays
    nodes { id parentId kind label required requiredRounded basis attainment
            kpi { key }
            actual { value numerator denominator computedAt pending }
            comparisonActual { value } }
  }
}"""
INGEST = """
mutation($input: IngestRecordsInput!) {
  ingestRecords(input: $input) { activities { created rejected } }
}"""


def _calls(url: str, token: str) -> tuple[int, bool]:
    nodes = _http.post(url, token, TREE, {"period": PERIOD})["kpiTree"]["nodes"]
    node = next(n for n in nodes if n["kpi"] and n["kpi"]["key"] == "calls")
    return int(node["actual"]["numerator"]), bool(node["actual"]["pending"])


def _read(url: str, token: str, stop: threading.Event, out: list[float], errors: list[str]):
    while not stop.is_set():
        began = time.perf_counter()
        try:
            _http.post(url, token, TREE, {"period": PERIOD})
        except Exception as error:
            errors.append(repr(error))
            continue
        out.append(time.perf_counter() - began)


def _readers(url: str, token: str, seconds: float, during=None) -> tuple[list[float], list[str]]:
    """Latencies and errors of READERS threads reading for `seconds` (while `during()` runs,
    when given: then for as long as it takes)."""
    stop = threading.Event()
    latencies: list[list[float]] = [[] for _ in range(READERS)]
    errors: list[str] = []
    threads = [
        threading.Thread(target=_read, args=(url, token, stop, latencies[n], errors))
        for n in range(READERS)
    ]
    for thread in threads:
        thread.start()
    try:
        if during is None:
            time.sleep(seconds)
        else:
            during()
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    return [seconds for each in latencies for seconds in each], errors


def _ingest(url: str, token: str, batches: list[float], errors: list[str]) -> None:
    """One batch of RATE calls at the start of every second, for SECONDS seconds."""
    at = dt.datetime(2026, 9, 29, 1, 0, tzinfo=dt.UTC)
    began = time.perf_counter()
    for second in range(SECONDS):
        delay = began + second - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        activities = [
            {
                "externalId": f"{PREFIX}{uuid.uuid4().hex}",
                "leadExternalId": f"demo-L{1 + (second * RATE + i) % 90_000:07d}",
                "type": "call",
                "occurredAt": (at + dt.timedelta(seconds=second * RATE + i)).isoformat(),
                "callOutcome": "connected",
            }
            for i in range(RATE)
        ]
        try:
            result = _http.post(
                url, token, INGEST, {"input": {"sourceSystem": SOURCE, "activities": activities}}
            )["ingestRecords"]["activities"]
            if result["created"] != RATE:
                errors.append(f"batch {second}: {result}")
        except Exception as error:
            errors.append(f"batch {second}: {error!r}")
        batches.append(time.perf_counter())


def _fresh(url: str, token: str, expected: int, last_batch: float) -> float:
    """Seconds from the last batch's response to the tree counting `expected` calls."""
    while True:
        calls, pending = _calls(url, token)
        if calls >= expected and not pending:
            return time.perf_counter() - last_batch
        if time.perf_counter() - last_batch > 300:
            raise RuntimeError(f"the batches never became visible ({calls} of {expected})")
        time.sleep(0.01)


def _p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, round(0.99 * len(ordered)) - 1)] if ordered else float("nan")


def _cleanup(tenant: Any) -> None:
    from pipeline.models import Activity
    from tenants.context import tenant_context

    with tenant_context(tenant):
        Activity.objects.filter(external_id__startswith=PREFIX).delete()


def main() -> None:
    from bench import snapshots

    snapshots._setup()
    from tenants import services

    tenant = snapshots._tenant()
    _cleanup(tenant)
    snapshots._rebuild(tenant)
    snapshots._warm(tenant)  # as the rebuild task does
    # NOTE: a dashboard's load, not a partner's: above the default per-token rate limits.
    _, token = services.api_token_create(
        tenant=tenant,
        name="bench-mixed",
        scopes=["kpis:read", "records:write"],
        requests_per_minute=services.API_TOKEN_MAX_REQUESTS_PER_MINUTE,
        rows_per_minute=services.API_TOKEN_MAX_ROWS_PER_MINUTE,
    )
    env = _http.child_env(CELERY_BROKER_URL=BROKER, CACHE_URL=BROKER)
    _http.clear_shared_cache(BROKER)
    batches: list[float] = []
    ingest_errors: list[str] = []
    try:
        with _http.worker(env), _http.server(env, workers=WEB_WORKERS) as url:
            before, _ = _calls(url, token)
            floor_latencies, floor_errors = _readers(url, token, FLOOR_SECONDS)
            began = time.perf_counter()
            latencies, errors = _readers(
                url, token, 0, during=lambda: _ingest(url, token, batches, ingest_errors)
            )
            elapsed = time.perf_counter() - began
            fresh = _fresh(url, token, before + RATE * SECONDS, batches[-1])
    finally:
        _cleanup(tenant)
        snapshots._rebuild(tenant)
        snapshots._warm(tenant)
    reads = len(latencies) / elapsed
    floor_reads = len(floor_latencies) / FLOOR_SECONDS
    failed = len(errors) + len(ingest_errors)
    for error in (errors + ingest_errors)[:3]:
        print(f"  error: {error[:200]}")
    print(
        f"  {READERS} readers, {WEB_WORKERS} web workers; {RATE:,} rows/s for {SECONDS} s: "
        f"{len(latencies):,} reads in {elapsed:.1f} s, p99 {_p99(latencies) * 1000:.0f} ms, "
        f"{failed} errors, fresh {fresh:.2f} s after the last batch; with nothing ingested "
        f"{floor_reads:.0f} reads/s, p99 {_p99(floor_latencies) * 1000:.0f} ms, "
        f"{len(floor_errors)} errors"
    )
    print(
        f"bench mixed_load: ours {reads:.0f} reads/s (p99 {_p99(latencies) * 1000:.0f} ms, "
        f"{failed} errors, fresh {fresh:.2f} s), floor {floor_reads:.0f} reads/s (nothing "
        f"ingested), ratio {reads / floor_reads:.2f} (goal ours >= {GOAL_READS:.0f} reads/s, "
        f"p99 < {GOAL_P99_MS:.0f} ms, 0 errors, fresh < {GOAL_FRESH_SECONDS:.0f} s)"
    )


if __name__ == "__main__":
    main()
