"""Incremental distinct counts (membership rows on PostgreSQL) equal a rebuild's."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from kpis.models import KpiMemberPeriod, KpiSnapshot
from kpis.snapshots import kpi_snapshots_rebuild, kpi_snapshots_refresh_days
from pipeline import services as pipeline_services
from tenants import members
from tenants.context import tenant_context
from tenants.scopes import Role
from tests.factories import TeamFactory, UserFactory
from tests.kpis.snapshot_rows import snapshot_diff, snapshot_table

UTC = dt.UTC
pytestmark = pytest.mark.django_db


def _two_reps_of_one_team_and_leads(
    tenant: Any, prefix: str, sources: list[str]
) -> tuple[list[Any], list[Any]]:
    """Two reps (users `<prefix>0`, `<prefix>1`) of team East, and a lead per source."""
    team = TeamFactory(tenant=tenant, name="East")
    reps = [
        members.membership_add(
            tenant=tenant, user=UserFactory(username=f"{prefix}{i}"), role=Role.REP, team=team
        )
        for i in range(2)
    ]
    with tenant_context(tenant):
        leads = [
            pipeline_services.lead_create(
                tenant=tenant,
                company=f"C{i}",
                source=source,
                created_at=dt.datetime(2026, 3, 2, tzinfo=UTC),
            )
            for i, source in enumerate(sources)
        ]
    return reps, leads


def test_refreshes_in_materialized_and_fresh_periods_match_a_rebuild(tenant_a: Any) -> None:
    # given two reps of one team touching shared leads on several days
    reps, leads = _two_reps_of_one_team_and_leads(tenant_a, "r", ["web", "web", "event"])
    with tenant_context(tenant_a):

        def touch(day: int, lead: int, rep: int, kind: str = "call") -> dt.date:
            at = dt.datetime(2026, 3, day, 3, tzinfo=UTC)
            pipeline_services.activity_create(
                tenant=tenant_a, lead=leads[lead], rep=reps[rep], type=kind, occurred_at=at
            )
            return at.date()

        days = [dt.date(2026, 3, 2), touch(2, 0, 0), touch(3, 1, 1), touch(3, 0, 1, "email")]
        kpi_snapshots_refresh_days(tenant=tenant_a, days=days)
        # when later days add new and already-counted members, one refresh at a time
        for day, lead, rep in ((10, 0, 0), (10, 2, 0), (31, 1, 0), (31, 2, 1)):
            kpi_snapshots_refresh_days(tenant=tenant_a, days=[touch(day, lead, rep)])
        # and a meeting (not outreach) by a rep makes the rep active without a touch
        kpi_snapshots_refresh_days(tenant=tenant_a, days=[touch(20, 1, 1, "meeting")])
        incremental = snapshot_table()
        # then a rebuild gives exactly the same snapshot rows
        kpi_snapshots_rebuild(tenant=tenant_a)
        assert snapshot_diff(snapshot_table(), incremental) == []
        march = incremental[("month", dt.date(2026, 3, 1), "tenant", "")]
        assert march  # the month exists in both


@pytest.mark.postgres
def test_periods_are_materialized_once_on_postgresql(tenant_a: Any) -> None:
    with tenant_context(tenant_a):
        lead = pipeline_services.lead_create(tenant=tenant_a, company="C")
        at = dt.datetime(2026, 3, 2, 3, tzinfo=UTC)
        pipeline_services.activity_create(tenant=tenant_a, lead=lead, type="call", occurred_at=at)
        kpi_snapshots_refresh_days(tenant=tenant_a, days=[at.date()])
        built = list(KpiMemberPeriod.objects.order_by("grain").values_list("grain", flat=True))
        # The four periods containing the day, and the day (its members are complete).
        assert built == ["day", "month", "quarter", "week", "year"]
        kpi_snapshots_refresh_days(tenant=tenant_a, days=[at.date()])
        assert KpiMemberPeriod.objects.count() == 5
        kpi_snapshots_rebuild(tenant=tenant_a)
        assert KpiMemberPeriod.objects.count() == 0


def test_changed_and_reattributed_rows_refresh_to_the_same_numbers_as_a_rebuild(
    tenant_a: Any,
) -> None:
    """Partner resends that move an activity or change a lead's source are exact at once."""
    from kpis.snapshots import kpi_snapshots_refresh_dirty
    from pipeline.ingestion import records_ingest
    from pipeline.models import DirtyDay

    team = TeamFactory(tenant=tenant_a, name="East")
    for name in ("ana", "ben"):
        members.membership_add(
            tenant=tenant_a, user=UserFactory(username=name), role=Role.REP, team=team
        )

    def ingest(**rows: Any) -> None:
        with tenant_context(tenant_a):
            result = records_ingest(
                tenant=tenant_a, batch={"source_system": "sfa", **rows}, actor_label="test"
            )
            assert not result.row_errors, result.row_errors
            kpi_snapshots_refresh_dirty(tenant=tenant_a)
            assert not DirtyDay.objects.exists()

    leads = [
        {"external_id": f"L{i}", "company": f"C{i}", "source": "web",
         "created_at": "2026-03-02T01:00:00+00:00"}
        for i in range(3)
    ]  # fmt: skip
    calls = [
        {"external_id": f"A{i}", "lead_external_id": f"L{i % 3}", "type": "call",
         "rep_username": ("ana", "ben")[i % 2],
         "occurred_at": f"2026-03-{2 + i:02d}T02:00:00+00:00"}
        for i in range(6)
    ]  # fmt: skip
    # given a first import, refreshed incrementally
    ingest(leads=leads, activities=calls)
    # when the partner moves a call to another day and rep, and a lead to another source
    calls[0] |= {"occurred_at": "2026-04-20T02:00:00+00:00", "rep_username": "ben"}
    leads[1] |= {"source": "event"}
    ingest(leads=leads, activities=calls)
    with tenant_context(tenant_a):
        incremental = snapshot_table()
        kpi_snapshots_rebuild(tenant=tenant_a)
        # then the incremental numbers are those of a rebuild
        assert snapshot_diff(snapshot_table(), incremental) == []
        march_event = incremental[("month", dt.date(2026, 3, 1), "source", "event")]
    assert march_event  # the re-attributed lead's March calls moved to "event"


