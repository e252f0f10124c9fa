"""Celery tasks of notifications (queue `notifications`): e-mail an event, try one webhook
delivery, and the beat's sweep of due retries."""

from __future__ import annotations

import smtplib

from celery import shared_task
from django.utils import timezone

from notifications import services
from tenants.context import tenant_context
from tenants.models import Tenant


@shared_task(
    name="notifications.send_event_emails",
    acks_late=True,
    autoretry_for=(smtplib.SMTPException, ConnectionError, TimeoutError),
    retry_backoff=60,
    max_retries=5,
    soft_time_limit=60,
    time_limit=90,
)
def send_event_emails_task(tenant_id: int, event_ids: list[int]) -> int:
    """E-mail each event once (state guard: an event already e-mailed is skipped)."""
    sent = 0
    for event_id in event_ids:
        with tenant_context(tenant_id):
            tenant = Tenant.objects.filter(pk=tenant_id, is_active=True).first()
            if tenant is None:
                return sent
            sent += services.event_emails_send(tenant=tenant, event_id=event_id)
    return sent


@shared_task(
    name="notifications.deliver_webhook",
    acks_late=True,
    soft_time_limit=30,
    time_limit=45,
)
def deliver_webhook_task(tenant_id: int, delivery_id: int) -> str | None:
    """One delivery, one attempt if due; the retry itself is the beat's (no task retry)."""
    delivery = services.webhook_delivery_attempt(tenant_id=tenant_id, delivery_id=delivery_id)
    return None if delivery is None else delivery.state


@shared_task(name="notifications.retry_due_webhooks", acks_late=True)
def retry_due_webhooks_task() -> int:
    """Every minute: queue every due delivery of every active workspace, one task each."""
    now = timezone.now()
    queued = 0
    # NOTE: Tenant is not tenant-owned; each tenant's deliveries are read in its context.
    for tenant_id in (
        Tenant.objects.filter(is_active=True).order_by("pk").values_list("pk", flat=True)
    ):
        with tenant_context(tenant_id):
            tenant = Tenant.objects.get(pk=tenant_id)
            due = services.webhook_deliveries_due(tenant=tenant, now=now)
        for delivery_id in due:
            deliver_webhook_task.delay(tenant_id, delivery_id)
            queued += 1
    return queued
