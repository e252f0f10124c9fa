"""KPI values on hand-built data: time-zone edges, calendars, recycled leads, null rates."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from kpis.catalogue import BUILTIN_BY_KEY
from kpis.periods import parse_period
from kpis.scopes import KpiScope
from kpis.selectors import kpi_values
from kpis.snapshots import kpi_snapshots_rebuild
from pipeline import services as pipeline_services
from pipeline.lifecycle import Stage
from tenants import members
from tenants.context import tenant_context
from tenants.models import TenantClosure
from tenants.scopes import Role
from tests.factories import TeamFactory, TenantFactory, UserFactory

UTC = dt.UTC


def _value(tenant: Any, key: str, label: str, scope: KpiScope | None = None) -> Any:
    scope = scope or KpiScope.tenant()
    period = parse_period(label, tenant.fiscal_year_start_month)
    with tenant_context(tenant):
        values = kpi_values(
            tenant=tenant, kpis=[BUILTIN_BY_KEY[key]], periods=[period], scopes=[scope]
        )
    return values[(key, period, scope)]


def _rebuild(tenant: Any) -> None:
    with tenant_context(tenant):
        kpi_snapshots_rebuild(tenant=tenant)


@pytest.fixture
def rep(tenant_a: Any) -> Any:
    team = TeamFactory(tenant=tenant_a, name="IS West")
    return members.membership_add(
        tenant=tenant_a, user=UserFactory(username="ren"), role=Role.REP, team=team
    )


def _lead(tenant: Any, **fields: Any) -> Any:
    with tenant_context(tenant):
        return pipeline_services.lead_create(
            tenant=tenant, company=fields.pop("company", "株式会社テスト"), **fields
        )


def _call(tenant: Any, lead: Any, at: dt.datetime, rep: Any = None, **fields: Any) -> None:
    with tenant_context(tenant):
        pipeline_services.activity_create(
            tenant=tenant, lead=lead, rep=rep, type="call", occurred_at=at, **fields
        )


@pytest.mark.django_db
def test_activity_at_2330_jst_counts_on_that_jst_day_and_midnight_starts_the_new_month(
    tenant_a: Any, rep: Any
) -> None:
    # given a call at 23:30 JST on 31 March and one at 00:00:00 JST on 1 April
    lead = _lead(tenant_a, owner=rep, created_at=dt.datetime(2026, 3, 1, tzinfo=UTC))
    _call(tenant_a, lead, dt.datetime(2026, 3, 31, 14, 30, tzinfo=UTC), rep)
    _call(tenant_a, lead, dt.datetime(2026, 3, 31, 15, 0, tzinfo=UTC), rep)
    # when snapshots are built
    _rebuild(tenant_a)
    # then each lands on its JST day, month, fiscal quarter and fiscal year
    assert _value(tenant_a, "calls", "2026-03-31").value == 1
    assert _value(tenant_a, "calls", "2026-04-01").value == 1
    assert _value(tenant_a, "calls", "2026-03").value == 1
    assert _value(tenant_a, "calls", "2026-04").value == 1
    assert _value(tenant_a, "calls", "FY2025-Q4").value == 1
    assert _value(tenant_a, "calls", "FY2026-Q1").value == 1
    assert _value(tenant_a, "calls", "FY2025").value == 1
    assert _value(tenant_a, "calls", "2026-W14").value == 2  # Mon 30 Mar to Sun 5 Apr


@pytest.mark.django_db
def test_new_york_tenant_beside_tokyo_uses_its_own_days_and_calendar(tenant_a: Any) -> None:
    # given the same instant recorded by a Tokyo and a New York tenant
    ny = TenantFactory(slug="nyc", timezone="America/New_York", holiday_country="US")
    instant = dt.datetime(2026, 7, 1, 2, 0, tzinfo=UTC)  # 11:00 JST 1 Jul, 22:00 EDT 30 Jun
    for tenant in (tenant_a, ny):
        _call(tenant, _lead(tenant), instant)
        _rebuild(tenant)
    # then Tokyo counts it in July and New York in June
    assert _value(tenant_a, "calls", "2026-07").value == 1
    assert _value(tenant_a, "calls", "2026-06").value == 0
    assert _value(ny, "calls", "2026-06").value == 1
    assert _value(ny, "calls", "2026-07").value == 0
    # and the working days follow each country: July 2026 has 23 weekdays; the US observes
    # Independence Day on Friday 3 July, Japan has Marine Day on 20 July
    with tenant_context(ny):
        from kpis.selectors import measure_values

        july = parse_period("2026-07")
        assert (
            measure_values(tenant=ny, periods=[july], scopes=[KpiScope.tenant()])[
                (july, KpiScope.tenant())
            ]["working_days"]
            == 22
        )
    with tenant_context(tenant_a):
        from kpis.selectors import measure_values

        assert (
            measure_values(tenant=tenant_a, periods=[july], scopes=[KpiScope.tenant()])[
                (july, KpiScope.tenant())
            ]["working_days"]
            == 22
        )


@pytest.mark.django_db
def test_calls_per_rep_day_uses_holidays_substitute_holidays_and_closures(
    tenant_a: Any, rep: Any
) -> None:
    # given 3 calls by one rep in the ISO week of Golden Week 2026 (Mon 4 May to Sun 10 May):
    # 4, 5 and 6 May are holidays (6 May is the substitute for Sunday 3 May)
    lead = _lead(tenant_a, owner=rep)
    for day in (4, 7, 9):  # a holiday, a working day and a Saturday: all count
        _call(tenant_a, lead, dt.datetime(2026, 5, day, 1, 0, tzinfo=UTC), rep)
    _rebuild(tenant_a)
    # then the week has 2 working days (7 and 8 May): 3 calls ÷ (1 rep x 2 days)
    value = _value(tenant_a, "calls_per_rep_day", "2026-W19")
    assert (value.numerator, value.denominator, value.value) == (3, 2, Decimal("1.5"))
    # when the tenant closes on 8 May as well
    with tenant_context(tenant_a):
        TenantClosure.objects.create(tenant=tenant_a, date=dt.date(2026, 5, 8), name="社休")
    # then one working day is left
    assert _value(tenant_a, "calls_per_rep_day", "2026-W19").value == 3
    # and a period without any working day gives null, not a division by zero
    assert _value(tenant_a, "calls_per_rep_day", "2026-05-05").value is None
    assert _value(tenant_a, "calls_per_rep_day", "2026-05-05").denominator == 0


@pytest.mark.django_db
def test_recycled_lead_re_entering_a_stage_counts_each_transition(tenant_a: Any, rep: Any) -> None:
    # given a lead that reaches sql, is recycled and reaches mql and sql again in April
    lead = _lead(tenant_a, owner=rep, created_at=dt.datetime(2026, 4, 1, 1, tzinfo=UTC))
    steps = [Stage.MQL, Stage.SQL, Stage.RECYCLED, Stage.MQL, Stage.SQL, Stage.MEETING]
    with tenant_context(tenant_a):
        for hour, stage in enumerate(steps, start=2):
            pipeline_services.lead_transition(
                lead=lead, to_stage=stage, at=dt.datetime(2026, 4, 2, hour, tzinfo=UTC)
            )
    _rebuild(tenant_a)
    # then every entry counts in period mode, and the meeting rate is meetings ÷ leads
    assert _value(tenant_a, "mqls", "2026-04").value == 2
    assert _value(tenant_a, "sqls_created", "2026-04").value == 2
    assert _value(tenant_a, "meeting_rate", "2026-04").value == 100
    assert _value(tenant_a, "mqls", "2026-04", KpiScope.rep(rep.pk)).value == 2
    assert _value(tenant_a, "mqls", "2026-04", KpiScope.team(rep.team_id)).value == 2


@pytest.mark.django_db
def test_rates_with_zero_denominators_are_null_and_unassigned_rows_skip_rep_scopes(
    tenant_a: Any, rep: Any
) -> None:
    # given an unassigned lead from "web" with one call and nothing else
    lead = _lead(tenant_a, source="web", created_at=dt.datetime(2026, 6, 1, 1, tzinfo=UTC))
    _call(tenant_a, lead, dt.datetime(2026, 6, 1, 2, tzinfo=UTC))
    _rebuild(tenant_a)
    # then rates over nothing are null, not 0
    assert _value(tenant_a, "win_rate", "2026-06").value is None
    assert _value(tenant_a, "email_open_rate", "2026-06").value is None
    assert _value(tenant_a, "connect_rate", "2026-06").value == 0
    # and the lead counts for the tenant and its source but no rep or team
    assert _value(tenant_a, "leads", "2026-06").value == 1
    assert _value(tenant_a, "leads", "2026-06", KpiScope.source("web")).value == 1
    assert _value(tenant_a, "leads", "2026-06", KpiScope.rep(rep.pk)).value == 0
    assert _value(tenant_a, "leads", "2026-06", KpiScope.team(rep.team_id)).value == 0
    # and calls without a rep have no active rep: calls per rep-day is null
    assert _value(tenant_a, "calls_per_rep_day", "2026-06").value is None


@pytest.mark.django_db
def test_weighted_pipeline_is_the_stock_at_each_period_end(tenant_a: Any, rep: Any) -> None:
    # given a deal created in April at the first open stage, moved on in May, won in June
    with tenant_context(tenant_a):
        from pipeline.models import DealStage

        stages = list(DealStage.objects.order_by("order"))
        open_stages = [s for s in stages if not (s.is_won or s.is_lost)]
        won = next(s for s in stages if s.is_won)
        lead = _lead(tenant_a, owner=rep)
        deal = pipeline_services.deal_create(
            tenant=tenant_a,
            lead=lead,
            amount=Decimal("1000000"),
            stage=open_stages[0],
            created_at=dt.datetime(2026, 4, 10, 1, tzinfo=UTC),
        )
        pipeline_services.deal_move_stage(
            deal=deal, stage=open_stages[1], at=dt.datetime(2026, 5, 10, 1, tzinfo=UTC)
        )
        pipeline_services.deal_move_stage(
            deal=deal, stage=won, at=dt.datetime(2026, 6, 10, 1, tzinfo=UTC)
        )
    _rebuild(tenant_a)
    # then the stock at each month end follows the stage of that instant
    first = Decimal("1000000") * open_stages[0].win_probability
    second = Decimal("1000000") * open_stages[1].win_probability
    assert _value(tenant_a, "weighted_pipeline", "2026-03").value == 0
    assert _value(tenant_a, "weighted_pipeline", "2026-04").value == first
    assert _value(tenant_a, "weighted_pipeline", "2026-05").value == second
    assert _value(tenant_a, "weighted_pipeline", "2026-06").value == 0
    assert _value(tenant_a, "weighted_pipeline", "FY2026-Q1").value == 0
    assert _value(tenant_a, "weighted_pipeline", "2026-05", KpiScope.rep(rep.pk)).value == second
    assert _value(tenant_a, "won_deals", "2026-06").value == 1
    assert _value(tenant_a, "revenue", "2026-06").value == Decimal("1000000")
    assert _value(tenant_a, "pipeline_created", "2026-04").value == Decimal("1000000")


@pytest.mark.django_db
def test_snapshots_of_one_tenant_never_show_in_another(tenant_a: Any, tenant_b: Any) -> None:
    # given calls in tenant A only
    _call(tenant_a, _lead(tenant_a), dt.datetime(2026, 6, 1, 2, tzinfo=UTC))
    _rebuild(tenant_a)
    _rebuild(tenant_b)
    # then tenant B reads zero for the same period and scope
    assert _value(tenant_a, "calls", "2026-06").value == 1
    assert _value(tenant_b, "calls", "2026-06").value == 0
