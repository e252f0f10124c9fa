"""Benchmark: many tenants on one worker host: a small tenant's freshness while the nightly
rebuild of every tenant runs, and the snapshot rows a rebuild of an unchanged tenant writes.

Tenants: SMALL_TENANTS small ones (2,200 leads each give about 10,000 activities) and a
large one (110,000 leads, about 500,000 activities), seeded once and reused by later runs.
Freshness: real Celery workers (Redis broker) in subprocesses; the nightly backlog is
queued (a rebuild of every tenant, the large one first), then a call is written in a small
tenant (each write in the next one), one at a time, and timed from its commit until its
dirty day is refreshed (`pending: false`). One worker for every queue (as one queue was
before the split) runs every task in turn, so the refresh waits behind the rebuilds; with a
worker per queue (`-Q default`, `-Q bulk`) it does not. The floor is the same refresh with
nothing queued, on a worker per queue. Rows: a second rebuild of the large tenant, against
the former delete-all and insert-all path. PostgreSQL only: `make bench`.
Sizes: BENCH_FAIR_LARGE_LEADS (110,000), BENCH_FAIR_SMALL_TENANTS (100),
BENCH_FAIR_SMALL_LEADS (2,200), BENCH_FAIR_WRITES (20); the workers' broker:
BENCH_FAIR_BROKER; their logs: BENCH_FAIR_WORKER_LOG (a path prefix).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench import _http

LARGE = "bench-fair-large"
SMALL = "bench-fair-small"
LARGE_LEADS = int(os.environ.get("BENCH_FAIR_LARGE_LEADS", "110000"))
SMALL_TENANTS = int(os.environ.get("BENCH_FAIR_SMALL_TENANTS", "100"))
SMALL_LEADS = int(os.environ.get("BENCH_FAIR_SMALL_LEADS", "2200"))
TODAY = dt.date(2026, 10, 1)
WRITES = int(os.environ.get("BENCH_FAIR_WRITES", "20"))
BROKER = os.environ.get("BENCH_FAIR_BROKER", "redis://127.0.0.1:6379/13")
GOAL_P95_SECONDS = 1.0
LOG = os.environ.get("BENCH_FAIR_WORKER_LOG", "")  # a path prefix: the workers' logs


def _tenant(slug: str, leads: int) -> Any:
    from pipeline.demo import seed_demo
    from pipeline.models import Lead
    from tenants.context import tenant_context
    from tenants.models import Tenant

    tenant = Tenant.objects.filter(slug=slug).first()
    if tenant is not None:
        with tenant_context(tenant):
            if Lead.objects.filter(source_system="demo-seed").count() == leads:
                return tenant
    result = seed_demo(tenant_slug=slug, leads=leads, months=6, seed=7, today=TODAY)
    _rebuild(result.tenant)
    return result.tenant


def _rebuild(tenant: Any) -> Any:
    from kpis.snapshots import kpi_snapshots_rebuild
    from tenants.context import tenant_context

    with tenant_context(tenant):
        return kpi_snapshots_rebuild(tenant=tenant, side_connection=True)


def _table_bytes() -> int:
    from django.db import connections

    with connections["owner"].cursor() as cursor:
        cursor.execute("SELECT pg_relation_size('kpis_kpisnapshot')")
        return cursor.fetchone()[0]


def _vacuum() -> None:
    from django.db import connections

    with connections["owner"].cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) kpis_kpisnapshot")


def _rows_written(tenant: Any) -> None:
    """A second rebuild, staged, against the former path (every row deleted, then inserted)."""
    from kpis.models import KpiSnapshot
    from tenants.context import tenant_context

    _rebuild(tenant)
    _vacuum()
    size = _table_bytes()
    began = time.perf_counter()
    staged = _rebuild(tenant)
    staged_seconds = time.perf_counter() - began
    staged_growth = _table_bytes() - size
    _vacuum()
    size = _table_bytes()
    began = time.perf_counter()
    with tenant_context(tenant):
        deleted = KpiSnapshot.objects.all().delete()[0]
        former = _rebuild(tenant)  # into an empty table: every row inserted
    former_seconds = time.perf_counter() - began
    former_growth = _table_bytes() - size
    _vacuum()
    print(
        f"  second rebuild of {staged.rows:,} rows: staged wrote {staged.written:,} rows in "
        f"{staged_seconds:.2f} s, table +{staged_growth / 1e6:.1f} MB; delete-all + insert-all "
        f"wrote {deleted + former.written:,} rows in {former_seconds:.2f} s, "
        f"table +{former_growth / 1e6:.1f} MB"
    )
    print(
        f"bench rebuild_rows_written: ours {staged.written:,} rows, floor 0 rows "
        f"(nothing changed), former {deleted + former.written:,} rows (goal ours = floor)"
    )


@contextmanager
def _workers(queues: list[str | None]) -> Iterator[None]:
    """One solo Celery worker per entry (None: every queue) for the duration of the block."""
    env = _http.child_env(CELERY_BROKER_URL=BROKER, CACHE_URL=BROKER)
    command = [
        *(sys.executable, "-m", "celery", "-A", "backend", "worker", "--pool=solo"),
        *("--loglevel=INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"),
    ]
    processes = [
        subprocess.Popen(
            [*command, f"--hostname=bench{n}@%h", *(("-Q", queue) if queue else ())],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(os.devnull if not LOG else f"{LOG}.{n}", "a"),  # noqa: SIM115
        )
        for n, queue in enumerate(queues)
    ]
    from backend.celery import app

    try:
        deadline = time.monotonic() + 60
        while len(app.control.ping(timeout=0.5)) < len(processes):  # every worker is up
            if time.monotonic() > deadline:
                raise RuntimeError("the workers did not start")
        yield
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=120)


def _fresh_after_write(tenant: Any, at: dt.datetime) -> float:
    """Seconds from the commit of one call in `tenant` to its day being refreshed."""
    from django.core.cache import cache

    from pipeline import services as pipeline_services
    from pipeline.models import DirtyDay, Lead
    from tenants.context import tenant_context

    cache.clear()  # this process's cache is not the workers': the flag would linger here
    with tenant_context(tenant):
        lead = Lead.objects.order_by("pk").first()
        pipeline_services.activity_create(
            tenant=tenant, lead=lead, type="call", occurred_at=at, source_system="bench-fair"
        )
    began = time.perf_counter()  # committed: its refresh is queued
    while True:
        with tenant_context(tenant):
            if not DirtyDay.objects.exists():
                return time.perf_counter() - began
        if time.perf_counter() - began > 600:
            raise RuntimeError("the small tenant's refresh never ran")
        time.sleep(0.01)


def _freshness(tenants: list[Any], smalls: list[Any], queues: list[str | None]) -> list[float]:
    """Freshness of WRITES writes in the small tenants, each after `tenants` were queued for
    a rebuild (the nightly backlog; none for the floor)."""
    from backend.celery import app
    from kpis.tasks import rebuild_tenant_task

    app.control.purge()
    samples = []
    with _workers(queues):
        for tenant in tenants:
            rebuild_tenant_task.delay(tenant.pk)
        time.sleep(0.5 if tenants else 0)  # the first rebuild has started
        for n in range(WRITES):
            at = dt.datetime(2026, 9, 20, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=n)
            samples.append(_fresh_after_write(smalls[n % len(smalls)], at))
        app.control.purge()  # what is left of the backlog
    return samples


def _p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, round(0.95 * len(ordered)) - 1)]


def main() -> None:
    from bench import snapshots

    snapshots._setup()
    from backend.celery import app
    from pipeline.models import Activity
    from tenants.context import tenant_context

    large = _tenant(LARGE, LARGE_LEADS)
    smalls = [_tenant(f"{SMALL}-{n}", SMALL_LEADS) for n in range(SMALL_TENANTS)]
    with tenant_context(large):
        activities = Activity.objects.count()
    with tenant_context(smalls[0]):
        small_activities = Activity.objects.count()
    print(
        f"  large tenant: {activities:,} activities; {SMALL_TENANTS} small tenants: "
        f"{small_activities:,} activities each (the first)"
    )
    _rows_written(large)
    backlog = [large, *smalls]  # the nightly rebuild of every tenant, the large one first
    # NOTE: this process publishes to the workers' broker (it runs eagerly otherwise).
    app.conf.update(broker_url=BROKER, task_always_eager=False)
    app._pool = app.amqp._producer_pool = None  # made for no broker by the eager calls above
    try:
        floor = _freshness([], smalls, ["default", "bulk"])
        before = _freshness(backlog, smalls, [None])
        ours = _freshness(backlog, smalls, ["default", "bulk"])
    finally:
        app.conf.update(task_always_eager=True)
        for small in smalls[:WRITES]:
            with tenant_context(small):
                Activity.objects.filter(source_system="bench-fair").delete()
            _rebuild(small)

    def shown(samples: list[float]) -> str:
        return ", ".join(f"{seconds:.2f}" for seconds in samples)

    print(f"  nothing queued: {shown(floor)} s")
    print(f"  {len(backlog)} rebuilds queued, one worker for every queue: {shown(before)} s")
    print(f"  {len(backlog)} rebuilds queued, a worker per queue: {shown(ours)} s")
    print(
        f"bench fairness: ours p95 {_p95(ours):.2f} s, floor p95 {_p95(floor):.2f} s "
        f"(nothing queued), one worker p95 {_p95(before):.2f} s, ratio "
        f"{_p95(ours) / _p95(floor):.2f} (goal ours p95 < {GOAL_P95_SECONDS} s)"
    )


if __name__ == "__main__":
    main()
