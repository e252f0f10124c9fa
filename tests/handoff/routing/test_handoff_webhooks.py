"""Handoff events are webhook event types: an SQL handed over, accepted, returned, and an
SLA breached each reach the endpoints subscribed to them, also when nobody is notified."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from handoff.handoffs import handoff_accept, handoff_return, handoff_sla_steps_run
from handoff.notifying import ACCEPTED, CREATED, RETURNED, SLA_BREACHED
from notifications.events import event_type_spec
from notifications.models import Event, WebhookDelivery
from notifications.services import webhook_endpoint_create
from tenants.context import tenant_context
from tests.handoff.routing.conftest import TOKYO, make_version, sql_handoff

pytestmark = pytest.mark.django_db
TYPES = [CREATED, ACCEPTED, RETURNED, SLA_BREACHED]


def tokyo(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=TOKYO)


def test_handoff_events_are_registered_with_both_languages() -> None:
    for key in TYPES:
        spec = event_type_spec(key)
        assert spec is not None and spec.label_ja and spec.label_en
    title = event_type_spec(CREATED).render({"company": "Acme"}, "ja").title
    assert title == "SQL引き渡し: Acme の受け入れをお願いします"


def test_handed_accepted_returned_and_breached_reach_a_subscribed_webhook(
    tenant_a: Any, tenant_b: Any, sellers: list[Any], settings: Any
) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    with tenant_context(tenant_a):
        hook, _ = webhook_endpoint_create(
            tenant=tenant_a, name="crm", url="http://127.0.0.1:9/hook", event_types=TYPES
        )
    # and tenant B's endpoint, subscribed to the same types
    with tenant_context(tenant_b):
        other, _ = webhook_endpoint_create(
            tenant=tenant_b, name="b", url="http://127.0.0.1:9/b", event_types=TYPES
        )
    version = make_version(tenant_a, sla={"acceptHours": 8})
    # when one SQL is handed to a seller and accepted, one returned, one handed to nobody
    # and left past its SLA
    accepted = sql_handoff(tenant_a, version, at=tokyo(2026, 11, 16, 10), owner=sellers[0])
    handoff_accept(handoff=accepted, at=tokyo(2026, 11, 16, 11))
    returned = sql_handoff(tenant_a, version, at=tokyo(2026, 11, 16, 10), owner=sellers[1])
    handoff_return(handoff=returned, reason="noBudget", at=tokyo(2026, 11, 16, 12))
    sql_handoff(tenant_a, version, at=tokyo(2026, 11, 16, 10))
    handoff_sla_steps_run(tenant=tenant_a, now=tokyo(2026, 11, 17, 10))
    # then A's endpoint has one delivery per event, of every type
    with tenant_context(tenant_a):
        delivered = sorted(
            WebhookDelivery.objects.filter(endpoint=hook).values_list(
                "event__event_type", "event__payload__handoffId"
            )
        )
        created_to = Event.objects.filter(event_type=CREATED).values_list(
            "recipient_ids", flat=True
        )
        assert sorted(created_to) == [[], [sellers[0].pk], [sellers[1].pk]]
    assert [kind for kind, _ in delivered].count(CREATED) == 3
    assert {kind for kind, _ in delivered} == set(TYPES)
    assert len(delivered) == 3 + 1 + 1 + 1
    # and B's endpoint received nothing of A's
    with tenant_context(tenant_b):
        assert not WebhookDelivery.objects.filter(endpoint=other).exists()
