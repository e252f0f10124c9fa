"""SLA clocks in business hours: handoff due times across a weekend, a Japanese holiday and
evenings; met / breached / open; reminder and escalation steps sent once each."""

from __future__ import annotations

import datetime as dt

import pytest

from handoff.handoffs import handoff_sla_steps_run
from handoff.models import Handoff
from handoff.sla_rules import SlaStatus, sla_status, sla_validate
from notifications.models import Event
from tenants.business_hours import BusinessHours
from tenants.context import tenant_context
from tenants.errors import ValidationFailed
from tests.handoff.routing.conftest import TOKYO, make_version, sql_handoff

pytestmark = pytest.mark.django_db


def tokyo(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=TOKYO)


CALENDAR = BusinessHours(zone=TOKYO, off=frozenset({dt.date(2026, 11, 23)}))


def test_window_ending_friday_18_turns_breached_monday_9() -> None:
    # given a 4-hour SLA from Friday 14:00 (it runs out at Friday 18:00)
    start = tokyo(2026, 11, 13, 14)

    def status(now: dt.datetime, done: dt.datetime | None = None) -> SlaStatus:
        return sla_status(start=start, done_at=done, now=now, hours=4, calendar=CALENDAR)

    # then it stays open over the weekend and up to Monday 09:00 itself
    assert status(tokyo(2026, 11, 13, 18)) == SlaStatus.OPEN
    assert status(tokyo(2026, 11, 14, 12)) == SlaStatus.OPEN
    assert status(tokyo(2026, 11, 16, 9)) == SlaStatus.OPEN
    # and is breached as soon as Monday's business hours run
    assert status(tokyo(2026, 11, 16, 9, 1)) == SlaStatus.BREACHED
    # a touch on Saturday (no business time spent) is met: N itself is included
    assert status(tokyo(2026, 11, 16, 12), done=tokyo(2026, 11, 14, 10)) == SlaStatus.MET
    # a breach never turns back into met: a late touch stays breached
    late = tokyo(2026, 11, 16, 9, 30)
    assert status(tokyo(2026, 11, 16, 12), done=late) == SlaStatus.BREACHED


def test_handoff_due_time_over_the_holiday_weekend(tenant_a) -> None:
    # given an 8-hour SLA and an SQL at Friday 2026-11-20 14:00 (Monday 11-23 is a holiday)
    version = make_version(tenant_a)
    handoff = sql_handoff(tenant_a, version, at=tokyo(2026, 11, 20, 14))
    # then 4 business hours on Friday and 4 on Tuesday
    assert handoff.due_at == tokyo(2026, 11, 24, 13)
    assert handoff.sla_hours == 8


def test_handoff_arriving_friday_20_starts_monday(tenant_a) -> None:
    version = make_version(tenant_a)
    handoff = sql_handoff(tenant_a, version, at=tokyo(2026, 11, 13, 20))
    assert handoff.due_at == tokyo(2026, 11, 16, 17)


def test_second_open_of_the_same_transition_is_the_same_handoff(tenant_a) -> None:
    from handoff.handoffs import handoff_open

    version = make_version(tenant_a)
    handoff = sql_handoff(tenant_a, version, at=tokyo(2026, 11, 16, 10))
    again = handoff_open(lead=handoff.lead, transition=handoff.transition, version=version)
    assert again.pk == handoff.pk


def _events(tenant) -> list[tuple[str, str]]:
    with tenant_context(tenant):
        return list(Event.objects.order_by("id").values_list("event_type", "dedup_key"))


