"""Evaluating rules: each kind fires past its boundary (never at it) and resolves again."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from alerts.models import Alert, AlertEvent
from kpis.periods import period_containing
from kpis.scopes import KpiScope
from kpis.targets import kpi_target_set
from tenants.context import tenant_context
from tests.alerts.conftest import APRIL, MAY, NOW, alerts_of, at, evaluate, make_rule, snapshot

pytestmark = pytest.mark.django_db
TENANT = KpiScope.tenant()


def _target(tenant: Any, kpi: str, period: Any, value: int, scope: KpiScope = TENANT) -> None:
    with tenant_context(tenant):
        kpi_target_set(
            tenant=tenant,
            kpi_key=kpi,
            period=period,
            scope=scope,
            value=Decimal(value),
            set_by=None,
        )


def test_below_value_fires_below_the_threshold_not_at_it_and_resolves(tenant_a: Any) -> None:
    # given connect rate exactly 60 % (18 of 30 calls) in May, a rule "below 60"
    make_rule(tenant_a, min_sample=Decimal(30))
    snapshot(tenant_a, MAY, TENANT, calls=30, connects=18)
    # when / then: at the threshold nothing fires
    evaluate(tenant_a)
    assert alerts_of(tenant_a) == []
    # when 17 of 30 (56.67 %)
    snapshot(tenant_a, MAY, TENANT, calls=30, connects=17)
    result = evaluate(tenant_a)
    # then one firing alert for May, with the exact value
    (alert,) = alerts_of(tenant_a)
    assert result.fired == [alert.pk]
    assert (alert.state, alert.period_label, alert.scope_type) == ("firing", "2026-05", "tenant")
    assert alert.explanation["value"] == str(Decimal(1700) / Decimal(30))
    assert alert.explanation["threshold"] == "60"
    assert alert.explanation["sample"] == "30"
    assert alert.sample == Decimal(30)
    # when the rate is back to 60 %
    snapshot(tenant_a, MAY, TENANT, calls=30, connects=18)
    evaluate(tenant_a, NOW + dt.timedelta(minutes=5))
    # then it resolved, and the history says so
    (alert,) = alerts_of(tenant_a)
    assert alert.state == "resolved"
    assert alert.resolved_at == NOW + dt.timedelta(minutes=5)
    with tenant_context(tenant_a):
        kinds = list(AlertEvent.objects.filter(alert=alert).values_list("kind", flat=True))
    assert kinds == ["fired", "notified", "resolved"]


def test_min_sample_not_met_is_idle(tenant_a: Any) -> None:
    # given 0 connects of 29 calls, min sample 30
    make_rule(tenant_a, min_sample=Decimal(30))
    snapshot(tenant_a, MAY, TENANT, calls=29, connects=0)
    # when
    evaluate(tenant_a)
    # then idle: no alert; with the 30th call it fires
    assert alerts_of(tenant_a) == []
    snapshot(tenant_a, MAY, TENANT, calls=30, connects=0)
    evaluate(tenant_a)
    assert [a.state for a in alerts_of(tenant_a)] == ["firing"]


def test_previous_period_is_judged_too_but_not_older_ones(tenant_a: Any) -> None:
    # given a poor March and April, a fine May
    make_rule(tenant_a)
    march = period_containing("month", dt.date(2026, 3, 1))
    for period in (march, APRIL):
        snapshot(tenant_a, period, TENANT, calls=10, connects=1)
    snapshot(tenant_a, MAY, TENANT, calls=10, connects=9)
    # when
    evaluate(tenant_a)
    # then only April fires (a backfill can fire for last month, never before)
    assert [(a.period_label, a.state) for a in alerts_of(tenant_a)] == [("2026-04", "firing")]


def test_below_target_percent_at_and_below_the_bound_and_idle_without_target(
    tenant_a: Any,
) -> None:
    # given meetings 80 of a target of 100 in May, a rule "below 80 % of target"
    make_rule(tenant_a, kpi_key="meetings_set", kind="below_target_percent", threshold=80)
    snapshot(tenant_a, MAY, TENANT, meetings=80)
    snapshot(tenant_a, APRIL, TENANT, meetings=0)  # April has no target: idle
    _target(tenant_a, "meetings_set", MAY, 100)
    # when / then: exactly 80 % does not fire
    evaluate(tenant_a)
    assert alerts_of(tenant_a) == []
    # when 79
    snapshot(tenant_a, MAY, TENANT, meetings=79)
    evaluate(tenant_a)
    (alert,) = alerts_of(tenant_a)
    assert (alert.period_label, alert.value, alert.threshold) == ("2026-05", 79, 80)
    assert alert.explanation["target"] == "100.0000"


def test_behind_pace_pro_rates_over_working_days_across_golden_week(tenant_a: Any) -> None:
    # given a May target of 180 meetings: 18 working days, 11 elapsed on Wed 20 May, so
    # the pace is 180 x 11 / 18 = 110
    make_rule(tenant_a, kpi_key="meetings_set", kind="behind_pace", threshold=100)
    _target(tenant_a, "meetings_set", MAY, 180)
    snapshot(tenant_a, MAY, TENANT, meetings=110)
    # when / then: exactly on pace does not fire
    evaluate(tenant_a)
    assert alerts_of(tenant_a) == []
    # when one short
    snapshot(tenant_a, MAY, TENANT, meetings=109)
    evaluate(tenant_a)
    # then it fires, and says what each remaining working day needs: 71 / 7
    (alert,) = alerts_of(tenant_a)
    assert alert.threshold == 110
    explanation = alert.explanation
    assert explanation["period"] == {
        "label": "2026-05",
        "start": "2026-05-01",
        "end": "2026-06-01",
        "workingDays": 18,
        "elapsedWorkingDays": 11,
    }
    assert explanation["remainingWorkingDays"] == 7
    assert explanation["neededPerRemainingDay"] == str(Decimal(71) / Decimal(7))
    # numbers only: the sentence is written on read, in the reader's language
    assert "summary" not in explanation
    assert (explanation["kpi"], explanation["unit"]) == ("meetings_set", "count")
    assert explanation["improvementAction"] == "Review the call list and the talk script."


@pytest.mark.parametrize(
    ("today", "meetings", "state"),
    [
        # Week 2026-W19 (4-10 May) has two working days, 7 and 8 May (Golden Week before).
        (at(2026, 5, 6, 12), 0, None),  # a holiday: nothing elapsed, no pace yet
        (at(2026, 5, 7, 12), 5, None),  # 1 of 2 days: pace 5 of 10
        (at(2026, 5, 7, 12), 4, "firing"),
        (at(2026, 5, 9, 12), 9, "firing"),  # Saturday: both days elapsed, pace 10
        (at(2026, 5, 10, 12), 10, None),  # Sunday, on target
    ],
)
def test_pace_over_a_holiday_week_and_its_weekend(
    tenant_a: Any, today: dt.datetime, meetings: int, state: str | None
) -> None:
    week = period_containing("week", dt.date(2026, 5, 4))
    make_rule(tenant_a, kpi_key="meetings_set", kind="behind_pace", threshold=100, grain="week")
    _target(tenant_a, "meetings_set", week, 10)
    snapshot(tenant_a, week, TENANT, meetings=meetings)
    # when
    evaluate(tenant_a, today)
    # then
    found = [a for a in alerts_of(tenant_a) if a.period_label == "2026-W19"]
    assert [a.state for a in found] == ([state] if state else [])


def test_drop_vs_previous_at_the_bound_and_idle_after_a_zero(tenant_a: Any) -> None:
    # given April 100 calls, May 80, a rule "dropped by more than 20 %"
    make_rule(tenant_a, kpi_key="calls", kind="drop_vs_previous", threshold=20)
    snapshot(tenant_a, APRIL, TENANT, calls=100)
    snapshot(tenant_a, MAY, TENANT, calls=80)
    # when / then: exactly 20 % lower does not fire (and April, after a March of 0, is idle)
    evaluate(tenant_a)
    assert alerts_of(tenant_a) == []
    # when 79
    snapshot(tenant_a, MAY, TENANT, calls=79)
    evaluate(tenant_a)
    (alert,) = alerts_of(tenant_a)
    assert (alert.period_label, alert.value, alert.threshold) == ("2026-05", 79, 80)
    assert alert.explanation["previousValue"] == "100"


def test_cooldown_keeps_a_flapping_alert_resolved_until_it_has_passed(tenant_a: Any) -> None:
    # given a rule with a 60-minute cooldown, fired then resolved at NOW
    make_rule(tenant_a, cooldown_minutes=60)
    snapshot(tenant_a, MAY, TENANT, calls=10, connects=1)
    evaluate(tenant_a, NOW - dt.timedelta(minutes=10))
    snapshot(tenant_a, MAY, TENANT, calls=10, connects=9)
    evaluate(tenant_a, NOW)
    # when the condition holds again 59 minutes later
    snapshot(tenant_a, MAY, TENANT, calls=10, connects=1)
    evaluate(tenant_a, NOW + dt.timedelta(minutes=59))
    # then it stays resolved
    (alert,) = alerts_of(tenant_a)
    assert alert.state == "resolved"
    # when the cooldown has passed: fired again, the same alert
    result = evaluate(tenant_a, NOW + dt.timedelta(minutes=60))
    (again,) = alerts_of(tenant_a)
    assert (again.pk, again.state, result.fired) == (alert.pk, "firing", [alert.pk])
    assert again.first_fired_at == NOW - dt.timedelta(minutes=10)
    assert again.last_fired_at == NOW + dt.timedelta(minutes=60)
    with tenant_context(tenant_a):
        kinds = list(AlertEvent.objects.filter(alert=alert).values_list("kind", flat=True))
    # (no second notification: the rule's cadence, 24 hours, counts from the first one)
    assert kinds == ["fired", "notified", "resolved", "refired"]


def test_evaluating_twice_changes_nothing(tenant_a: Any) -> None:
    # given a firing alert
    make_rule(tenant_a)
    snapshot(tenant_a, MAY, TENANT, calls=10, connects=1)
    evaluate(tenant_a)
    with tenant_context(tenant_a):
        before = list(Alert.objects.values())
        events = AlertEvent.objects.count()
    # when evaluated again, a minute later
    result = evaluate(tenant_a, NOW + dt.timedelta(minutes=1))
    # then only the evaluation time moved; no new event (notified within the cadence)
    with tenant_context(tenant_a):
        after = list(Alert.objects.values())
        assert AlertEvent.objects.count() == events
    assert result.fired == [] and result.notified == []
    assert [{**row, "last_evaluated_at": None} for row in after] == [
        {**row, "last_evaluated_at": None} for row in before
    ]
    assert after[0]["last_evaluated_at"] == NOW + dt.timedelta(minutes=1)


def test_every_rep_rule_judges_each_rep(tenant_a: Any, rep: Any, manager: Any) -> None:
    # given two reps (a rep and... only role rep counts): rita below, the manager ignored
    make_rule(tenant_a, scope_type="every_rep")
    snapshot(tenant_a, MAY, KpiScope.rep(rep.pk), calls=10, connects=1)
    snapshot(tenant_a, MAY, KpiScope.rep(manager.pk), calls=10, connects=1)
    # when
    evaluate(tenant_a)
    # then one alert, for the rep
    assert [(a.scope_type, a.scope_key) for a in alerts_of(tenant_a)] == [("rep", str(rep.pk))]
