"""Poison-proof snapshots: a row no refresh can compute fails its own day only.

Bad rows are inserted below the API (as admin, raw SQL or old data would store them); the
tenant's other days must stay exact and fresh, later batches must still be counted, the
failing day must be recorded with its reason and retried with backoff, and a rebuild must
complete and report it.
"""

from __future__ import annotations

import datetime as dt
import io
import time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.core.cache import cache
from django.core.management import call_command

from kpis import failures
from kpis.snapshots import rebuild, refresh
from kpis.tasks import refresh_dirty_sweep_task, refresh_tenant_task
from pipeline.dirty import mark_days_dirty
from pipeline.ingestion import records_ingest
from pipeline.models import Activity, Deal, DealStage, DirtyDay, Lead, StageTransition
from tenants.context import tenant_context
from tests.factories import TenantFactory, api_token

pytestmark = pytest.mark.django_db

UTC = dt.UTC
D1, D2, D3 = dt.date(2026, 6, 1), dt.date(2026, 6, 3), dt.date(2026, 6, 10)
# 0001-01-01T00:00Z is in year 0 in New York; 9999-12-31T23:00Z in year 10000 at UTC+14.
YEAR_ONE = ("America/New_York", dt.datetime(1, 1, 1, tzinfo=UTC), dt.date.min)
YEAR_10000 = ("Pacific/Kiritimati", dt.datetime(9999, 12, 31, 23, tzinfo=UTC), dt.date.max)

VALUES = """
query($period: String!) {
  kpiValues(period: $period, kpis: ["calls", "connects", "emails_sent", "leads", "mqls",
                                     "pipeline_created"]) {
    value { kpi { key } value pending }
  }
}"""

HEALTH = """
query {
  snapshotHealth {
    pendingDays failedDayCount rebuildRequestedAt
    failedDays { day error attempts failedAt retryAt }
  }
}"""

# The values of one batch's day (and of its month, alone in it).
BATCH_VALUES = {
    "calls": ("3.0000", False),
    "connects": ("2.0000", False),
    "emails_sent": ("1.0000", False),
    "leads": ("2.0000", False),
    "mqls": ("1.0000", False),
    "pipeline_created": ("1000.0000", False),
}


def _local(day: dt.date, hour: int, zone: str) -> str:
    return dt.datetime.combine(day, dt.time(hour), ZoneInfo(zone)).isoformat()


def _batch(tag: str, day: dt.date, zone: str) -> dict[str, Any]:
    at = _local(day, 10, zone)
    return {
        "source_system": "crm",
        "leads": [
            {"external_id": f"L{tag}1", "company": "一社", "created_at": at},
            {"external_id": f"L{tag}2", "company": "二社", "created_at": at},
        ],
        "activities": [
            {"external_id": f"A{tag}1", "lead_external_id": f"L{tag}1", "type": "call",
             "call_outcome": "connected", "occurred_at": at},
            {"external_id": f"A{tag}2", "lead_external_id": f"L{tag}2", "type": "call",
             "call_outcome": "connected", "occurred_at": at},
            {"external_id": f"A{tag}3", "lead_external_id": f"L{tag}2", "type": "call",
             "call_outcome": "no_answer", "occurred_at": at},
            {"external_id": f"A{tag}4", "lead_external_id": f"L{tag}1", "type": "email",
             "occurred_at": at},
        ],
        "deals": [
            {"external_id": f"D{tag}", "lead_external_id": f"L{tag}1", "amount": "1000",
             "stage_name": "提案", "created_at": at},
        ],
        "lead_stage_changes": [
            {"lead_external_id": f"L{tag}1", "to_stage": "mql", "at": _local(day, 11, zone)},
        ],
    }  # fmt: skip


def _ingest(tenant: Any, tag: str, day: dt.date) -> None:
    with tenant_context(tenant):
        result = records_ingest(
            tenant=tenant, batch=_batch(tag, day, tenant.timezone), actor_label="test"
        )
    assert result.row_errors == []


