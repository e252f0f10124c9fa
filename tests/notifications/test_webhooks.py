"""Webhooks: signatures a receiver verifies, retries and dead letter against a local server,
redelivery, the Slack shape, URL validation and secrets shown once."""

# NOTE: the messages are Japanese, with full-width parentheses.
# ruff: noqa: RUF001

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import time
from typing import Any

import pytest
from django.utils import timezone

from notifications import secrets_box, services
from notifications.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from notifications.targets import webhook_target_check
from tenants.context import tenant_context
from tenants.errors import ValidationFailed
from tests.notifications.conftest import Receiver, endpoint, publish

pytestmark = pytest.mark.django_db

PRIVATE = "The URL points at a private, loopback, link-local or metadata address."
CREDENTIALS = "Put no credentials in the URL; the signature authenticates."


def verify(secret: str, header: str, body: bytes, *, tolerance: int = 300) -> bool:
    """The verification snippet of docs/notifications.md, as a receiver runs it."""
    parts = dict(item.split("=", 1) for item in header.split(","))
    timestamp = int(parts["t"])
    if abs(time.time() - timestamp) > tolerance:
        return False
    expected = hmac.new(
        secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


def _delivery(tenant: Any) -> WebhookDelivery:
    with tenant_context(tenant):
        return WebhookDelivery.objects.get()


def _attempt(tenant: Any, delivery: WebhookDelivery, now: dt.datetime) -> WebhookDelivery | None:
    return services.webhook_delivery_attempt(tenant_id=tenant.pk, delivery_id=delivery.pk, now=now)


def test_signed_delivery_verified_by_receiver(
    tenant_a: Any, receiver: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    # given
    _, secret = endpoint(tenant_a, receiver.url)
    # when: published; the delivery task runs on commit
    with django_capture_on_commit_callbacks(execute=True):
        event = publish(tenant_a)
    # then
    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    assert request.path == "/hooks/kpi?x=1"
    assert verify(secret, request.headers["X-KPI-Signature"], request.body)
    assert not verify(secret + "x", request.headers["X-KPI-Signature"], request.body)
    assert not verify(secret, request.headers["X-KPI-Signature"], request.body + b" ")
    delivery = _delivery(tenant_a)
    assert request.headers["X-KPI-Event"] == "alert.fired"
    assert request.headers["X-KPI-Delivery"] == str(delivery.pk)
    body = json.loads(request.body)
    assert body["type"] == "alert.fired"
    assert body["id"] == str(event.pk)
    assert body["delivery"] == str(delivery.pk)
    assert body["title"] == "アラート: コネクト率が基準を下回りました（Rita・2026-05）"
    assert body["data"]["alert"]["improvementAction"] == "架電時間帯を見直す"
    assert (delivery.state, delivery.attempts, delivery.last_status_code) == ("succeeded", 1, 200)
    assert delivery.next_attempt_at is None and delivery.delivered_at is not None
    with tenant_context(tenant_a):
        attempts = list(WebhookAttempt.objects.values_list("number", "status_code", "error"))
    assert attempts == [(1, 200, "")]


def test_retries_with_backoff_then_dead_letter(tenant_a: Any, receiver: Receiver) -> None:
    # given: a server that always fails; backoff 60 s, 300 s, 1800 s (conftest)
    receiver.statuses = [500]
    endpoint(tenant_a, receiver.url)
    publish(tenant_a)  # no commit callbacks: the test drives the clock
    delivery = _delivery(tenant_a)
    t0 = timezone.now()
    # when / then: attempt 1 fails, next in 60 s
    delivery = _attempt(tenant_a, delivery, t0)
    assert (delivery.state, delivery.attempts) == ("failed", 1)
    assert delivery.next_attempt_at == t0 + dt.timedelta(seconds=60)
    # not due yet: nothing is sent
    assert _attempt(tenant_a, delivery, t0 + dt.timedelta(seconds=59)) is None
    assert len(receiver.requests) == 1
    # the sweep finds it when due
    with tenant_context(tenant_a):
        due = services.webhook_deliveries_due(tenant=tenant_a, now=t0 + dt.timedelta(seconds=60))
    assert due == [delivery.pk]
    t = t0 + dt.timedelta(seconds=60)
    delivery = _attempt(tenant_a, delivery, t)
    assert delivery.next_attempt_at == t + dt.timedelta(seconds=300)
    t += dt.timedelta(seconds=300)
    delivery = _attempt(tenant_a, delivery, t)
    assert delivery.next_attempt_at == t + dt.timedelta(seconds=1800)
    t += dt.timedelta(seconds=1800)
    delivery = _attempt(tenant_a, delivery, t)
    # then: dead after the last retry, every attempt recorded
    assert (delivery.state, delivery.attempts, delivery.next_attempt_at) == ("dead", 4, None)
    assert delivery.last_status_code == 500
    with tenant_context(tenant_a):
        assert list(WebhookAttempt.objects.values_list("number", "status_code")) == [
            (1, 500), (2, 500), (3, 500), (4, 500),
        ]  # fmt: skip
        assert services.webhook_deliveries_due(tenant=tenant_a, now=t + dt.timedelta(days=1)) == []
    assert len(receiver.requests) == 4


def test_fails_first_then_succeeds(tenant_a: Any, receiver: Receiver) -> None:
    # given
    receiver.statuses = [503, 200]
    endpoint(tenant_a, receiver.url)
    publish(tenant_a)
    delivery = _delivery(tenant_a)
    t0 = timezone.now()
    # when
    _attempt(tenant_a, delivery, t0)
    delivery = _attempt(tenant_a, delivery, t0 + dt.timedelta(seconds=60))
    # then
    assert (delivery.state, delivery.attempts, delivery.last_status_code) == ("succeeded", 2, 200)
    assert len({r.headers["X-KPI-Delivery"] for r in receiver.requests}) == 1


def test_unreachable_endpoint_records_the_error(tenant_a: Any) -> None:
    # given: nothing listens on port 9 of localhost
    endpoint(tenant_a, "http://127.0.0.1:9/")
    publish(tenant_a)
    # when
    delivery = _attempt(tenant_a, _delivery(tenant_a), timezone.now())
    # then
    assert (delivery.state, delivery.attempts, delivery.last_status_code) == ("failed", 1, None)
    assert delivery.last_error.startswith("ConnectionRefusedError")


def test_private_target_refused_at_delivery_time(
    tenant_a: Any, receiver: Receiver, settings: Any
) -> None:
    # given: allowed when saved, no longer when sent (as if DNS now pointed inside)
    endpoint(tenant_a, receiver.url)
    publish(tenant_a)
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    # when
    delivery = _attempt(tenant_a, _delivery(tenant_a), timezone.now())
    # then: nothing was sent
    assert receiver.requests == []
    assert delivery.state == "failed"
    assert delivery.last_error.startswith("Refused target: The URL points at a private")


def test_slack_payload_shape(tenant_a: Any, receiver: Receiver) -> None:
    # given
    endpoint(tenant_a, receiver.url, format="slack")
    publish(tenant_a)
    # when
    _attempt(tenant_a, _delivery(tenant_a), timezone.now())
    # then
    body = json.loads(receiver.requests[0].body)
    assert set(body) == {"text", "blocks"}
    assert body["text"].startswith("アラート: コネクト率が基準を下回りました（Rita・2026-05）\n")
    assert [block["type"] for block in body["blocks"]] == ["header", "section", "context"]
    assert body["blocks"][0]["text"] == {
        "type": "plain_text",
        "text": "アラート: コネクト率が基準を下回りました（Rita・2026-05）",
    }
    assert "改善アクション: 架電時間帯を見直す" in body["blocks"][1]["text"]["text"]


def test_unsubscribed_or_inactive_endpoint_gets_nothing(tenant_a: Any, receiver: Receiver) -> None:
    # given
    endpoint(tenant_a, receiver.url, name="resolved only", event_types=["alert.resolved"])
    endpoint(tenant_a, receiver.url, name="off", is_active=False)
    # when
    publish(tenant_a)
    # then
    with tenant_context(tenant_a):
        assert WebhookDelivery.objects.count() == 0


def test_webhook_channel_not_chosen_gets_nothing(tenant_a: Any, receiver: Receiver) -> None:
    endpoint(tenant_a, receiver.url)
    publish(tenant_a, channels=["in_app"])
    with tenant_context(tenant_a):
        assert WebhookDelivery.objects.count() == 0


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://93.184.216.34/x", "Only http:// and https:// URLs can receive webhooks."),
        ("file:///etc/passwd", "Only http:// and https:// URLs can receive webhooks."),
        ("javascript:alert(1)", "Only http:// and https:// URLs can receive webhooks."),
        ("http:///nohost", "The URL has no host."),
        ("http://user:pw@93.184.216.34/", CREDENTIALS),
        ("http://10.1.2.3/", PRIVATE),
        ("http://172.16.0.1/", PRIVATE),
        ("http://192.168.1.1/", PRIVATE),
        ("http://127.0.0.1:8000/", PRIVATE),
        ("http://169.254.169.254/latest/meta-data/", PRIVATE),
        ("http://0.0.0.0/", PRIVATE),
        ("http://[::1]/", PRIVATE),
        ("http://[fd00:ec2::254]/", PRIVATE),
        ("http://[::ffff:10.0.0.1]/", PRIVATE),
        ("http://localhost/", PRIVATE),
    ],
)  # fmt: skip
def test_url_validation(settings: Any, url: str, message: str) -> None:
    # given
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    # when / then
    with pytest.raises(ValidationFailed) as caught:
        webhook_target_check(url)
    assert (caught.value.message, caught.value.field) == (message, "url")


