"""The inbox and webhooks over GraphQL: unread counts, mark read, member and tenant
isolation, secrets shown once, rotation, redelivery; refused actions change nothing."""

# NOTE: the messages are Japanese, with full-width parentheses.
# ruff: noqa: RUF001

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone
from strawberry.relay import to_base64

from notifications import secrets_box
from notifications.models import Notification, WebhookDelivery, WebhookEndpoint
from tenants import services as tenant_services
from tenants.context import tenant_context
from tests.notifications.conftest import Receiver, endpoint, publish

pytestmark = pytest.mark.django_db

INBOX = """
query($unreadOnly: Boolean, $first: Int) {
  notifications(unreadOnly: $unreadOnly, first: $first) {
    totalCount unreadCount items { id eventType title body readAt }
  }
}"""
MARK = """
mutation($ids: [ID!], $all: Boolean) {
  markNotificationsRead(ids: $ids, all: $all) { markedCount unreadCount errors { code field } }
}"""
CREATE = """
mutation($input: CreateWebhookEndpointInput!) {
  createWebhookEndpoint(input: $input) {
    secret endpoint { id name url eventTypes format isActive secretHint }
    errors { code field message }
  }
}"""
ENDPOINTS = "{ webhookEndpoints { totalCount items { id name secretHint } } }"
ROTATE = """
mutation($id: ID!) { rotateWebhookSecret(id: $id) { secret endpoint { secretHint }
  errors { code field } } }"""
UPDATE = """
mutation($input: UpdateWebhookEndpointInput!) { updateWebhookEndpoint(input: $input) {
  endpoint { url isActive } errors { code field } } }"""
DELETE = """
mutation($id: ID!) { deleteWebhookEndpoint(id: $id) { deletedId errors { code field } } }"""
REDELIVER = """
mutation($id: ID!) { redeliverWebhook(deliveryId: $id) {
  delivery { state attempts attemptLog { number statusCode } } errors { code field } } }"""
DELIVERIES = """
query($endpointId: ID) { webhookDeliveries(endpointId: $endpointId) { totalCount
  items { state attempts eventType attemptLog { number statusCode } } } }"""


def _gid(kind: str, pk: int) -> str:
    return to_base64(kind, pk)


@pytest.fixture
def people(tenant_a: Any, tenant_b: Any, member_factory: Any) -> dict[str, Any]:
    return {
        "mika": member_factory(tenant_a, "mika"),
        "ken": member_factory(tenant_a, "ken"),
        "bo": member_factory(tenant_b, "bo"),
    }


def _inbox(graphql: Any, member: Any, tenant: Any, **variables: Any) -> dict[str, Any]:
    status, body = graphql(INBOX, variables, user=member.user, tenant=tenant.slug)
    assert status == 200, body
    return body["data"]["notifications"]


def test_inbox_unread_counts_and_mark_read(graphql: Any, tenant_a: Any, people: dict) -> None:
    # given: three events for mika, one of them also for ken
    mika, ken = people["mika"], people["ken"]
    publish(tenant_a, key="a", recipients=[mika.pk, ken.pk], channels=["in_app"])
    publish(tenant_a, key="b", recipients=[mika.pk], channels=["in_app"])
    publish(tenant_a, key="c", recipients=[mika.pk], channels=["in_app"])
    # when
    inbox = _inbox(graphql, mika, tenant_a)
    # then
    assert (inbox["totalCount"], inbox["unreadCount"], len(inbox["items"])) == (3, 3, 3)
    assert inbox["items"][0]["title"] == "アラート: コネクト率が基準を下回りました（Rita・2026-05）"
    assert inbox["items"][0]["eventType"] == "alert.fired"
    first = inbox["items"][0]["id"]
    # when: one marked read
    _, body = graphql(MARK, {"ids": [first]}, user=mika.user, tenant=tenant_a.slug)
    # then
    assert body["data"]["markNotificationsRead"] == {
        "markedCount": 1, "unreadCount": 2, "errors": []
    }  # fmt: skip
    unread = _inbox(graphql, mika, tenant_a, unreadOnly=True)
    assert (unread["totalCount"], unread["unreadCount"]) == (2, 2)
    assert first not in [item["id"] for item in unread["items"]]
    assert _inbox(graphql, ken, tenant_a)["unreadCount"] == 1  # ken's copy is his own
    # when: all
    _, body = graphql(MARK, {"all": True}, user=mika.user, tenant=tenant_a.slug)
    assert body["data"]["markNotificationsRead"]["markedCount"] == 2
    assert _inbox(graphql, mika, tenant_a)["unreadCount"] == 0
    assert _inbox(graphql, ken, tenant_a)["unreadCount"] == 1


