"""Evaluation of the active version: boundaries, scores, idempotency, dry runs, query counts."""

from __future__ import annotations

import datetime as dt

import pytest

from handoff import services
from handoff.conditions import parse_conditions
from handoff.evaluation import qualifying_leads
from handoff.models import AuditEntry, Qualification
from handoff.qualification import handoff_dry_run, handoff_evaluate
from pipeline.models import Lead, StageTransition
from tenants.context import tenant_context

from .conftest import CLICKED_TWICE_BIG, NOW, add_activity, agreed_version, clicks, make_lead

DAY = dt.timedelta(days=1)


def _ids(tenant, mql):
    with tenant_context(tenant):
        return [v.lead_id for v in qualifying_leads(parse_conditions(mql), now=NOW)]


def test_a_behaviour_window_counts_an_activity_exactly_n_days_old(tenant_a):
    # given two clicks each: at exactly 14 days, and one just over
    inside = make_lead(tenant_a, employee_count=50)
    clicks(inside, 14 * DAY, DAY)
    outside = make_lead(tenant_a, employee_count=50)
    clicks(outside, 14 * DAY + dt.timedelta(seconds=1), DAY)
    future = make_lead(tenant_a, employee_count=50)
    clicks(future, DAY, -dt.timedelta(seconds=1))
    # when / then: employees >= 50 holds at 50 itself
    assert _ids(tenant_a, CLICKED_TWICE_BIG) == [inside.pk]


def test_attribute_conditions_each_kind(tenant_a):
    # given
    a = make_lead(
        tenant_a,
        employee_count=100,
        industry="IT",
        source="web",
        title="営業部長",
        attributes={"plan": "pro", "budget": 5},
    )
    b = make_lead(
        tenant_a,
        employee_count=1000,
        industry="製造",
        source="event",
        title="Engineer",
        attributes={"plan": "free"},
    )
    c = make_lead(tenant_a, employee_count=None, industry="", source="", title="")

    def only(kind, **p):
        return _ids(tenant_a, {"conditions": [{"kind": kind, **p}]})

    # then
    assert only("employeeCount", op="between", min=100, max=1000) == [a.pk, b.pk]
    assert only("employeeCount", op="lte", value=100) == [a.pk]
    assert only("industry", values=["IT", "金融"]) == [a.pk]
    assert only("source", values=["event"]) == [b.pk]
    assert only("titleContains", value="部長") == [a.pk]
    assert only("titleContains", value="engineer") == [b.pk]
    assert only("attribute", key="budget", op="exists") == [a.pk]
    assert only("attribute", key="plan", op="equals", value="free") == [b.pk]
    assert only("attribute", key="plan", op="in", values=["pro", "enterprise"]) == [a.pk]
    assert only("attribute", key="budget", op="equals", value=5) == [a.pk]
    assert c.pk not in _ids(tenant_a, {"mode": "any", "conditions": [
        {"kind": "employeeCount", "op": "lte", "value": 10},
        {"kind": "attribute", "key": "plan", "op": "exists"}]})  # fmt: skip


def test_behaviour_kinds_count_only_their_activities(tenant_a):
    # given
    lead = make_lead(tenant_a)
    add_activity(lead, "call", NOW - DAY, call_outcome="no_answer")
    add_activity(lead, "call", NOW - DAY, call_outcome="connected")
    add_activity(lead, "meeting", NOW - DAY)
    add_activity(lead, "email", NOW - DAY, email_opened=True)

    def count_at_least(activity, n):
        mql = {"conditions": [{"kind": "activity", "activity": activity, "days": 7, "atLeast": n}]}
        return _ids(tenant_a, mql) == [lead.pk]

    # then
    assert count_at_least("call", 2) and not count_at_least("call", 3)
    assert count_at_least("connectedCall", 1) and not count_at_least("connectedCall", 2)
    assert count_at_least("meeting", 1)
    assert count_at_least("email", 1) and count_at_least("emailOpened", 1)
    assert not count_at_least("emailClicked", 1)


def test_a_score_equal_to_the_threshold_qualifies(tenant_a):
    # given
    it = make_lead(tenant_a, industry="IT", employee_count=10)
    big_it = make_lead(tenant_a, industry="IT", employee_count=500)
    mql = {
        "mode": "score",
        "threshold": 30,
        "conditions": [
            {"kind": "industry", "values": ["IT"], "points": 10},
            {"kind": "employeeCount", "op": "gte", "value": 100, "points": 20},
        ],
    }
    # when
    with tenant_context(tenant_a):
        verdicts = qualifying_leads(parse_conditions(mql), now=NOW)
    # then
    assert [(v.lead_id, v.score) for v in verdicts] == [(big_it.pk, 30)]
    assert it.pk not in [v.lead_id for v in verdicts]
    assert _ids(tenant_a, {**mql, "threshold": 31}) == []


