"""Benchmark: kpiTree over HTTP (month, tenant scope, default tree) vs a trivial GraphQL query.

Both go through the same real server (runserver, Bearer token, middleware, GraphQL view),
timed in turns; the tenant is the snapshot bench's (1,000,000 activities and 100,000 leads
over 6 months).
"""

from __future__ import annotations

import statistics
import time

from bench import _http

REQUESTS = 100
GOAL = 2.0
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


def _latencies(url: str, token: str) -> tuple[list[float], list[float]]:
    """Seconds of each kpiTree request and of each trivial one, taken in turns: a machine
    that slows down for a while slows both alike, so their ratio holds."""
    tree: list[float] = []
    trivial: list[float] = []
    for query, variables in ((TREE, {"period": "2026-09"}), (TRIVIAL, None)):
        _http.post(url, token, query, variables)  # warm-up
    for _ in range(REQUESTS):
        for query, variables, timings in (
            (TREE, {"period": "2026-09"}, tree),
            (TRIVIAL, None, trivial),
        ):
            began = time.perf_counter()
            _http.post(url, token, query, variables)
            timings.append(time.perf_counter() - began)
    return tree, trivial


def _query_counts(token: str) -> list[int]:
    """SQL queries of the same request in-process, for two months (must be equal)."""
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    counts = []
    for month in ("2026-09", "2026-08", "2026-09"):
        with CaptureQueriesContext(connection) as queries:
            client.post(
                "/graphql/",
                data={"query": TREE, "variables": {"period": month}},
                content_type="application/json",
            )
        counts.append(len(queries.captured_queries))
    return counts[1:]  # the first request also records the token's last use


def _vacuum_snapshots() -> None:
    """Clear the dead rows each rebuild leaves: autovacuum is off on the bench machines, and
    the tree reads this table (only ours does, so bloat would skew the ratio run by run)."""
    from django.db import connections

    with connections["owner"].cursor() as cursor:
        cursor.execute("VACUUM ANALYZE kpis_kpisnapshot")


def main() -> None:
    from bench import snapshots

    snapshots._setup()
    from tenants import services

    tenant = snapshots._tenant()
    snapshots._cleanup(tenant)
    snapshots._rebuild(tenant)
    _vacuum_snapshots()
    _, token = services.api_token_create(tenant=tenant, name="bench-tree", scopes=["kpis:read"])
    with _http.server(_http.child_env()) as url:
        tree, trivial = _latencies(url, token)
    ours, floor = statistics.median(tree), statistics.median(trivial)
    print(f"  kpiTree SQL queries per request: {_query_counts(token)} (September, August)")
    print(
        f"bench kpi_tree: ours {ours * 1000:.1f} ms, floor {floor * 1000:.1f} ms, "
        f"ratio {ours / floor:.2f} (goal <= {GOAL})"
    )


if __name__ == "__main__":
    main()