def test_member_cannot_read_or_mark_another_members(
    graphql: Any, tenant_a: Any, people: dict
) -> None:
    # given
    mika, ken = people["mika"], people["ken"]
    publish(tenant_a, key="a", recipients=[ken.pk], channels=["in_app"])
    with tenant_context(tenant_a):
        kens = Notification.objects.get(recipient=ken)
    # when
    inbox = _inbox(graphql, mika, tenant_a)
    _, body = graphql(
        MARK, {"ids": [_gid("Notification", kens.pk)]}, user=mika.user, tenant=tenant_a.slug
    )
    # then
    assert (inbox["totalCount"], inbox["items"]) == (0, [])
    assert body["data"]["markNotificationsRead"]["errors"] == [
        {"code": "NOT_FOUND", "field": "ids"}
    ]
    with tenant_context(tenant_a):
        assert Notification.objects.get(pk=kens.pk).read_at is None


def test_other_tenant_never_sees_and_cannot_mark(
    graphql: Any, tenant_a: Any, tenant_b: Any, people: dict
) -> None:
    # given
    mika, bo = people["mika"], people["bo"]
    publish(tenant_a, key="a", recipients=[mika.pk], channels=["in_app"])
    with tenant_context(tenant_a):
        row = Notification.objects.get()
    # when
    inbox = _inbox(graphql, bo, tenant_b)
    _, body = graphql(
        MARK, {"ids": [_gid("Notification", row.pk)]}, user=bo.user, tenant=tenant_b.slug
    )
    _, mark_all = graphql(MARK, {"all": True}, user=bo.user, tenant=tenant_b.slug)
    # then
    assert (inbox["totalCount"], inbox["unreadCount"], inbox["items"]) == (0, 0, [])
    assert body["data"]["markNotificationsRead"]["errors"] == [
        {"code": "NOT_FOUND", "field": "ids"}
    ]
    assert mark_all["data"]["markNotificationsRead"]["markedCount"] == 0
    with tenant_context(tenant_a):
        assert Notification.objects.get(pk=row.pk).read_at is None


def test_a_token_has_no_inbox(graphql: Any, tenant_a: Any, token_a: str) -> None:
    _, body = graphql(INBOX, token=token_a)
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "PERMISSION_DENIED"
    assert body["errors"][0]["message"] == (
        "API tokens have no inbox: subscribe a webhook endpoint to receive events."
    )


def test_dedup_publishing_twice_creates_one(tenant_a: Any, people: dict) -> None:
    # when
    first = publish(tenant_a, key="same", recipients=[people["mika"].pk])
    second = publish(tenant_a, key="same", recipients=[people["mika"].pk])
    # then
    assert first.pk == second.pk
    with tenant_context(tenant_a):
        assert Notification.objects.count() == 1


@pytest.fixture
def config_a(tenant_a: Any) -> str:
    _, secret = tenant_services.api_token_create(
        tenant=tenant_a, name="cfg", scopes=["config:write"]
    )
    return secret


@pytest.fixture
def config_b(tenant_b: Any) -> str:
    _, secret = tenant_services.api_token_create(
        tenant=tenant_b, name="cfg", scopes=["config:write"]
    )
    return secret


def test_secret_shown_once_and_rotated(graphql: Any, tenant_a: Any, config_a: str) -> None:
    # when
    _, body = graphql(
        CREATE,
        {"input": {"name": "ops", "url": "http://10.0.0.5/in", "eventTypes": ["alert.fired"],
                   "format": "SLACK"}},
        token=config_a,
    )  # fmt: skip
    # then
    payload = body["data"]["createWebhookEndpoint"]
    secret = payload["secret"]
    assert payload["errors"] == [] and secret.startswith("whsec_")
    assert payload["endpoint"]["format"] == "SLACK"
    assert payload["endpoint"]["secretHint"] == f"whsec_…{secret[-4:]}"
    _, listed = graphql(ENDPOINTS, token=config_a)
    assert secret not in str(listed)
    assert listed["data"]["webhookEndpoints"]["items"][0]["secretHint"] == f"whsec_…{secret[-4:]}"
    # when: rotated
    _, rotated = graphql(ROTATE, {"id": payload["endpoint"]["id"]}, token=config_a)
    new = rotated["data"]["rotateWebhookSecret"]["secret"]
    # then
    assert new.startswith("whsec_") and new != secret
    with tenant_context(tenant_a):
        assert secrets_box.unseal(WebhookEndpoint.objects.get().secret_sealed) == new


def test_create_refuses_bad_input(
    graphql: Any, tenant_a: Any, config_a: str, settings: Any
) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    cases = [
        ({"url": "ftp://93.184.216.34/"}, "url"),
        ({"url": "http://169.254.169.254/"}, "url"),
        ({"eventTypes": ["alert.exploded"]}, "eventTypes"),
        ({"eventTypes": []}, "eventTypes"),
        ({"name": " "}, "name"),
    ]
    for change, field in cases:
        values = {"name": "x", "url": "https://93.184.216.34/", "eventTypes": ["alert.fired"]}
        _, body = graphql(CREATE, {"input": values | change}, token=config_a)
        payload = body["data"]["createWebhookEndpoint"]
        assert (payload["secret"], payload["errors"][0]["field"]) == (None, field), change
    with tenant_context(tenant_a):
        assert WebhookEndpoint.objects.count() == 0