def test_a_period_first_built_while_other_days_wait_counts_their_leads_once(
    tenant_a: Any,
) -> None:
    """A refresh that handles some dirty days builds their periods from raw rows; the calls
    still listed by the days it leaves are added by the refresh that handles those."""
    from kpis.snapshots import kpi_snapshots_refresh_dirty
    from pipeline.models import DirtyDay

    reps, leads = _two_reps_of_one_team_and_leads(tenant_a, "r", ["web", "event", "web"])
    with tenant_context(tenant_a):
        # given calls to three leads on three days of March, each day marked with its calls
        for day, lead, rep in ((3, 0, 0), (10, 1, 1), (20, 2, 0), (20, 0, 1)):
            pipeline_services.activity_create(
                tenant=tenant_a, lead=leads[lead], rep=reps[rep], type="call",
                occurred_at=dt.datetime(2026, 3, day, 3, tzinfo=UTC),
            )  # fmt: skip
        # when the days are refreshed one per pass (March is built by the first pass)
        while DirtyDay.objects.exists():
            assert kpi_snapshots_refresh_dirty(tenant=tenant_a, limit=1).days == 1
        incremental = snapshot_table()
        march = KpiSnapshot.objects.get(
            grain="month", period_start=dt.date(2026, 3, 1), scope_type="tenant"
        )
        # then each lead and rep counts once in March, as in a rebuild
        assert (march.leads_touched, march.active_reps) == (3, 2)
        kpi_snapshots_rebuild(tenant=tenant_a)
        assert snapshot_diff(snapshot_table(), incremental) == []


def test_refreshing_days_clears_their_marks(tenant_a: Any) -> None:
    """A mark left behind would list calls that the refresh of its days counted already."""
    from pipeline.models import DirtyDay

    _, leads = _two_reps_of_one_team_and_leads(tenant_a, "r", ["web"])
    with tenant_context(tenant_a):
        days = [dt.date(2026, 3, 3), dt.date(2026, 3, 4)]
        for day in days:
            pipeline_services.activity_create(
                tenant=tenant_a, lead=leads[0], type="call",
                occurred_at=dt.datetime(day.year, day.month, day.day, 3, tzinfo=UTC),
            )  # fmt: skip
        kpi_snapshots_refresh_days(tenant=tenant_a, days=days[:1])
        marked = set(DirtyDay.objects.values_list("day", flat=True))
        assert days[0] not in marked and days[1] in marked


