"""Handoff KPIs as registered measures: speed-to-lead, SLA attainment, breaches and the return
rate, exact against hand-computed values for every grain and scope, refreshed incrementally
as the handoff services change their facts (equal to a rebuild), kept per tenant, in the
catalogue, leaderboards, series and alert rules.

The scenario (Tokyo, business hours 09:00-18:00; Monday 2026-11-23 is 勤労感謝の日, so the
weekend runs Saturday 21 to Monday 23; week W47 is 16-22 November, W48 23-29):

Speed-to-lead (clock from the transition into mql to the first call or e-mail, business
time, counted on the touch's day):
- L2 (event, routed to r2): MQL Mon 16 10:00, e-mail 10:30 → 1800 s on the 16th (r2).
- L5 (web, owner r1): e-mail Thu 19 09:30 recorded first; its MQL, backdated to Wed 18
  17:00, arrives later → 1 h Wed + 0.5 h Thu = 5400 s on the 19th (r1).
- L1 (web, owner r1): MQL Fri 20 17:00, call Tue 24 10:00 → 1 h Fri + 1 h Tue = 7200 s on
  the 24th; later an e-mail of Fri 20 17:30 is recorded → 1800 s on the 20th instead.
- L3 (web, owner r2): MQL Sat 21 12:00, call 13:00 → 0 s (weekend) on the 21st (r2).
- L4 (web, owner r1): MQL Tue 24, never touched → counts nowhere.
Final: 9000 s over 4 MQLs = 2250 s (all in W47); r1 7200/2, r2 1800/2; web 7200/3, event
1800/1.

Handoffs (8 business hours to accept or return; SLA facts on the deadline's day):
- H1 f1 web, Mon 16 10:00, due 16 18:00, accepted 15:00 → met (16th).
- H2 f1 event, Fri 20 14:00, due Tue 24 13:00, accepted Tue 14:00 → breached (24th).
- H3 f2 web, Fri 20 16:00, due Tue 24 15:00, marked breached Wed 09:30, returned Wed 10:00
  → breached (24th), a return on the 25th.
- H4 f2 web, Tue 24 10:00, due Tue 18:00, marked breached Wed 09:30 → breached (24th).
- H5 f1 web, Wed 25 09:00, due 17:00, returned 11:00 → met (25th), a return on the 25th.
- H6 f2 event, Thu 26 16:00, still awaiting → open: no SLA fact.
- H7 f1 web, Fri 27 10:00, due 18:00, accepted Sat 28 10:00 → met (no business time after
  the deadline) on the 27th.
November: handoffs 7, returns 2 (28.57 %); SLA met 3 of 6 (50 %), breaches 3.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from alerts.evaluation import alerts_evaluate
from alerts.models import Alert
from alerts.services import alert_rule_create
from handoff.handoffs import (
    handoff_accept,
    handoff_open,
    handoff_return,
    handoff_sla_steps_run,
    lead_entered_stage,
)
from handoff.measures import HANDOFF_KIND, KPIS, MEASURES, handoff_team_moved
from kpis.catalogue import CATALOGUE_BY_KEY
from kpis.leaderboards import kpi_leaderboard
from kpis.models import KpiMeasureValue
from kpis.periods import Grain, period_containing
from kpis.scopes import KpiScope
from kpis.selectors import kpi_catalogue, kpi_definitions, kpi_values
from kpis.snapshots import kpi_snapshots_rebuild, kpi_snapshots_refresh_dirty
from pipeline import services as pipeline_services
from pipeline.lifecycle import Stage
from pipeline.models import DirtyDay
from tenants import services
from tenants.context import tenant_context
from tenants.scopes import Role
from tenants.team_history import member_team_move
from tests.factories import TeamFactory
from tests.handoff.routing.conftest import TOKYO, add_member, make_lead, make_version

pytestmark = pytest.mark.django_db

KEYS = [kpi.key for kpi in KPIS]
SLA = {"speedToLeadHours": 1, "acceptHours": 8}


def tokyo(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=TOKYO)


def _touch(lead: Any, kind: str, at: dt.datetime) -> None:
    pipeline_services.activity_create(
        tenant=lead.tenant, lead=lead, type=kind, occurred_at=at, rep=lead.owner
    )


def _mql(lead: Any, at: dt.datetime) -> Any:
    return pipeline_services.lead_transition(lead=lead, to_stage=Stage.MQL, at=at)


def _handoff(tenant: Any, version: Any, at: dt.datetime, owner: Any, source: str) -> Any:
    lead = make_lead(tenant, source=source, owner=owner)
    _mql(lead, at - dt.timedelta(minutes=5))
    transition = pipeline_services.lead_transition(lead=lead, to_stage=Stage.SQL, at=at)
    return handoff_open(lead=lead, transition=transition, version=version)


def _world(tenant: Any) -> dict[str, Any]:
    inside, field = TeamFactory(tenant=tenant, name="IS"), TeamFactory(tenant=tenant, name="FS")
    prefix = tenant.slug
    world = {
        "inside": inside,
        "field": field,
        "r1": add_member(tenant, f"{prefix}-r1", Role.REP, inside),
        "r2": add_member(tenant, f"{prefix}-r2", Role.REP, inside),
        "f1": add_member(tenant, f"{prefix}-f1", Role.FIELD_SALES, field),
        "f2": add_member(tenant, f"{prefix}-f2", Role.FIELD_SALES, field),
    }
    world["version"] = make_version(
        tenant,
        sla=SLA,
        routing={"mql": {"strategy": "owner", "ownerId": world["r2"].pk}},
    )
    return world


def _stage_one(tenant: Any, w: dict[str, Any]) -> None:
    """Up to Tuesday 24: speed-to-lead clocks, H1 to H3, H1 accepted."""
    with tenant_context(tenant):
        l2 = make_lead(tenant, company="L2", source="event")
        transition = _mql(l2, tokyo(2026, 11, 16, 10))
        lead_entered_stage(lead=l2, transition=transition, version=w["version"])
        _touch(l2, "email", tokyo(2026, 11, 16, 10, 30))
        w["l5"] = make_lead(tenant, company="L5", source="web", owner=w["r1"])
        _touch(w["l5"], "email", tokyo(2026, 11, 19, 9, 30))
        w["l1"] = l1 = make_lead(tenant, company="L1", source="web", owner=w["r1"])
        _touch(l1, "email", tokyo(2026, 11, 19, 12))  # before its MQL: not a first touch
        _mql(l1, tokyo(2026, 11, 20, 17))
        _touch(l1, "meeting", tokyo(2026, 11, 23, 11))  # not a touch
        _touch(l1, "call", tokyo(2026, 11, 24, 10))
        l3 = make_lead(tenant, company="L3", source="web", owner=w["r2"])
        _mql(l3, tokyo(2026, 11, 21, 12))
        _touch(l3, "call", tokyo(2026, 11, 21, 13))
        l4 = make_lead(tenant, company="L4", source="web", owner=w["r1"])
        _mql(l4, tokyo(2026, 11, 24, 17, 30))
        version = w["version"]
        w["h1"] = _handoff(tenant, version, tokyo(2026, 11, 16, 10), w["f1"], "web")
        w["h2"] = _handoff(tenant, version, tokyo(2026, 11, 20, 14), w["f1"], "event")
        w["h3"] = _handoff(tenant, version, tokyo(2026, 11, 20, 16), w["f2"], "web")
        handoff_accept(handoff=w["h1"], at=tokyo(2026, 11, 16, 15))


def _stage_two(tenant: Any, w: dict[str, Any]) -> None:
    """Tuesday 24 to Wednesday 09:30: H2 accepted late, H4 opened, the SLA run marks H3 and
    H4 breached; L5's MQL arrives, backdated before its touch."""
    with tenant_context(tenant):
        handoff_accept(handoff=w["h2"], at=tokyo(2026, 11, 24, 14))
        w["h4"] = _handoff(tenant, w["version"], tokyo(2026, 11, 24, 10), w["f2"], "web")
        assert handoff_sla_steps_run(tenant=tenant, now=tokyo(2026, 11, 25, 9, 30)).breached == 2
        _mql(w["l5"], tokyo(2026, 11, 18, 17))