def test_config_write_needed(graphql: Any, tenant_a: Any, token_a: str) -> None:
    _, body = graphql(
        CREATE,
        {"input": {"name": "x", "url": "http://10.0.0.5/", "eventTypes": ["alert.fired"]}},
        token=token_a,
    )
    assert body["data"]["createWebhookEndpoint"]["errors"][0]["code"] == "PERMISSION_DENIED"
    with tenant_context(tenant_a):
        assert WebhookEndpoint.objects.count() == 0


def test_redeliver_a_dead_delivery(
    graphql: Any, tenant_a: Any, config_a: str, receiver: Receiver,
    django_capture_on_commit_callbacks: Any,
) -> None:  # fmt: skip
    # given: a delivery that died (the server failed), the server now well
    from notifications import services

    receiver.statuses = [500, 200]
    endpoint(tenant_a, receiver.url)
    publish(tenant_a)
    with tenant_context(tenant_a):
        delivery = WebhookDelivery.objects.get()
        WebhookDelivery.objects.filter(pk=delivery.pk).update(attempts=3)
    services.webhook_delivery_attempt(
        tenant_id=tenant_a.pk, delivery_id=delivery.pk, now=timezone.now()
    )
    with tenant_context(tenant_a):
        assert WebhookDelivery.objects.get().state == "dead"
    # when
    with django_capture_on_commit_callbacks(execute=True):
        _, body = graphql(REDELIVER, {"id": _gid("WebhookDelivery", delivery.pk)}, token=config_a)
    # then
    assert body["data"]["redeliverWebhook"]["errors"] == []
    with tenant_context(tenant_a):
        fresh = WebhookDelivery.objects.get()
    assert (fresh.state, fresh.attempts, fresh.last_status_code) == ("succeeded", 5, 200)
    _, listed = graphql(DELIVERIES, token=config_a)
    assert listed["data"]["webhookDeliveries"]["items"] == [
        {"state": "SUCCEEDED", "attempts": 5, "eventType": "alert.fired",
         "attemptLog": [{"number": 4, "statusCode": 500}, {"number": 5, "statusCode": 200}]}
    ]  # fmt: skip


def test_other_tenants_webhook_ids_are_not_found(
    graphql: Any, tenant_a: Any, tenant_b: Any, config_b: str
) -> None:
    # given: A's endpoint and delivery
    hook, _ = endpoint(tenant_a, "http://10.0.0.5/")
    publish(tenant_a)
    with tenant_context(tenant_a):
        delivery = WebhookDelivery.objects.get()
        before = WebhookEndpoint.objects.values_list("url", "is_active", "secret_sealed").get()
    hook_id = _gid("WebhookEndpoint", hook.pk)
    # when: B tries every mutation and query on A's ids
    answers = [
        graphql(UPDATE, {"input": {"id": hook_id, "isActive": False}}, token=config_b)[1]["data"][
            "updateWebhookEndpoint"
        ]["errors"],
        graphql(ROTATE, {"id": hook_id}, token=config_b)[1]["data"]["rotateWebhookSecret"][
            "errors"
        ],
        graphql(DELETE, {"id": hook_id}, token=config_b)[1]["data"]["deleteWebhookEndpoint"][
            "errors"
        ],
        graphql(REDELIVER, {"id": _gid("WebhookDelivery", delivery.pk)}, token=config_b)[1]["data"][
            "redeliverWebhook"
        ]["errors"],
    ]
    _, listed = graphql(ENDPOINTS, token=config_b)
    _, deliveries = graphql(DELIVERIES, {"endpointId": hook_id}, token=config_b)
    # then
    assert answers == [
        [{"code": "NOT_FOUND", "field": "id"}],
        [{"code": "NOT_FOUND", "field": "id"}],
        [{"code": "NOT_FOUND", "field": "id"}],
        [{"code": "NOT_FOUND", "field": "deliveryId"}],
    ]
    assert listed["data"]["webhookEndpoints"] == {"totalCount": 0, "items": []}
    assert deliveries["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    with tenant_context(tenant_a):
        assert (
            WebhookEndpoint.objects.values_list("url", "is_active", "secret_sealed").get() == before
        )
        assert WebhookDelivery.objects.get().state == "pending"


def test_inbox_page_is_three_queries(
    tenant_a: Any, people: dict, django_assert_num_queries: Any
) -> None:
    # given
    from notifications.selectors import notifications_page

    for key in "abcdef":
        publish(tenant_a, key=key, recipients=[people["mika"].pk], channels=["in_app"])
    # when / then: the page, its count and the unread count
    with tenant_context(tenant_a), django_assert_num_queries(3):
        rows, total, unread = notifications_page(
            recipient=people["mika"], unread_only=False, first=4, offset=0
        )
    assert (len(rows), total, unread) == (4, 6, 6)
