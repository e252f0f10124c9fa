"""Benchmark: kpiTree over HTTP (month, tenant scope, default tree) vs a trivial GraphQL query.

Both go through the same real server (gunicorn, Bearer token, middleware, GraphQL view),
timed in turns; the tenant is the snapshot bench's (1,000,000 activities and 100,000 leads
over 6 months). A dashboard reads the same tree again and again: `ours` is such a read,
answered from the response cache (kpis/graphql/tree_cache.py) while nothing it reads
changed. A read after a change (every request under a new cache key) is shown beside it.
The server and this process share the cache (BENCH_CACHE_URL, Redis), as web processes do.
"""

from __future__ import annotations

import os
import statistics
import time

from bench import _http

REQUESTS = 100
GOAL = 1.5
CACHE = os.environ.get("BENCH_CACHE_URL", "redis://127.0.0.1:6379/13")
TREE = """
query($period: String!) {
  kpiTree(period: $period, comparison: PREVIOUS_PERIOD) {
    projectedKgi bottleneckNodeId headcount workingDays
    nodes { id parentId kind label required requiredRounded basis attainment
            actual { value numerator denominator computedAt pending }
            comparisonActual { value } }
  }
}"""
TRIVIAL = "query { __typename }"


def _latencies(url: str, token: str) -> tuple[list[float], list[float], list[float]]:
    """Seconds of each kpiTree request (repeated: cached; and each under a new cache key:
    evaluated) and of each trivial one, taken in turns: a machine that slows down for a
    while slows all alike, so their ratios hold."""
    cached: list[float] = []
    evaluated: list[float] = []
    trivial: list[float] = []
    period = {"period": "2026-09"}
    for query, variables in ((TREE, period), (TRIVIAL, None)):
        _http.post(url, token, query, variables)  # warm-up
    for n in range(REQUESTS):
        # NOTE: a variable the document does not declare changes the cache key only.
        for query, variables, timings in (
            (TREE, period, cached),
            (TREE, {**period, "miss": n}, evaluated),
            (TRIVIAL, None, trivial),
        ):
            began = time.perf_counter()
            _http.post(url, token, query, variables)
            timings.append(time.perf_counter() - began)
    return cached, evaluated, trivial


def _query_counts(token: str) -> tuple[list[int], list[int]]:
    """SQL queries of the same request in-process for two months: evaluated (a new cache
    key) and cached; each list must hold equal numbers."""
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")

    def count(month: str, extra: dict) -> int:
        with CaptureQueriesContext(connection) as queries:
            client.post(
                "/graphql/",
                data={"query": TREE, "variables": {"period": month, **extra}},
                content_type="application/json",
            )
        return len(queries.captured_queries)

    count("2026-09", {"first": True})  # the first request also records the token's last use
    stamp = time.time_ns()
    evaluated = [count(month, {"miss": stamp}) for month in ("2026-09", "2026-08")]
    cached = [count(month, {"miss": stamp}) for month in ("2026-09", "2026-08")]
    return evaluated, cached


def _vacuum_snapshots() -> None:
    """Clear the dead rows each rebuild leaves: autovacuum is off on the bench machines, and
    the tree reads this table (only ours does, so bloat would skew the ratio run by run)."""
    from django.db import connections

    with connections["owner"].cursor() as cursor:
        cursor.execute("VACUUM ANALYZE kpis_kpisnapshot")


def main() -> None:
    os.environ["CACHE_URL"] = CACHE  # this process's cache too, before Django reads settings
    from bench import snapshots

    snapshots._setup()
    from tenants import services

    tenant = snapshots._tenant()
    snapshots._cleanup(tenant)
    snapshots._rebuild(tenant)
    _vacuum_snapshots()
    _, token = services.api_token_create(tenant=tenant, name="bench-tree", scopes=["kpis:read"])
    _http.clear_shared_cache(CACHE)
    with _http.server(_http.child_env(CACHE_URL=CACHE)) as url:
        cached, evaluated, trivial = _latencies(url, token)
    ours, miss, floor = (statistics.median(t) for t in (cached, evaluated, trivial))
    evaluated_counts, cached_counts = _query_counts(token)
    print(
        f"  kpiTree SQL queries per request (September, August): evaluated {evaluated_counts}, "
        f"cached {cached_counts}"
    )
    print(
        f"  after a change (evaluated, new cache key): {miss * 1000:.1f} ms, "
        f"ratio {miss / floor:.2f}"
    )
    print(
        f"bench kpi_tree: ours {ours * 1000:.1f} ms (cached), floor {floor * 1000:.1f} ms "
        f"(the trivial query), ratio {ours / floor:.2f} (goal <= {GOAL})"
    )


if __name__ == "__main__":
    main()