def _stage_three(tenant: Any, w: dict[str, Any]) -> None:
    """The rest of the week: H3 returned, H5 to H7, and an earlier touch of L1 recorded."""
    with tenant_context(tenant):
        version = w["version"]
        handoff_return(handoff=w["h3"], reason="noBudget", at=tokyo(2026, 11, 25, 10))
        h5 = _handoff(tenant, version, tokyo(2026, 11, 25, 9), w["f1"], "web")
        handoff_return(handoff=h5, reason="badTiming", at=tokyo(2026, 11, 25, 11))
        _handoff(tenant, version, tokyo(2026, 11, 26, 16), w["f2"], "event")
        h7 = _handoff(tenant, version, tokyo(2026, 11, 27, 10), w["f1"], "web")
        handoff_accept(handoff=h7, at=tokyo(2026, 11, 28, 10))
        _touch(w["l1"], "email", tokyo(2026, 11, 20, 17, 30))


def _values(tenant: Any, w: dict[str, Any], grain: str, day: dt.date) -> dict[tuple, Any]:
    period = period_containing(grain, day, tenant.fiscal_year_start_month)
    scopes = {
        "tenant": KpiScope.tenant(),
        "IS": KpiScope.team(w["inside"].pk),
        "FS": KpiScope.team(w["field"].pk),
        **{name: KpiScope.rep(w[name].pk) for name in ("r1", "r2", "f1", "f2")},
        "web": KpiScope.source("web"),
        "event": KpiScope.source("event"),
    }
    with tenant_context(tenant):
        kpis = list(kpi_definitions(tenant=tenant, keys=KEYS).values())
        values = kpi_values(
            tenant=tenant, kpis=kpis, periods=[period], scopes=list(scopes.values())
        )
    names = {scope: name for name, scope in scopes.items()}
    return {
        (key, names[scope]): (value.numerator, value.denominator, value.value)
        for (key, _, scope), value in values.items()
    }