def test_evaluation_moves_qualifying_leads_once_with_version_and_reasons(
    tenant_a, marketer, seller
):
    # given an active version and a qualifying lead, a recycled one and one in mql already
    version = agreed_version(tenant_a, marketer, seller)
    fresh = make_lead(tenant_a, employee_count=80)
    clicks(fresh, DAY, 2 * DAY)
    recycled = make_lead(tenant_a, employee_count=80, stage="recycled")
    clicks(recycled, DAY, 2 * DAY)
    already = make_lead(tenant_a, employee_count=80, stage="mql")
    clicks(already, DAY, 2 * DAY)
    small = make_lead(tenant_a, employee_count=10)
    clicks(small, DAY, 2 * DAY)
    # when evaluated twice
    with tenant_context(tenant_a):
        first = handoff_evaluate(tenant=tenant_a, now=NOW)
        second = handoff_evaluate(tenant=tenant_a, now=NOW + DAY)
        # then
        assert first.moved == [fresh.pk, recycled.pk]
        assert second.moved == []
        stages = dict(Lead.objects.values_list("pk", "stage"))
        assert stages[fresh.pk] == stages[recycled.pk] == "mql"
        assert stages[small.pk] == "lead"
        assert StageTransition.objects.filter(to_stage="mql").count() == 2
        rows = list(Qualification.objects.order_by("lead_id"))
        assert [(q.lead_id, q.version_id, q.stage) for q in rows] == [
            (fresh.pk, version.pk, "mql"),
            (recycled.pk, version.pk, "mql"),
        ]
        assert rows[0].transition.actor_label == "system"
        assert [r["condition"] for r in rows[0].reasons] == [
            "mqlConditions.conditions[0]",
            "mqlConditions.conditions[1]",
        ]
        assert AuditEntry.objects.filter(action="lead_qualified_mql").count() == 2


def test_evaluation_without_an_active_version_moves_nobody(tenant_a, marketer, seller):
    agreed_version(tenant_a, marketer, seller, activate=False)
    lead = make_lead(tenant_a, employee_count=80)
    clicks(lead, DAY, DAY)
    with tenant_context(tenant_a):
        assert handoff_evaluate(tenant=tenant_a, now=NOW).moved == []


def test_evaluation_reads_a_bounded_number_of_queries_whatever_the_leads(
    tenant_a, marketer, seller, django_assert_num_queries, django_assert_max_num_queries
):
    # given an active version and many leads that do not qualify
    agreed_version(tenant_a, marketer, seller)
    for _ in range(5):
        clicks(make_lead(tenant_a, employee_count=10), DAY, DAY)
    with tenant_context(tenant_a), django_assert_max_num_queries(5) as few:
        handoff_evaluate(tenant=tenant_a, now=NOW)
    for _ in range(40):
        clicks(make_lead(tenant_a, employee_count=10), DAY, DAY)
    # then the same count for nine times as many leads
    with tenant_context(tenant_a), django_assert_num_queries(len(few.captured_queries)):
        handoff_evaluate(tenant=tenant_a, now=NOW)


def test_evaluation_never_moves_another_tenants_leads(tenant_a, tenant_b, marketer, seller):
    # given tenant B's lead that would qualify under A's rules
    agreed_version(tenant_a, marketer, seller)
    theirs = make_lead(tenant_b, employee_count=80)
    clicks(theirs, DAY, DAY)
    # when
    with tenant_context(tenant_a):
        result = handoff_evaluate(tenant=tenant_a, now=NOW)
    # then
    assert result.moved == []
    with tenant_context(tenant_b):
        assert Lead.objects.get(pk=theirs.pk).stage == "lead"


def test_a_dry_run_shows_the_draft_and_its_diff_and_changes_nothing(tenant_a, marketer, seller):
    # given the active rule (clicked twice, >= 50 employees) and a draft (>= 100 employees)
    agreed_version(tenant_a, marketer, seller)
    both = make_lead(tenant_a, employee_count=200)
    clicks(both, DAY, DAY)
    active_only = make_lead(tenant_a, employee_count=60)
    clicks(active_only, DAY, DAY)
    draft_only = make_lead(tenant_a, employee_count=300)
    with tenant_context(tenant_a):
        rule_set = services.rule_set_create(tenant=tenant_a, name="Bigger")
        draft = services.rule_version_create(
            tenant=tenant_a,
            rule_set=rule_set,
            parts={"mql_conditions": {"conditions": [
                {"kind": "employeeCount", "op": "gte", "value": 100}]}},
        )  # fmt: skip
        audits = AuditEntry.objects.count()
        # when
        run = handoff_dry_run(tenant=tenant_a, version=draft, now=NOW)
        # then
        assert run.qualified == [both.pk, draft_only.pk]
        assert run.newly_qualified == [draft_only.pk]
        assert run.no_longer_qualified == [active_only.pk]
        assert (run.qualified_count, run.newly_qualified_count) == (2, 1)
        assert set(Lead.objects.values_list("stage", flat=True)) == {"lead"}
        assert AuditEntry.objects.count() == audits


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_evaluations_move_each_lead_once(tenant_a, marketer, seller):
    import threading

    from django.db import connection

    # given
    agreed_version(tenant_a, marketer, seller)
    leads = [make_lead(tenant_a, employee_count=80) for _ in range(6)]
    for lead in leads:
        clicks(lead, DAY, DAY)
    moved: list[list[int]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        try:
            barrier.wait()
            with tenant_context(tenant_a):
                moved.append(handoff_evaluate(tenant=tenant_a, now=NOW).moved)
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    # when two workers evaluate at once
    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then
    assert errors == []
    assert sorted(pk for run_moved in moved for pk in run_moved) == sorted(
        lead.pk for lead in leads
    )
    with tenant_context(tenant_a):
        assert StageTransition.objects.filter(to_stage="mql").count() == 6
        assert Qualification.objects.count() == 6