def _insert_bad(tenant: Any, kind: str, at: dt.datetime) -> None:
    """A row timed `at`, stored below the API (no validation, no dirty mark)."""
    with tenant_context(tenant):
        lead = Lead.objects.get(external_id="L11")
        if kind == "activity":
            Activity.all_tenants.bulk_create(
                [Activity(tenant=tenant, lead=lead, type="call", occurred_at=at)]
            )
        elif kind == "lead":
            Lead.all_tenants.bulk_create([Lead(tenant=tenant, company="毒", created_at=at)])
        elif kind in ("deal", "deal_closed"):
            # deal_closed: an open IS deal of D1 (in the weighted pipeline) closed at `at`
            Deal.all_tenants.bulk_create(
                [
                    Deal(
                        tenant=tenant,
                        lead=lead,
                        amount=Decimal("500"),
                        currency="JPY",
                        stage=DealStage.objects.get(name="提案"),
                        created_at=at if kind == "deal" else lead.created_at,
                        closed_at=at if kind == "deal_closed" else None,
                        sourced_by_is=kind == "deal",
                    )
                ]
            )
        else:
            StageTransition.all_tenants.bulk_create(
                [StageTransition(tenant=tenant, lead=lead, from_stage="mql", to_stage="sql", at=at)]
            )


def _values(graphql: Any, token: str, period: str) -> dict[str, tuple[str, bool]]:
    _, body = graphql(VALUES, {"period": period}, token=token)
    return {
        row["value"]["kpi"]["key"]: (row["value"]["value"], row["value"]["pending"])
        for row in body["data"]["kpiValues"]
    }


def _health(graphql: Any, token: str) -> dict[str, Any]:
    _, body = graphql(HEALTH, token=token)
    return body["data"]["snapshotHealth"]


def _token(tenant: Any) -> str:
    secret = api_token(tenant, "kpis:read", name="dash")
    return secret


def _marks(tenant: Any) -> list[tuple[dt.date, int, str]]:
    with tenant_context(tenant):
        return list(DirtyDay.objects.order_by("day").values_list("day", "attempts", "error"))


def _make_due(tenant: Any) -> None:
    """As if the retry time had come."""
    with tenant_context(tenant):
        DirtyDay.objects.update(retry_at=dt.datetime(2000, 1, 1, tzinfo=UTC))


@pytest.fixture
def token_b_kpis(tenant_b: Any) -> str:
    return _token(tenant_b)


@pytest.mark.parametrize("kind", ["activity", "lead", "deal", "deal_closed", "transition"])
@pytest.mark.parametrize("poison", [YEAR_ONE, YEAR_10000], ids=["year-0-local", "year-10000-local"])
def test_a_row_outside_the_range_fails_its_day_and_the_other_days_stay_exact(
    graphql: Any, kind: str, poison: tuple[str, dt.datetime, dt.date], token_b_kpis: str
) -> None:
    zone, bad_at, bad_day = poison
    tenant = TenantFactory(slug="poisoned", timezone=zone)
    token = _token(tenant)
    # given a refreshed batch on D1
    _ingest(tenant, "1", D1)
    assert refresh_tenant_task.run(tenant.pk) == {"tenant_id": tenant.pk, "days": 1, "failed": 0}
    # and a bad row below the API, its day marked dirty, and then a batch on D2
    _insert_bad(tenant, kind, bad_at)
    with tenant_context(tenant):
        created = Lead.objects.get(external_id="L11").created_at
        # (a deal's closing marks its creation day too: the weighted pipeline changes there)
        mark_days_dirty(
            tenant=tenant, datetimes=[bad_at, created if kind == "deal_closed" else None]
        )
    _ingest(tenant, "2", D2)
    # when the refresh runs
    outcome = refresh_tenant_task.run(tenant.pk)
    # then D2 is refreshed, the bad day failed, and nothing raised
    days = 2 if kind == "deal_closed" else 1
    assert outcome == {"tenant_id": tenant.pk, "days": days, "failed": 1}
    assert _values(graphql, token, D1.isoformat()) == BATCH_VALUES
    assert _values(graphql, token, D2.isoformat()) == BATCH_VALUES
    month = _values(graphql, token, "2026-06")
    assert month["calls"] == ("6.0000", False)
    assert month["pipeline_created"] == ("2000.0000", False)
    [(day, attempts, error)] = _marks(tenant)
    assert (day, attempts) == (bad_day, 1)
    label = {"transition": "stage transition", "deal_closed": "deal"}.get(kind, kind)
    assert error.startswith(f"{failures.OUT_OF_RANGE}: {label} ")
    health = _health(graphql, token)
    assert health["pendingDays"] == 0
    assert health["failedDayCount"] == 1
    [failed] = health["failedDays"]
    assert (failed["day"], failed["attempts"], failed["error"]) == (bad_day.isoformat(), 1, error)
    failed_at = dt.datetime.fromisoformat(failed["failedAt"])
    assert dt.datetime.fromisoformat(failed["retryAt"]) - failed_at == dt.timedelta(minutes=1)
    # and another tenant sees none of it
    assert _health(graphql, token_b_kpis)["failedDays"] == []
    # when the tenant is rebuilt
    out = io.StringIO()
    call_command("rebuild_kpi_snapshots", "--tenant", "poisoned", stdout=out)
    # then it completes with the same values and reports the same day
    assert f"poisoned: {bad_day} not computed ({error}); retried from " in out.getvalue()
    assert _values(graphql, token, D1.isoformat()) == BATCH_VALUES
    assert _values(graphql, token, D2.isoformat()) == BATCH_VALUES
    assert _values(graphql, token, "2026-06")["calls"] == ("6.0000", False)
    assert _marks(tenant) == [(bad_day, 2, error)]