def _table(tenant: Any) -> dict[tuple, Decimal]:
    with tenant_context(tenant):
        return {
            row[:-1]: row[-1]
            for row in KpiMeasureValue.objects.values_list(
                "grain", "period_start", "scope_type", "scope_key", "measure", "value"
            )
        }


def _refresh(tenant: Any) -> None:
    with tenant_context(tenant):
        kpi_snapshots_refresh_dirty(tenant=tenant)


def _rebuild(tenant: Any) -> None:
    with tenant_context(tenant):
        kpi_snapshots_rebuild(tenant=tenant)


D = Decimal
NOV = dt.date(2026, 11, 2)
W47, W48 = dt.date(2026, 11, 16), dt.date(2026, 11, 23)
SPEED, SLA_RATE, BREACHES, RETURNS = KEYS


def test_the_handoff_kpis_are_in_every_tenants_catalogue(tenant_a: Any, tenant_b: Any) -> None:
    for tenant in (tenant_a, tenant_b):
        with tenant_context(tenant):
            assert [k.key for k in kpi_catalogue(tenant=tenant)][-4:] == KEYS
    speed = CATALOGUE_BY_KEY[SPEED]
    assert (speed.numerator, speed.denominator, speed.unit, speed.direction) == (
        "speed_to_lead_seconds", "mqls_first_touched", "ratio", "lower_is_better",
    )  # fmt: skip
    assert CATALOGUE_BY_KEY[SLA_RATE].multiplier == 100
    assert {m.key for m in MEASURES} == {
        "speed_to_lead_seconds", "mqls_first_touched", "handoff_sla_met", "handoff_sla_due",
        "handoff_sla_breaches", "handoffs", "handoff_returns",
    }  # fmt: skip


def test_the_measures_business_clock_equals_the_tenants_business_hours() -> None:
    import random
    import zoneinfo

    from handoff.measures import _BusinessClock
    from tenants.business_hours import BusinessHours

    # across a daylight-saving change (New York, 1 November 2026), a holiday and weekends
    zone = zoneinfo.ZoneInfo("America/New_York")
    calendar = BusinessHours(
        zone=zone, off=frozenset({dt.date(2026, 11, 3)}), opens=dt.time(8), closes=dt.time(17, 30)
    )
    clock = _BusinessClock(calendar, dt.date(2026, 10, 25), dt.date(2026, 11, 12))
    first = dt.datetime(2026, 10, 25, 0, 0, tzinfo=zone).astimezone(dt.UTC)
    pick = random.Random(7)
    for _ in range(2000):
        a = first + dt.timedelta(
            seconds=pick.randrange(0, 8 * 86400), microseconds=pick.randrange(10**6)
        )
        b = a + dt.timedelta(seconds=pick.randrange(0, 9 * 86400))
        assert clock.between(a, b) == calendar.between(a, b), (a, b)
    # opening, closing and the instants around them exactly
    monday = dt.datetime(2026, 11, 2, 8, 0, tzinfo=zone)
    assert clock.between(monday, monday + dt.timedelta(hours=9, minutes=30)) == dt.timedelta(
        hours=9, minutes=30
    )
    assert clock.between(monday - dt.timedelta(hours=1), monday) == dt.timedelta(0)