def test_a_leads_creation_counts_for_its_owner_then_after_a_reassignment(tenant_a: Any) -> None:
    """DESIGN.md: lead-based facts count for the lead's owner at that time."""
    from kpis.snapshots import kpi_snapshots_refresh_dirty
    from pipeline.ingestion import records_ingest
    from pipeline.models import Lead

    team = TeamFactory(tenant=tenant_a, name="East")
    ana, ben = (
        members.membership_add(
            tenant=tenant_a, user=UserFactory(username=name), role=Role.REP, team=team
        )
        for name in ("ana", "ben")
    )

    def ingest(owner: str) -> None:
        with tenant_context(tenant_a):
            lead = {"external_id": "L1", "company": "C", "owner_username": owner,
                    "created_at": "2026-03-02T01:00:00+00:00"}  # fmt: skip
            result = records_ingest(
                tenant=tenant_a, batch={"source_system": "sfa", "leads": [lead]},
                actor_label="test",
            )  # fmt: skip
            assert not result.row_errors, result.row_errors
            kpi_snapshots_refresh_dirty(tenant=tenant_a)

    def created_by_rep() -> dict[str, int]:
        rows = KpiSnapshot.objects.filter(
            grain="month", period_start=dt.date(2026, 3, 1), scope_type="rep"
        )
        return {key: n for key, n in rows.values_list("scope_key", "leads_created") if n}

    # given a lead created by ana's partner record
    ingest("ana")
    # when the partner re-sends it with ben as its owner
    ingest("ben")
    with tenant_context(tenant_a):
        lead = Lead.objects.get()
        assert (lead.owner_id, lead.created_owner_id) == (ben.pk, ana.pk)
        # then its creation still counts for ana, its owner then, as a rebuild says too
        assert created_by_rep() == {str(ana.pk): 1}
        kpi_snapshots_rebuild(tenant=tenant_a)
        assert created_by_rep() == {str(ana.pk): 1}
        # and a lead created through the services counts for its owner then as well
        other = pipeline_services.lead_create(
            tenant=tenant_a, company="D", owner=ben, created_at=dt.datetime(2026, 3, 5, tzinfo=UTC)
        )
        pipeline_services.lead_update(lead=other, owner=ana)
        other.refresh_from_db()
        assert (other.owner_id, other.created_owner_id) == (ana.pk, ben.pk)


def test_refreshing_a_day_whose_rows_are_gone_removes_it_from_its_periods(tenant_a: Any) -> None:
    # given a call refreshed into the snapshots
    with tenant_context(tenant_a):
        lead = pipeline_services.lead_create(
            tenant=tenant_a, company="C", created_at=dt.datetime(2026, 2, 2, tzinfo=UTC)
        )
        at = dt.datetime(2026, 3, 2, 3, tzinfo=UTC)
        activity = pipeline_services.activity_create(
            tenant=tenant_a, lead=lead, type="call", occurred_at=at
        )
        kpi_snapshots_refresh_days(tenant=tenant_a, days=[at.date()])
        assert KpiSnapshot.objects.filter(period_start=at.date(), grain="day").exists()
        # when the call is deleted behind the services' back and its day is recounted
        activity.delete()
        kpi_snapshots_refresh_days(tenant=tenant_a, days=[at.date()])
        # then neither the day nor its periods keep a row of it
        assert not KpiSnapshot.objects.filter(period_start=at.date(), grain="day").exists()
        assert not KpiSnapshot.objects.filter(grain="month", period_start=dt.date(2026, 3, 1))