def test_private_targets_allowed_by_the_setting(settings: Any) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    assert webhook_target_check("https://93.184.216.34/in").addresses == ("93.184.216.34",)
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    target = webhook_target_check("http://10.1.2.3:8080/in?a=b")
    assert (target.host, target.port, target.path, target.addresses) == (
        "10.1.2.3", 8080, "/in?a=b", ("10.1.2.3",),
    )  # fmt: skip
    with pytest.raises(ValidationFailed):
        webhook_target_check("gopher://10.1.2.3/")


def test_secret_is_sealed_at_rest(tenant_a: Any) -> None:
    # given
    hook, secret = endpoint(tenant_a, "http://10.0.0.1/")
    # then
    assert secret.startswith("whsec_") and len(secret) > 40
    with tenant_context(tenant_a):
        stored = WebhookEndpoint.objects.get(pk=hook.pk)
    assert secret not in stored.secret_sealed
    assert secrets_box.unseal(stored.secret_sealed) == secret
    assert stored.secret_hint == f"whsec_…{secret[-4:]}"
    tampered = stored.secret_sealed[:-2] + ("A" if stored.secret_sealed[-2] != "A" else "B") + "="
    with pytest.raises(secrets_box.SealBroken):
        secrets_box.unseal(tampered)


def test_beat_sweep_retries_due_deliveries(
    tenant_a: Any, tenant_b: Any, receiver: Receiver
) -> None:
    # given: a delivery of A that failed once and is due again; one of B not yet due
    from notifications.tasks import retry_due_webhooks_task

    receiver.statuses = [500, 200]
    endpoint(tenant_a, receiver.url)
    endpoint(tenant_b, receiver.url)
    publish(tenant_a)
    publish(tenant_b)
    delivery = _attempt(tenant_a, _delivery(tenant_a), timezone.now())
    with tenant_context(tenant_a):
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            next_attempt_at=timezone.now() - dt.timedelta(seconds=1)
        )
    with tenant_context(tenant_b):
        WebhookDelivery.objects.update(next_attempt_at=timezone.now() + dt.timedelta(hours=1))
    # when
    queued = retry_due_webhooks_task()
    # then: A's was retried (and succeeded), B's waits
    assert queued == 1
    assert (_delivery(tenant_a).state, _delivery(tenant_a).attempts) == ("succeeded", 2)
    assert (_delivery(tenant_b).state, _delivery(tenant_b).attempts) == ("pending", 0)
    assert len(receiver.requests) == 2


def test_inactive_endpoint_or_unreadable_secret_sends_nothing(
    tenant_a: Any, receiver: Receiver, settings: Any
) -> None:
    # given: two endpoints, one switched off after the event, one whose sealing key changed
    off, _ = endpoint(tenant_a, receiver.url, name="off")
    endpoint(tenant_a, receiver.url, name="rekeyed")
    publish(tenant_a)
    with tenant_context(tenant_a):
        WebhookEndpoint.objects.filter(pk=off.pk).update(is_active=False)
        deliveries = {
            d.endpoint.name: d for d in WebhookDelivery.objects.select_related("endpoint")
        }
    # when
    now = timezone.now()
    results = {"off": _attempt(tenant_a, deliveries["off"], now)}
    settings.WEBHOOK_SECRET_KEY = "another key"
    results["rekeyed"] = _attempt(tenant_a, deliveries["rekeyed"], now)
    # then
    assert receiver.requests == []
    assert results["off"].last_error == "The endpoint is inactive."
    assert results["rekeyed"].last_error == (
        "The signing secret cannot be read (WEBHOOK_SECRET_KEY changed?): rotate it."
    )
    assert {r.state for r in results.values()} == {"failed"}