def test_a_registered_kpi_is_validated_like_the_built_in_ones(tenant_a: Any) -> None:
    from dataclasses import replace

    from kpis.catalogue import register_kpi
    from kpis.definitions import kpi_custom_create
    from tenants.errors import ValidationFailed

    speed = CATALOGUE_BY_KEY[SPEED]
    for bad, message in (
        (replace(speed, key="handoff_x", numerator="nope"), "unknown measure"),
        (replace(speed, key="handoff_x", denominator=None), "denominator"),
        (replace(speed, key="handoff_x", unit="minutes"), "not a Unit"),
        (replace(speed, key="Bad key"), "KPI key"),
        (replace(speed, name_en="Another"), "in the catalogue already"),
        (replace(CATALOGUE_BY_KEY["calls"], name_en="Calls!"), "in the catalogue already"),
    ):
        with pytest.raises(ValueError, match=message):
            register_kpi(bad)
    assert register_kpi(speed) is speed  # the same definition again (a second ready())
    # and a tenant cannot define a KPI of a registered key
    with tenant_context(tenant_a), pytest.raises(ValidationFailed) as error:
        kpi_custom_create(
            tenant=tenant_a, key=SPEED, name_ja="x", category="activity", layer="quality",
            numerator="calls",
        )  # fmt: skip
    assert (error.value.code, error.value.field) == ("CONFLICT", "key")


