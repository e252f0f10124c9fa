"""Benchmark: generating a monthly report (workspace scope) for the snapshot bench's tenant
(BENCH_KPI_ACTIVITIES activities, 1,000,000 unless set): content and HTML, in-process."""

from __future__ import annotations

import statistics
import time

RUNS = 5
GOAL_MS = 2000
PERIOD = "2026-09"


def main() -> None:
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
    timings = []
    for _ in range(RUNS):
        with tenant_context(tenant):
            Report.objects.filter(kind="monthly", period_label=PERIOD).delete()
            began = time.perf_counter()
            report, _ = report_generate(
                tenant=tenant, kind="monthly", period=parse_period(PERIOD), scope=KpiScope.tenant()
            )
            timings.append(time.perf_counter() - began)
    print(f"  report html: {len(report.html):,} characters, {report.html.count('<svg')} charts")
    print(
        f"bench report: monthly report {statistics.median(timings) * 1000:.0f} ms "
        f"(goal < {GOAL_MS} ms)"
    )


if __name__ == "__main__":
    main()