def test_steps_are_sent_once_each_even_when_run_twice(
    tenant_a, sellers, field_manager, field_team
) -> None:
    # given an 8-hour SLA handed to fs1 on Monday 10:00, with routing for reassignment
    fs1, fs2, _ = sellers
    version = make_version(tenant_a, routing={"sql": {"teamId": field_team.pk}})
    handoff = sql_handoff(tenant_a, version, at=tokyo(2026, 11, 16, 10), owner=fs1)
    # when the task runs twice at 50 % (Monday 14:00)
    first = handoff_sla_steps_run(tenant=tenant_a, now=tokyo(2026, 11, 16, 14))
    second = handoff_sla_steps_run(tenant=tenant_a, now=tokyo(2026, 11, 16, 14, 5))
    # then one reminder to the owner
    assert (first.reminded, second.reminded) == (1, 0)
    assert _events(tenant_a) == [
        ("handoff.created", f"handoff.created:{handoff.pk}:created"),
        ("handoff.sla_reminder", f"handoff.sla_reminder:{handoff.pk}:step0"),
    ]
    # when it runs twice just after 100 % (Tuesday 10:01)
    after = tokyo(2026, 11, 17, 10, 1)
    one = handoff_sla_steps_run(tenant=tenant_a, now=after)
    two = handoff_sla_steps_run(tenant=tenant_a, now=after)
    # then the breach is marked once and the manager notified once
    assert (one.breached, one.escalated, two.breached, two.escalated) == (1, 1, 0, 0)
    with tenant_context(tenant_a):
        handoff.refresh_from_db()
        assert handoff.breached_at == after
        assert handoff.step == 2
        breach = Event.objects.get(dedup_key=f"handoff.sla_breached:{handoff.pk}:breached")
        recipients = set(breach.notifications.values_list("recipient_id", flat=True))
        assert recipients == {fs1.pk, field_manager.pk}
    # when 150 % has passed (Tuesday 14:01): reassigned once through routing
    later = tokyo(2026, 11, 17, 14, 1)
    three = handoff_sla_steps_run(tenant=tenant_a, now=later)
    four = handoff_sla_steps_run(tenant=tenant_a, now=later)
    assert (three.reassigned, four.reassigned) == (1, 0)
    with tenant_context(tenant_a):
        handoff.refresh_from_db()
        assert (handoff.step, handoff.owner_id) == (3, fs2.pk)
        # the breach stays recorded after the reassignment
        assert handoff.breached_at == after


def test_steps_skip_handoffs_no_longer_awaiting(tenant_a, sellers) -> None:
    from handoff.handoffs import handoff_accept

    version = make_version(tenant_a)
    handoff = sql_handoff(tenant_a, version, at=tokyo(2026, 11, 16, 10), owner=sellers[0])
    handoff_accept(handoff=handoff, actor=sellers[0], at=tokyo(2026, 11, 16, 11))
    result = handoff_sla_steps_run(tenant=tenant_a, now=tokyo(2026, 11, 18, 10))
    assert (result.reminded, result.breached) == (0, 0)
    with tenant_context(tenant_a):
        assert Handoff.objects.get().breached_at is None


@pytest.mark.parametrize(
    ("sla", "field"),
    [
        ("8h", "sla"),
        ({"acceptHours": 0}, "sla.acceptHours"),
        ({"acceptHours": 8, "steps": [{"atPercent": 50, "action": "call"}]}, "sla.steps[0].action"),
        ({"steps": [{"atPercent": 50, "action": "remindOwner"}]}, "sla.acceptHours"),
        (
            {"acceptHours": 8, "steps": [{"atPercent": 0, "action": "remindOwner"}]},
            "sla.steps[0].atPercent",
        ),
        ({"acceptHours": 8, "hours": 3}, "sla"),
    ],
)
def test_sla_validation_names_the_bad_part(sla, field) -> None:
    with pytest.raises(ValidationFailed) as error:
        sla_validate(sla)
    assert error.value.field == field


def test_sla_steps_are_sorted() -> None:
    sla = sla_validate(
        {
            "acceptHours": 4,
            "steps": [
                {"atPercent": 150, "action": "reassign"},
                {"atPercent": 50, "action": "remindOwner"},
            ],
        }
    )
    assert [s["atPercent"] for s in sla["steps"]] == [50, 150]