def test_handoff_kpis_are_exact_refreshed_incrementally_and_equal_a_rebuild(
    tenant_a: Any, tenant_b: Any
) -> None:
    # given tenant B with a handoff and a touched MQL of its own (never in A's numbers)
    b = _world(tenant_b)
    with tenant_context(tenant_b):
        lead = make_lead(tenant_b, source="web", owner=b["r1"])
        _mql(lead, tokyo(2026, 11, 16, 9))
        _touch(lead, "call", tokyo(2026, 11, 16, 17))
        _handoff(tenant_b, b["version"], tokyo(2026, 11, 16, 9), b["f1"], "web")
    _refresh(tenant_b)
    # given tenant A up to Tuesday 24, refreshed
    w = _world(tenant_a)
    _rebuild(tenant_a)
    _stage_one(tenant_a, w)
    _refresh(tenant_a)
    # then speed-to-lead has L2, L3 and L1 (touched on Tuesday 24): 9000 s over 3
    month = _values(tenant_a, w, Grain.MONTH, NOV)
    assert month[(SPEED, "tenant")] == (9000, 3, D(3000))
    assert month[(SPEED, "r1")] == (7200, 1, D(7200))
    # and one SQL decided in time, three handed over
    assert month[(SLA_RATE, "tenant")] == (1, 1, D(100))
    assert month[(RETURNS, "tenant")] == (0, 3, D(0))

    # when the handoff services move the next facts (and L5's MQL arrives backdated)
    _stage_two(tenant_a, w)
    _refresh(tenant_a)
    month = _values(tenant_a, w, Grain.MONTH, NOV)
    # then H2, H3 and H4 are breached on Tuesday 24 and L5 counts on Thursday 19
    assert month[(SLA_RATE, "tenant")] == (1, 4, D(25))
    assert month[(BREACHES, "tenant")] == (3, None, D(3))
    assert month[(SPEED, "tenant")] == (14400, 4, D(3600))

    # when the week ends (and L1's earlier touch of Friday 20 is recorded)
    _stage_three(tenant_a, w)
    _refresh(tenant_a)
    incremental = _table(tenant_a)
    month = _values(tenant_a, w, Grain.MONTH, NOV)
    # then November, in every scope, is the hand-computed one
    expected_month = {
        (SPEED, "tenant"): (9000, 4, D(2250)),
        (SPEED, "IS"): (9000, 4, D(2250)),
        (SPEED, "r1"): (7200, 2, D(3600)),
        (SPEED, "r2"): (1800, 2, D(900)),
        (SPEED, "web"): (7200, 3, D(2400)),
        (SPEED, "event"): (1800, 1, D(1800)),
        (SPEED, "f1"): (0, 0, None),
        (SLA_RATE, "tenant"): (3, 6, D(50)),
        (SLA_RATE, "FS"): (3, 6, D(50)),
        (SLA_RATE, "IS"): (0, 0, None),
        (SLA_RATE, "f1"): (3, 4, D(75)),
        (SLA_RATE, "f2"): (0, 2, D(0)),
        (SLA_RATE, "web"): (3, 5, D(60)),
        (SLA_RATE, "event"): (0, 1, D(0)),
        (BREACHES, "tenant"): (3, None, D(3)),
        (BREACHES, "f1"): (1, None, D(1)),
        (BREACHES, "f2"): (2, None, D(2)),
        (BREACHES, "web"): (2, None, D(2)),
        (RETURNS, "tenant"): (2, 7, D(200) / 7),
        (RETURNS, "FS"): (2, 7, D(200) / 7),
        (RETURNS, "f1"): (1, 4, D(25)),
        (RETURNS, "f2"): (1, 3, D(100) / 3),
        (RETURNS, "web"): (2, 5, D(40)),
        (RETURNS, "event"): (0, 2, D(0)),
    }
    assert {key: month[key] for key in expected_month} == expected_month
    # and the weeks
    w47, w48 = _values(tenant_a, w, Grain.WEEK, W47), _values(tenant_a, w, Grain.WEEK, W48)
    assert w47[(SPEED, "tenant")] == (9000, 4, D(2250))
    assert w48[(SPEED, "tenant")] == (0, 0, None)
    assert w47[(SLA_RATE, "tenant")] == (1, 1, D(100))
    assert w48[(SLA_RATE, "tenant")] == (2, 5, D(40))
    assert w48[(BREACHES, "f2")] == (2, None, D(2))
    assert w47[(RETURNS, "tenant")] == (0, 3, D(0))
    assert w48[(RETURNS, "tenant")] == (2, 4, D(50))
    # and the days: L5 on the 19th, L1 moved from the 24th to the 20th, three breaches due 24th
    day = {n: _values(tenant_a, w, Grain.DAY, dt.date(2026, 11, n)) for n in (19, 20, 21, 24)}
    assert day[19][(SPEED, "r1")] == (5400, 1, D(5400))
    assert day[20][(SPEED, "web")] == (1800, 1, D(1800))
    assert day[21][(SPEED, "r2")] == (0, 1, D(0))
    assert day[24][(SPEED, "tenant")] == (0, 0, None)
    assert day[24][(SLA_RATE, "tenant")] == (0, 3, D(0))
    # and the fiscal year (April start) holds November
    year = _values(tenant_a, w, Grain.YEAR, NOV)
    assert year[(SLA_RATE, "f1")] == (3, 4, D(75))
    # and a rebuild gives exactly the rows the refreshes left
    _rebuild(tenant_a)
    assert _table(tenant_a) == incremental
    # and tenant B's numbers are its own: 8 business hours, one handoff, nothing of A's
    b_month = _values(tenant_b, b, Grain.MONTH, NOV)
    assert b_month[(SPEED, "tenant")] == (28800, 1, D(28800))
    assert b_month[(RETURNS, "tenant")] == (0, 1, D(0))
    assert b_month[(SLA_RATE, "tenant")] == (0, 0, None)