@pytest.mark.postgres
def test_refreshes_of_warmed_and_rescanned_days_match_a_rebuild(tenant_a: Any) -> None:
    """Days whose own members are stored (by the warm-up or an earlier refresh) offer their
    periods only what is new to them; a rescanned day drops its members and starts over."""
    from kpis.models import KpiMember
    from kpis.snapshots import kpi_snapshots_warm

    reps, leads = _two_reps_of_one_team_and_leads(tenant_a, "w", ["web", "event", ""])
    with tenant_context(tenant_a):

        def touch(day: int, lead: int, rep: int | None) -> Any:
            return pipeline_services.activity_create(
                tenant=tenant_a,
                lead=leads[lead],
                rep=None if rep is None else reps[rep],
                type="call",
                occurred_at=dt.datetime(2026, 3, day, 3, tzinfo=UTC),
            )

        touch(3, 0, 0)
        touch(4, 1, None)
        # given a rebuild, then a warm-up that stores the members of March's days so far
        kpi_snapshots_rebuild(tenant=tenant_a)
        kpi_snapshots_warm(tenant=tenant_a, today=dt.date(2026, 3, 5))
        assert KpiMember.objects.filter(grain="day", period_start=dt.date(2026, 3, 3)).exists()
        # when a warmed day gains a known member and new ones (another rep, a lead without
        # a rep), and is refreshed
        touch(3, 0, 0)
        touch(3, 0, 1)
        touch(3, 2, None)
        kpi_snapshots_refresh_days(tenant=tenant_a, days=[dt.date(2026, 3, 3)])
        # and a call is deleted, its day recounted, and the same pair is touched again
        gone = touch(4, 2, 1)
        kpi_snapshots_refresh_days(tenant=tenant_a, days=[dt.date(2026, 3, 4)])
        gone.delete()
        kpi_snapshots_refresh_days(tenant=tenant_a, days=[dt.date(2026, 3, 4)])
        touch(4, 2, 1)
        kpi_snapshots_refresh_days(tenant=tenant_a, days=[dt.date(2026, 3, 4)])
        incremental = snapshot_table()
        # then a rebuild gives exactly the same snapshot rows
        kpi_snapshots_rebuild(tenant=tenant_a)
        assert snapshot_diff(snapshot_table(), incremental) == []
        week = incremental[("week", dt.date(2026, 3, 2), "tenant", "")]
    assert week  # the week exists in both


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, databases="__all__")
def test_an_unseen_tenants_refresh_seeks_the_touched_leads_histories(
    tenant_a: Any, tenant_b: Any
) -> None:
    """Statistics that cover only tenant A estimate about one row for tenant B: the read of
    the touched leads' histories must still seek each lead, not scan all of B's year."""
    from django.db import connection, connections

    from kpis.snapshots import kpi_snapshots_refresh_dirty
    from pipeline.models import Activity, Lead

    at = dt.datetime(2026, 6, 1, 2, tzinfo=UTC)

    def calls(tenant: Any, count: int) -> None:
        with tenant_context(tenant):
            lead = pipeline_services.lead_create(tenant=tenant, company="A社", created_at=at)
            for _ in range(count):
                pipeline_services.activity_create(
                    tenant=tenant, lead=lead, type="call", occurred_at=at
                )
            kpi_snapshots_refresh_dirty(tenant=tenant)

    # given planner statistics taken when only tenant A had activities (enough of them
    # that reading the table whole is not the cheapest plan)
    with tenant_context(tenant_a):
        leads = Lead.objects.bulk_create(
            Lead(tenant=tenant_a, company=f"C{i}", created_at=at) for i in range(500)
        )
        Activity.objects.bulk_create(
            Activity(tenant=tenant_a, lead=leads[i % 500], type="call", occurred_at=at)
            for i in range(20_000)
        )
    with connections["owner"].cursor() as cursor:
        cursor.execute("ANALYZE pipeline_activity")
    # when tenant B's day is refreshed, then refreshed again after one more call
    plans: list[str] = []

    def explain_histories(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if "pending AS MATERIALIZED" in sql:
            raw = connection.connection.cursor()
            raw.execute("SAVEPOINT explained")
            raw.execute("EXPLAIN " + sql, params)
            plans.append("\n".join(row[0] for row in raw.fetchall()))
            raw.execute("ROLLBACK TO SAVEPOINT explained")
        return execute(sql, params, many, context)

    calls(tenant_b, 2)
    with connection.execute_wrapper(explain_histories):
        calls(tenant_b, 1)
    # then the histories are read by lead (each step's): the leads are an index condition,
    # not a filter
    assert plans
    for plan in plans:
        reads = plan.split("on pipeline_activity a_")[1:]
        assert len(reads) >= 2, plan  # the day's listed rows, then the histories
        for history in reads[1:]:
            conditions = [
                line for line in history.split("Hash  (")[0].splitlines() if "Index Cond" in line
            ]
            assert any("lead_id = ANY" in line for line in conditions), plan
