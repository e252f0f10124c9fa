"""Silence over a weekend, one alert under concurrent evaluation, and query counts."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection

from alerts.models import Alert, AlertEvent
from kpis.scopes import KpiScope
from kpis.targets import kpi_target_set
from tenants import members
from tenants.context import tenant_context
from tenants.scopes import Role
from tests.alerts.conftest import APRIL, MAY, NOW, alerts_of, at, evaluate, make_rule, snapshot
from tests.factories import UserFactory
from tests.pipeline.factories import ActivityFactory


@pytest.mark.django_db
def test_silence_counts_working_hours_over_a_weekend(tenant_a: Any, rep: Any) -> None:
    # given rita's last call on Friday 15 May at 17:00, a rule "2 working hours of silence"
    ActivityFactory(tenant=tenant_a, rep=rep, occurred_at=at(2026, 5, 15, 17))
    make_rule(
        tenant_a, kind="silence", kpi_key="", threshold=2, scope_type="every_rep", grain="week"
    )
    # when judged on Monday 10:00: Friday 17-18 and Monday 9-10 make exactly 2 hours
    evaluate(tenant_a, at(2026, 5, 18, 10))
    # then not yet silent
    assert alerts_of(tenant_a) == []
    # when a second later
    evaluate(tenant_a, at(2026, 5, 18, 10, 0, 1))
    # then silent, in the current week, with the last activity and the hours
    (alert,) = alerts_of(tenant_a)
    assert (alert.scope_type, alert.scope_key, alert.period_label) == (
        "rep",
        str(rep.pk),
        "2026-W21",
    )
    assert alert.explanation["lastActivityAt"] == at(2026, 5, 15, 17).isoformat()
    assert alert.explanation["silentWorkingHours"] == str(Decimal(7201) / Decimal(3600))
    # when rita calls again
    ActivityFactory(tenant=tenant_a, rep=rep, occurred_at=at(2026, 5, 18, 10, 5))
    evaluate(tenant_a, at(2026, 5, 18, 10, 6))
    # then resolved
    assert [a.state for a in alerts_of(tenant_a)] == ["resolved"]


@pytest.mark.django_db
def test_silence_of_a_source_and_of_the_tenant(tenant_a: Any, rep: Any) -> None:
    # given a call on a "web" lead on Monday 18 May 9:00, nothing from "event" leads ever
    ActivityFactory(tenant=tenant_a, rep=rep, occurred_at=at(2026, 5, 18, 9), lead__source="web")
    for source in ("web", "event"):
        make_rule(
            tenant_a,
            name=source,
            kind="silence",
            kpi_key="",
            threshold=4,
            scope_type="source",
            scope_key=source,
            grain="week",
        )
    make_rule(tenant_a, name="all", kind="silence", kpi_key="", threshold=4, grain="week")
    # when judged at 12:00 the same day
    evaluate(tenant_a, at(2026, 5, 18, 12))
    # then only the silent source fires
    assert [(a.scope_type, a.scope_key) for a in alerts_of(tenant_a)] == [("source", "event")]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_evaluations_at_once_raise_one_alert(tenant_a: Any) -> None:
    # given a rule whose condition holds
    make_rule(tenant_a)
    snapshot(tenant_a, MAY, KpiScope.tenant(), calls=10, connects=1)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            evaluate(tenant_a)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    # when two workers evaluate at the same moment
    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then exactly one alert, fired once
    assert errors == []
    (alert,) = alerts_of(tenant_a)
    with tenant_context(tenant_a):
        kinds = list(AlertEvent.objects.filter(alert=alert).values_list("kind", flat=True))
    assert kinds == ["fired", "notified"]


def _many_rules(tenant: Any, reps: int = 10) -> None:
    team_members = [
        members.membership_add(tenant=tenant, user=UserFactory(username=f"rep{n}"), role=Role.REP)
        for n in range(reps)
    ]
    with tenant_context(tenant):
        kpi_target_set(
            tenant=tenant,
            kpi_key="meetings_set",
            period=MAY,
            scope=KpiScope.tenant(),
            value=Decimal(100),
            set_by=None,
        )
    for n, member in enumerate(team_members):
        scope = KpiScope.rep(member.pk)
        snapshot(tenant, MAY, scope, calls=40 + n, connects=10 + n, meetings=n)
        snapshot(tenant, APRIL, scope, calls=50, connects=30, meetings=5)
    snapshot(tenant, MAY, KpiScope.tenant(), calls=500, connects=200, meetings=30)
    snapshot(tenant, APRIL, KpiScope.tenant(), calls=600, connects=300, meetings=60)
    kinds = [
        {"kind": "below_value", "kpi_key": "connect_rate", "threshold": 30, "min_sample": 30},
        {"kind": "drop_vs_previous", "kpi_key": "calls", "threshold": 10},
        {"kind": "below_target_percent", "kpi_key": "meetings_set", "threshold": 80},
        {"kind": "behind_pace", "kpi_key": "meetings_set", "threshold": 100},
    ]
    for n in range(200):
        make_rule(
            tenant,
            name=f"rule {n}",
            scope_type="every_rep" if (n // 4) % 2 else "tenant",
            **kinds[n % 4],
        )


@pytest.mark.django_db
def test_200_rules_over_every_rep_take_a_handful_of_queries(
    tenant_a: Any, django_assert_max_num_queries: Any
) -> None:
    # given 200 rules, half of them on each of 10 reps (2,200 judgements for 2 periods)
    _many_rules(tenant_a)
    # when evaluated the first time (writes every new alert and its events)
    with django_assert_max_num_queries(60):
        result = evaluate(tenant_a)
    # then
    assert result.judged == 2 * (100 + 100 * 10)
    # connect rate below 30 %: reps 0-2 in May (25 rules); calls down over 10 %: the tenant
    # (25) and reps 0-4 (25 x 5) in May; meetings below 80 % of target and behind pace: the
    # tenant in May (25 + 25; the reps have no targets: idle)
    assert len(result.fired) == 25 * 3 + 25 + 25 * 5 + 25 + 25
    # when evaluated again with nothing changed: rules, lock, reps, closures, dirty days,
    # snapshots, targets, alerts, one update of the evaluation times (and the context's
    # savepoints and settings)
    with django_assert_max_num_queries(15):
        again = evaluate(tenant_a, NOW + dt.timedelta(minutes=1))
    assert (again.fired, again.resolved) == ([], [])
    with tenant_context(tenant_a):
        assert Alert.objects.count() == len(result.fired)