def test_a_backdated_team_move_recounts_the_handoff_kpis_of_the_days_it_covers(
    tenant_a: Any, monkeypatch: Any
) -> None:
    # given the whole scenario, refreshed (the moves' own refresh tasks are kept out)
    monkeypatch.setattr("kpis.snapshots.scheduling._queue_once", lambda *args, **kwargs: None)
    w = _world(tenant_a)
    _rebuild(tenant_a)
    for stage in (_stage_one, _stage_two, _stage_three):
        stage(tenant_a, w)
    _refresh(tenant_a)
    # when r2 moved to field sales on Friday 20 and f2 to inside sales on Wednesday 25,
    # both recorded afterwards
    member_team_move(membership=w["r2"], team=w["field"], effective_from="2026-11-20")
    member_team_move(membership=w["f2"], team=w["inside"], effective_from="2026-11-25")
    _refresh(tenant_a)
    month = _values(tenant_a, w, Grain.MONTH, NOV)
    # then r2's L2 (16th) stays with inside sales and its L3 (21st) counts for field sales
    assert month[(SPEED, "IS")] == (9000, 3, D(3000))
    assert month[(SPEED, "FS")] == (0, 1, D(0))
    assert month[(SPEED, "tenant")] == (9000, 4, D(2250))
    # and f2's H3 and H4 (handed over and due before the 25th) stay with field sales, while
    # H3's return (25th) and H6 (26th) count for inside sales
    assert month[(RETURNS, "FS")] == (1, 6, D(100) / 6)
    assert month[(RETURNS, "IS")] == (1, 1, D(100))
    assert month[(SLA_RATE, "FS")] == (3, 6, D(50))
    assert month[(SLA_RATE, "IS")] == (0, 0, None)
    assert month[(RETURNS, "tenant")] == (2, 7, D(200) / 7)
    # and the recount of the marked days equals a rebuild
    incremental = _table(tenant_a)
    _rebuild(tenant_a)
    assert _table(tenant_a) == incremental


def test_a_team_move_marks_the_days_of_the_members_handoff_facts(tenant_a: Any) -> None:
    # given the whole scenario, refreshed: nothing is dirty
    w = _world(tenant_a)
    for stage in (_stage_one, _stage_two, _stage_three):
        stage(tenant_a, w)
    _refresh(tenant_a)
    with tenant_context(tenant_a):
        assert not DirtyDay.objects.exists()
        # when f2's days from Tuesday 24 to Wednesday 25 change team
        handoff_team_moved(tenant_a.pk, w["f2"].pk, dt.date(2026, 11, 24), dt.date(2026, 11, 25))
        # then the 24th (H4 handed over; H3 and H4 due) is marked for the handoff measures
        marked = {row.day: row.kinds for row in DirtyDay.objects.all()}
        assert set(marked) == {dt.date(2026, 11, 24)}
        assert marked[dt.date(2026, 11, 24)] & int(HANDOFF_KIND)
        DirtyDay.objects.all().delete()
        # and r2's Monday 16 holds the first touch of L2, routed to r2
        handoff_team_moved(tenant_a.pk, w["r2"].pk, dt.date(2026, 11, 16), dt.date(2026, 11, 17))
        assert {row.day for row in DirtyDay.objects.all()} == {dt.date(2026, 11, 16)}


def test_a_deadline_after_every_pipeline_row_is_rebuilt_too(tenant_a: Any) -> None:
    # given an SQL handed over on Friday 27 at 17:00 (8 business hours: due Monday 30 at
    # 16:00) and accepted at 17:30, the last pipeline row of the tenant
    w = _world(tenant_a)
    with tenant_context(tenant_a):
        handoff = _handoff(tenant_a, w["version"], tokyo(2026, 11, 27, 17), w["f1"], "web")
        assert handoff.due_at == tokyo(2026, 11, 30, 16)
        handoff_accept(handoff=handoff, at=tokyo(2026, 11, 27, 17, 30))
    _refresh(tenant_a)
    # then the SLA is met on Monday 30, a day with no pipeline row
    monday = _values(tenant_a, w, Grain.DAY, dt.date(2026, 11, 30))
    assert monday[(SLA_RATE, "f1")] == (1, 1, D(100))
    refreshed = _table(tenant_a)
    # and a rebuild covers that day too
    _rebuild(tenant_a)
    assert _table(tenant_a) == refreshed


