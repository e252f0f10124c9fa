"""Benchmark: generating a monthly report (workspace scope) for the snapshot bench's tenant
(BENCH_KPI_ACTIVITIES activities, 1,000,000 unless set): content and HTML, in-process.

Each run starts with an empty cache, so its funnels (the month and the one before) are
computed from the raw rows, as for the first report after a refresh; the same report with
its funnels kept (kpis.funnel_store) is shown beside it.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

RUNS = 5
GOAL_MS = 2000
PERIOD = "2026-09"


def main() -> None:
    from django.core.cache import cache

    from bench import snapshots
    from kpis.periods import parse_period
    from kpis.scopes import KpiScope
    from reports.generation import report_generate
    from reports.models import Report
    from tenants.context import tenant_context

    snapshots._setup()
    tenant = snapshots._tenant()
    snapshots._cleanup(tenant)
    snapshots._rebuild(tenant)

    def generate() -> tuple[float, Any]:
        with tenant_context(tenant):
            Report.objects.filter(kind="monthly", period_label=PERIOD).delete()
            began = time.perf_counter()
            report, _ = report_generate(
                tenant=tenant, kind="monthly", period=parse_period(PERIOD), scope=KpiScope.tenant()
            )
            return time.perf_counter() - began, report

    cold = []
    for _ in range(RUNS):
        # NOTE: the bench's own cache (the process's, or the bench Redis database).
        cache.clear()
        seconds, report = generate()
        cold.append(seconds)
    kept = statistics.median(generate()[0] for _ in range(RUNS))
    print(f"  report html: {len(report.html):,} characters, {report.html.count('<svg')} charts")
    print(f"  with its funnels kept (a second report of the same data): {kept * 1000:.0f} ms")
    print(
        f"bench report: monthly report {statistics.median(cold) * 1000:.0f} ms "
        f"(goal < {GOAL_MS} ms)"
    )


if __name__ == "__main__":
    main()