def test_a_failing_day_backs_off_never_blocks_later_batches_and_clears_once_fixed(
    graphql: Any,
) -> None:
    zone, bad_at, bad_day = YEAR_ONE
    tenant = TenantFactory(slug="poisoned", timezone=zone)
    token = _token(tenant)
    _ingest(tenant, "1", D1)
    _insert_bad(tenant, "activity", bad_at)
    with tenant_context(tenant):
        mark_days_dirty(tenant=tenant, datetimes=[bad_at])
    assert refresh_tenant_task.run(tenant.pk)["failed"] == 1
    # when a later batch arrives while the bad day waits for its retry
    _ingest(tenant, "2", D2)
    outcome = refresh_tenant_task.run(tenant.pk)
    # then it is counted and the bad day is not tried again yet
    assert outcome == {"tenant_id": tenant.pk, "days": 1, "failed": 0}
    assert _values(graphql, token, D2.isoformat()) == BATCH_VALUES
    assert [(day, attempts) for day, attempts, _ in _marks(tenant)] == [(bad_day, 1)]
    # when its retry comes and it fails again, the wait doubles (1, 2, 4 ... at most 60 min)
    _make_due(tenant)
    assert refresh_tenant_task.run(tenant.pk)["failed"] == 1
    with tenant_context(tenant):
        mark = DirtyDay.objects.get()
    assert (mark.attempts, mark.retry_at - mark.failed_at) == (2, dt.timedelta(minutes=2))
    assert [failures.retry_delay(n).total_seconds() for n in (1, 3, 6, 7, 40)] == [
        60, 240, 1920, 3600, 3600
    ]  # fmt: skip
    # when the tenant is rebuilt (the command the nightly rebuild runs)
    out = io.StringIO()
    call_command("rebuild_kpi_snapshots", "--tenant", tenant.slug, stdout=out)
    # then it completes, counts every good row and reports the bad day
    printed = out.getvalue()
    assert f"poisoned: {bad_day} not computed ({failures.OUT_OF_RANGE}: activity " in printed
    assert _values(graphql, token, D1.isoformat()) == BATCH_VALUES
    assert _values(graphql, token, D2.isoformat()) == BATCH_VALUES
    assert _values(graphql, token, "2026-06")["calls"] == ("6.0000", False)
    assert [(day, attempts) for day, attempts, _ in _marks(tenant)] == [(bad_day, 3)]
    # when the bad row is deleted and the retry comes
    with tenant_context(tenant):
        Activity.objects.filter(occurred_at__year=1).delete()
    _make_due(tenant)
    outcome = refresh_tenant_task.run(tenant.pk)
    # then the failure is cleared and nothing changed in the numbers
    assert outcome == {"tenant_id": tenant.pk, "days": 0, "failed": 0}
    assert _marks(tenant) == []
    assert _health(graphql, token)["failedDays"] == []
    assert _values(graphql, token, "2026-06")["calls"] == ("6.0000", False)


