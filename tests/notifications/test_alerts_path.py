"""From an alert to people: evaluation publishes alert.fired / alert.resolved to the
rule's recipients (members, roles, the rep, the team's managers) over its channels."""

# NOTE: the messages are Japanese, with full-width parentheses.
# ruff: noqa: RUF001

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
from django.core import mail

from kpis.scopes import KpiScope
from kpis.targets import kpi_target_set
from notifications.models import Event, Notification, WebhookDelivery
from tenants.context import tenant_context
from tenants.scopes import Role
from tests.alerts.conftest import MAY, NOW, evaluate, make_rule, snapshot
from tests.factories import TeamFactory
from tests.notifications.conftest import Receiver, endpoint
from tests.notifications.test_webhooks import verify

pytestmark = pytest.mark.django_db


@pytest.fixture
def crew(tenant_a: Any, member_factory: Any) -> dict[str, Any]:
    east, west = (
        TeamFactory(tenant=tenant_a, name="East"),
        TeamFactory(tenant=tenant_a, name="West"),
    )
    return {
        "rita": member_factory(tenant_a, "rita", Role.REP, team=east),
        "ren": member_factory(tenant_a, "ren", Role.REP, team=west),
        "mika": member_factory(tenant_a, "mika", Role.MANAGER, team=east),
        "max": member_factory(tenant_a, "max", Role.MANAGER, team=west),
        "ada": member_factory(tenant_a, "ada", Role.ADMIN),
    }


def _inbox(tenant: Any) -> list[tuple[str, str]]:
    with tenant_context(tenant):
        return sorted(Notification.objects.values_list("recipient__user__username", "title"))


def test_fired_then_resolved_reaches_the_right_people(
    tenant_a: Any, crew: dict, receiver: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    # given: connect rate below 60 % per rep; rita at 40 % (50 calls), ren at 80 %
    rita, ren = crew["rita"], crew["ren"]
    make_rule(
        tenant_a,
        name="コネクト率 60%未満",
        scope_type="every_rep",
        min_sample=Decimal(30),
        recipient_roles=[],
        recipient_member_ids=[crew["ada"].pk],
        notify_scope_owner=True,
        notify_scope_manager=True,
        channels=["in_app", "email", "webhook"],
        improvement_action="架電時間帯を見直す",
    )
    snapshot(tenant_a, MAY, KpiScope.rep(rita.pk), calls=50, connects=20)
    snapshot(tenant_a, MAY, KpiScope.rep(ren.pk), calls=50, connects=40)
    _, secret = endpoint(tenant_a, receiver.url, event_types=["alert.fired", "alert.resolved"])
    # when
    with django_capture_on_commit_callbacks(execute=True):
        result = evaluate(tenant_a)
    # then: rita, her team's manager (not west's) and the named admin
    title = "アラート: コネクト率が基準を下回りました（rita・2026-05）"
    assert result.published == 1
    assert _inbox(tenant_a) == [("ada", title), ("mika", title), ("rita", title)]
    assert sorted(m.to[0] for m in mail.outbox) == [
        "ada@example.com", "mika@example.com", "rita@example.com",
    ]  # fmt: skip
    lines = mail.outbox[0].body.splitlines()
    assert "実績: 40.0%（基準: 60.0%）" in lines
    assert "母数: 50" in lines
    assert "改善アクション: 架電時間帯を見直す" in lines
    (request,) = receiver.requests
    assert verify(secret, request.headers["X-KPI-Signature"], request.body)
    body = json.loads(request.body)
    assert (body["type"], body["title"]) == ("alert.fired", title)
    assert body["data"]["alert"]["scope"] == {"type": "rep", "key": str(rita.pk), "name": "rita"}
    assert body["data"]["alert"]["value"] == "40"
    # when: evaluated again within the rule's cadence: nobody is told twice
    with django_capture_on_commit_callbacks(execute=True):
        again = evaluate(tenant_a, NOW + dt.timedelta(hours=1))
    assert again.published == 0 and len(mail.outbox) == 3 and len(receiver.requests) == 1
    # when: rita recovers
    snapshot(tenant_a, MAY, KpiScope.rep(rita.pk), calls=50, connects=35)
    with django_capture_on_commit_callbacks(execute=True):
        resolved = evaluate(tenant_a, NOW + dt.timedelta(hours=2))
    # then
    done = "解消: コネクト率のアラートが解消しました（rita・2026-05）"
    assert resolved.published == 1
    assert [t for who, t in _inbox(tenant_a) if who == "rita"] == [title, done]
    assert json.loads(receiver.requests[1].body)["type"] == "alert.resolved"
    with tenant_context(tenant_a):
        assert Event.objects.count() == 2
        assert list(WebhookDelivery.objects.values_list("state", flat=True)) == [
            "succeeded", "succeeded",
        ]  # fmt: skip


def test_pace_alert_in_english_says_what_each_day_needs(
    tenant_a: Any, crew: dict, django_capture_on_commit_callbacks: Any
) -> None:
    # given: an English workspace; 180 meetings planned for May, 109 set by Wed 20 May
    # (18 working days, 11 elapsed: pace 110; 71 short over 7 days)
    tenant_a.language = "en"
    tenant_a.save(update_fields=["language"])
    make_rule(
        tenant_a,
        name="Meetings pace",
        kpi_key="meetings_set",
        kind="behind_pace",
        threshold=100,
        recipient_roles=["admin"],
        channels=["email"],
        improvement_action="Book call blocks for tomorrow morning.",
    )
    with tenant_context(tenant_a):
        kpi_target_set(
            tenant=tenant_a, kpi_key="meetings_set", period=MAY, scope=KpiScope.tenant(),
            value=Decimal(180), set_by=None,
        )  # fmt: skip
    snapshot(tenant_a, MAY, KpiScope.tenant(), meetings=109)
    # when
    with django_capture_on_commit_callbacks(execute=True):
        evaluate(tenant_a)
    # then
    (message,) = mail.outbox
    assert message.to == ["ada@example.com"]
    assert message.subject == "[Acme] Alert: Meetings set is behind pace (Acme, 2026-05)"
    lines = message.body.splitlines()
    assert "Value: 109 (threshold: 110)" in lines
    assert "Target: 180" in lines
    assert "To reach the target: 10.1 more a day over the 7 remaining working days." in lines
    assert "Improvement action (改善アクション): Book call blocks for tomorrow morning." in lines