def test_speed_to_lead_is_measured_from_a_workspaces_first_rule_set_on(tenant_a: Any) -> None:
    from handoff.services import rule_set_create

    # given a workspace without handoff rules, with a touched MQL (30 business minutes)
    rep = add_member(tenant_a, "rita", Role.REP)
    with tenant_context(tenant_a):
        lead = make_lead(tenant_a, source="web", owner=rep)
        _mql(lead, tokyo(2026, 11, 16, 10))
        _touch(lead, "call", tokyo(2026, 11, 16, 10, 30))
    _refresh(tenant_a)
    # then it pays nothing for speed-to-lead: no value
    with tenant_context(tenant_a):
        assert not _speed_rows(SPEED)
        # when it creates its first rule set, and the next refresh runs
        rule_set_create(tenant=tenant_a, name="Standard")
    _refresh(tenant_a)
    # then the history is built whole, as a rebuild gives it
    with tenant_context(tenant_a):
        assert _speed_rows(SPEED)[(Grain.MONTH, "tenant")] == 1800
    refreshed = _table(tenant_a)
    _rebuild(tenant_a)
    assert _table(tenant_a) == refreshed


def _speed_rows(kpi: str) -> dict[tuple[str, str], Decimal]:
    measure = CATALOGUE_BY_KEY[kpi].numerator
    return {
        (grain, scope): value
        for grain, scope, value in KpiMeasureValue.objects.filter(measure=measure).values_list(
            "grain", "scope_type", "value"
        )
    }


def test_leaderboards_rank_field_sales_by_a_handoff_kpi(tenant_a: Any) -> None:
    w = _world(tenant_a)
    _stage_one(tenant_a, w)
    _stage_two(tenant_a, w)
    _stage_three(tenant_a, w)
    _refresh(tenant_a)
    period = period_containing(Grain.MONTH, NOV)
    with tenant_context(tenant_a):
        (kpi,) = kpi_definitions(tenant=tenant_a, keys=[SLA_RATE]).values()
        entries, total = kpi_leaderboard(tenant=tenant_a, kpi=kpi, period=period, by="rep")
    ranked = [
        (entry.rank, entry.value.scope.key, entry.value.value)
        for entry in entries
        if entry.value.value is not None
    ]
    # field sales are ranked although they have no activity: f1 75 %, then f2 0 %
    assert ranked == [(1, str(w["f1"].pk), D(75)), (2, str(w["f2"].pk), D(0))]
    assert total == 4  # and the reps, who had no handoff, listed after them


def test_an_alert_rule_on_sla_attainment_fires(tenant_a: Any) -> None:
    w = _world(tenant_a)
    _stage_one(tenant_a, w)
    _stage_two(tenant_a, w)
    _stage_three(tenant_a, w)
    _refresh(tenant_a)
    with tenant_context(tenant_a):
        add_member(tenant_a, "boss", Role.MANAGER, w["field"])
        alert_rule_create(
            tenant=tenant_a, name="SLA", kpi_key=SLA_RATE, scope_type="tenant", scope_key="",
            grain="month", kind="below_value", threshold=D(60),
            improvement_action="Review the queue every morning.", recipient_roles=["manager"],
            channels=["in_app"],
        )  # fmt: skip
        result = alerts_evaluate(tenant=tenant_a, now=tokyo(2026, 11, 30, 10))
        (alert,) = Alert.objects.all()
    assert result.fired == [alert.pk]
    assert (alert.period_label, alert.explanation["value"]) == ("2026-11", "50")


SERIES = """
query($kpis: [String!]!) {
  kpiSeriesList(kpis: $kpis, grain: MONTH, start: "2026-11-01", end: "2026-11-30") {
    kpi { key unit direction } points { value { value numerator denominator } }
  }
}"""


def test_graphql_series_list_serves_the_handoff_kpis(graphql: Any, tenant_a: Any) -> None:
    w = _world(tenant_a)
    _stage_one(tenant_a, w)
    _stage_two(tenant_a, w)
    _stage_three(tenant_a, w)
    _refresh(tenant_a)
    _, secret = services.api_token_create(tenant=tenant_a, name="r", scopes=["kpis:read"])
    _, body = graphql(SERIES, {"kpis": KEYS}, token=secret)
    got = {
        s["kpi"]["key"]: (s["kpi"]["unit"], s["points"][0]["value"])
        for s in body["data"]["kpiSeriesList"]
    }
    assert got == {
        SPEED: ("ratio", {"value": "2250.0000", "numerator": "9000", "denominator": "4"}),
        SLA_RATE: ("percent", {"value": "50.0000", "numerator": "3", "denominator": "6"}),
        BREACHES: ("count", {"value": "3.0000", "numerator": "3", "denominator": None}),
        RETURNS: ("percent", {"value": "28.5714", "numerator": "2", "denominator": "7"}),
    }