def test_a_row_fixed_into_the_range_is_counted_on_its_new_day(graphql: Any) -> None:
    zone, bad_at, _ = YEAR_10000
    tenant = TenantFactory(slug="poisoned", timezone=zone)
    token = _token(tenant)
    _ingest(tenant, "1", D1)
    _insert_bad(tenant, "activity", bad_at)
    with tenant_context(tenant):
        mark_days_dirty(tenant=tenant, datetimes=[bad_at])
    refresh_tenant_task.run(tenant.pk)
    # when the row is moved to D3 (an admin fix: both days marked for a recount)
    fixed = dt.datetime.combine(D3, dt.time(9), ZoneInfo(zone))
    with tenant_context(tenant):
        Activity.objects.filter(occurred_at=bad_at).update(occurred_at=fixed)
        mark_days_dirty(tenant=tenant, datetimes=[bad_at, fixed], rescan=True)
    _make_due(tenant)
    assert refresh_tenant_task.run(tenant.pk) == {"tenant_id": tenant.pk, "days": 1, "failed": 0}
    # then
    assert _marks(tenant) == []
    assert _values(graphql, token, D3.isoformat())["calls"] == ("1.0000", False)
    assert _values(graphql, token, "2026-06")["calls"] == ("4.0000", False)


def test_a_failing_day_among_many_is_isolated_and_the_others_commit(
    graphql: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = TenantFactory(slug="bisect", timezone="Asia/Tokyo")
    token = _token(tenant)
    days = [D1 + dt.timedelta(days=n) for n in range(5)]
    for index, day in enumerate(days):
        _ingest(tenant, str(index), day)
    refresh_tenant_task.run(tenant.pk)
    # given a second batch on every day, one of which cannot be computed (an injected bug)
    for index, day in enumerate(days):
        _ingest(tenant, f"b{index}", day)
    real = refresh._refresh_days
    attempts: list[list[dt.date]] = []

    def broken(tenant: Any, days: Any, *args: Any, **kwargs: Any) -> Any:
        days = sorted(days)
        attempts.append(days)
        if D1 + dt.timedelta(days=3) in days:
            raise ZeroDivisionError("division by zero\nDETAIL: secret statement text")
        return real(tenant, days, *args, **kwargs)

    monkeypatch.setattr(refresh, "_refresh_days", broken)
    # when
    outcome = refresh_tenant_task.run(tenant.pk)
    # then the four other days committed, exact, and only the bad one failed
    assert outcome == {"tenant_id": tenant.pk, "days": 4, "failed": 1}
    # (the normal path first, then halves of the failing groups, each in a savepoint)
    d0, d1, d2, d3, d4 = days
    assert attempts == [days, [d0, d1], [d2, d3, d4], [d2], [d3, d4], [d3], [d4]]
    doubled = {key: (str(int(float(v)) * 2) + ".0000", p) for key, (v, p) in BATCH_VALUES.items()}
    for day in (days[0], days[1], days[2], days[4]):
        assert _values(graphql, token, day.isoformat()) == doubled
    bad = days[3]
    assert _values(graphql, token, bad.isoformat())["calls"] == ("3.0000", True)
    assert _values(graphql, token, "2026-06")["calls"][1] is True
    assert _marks(tenant) == [(bad, 1, "ZeroDivisionError: division by zero")]
    # when the bug is fixed and the retry comes
    monkeypatch.setattr(refresh, "_refresh_days", real)
    _make_due(tenant)
    assert refresh_tenant_task.run(tenant.pk) == {"tenant_id": tenant.pk, "days": 1, "failed": 0}
    # then every value is exact and fresh again
    assert _marks(tenant) == []
    assert _values(graphql, token, bad.isoformat()) == doubled
    assert _values(graphql, token, "2026-06")["calls"] == ("30.0000", False)


def test_a_failing_rebuild_is_redone_day_by_day_and_keeps_the_failing_day(
    graphql: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = TenantFactory(slug="rebuild", timezone="Asia/Tokyo")
    token = _token(tenant)
    for index, day in enumerate((D1, D2, D3)):
        _ingest(tenant, str(index), day)
    refresh_tenant_task.run(tenant.pk)
    real = refresh._refresh_days

    def set_based_pass_fails(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("set-based pass failed")

    def day_fails(tenant: Any, days: Any, *args: Any, **kwargs: Any) -> Any:
        if D2 in days:
            raise RuntimeError("bad day")
        return real(tenant, days, *args, **kwargs)

    monkeypatch.setattr(rebuild, "_rebuild", set_based_pass_fails)
    monkeypatch.setattr(refresh, "_refresh_days", day_fails)
    # when
    with tenant_context(tenant):
        result = rebuild.kpi_snapshots_rebuild(tenant=tenant)
    # then every other day is rebuilt exactly, and D2 is a failed day
    assert [(f.day, f.error, f.attempts) for f in result.failed] == [
        (D2, "RuntimeError: bad day", 1)
    ]
    assert result.days == 2
    assert _values(graphql, token, D1.isoformat()) == BATCH_VALUES
    assert _values(graphql, token, D3.isoformat()) == BATCH_VALUES
    assert _values(graphql, token, D2.isoformat())["calls"] == ("0.0000", True)
    assert [(day, attempts) for day, attempts, _ in _marks(tenant)] == [(D2, 1)]
    # when the bug is gone and the retry comes
    monkeypatch.setattr(refresh, "_refresh_days", real)
    _make_due(tenant)
    refresh_tenant_task.run(tenant.pk)
    # then
    assert _values(graphql, token, D2.isoformat()) == BATCH_VALUES
    assert _values(graphql, token, "2026-06")["calls"] == ("9.0000", False)


def test_the_sweep_queues_tenants_with_due_days_once(
    tenant_a: Any, tenant_b: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache.clear()
    queued: list[int] = []
    monkeypatch.setattr(refresh_tenant_task, "delay", queued.append)
    now = dt.datetime.now(UTC)
    # given a due day in A and, in B, only a failed day waiting for its retry
    with tenant_context(tenant_a):
        DirtyDay.objects.create(tenant=tenant_a, day=D1)
    with tenant_context(tenant_b):
        DirtyDay.objects.create(
            tenant=tenant_b, day=D1, attempts=1, failed_at=now, retry_at=now + dt.timedelta(hours=1)
        )
    # when the sweep runs twice before the refresh starts
    first = refresh_dirty_sweep_task.run()
    second = refresh_dirty_sweep_task.run()
    # then A is queued once and B not at all
    assert (first, second, queued) == ([tenant_a.pk], [], [tenant_a.pk])


def test_marking_a_day_without_a_local_date_clamps_it(tenant_a: Any) -> None:
    # given instants whose local dates fall in years 0 and 10000
    tenant_a.timezone = "America/New_York"
    with tenant_context(tenant_a):
        mark_days_dirty(tenant=tenant_a, datetimes=[dt.datetime(1, 1, 1, tzinfo=UTC)])
    tenant_a.timezone = "Pacific/Kiritimati"
    with tenant_context(tenant_a):
        mark_days_dirty(tenant=tenant_a, datetimes=[dt.datetime(9999, 12, 31, 23, tzinfo=UTC)])
        # then the first and last dates are marked
        assert sorted(DirtyDay.objects.values_list("day", flat=True)) == [dt.date.min, dt.date.max]


def test_admin_lists_only_its_tenants_failed_days(
    client: Any, admin_a: Any, tenant_a: Any, tenant_b: Any
) -> None:
    now = dt.datetime.now(UTC)
    for tenant, error in ((tenant_a, "RuntimeError: acme day"), (tenant_b, "RuntimeError: b")):
        with tenant_context(tenant):
            DirtyDay.objects.create(tenant=tenant, day=D1, attempts=2, failed_at=now, error=error)
            DirtyDay.objects.create(tenant=tenant, day=D2)
    # NOTE: the admin speaks the tenant's language; these assertions read English.
    type(tenant_a).objects.filter(pk=tenant_a.pk).update(language="en")
    client.force_login(admin_a)
    # when
    failed = client.get("/admin/pipeline/dirtyday/?failed=yes").content.decode()
    waiting = client.get("/admin/pipeline/dirtyday/?failed=no").content.decode()
    # then
    assert "RuntimeError: acme day" in failed
    assert "RuntimeError: b" not in failed
    assert "RuntimeError" not in waiting
    assert "1 dirty day" in waiting
    with tenant_context(tenant_a):
        mark = DirtyDay.objects.get(day=D1)
    assert client.post(f"/admin/pipeline/dirtyday/{mark.pk}/delete/").status_code == 403
    with tenant_context(tenant_a):
        assert DirtyDay.objects.count() == 2


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_refreshes_a_later_batch_past_a_poisoned_day(graphql: Any) -> None:
    from celery.contrib.testing.worker import start_worker

    from backend.celery import app

    cache.clear()
    assert not app.conf.task_always_eager
    zone, bad_at, bad_day = YEAR_ONE
    tenant = TenantFactory(slug="poisoned", timezone=zone)
    token = _token(tenant)
    with start_worker(app, perform_ping_check=False, pool="solo", concurrency=1):
        # given a batch, then a bad row below the API with its day marked
        _ingest(tenant, "1", D1)
        _insert_bad(tenant, "activity", bad_at)
        with tenant_context(tenant):
            mark_days_dirty(tenant=tenant, datetimes=[bad_at])
        # when a later batch commits (its on-commit hook queues the refresh on the broker)
        _ingest(tenant, "2", D2)
        deadline = time.monotonic() + 20
        while _values(graphql, token, D2.isoformat()) != BATCH_VALUES:
            assert time.monotonic() < deadline, "the worker did not refresh D2"
            time.sleep(0.1)
    # then the worker counted it and kept the bad day as failed (the task did not raise)
    assert _values(graphql, token, D1.isoformat()) == BATCH_VALUES
    [(day, attempts, error)] = _marks(tenant)
    assert (day, attempts) == (bad_day, 1)
    assert error.startswith(failures.OUT_OF_RANGE)


def test_snapshot_health_needs_kpis_read_and_shows_waiting_days(
    graphql: Any, tenant_a: Any
) -> None:
    # given a day waiting for its first refresh and a rebuild asked for
    now = dt.datetime(2026, 6, 2, 3, tzinfo=UTC)
    with tenant_context(tenant_a):
        DirtyDay.objects.create(tenant=tenant_a, day=D1)
    type(tenant_a).objects.filter(pk=tenant_a.pk).update(kpi_rebuild_requested_at=now)
    writer = api_token(tenant_a, "records:write", name="w")
    # when a token without kpis:read asks, then it is refused and sees nothing
    _, body = graphql(HEALTH, token=writer)
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "PERMISSION_DENIED"
    # when a reader asks
    health = _health(graphql, _token(tenant_a))
    # then
    assert health == {
        "pendingDays": 1,
        "failedDayCount": 0,
        "rebuildRequestedAt": "2026-06-02T03:00:00+00:00",
        "failedDays": [],
    }


@pytest.mark.postgres
def test_a_time_before_year_one_stored_by_raw_sql_is_reported_not_fatal(graphql: Any) -> None:
    from django.db import connection

    from pipeline import services as pipeline_services

    tenant = TenantFactory(slug="bc", timezone="Asia/Tokyo")
    token = _token(tenant)
    _ingest(tenant, "1", D1)
    refresh_tenant_task.run(tenant.pk)
    # given an activity moved to 44 BC by raw SQL (no Python datetime holds it)
    with tenant_context(tenant), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE pipeline_activity SET occurred_at = '0044-03-15 12:00:00+00 BC'"
            " WHERE tenant_id = %s AND external_id = 'A14'",
            [tenant.pk],
        )
        lead = Lead.objects.get(external_id="L11")
    # when its lead changes source (its whole history is marked) and the refresh runs
    pipeline_services.lead_update(lead=lead, source="web")
    assert refresh_tenant_task.run(tenant.pk) == {"tenant_id": tenant.pk, "days": 1, "failed": 0}
    # then D1 is recounted without the row (the e-mail is gone from it)
    assert _values(graphql, token, D1.isoformat()) == BATCH_VALUES | {
        "emails_sent": ("0.0000", False)
    }
    # when the tenant is rebuilt
    out = io.StringIO()
    call_command("rebuild_kpi_snapshots", "--tenant", "bc", stdout=out)
    # then the row is reported on the first date, and D1 is unchanged
    with tenant_context(tenant):
        activity = Activity.objects.filter(external_id="A14").values_list("pk", flat=True).get()
    assert _marks(tenant) == [
        (
            dt.date.min,
            1,
            f"{failures.OUT_OF_RANGE}: activity {activity} occurred_at beyond the years 1..9999",
        )
    ]
    assert "bc: 0001-01-01 not computed" in out.getvalue()
    assert _values(graphql, token, D1.isoformat())["emails_sent"] == ("0.0000", False)


def test_snapshot_health_reads_a_fixed_number_of_queries(graphql: Any, tenant_a: Any) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    token = _token(tenant_a)
    now = dt.datetime.now(UTC)
    graphql(HEALTH, token=token)  # the token's first use records last_used_at
    counts = []
    for days in (1, 5):
        with tenant_context(tenant_a):
            DirtyDay.objects.all().delete()
            for n in range(days):
                DirtyDay.objects.create(
                    tenant=tenant_a, day=D1 + dt.timedelta(days=n), failed_at=now, error="x"
                )
        with CaptureQueriesContext(connection) as queries:
            health = _health(graphql, token)
        assert health["failedDayCount"] == len(health["failedDays"]) == days
        counts.append(len(queries))
    assert counts[0] == counts[1]
