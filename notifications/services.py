"""Publishing events (idempotent per dedup key, delivered on commit), the inbox, webhook
endpoints (secrets shown once) and webhook deliveries (attempts, backoff, dead letter)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from notifications import secrets_box, webhook_http
from notifications.events import Channel, event_type_spec
from notifications.models import (
    Event,
    Notification,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from notifications.targets import webhook_target_check
from tenants.context import tenant_context
from tenants.errors import ErrorCode, NotFound, ValidationFailed
from tenants.models import Membership, Tenant
from tenants.task_queue import enqueue

MAX_RECIPIENTS = 500
MAX_ENDPOINTS = 20
MAX_MARK_READ_IDS = 100


@dataclass(frozen=True)
class EventDraft:
    """An event an app wants told: to whom (Membership ids) and over which channels."""

    event_type: str
    payload: dict[str, Any]
    recipients: Sequence[int]
    channels: Sequence[str]
    dedup_key: str


def _check_draft(draft: EventDraft) -> None:
    if event_type_spec(draft.event_type) is None:
        raise ValueError(f"Unregistered event type {draft.event_type!r}")
    if not draft.dedup_key or len(draft.dedup_key) > 200:
        raise ValueError("A dedup key of 1 to 200 characters")
    unknown = set(draft.channels) - set(Channel)
    if unknown:
        raise ValueError(f"Unknown channels {sorted(unknown)}")
    if len(draft.recipients) > MAX_RECIPIENTS:
        raise ValueError(f"At most {MAX_RECIPIENTS} recipients")


def event_publish(
    *,
    tenant: Tenant,
    event_type: str,
    payload: dict[str, Any],
    recipients: Sequence[int],
    channels: Sequence[str],
    dedup_key: str,
) -> Event:
    """Publish one event (see events_publish); the stored event, new or already there."""
    draft = EventDraft(event_type, payload, list(recipients), list(channels), dedup_key)
    events_publish(tenant=tenant, drafts=[draft])
    return Event.objects.get(dedup_key=dedup_key)


def events_publish(*, tenant: Tenant, drafts: Sequence[EventDraft]) -> list[Event]:
    """Store the events not published before (by dedup key), their inbox rows and webhook
    deliveries in a few set-based writes; e-mails and webhook requests are queued when the
    caller's transaction commits (never sent inside it). Returns the new events.

    Must run in the tenant's context. The renderer of each event type writes the message
    once, in the tenant's language.
    """
    for draft in drafts:
        _check_draft(draft)
    unique: dict[str, EventDraft] = {}
    for draft in drafts:
        unique.setdefault(draft.dedup_key, draft)
    if not unique:
        return []
    known = set(
        Event.objects.filter(dedup_key__in=list(unique)).values_list("dedup_key", flat=True)
    )
    fresh = [draft for key, draft in unique.items() if key not in known]
    if not fresh:
        return []
    now = timezone.now()
    language = tenant.language
    rows = []
    for draft in fresh:
        message = event_type_spec(draft.event_type).render(draft.payload, language)  # type: ignore[union-attr]
        rows.append(
            Event(
                tenant=tenant,
                event_type=draft.event_type,
                dedup_key=draft.dedup_key,
                payload=draft.payload,
                title=message.title[:300],
                text=message.text[:10_000],
                language=language,
                channels=sorted(set(draft.channels)),
                recipient_ids=sorted(set(draft.recipients)),
                created_at=now,
            )
        )
    events = _insert_events(rows)
    if not events:
        return []
    _add_inbox_rows(tenant, [e for e in events if Channel.IN_APP in e.channels], now)
    deliveries = _add_deliveries(tenant, [e for e in events if Channel.WEBHOOK in e.channels], now)
    emailed = [e.pk for e in events if Channel.EMAIL in e.channels and e.recipient_ids]
    _enqueue_on_commit(tenant.pk, emailed, [d.pk for d in deliveries])
    return events


def _insert_events(rows: list[Event]) -> list[Event]:
    try:
        with transaction.atomic():
            return Event.objects.bulk_create(rows)
    except IntegrityError:
        # TRICKY: another publisher stored some of these keys since we looked; insert one
        # by one and keep those that are ours (the constraint decides).
        created = []
        for row in rows:
            try:
                with transaction.atomic():
                    row.save()
                created.append(row)
            except IntegrityError:
                continue
        return created


def _add_inbox_rows(tenant: Tenant, events: list[Event], now: datetime) -> None:
    if not events:
        return
    wanted = {pk for event in events for pk in event.recipient_ids}
    active = set(
        Membership.objects.filter(pk__in=wanted, is_active=True).values_list("pk", flat=True)
    )
    Notification.objects.bulk_create(
        [
            Notification(
                tenant=tenant,
                event=event,
                recipient_id=pk,
                event_type=event.event_type,
                title=event.title,
                body=event.text,
                created_at=now,
            )
            for event in events
            for pk in event.recipient_ids
            if pk in active
        ],
        batch_size=1000,
    )


def _add_deliveries(tenant: Tenant, events: list[Event], now: datetime) -> list[WebhookDelivery]:
    if not events:
        return []
    endpoints = list(WebhookEndpoint.objects.filter(is_active=True).only("pk", "event_types"))
    rows = [
        WebhookDelivery(
            tenant=tenant,
            event=event,
            endpoint=endpoint,
            state=WebhookDelivery.State.PENDING,
            next_attempt_at=now,
            created_at=now,
        )
        for event in events
        for endpoint in endpoints
        if event.event_type in endpoint.event_types
    ]
    return WebhookDelivery.objects.bulk_create(rows, batch_size=1000) if rows else []


def _enqueue_on_commit(tenant_id: int, email_event_ids: list[int], delivery_ids: list[int]) -> None:
    def queue_deliveries() -> None:
        if email_event_ids:
            enqueue("notifications.send_event_emails", tenant_id, email_event_ids)
        for delivery_id in delivery_ids:
            enqueue("notifications.deliver_webhook", tenant_id, delivery_id)

    if email_event_ids or delivery_ids:
        transaction.on_commit(queue_deliveries)


# --- Inbox ----------------------------------------------------------------------------


def notifications_mark_read(
    *, recipient: Membership, ids: Sequence[int] | None, all: bool = False
) -> int:
    """Mark the member's notifications read: the ids given (each must be theirs, else
    nothing changes) or all of them. How many were unread and are now read."""
    mine = Notification.objects.filter(recipient=recipient)
    if all:
        if ids:
            raise ValidationFailed("Send ids or all, not both.", field="ids")
        return mine.filter(read_at__isnull=True).update(read_at=timezone.now())
    ids = sorted(set(ids or []))
    if not ids:
        raise ValidationFailed("Send the ids to mark read, or all: true.", field="ids")
    if len(ids) > MAX_MARK_READ_IDS:
        raise ValidationFailed(f"At most {MAX_MARK_READ_IDS} ids.", field="ids")
    if mine.filter(pk__in=ids).count() != len(ids):
        raise NotFound("Notification", field="ids")
    return mine.filter(pk__in=ids, read_at__isnull=True).update(read_at=timezone.now())


# --- E-mail ---------------------------------------------------------------------------


def event_emails_send(*, tenant: Tenant, event_id: int) -> int:
    """E-mail one event to its active recipients that have an address, once; how many
    messages were sent (0 when already sent)."""
    from notifications.emails import event_email_messages

    event = Event.objects.select_for_update().filter(pk=event_id).first()
    if event is None or event.emailed_at is not None or Channel.EMAIL not in event.channels:
        return 0
    members = list(
        Membership.objects.filter(pk__in=event.recipient_ids, is_active=True)
        .select_related("user")
        .order_by("pk")
    )
    addresses = [m.user.email for m in members if m.user.email and m.user.is_active]
    messages = event_email_messages(tenant=tenant, event=event, addresses=addresses)
    if messages:
        from django.core.mail import get_connection

        get_connection().send_messages(messages)
    event.emailed_at = timezone.now()
    event.save(update_fields=["emailed_at"])
    return len(messages)


# --- Webhook endpoints ----------------------------------------------------------------


def webhook_endpoint_validate(*, endpoint: WebhookEndpoint) -> None:
    """Check an endpoint's fields (GraphQL and admin); ValidationFailed names the field."""
    endpoint.name = (endpoint.name or "").strip()
    if not endpoint.name or len(endpoint.name) > 100 or "\x00" in endpoint.name:
        raise ValidationFailed("A name of 1 to 100 characters.", field="name")
    webhook_target_check(endpoint.url)
    types = endpoint.event_types
    if not isinstance(types, list) or not types:
        raise ValidationFailed("Subscribe to at least one event type.", field="eventTypes")
    unknown = sorted({t for t in types if not isinstance(t, str) or event_type_spec(t) is None})
    if unknown:
        raise ValidationFailed(
            f"Unknown event types: {', '.join(map(str, unknown))}.", field="eventTypes"
        )
    endpoint.event_types = sorted(set(types))
    if endpoint.format not in WebhookEndpoint.Format.values:
        raise ValidationFailed("json or slack.", field="format")


def _save_endpoint(endpoint: WebhookEndpoint) -> WebhookEndpoint:
    try:
        with transaction.atomic():
            endpoint.save()
    except IntegrityError as exc:
        raise ValidationFailed(
            f"An endpoint named {endpoint.name!r} exists already.",
            code=ErrorCode.CONFLICT,
            field="name",
        ) from exc
    return endpoint


def webhook_endpoint_create(
    *,
    tenant: Tenant,
    name: str,
    url: str,
    event_types: list[str],
    format: str = WebhookEndpoint.Format.JSON,
    is_active: bool = True,
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its signing secret: the only time the secret is returned."""
    endpoint = WebhookEndpoint(
        tenant=tenant,
        name=name,
        url=url,
        event_types=event_types,
        format=format,
        is_active=is_active,
    )
    webhook_endpoint_validate(endpoint=endpoint)
    if WebhookEndpoint.objects.count() >= MAX_ENDPOINTS:
        raise ValidationFailed(f"At most {MAX_ENDPOINTS} endpoints per workspace.")
    secret = secrets_box.webhook_secret_generate()
    endpoint.secret_sealed = secrets_box.seal(secret)
    endpoint.secret_hint = secrets_box.hint(secret)
    return _save_endpoint(endpoint), secret


ENDPOINT_FIELDS = ("name", "url", "event_types", "format", "is_active")


def webhook_endpoint_update(
    *, tenant: Tenant, endpoint: WebhookEndpoint, **changes: Any
) -> WebhookEndpoint:
    unknown = set(changes) - set(ENDPOINT_FIELDS)
    if unknown:
        raise ValueError(f"Unknown endpoint fields {sorted(unknown)}")
    locked = WebhookEndpoint.objects.select_for_update().filter(pk=endpoint.pk).first()
    if locked is None:
        raise NotFound("Webhook endpoint", field="id")
    for name, value in changes.items():
        setattr(locked, name, value)
    webhook_endpoint_validate(endpoint=locked)
    return _save_endpoint(locked)


def webhook_endpoint_delete(*, tenant: Tenant, endpoint: WebhookEndpoint) -> None:
    """Delete an endpoint with its deliveries and their attempts."""
    deleted, _ = WebhookEndpoint.objects.filter(pk=endpoint.pk).delete()
    if not deleted:
        raise NotFound("Webhook endpoint", field="id")


def webhook_secret_rotate(
    *, tenant: Tenant, endpoint: WebhookEndpoint
) -> tuple[WebhookEndpoint, str]:
    """A new signing secret, returned this once; the old one stops signing at once."""
    locked = WebhookEndpoint.objects.select_for_update().filter(pk=endpoint.pk).first()
    if locked is None:
        raise NotFound("Webhook endpoint", field="id")
    secret = secrets_box.webhook_secret_generate()
    locked.secret_sealed = secrets_box.seal(secret)
    locked.secret_hint = secrets_box.hint(secret)
    locked.secret_rotated_at = timezone.now()
    locked.save(update_fields=["secret_sealed", "secret_hint", "secret_rotated_at", "updated_at"])
    return locked, secret


# --- Webhook deliveries ---------------------------------------------------------------


def _backoff() -> list[int]:
    return [int(s) for s in settings.WEBHOOK_RETRY_BACKOFF_SECONDS]


@dataclass(frozen=True)
class _Claim:
    delivery_id: int
    attempt: int
    url: str
    secret: str
    event_type: str
    body: bytes
    refusal: str = ""  # why no request is made (recorded as the attempt's error)


def webhook_payload(*, event: Event, endpoint_format: str, delivery_id: int) -> dict[str, Any]:
    """The JSON body for an endpoint: ours, or Slack's incoming-webhook shape."""
    if endpoint_format == WebhookEndpoint.Format.SLACK:
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": event.title[:150]}}
        ]
        if event.text:
            blocks.append(
                {"type": "section", "text": {"type": "mrkdwn", "text": event.text[:2900]}}
            )
        blocks.append(
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"`{event.event_type}` · {event.pk}"}],
            }
        )
        return {"text": f"{event.title}\n{event.text}"[:3000], "blocks": blocks}
    return {
        "id": str(event.pk),
        "delivery": str(delivery_id),
        "type": event.event_type,
        "created": event.created_at.isoformat(),
        "language": event.language,
        "title": event.title,
        "text": event.text,
        "data": event.payload,
    }


def _claim(delivery_id: int, now: datetime, lease: timedelta) -> _Claim | None:
    delivery = (
        WebhookDelivery.objects.select_for_update()
        .select_related("endpoint", "event")
        .filter(pk=delivery_id)
        .first()
    )
    if delivery is None or delivery.state in (
        WebhookDelivery.State.SUCCEEDED,
        WebhookDelivery.State.DEAD,
    ):
        return None
    # NOTE: not due yet, or in flight with another worker (its lease pushed the time on).
    if delivery.next_attempt_at is not None and delivery.next_attempt_at > now:
        return None
    delivery.next_attempt_at = now + lease
    delivery.save(update_fields=["next_attempt_at"])
    endpoint = delivery.endpoint
    refusal = "" if endpoint.is_active else "The endpoint is inactive."
    try:
        secret = secrets_box.unseal(endpoint.secret_sealed)
    except secrets_box.SealBroken:
        secret, refusal = (
            "",
            "The signing secret cannot be read (WEBHOOK_SECRET_KEY changed?): rotate it.",
        )
    return _Claim(
        delivery_id=delivery.pk,
        attempt=delivery.attempts + 1,
        url=endpoint.url,
        secret=secret,
        refusal=refusal,
        event_type=delivery.event.event_type,
        body=webhook_http.body_bytes(
            webhook_payload(
                event=delivery.event, endpoint_format=endpoint.format, delivery_id=delivery.pk
            )
        ),
    )


def _record(
    claim: _Claim, response: webhook_http.Response, now: datetime
) -> WebhookDelivery | None:
    delivery = WebhookDelivery.objects.select_for_update().filter(pk=claim.delivery_id).first()
    if delivery is None or delivery.attempts >= claim.attempt:
        return delivery  # deleted meanwhile, or this attempt was recorded already
    WebhookAttempt.objects.create(
        tenant_id=delivery.tenant_id,
        delivery=delivery,
        number=claim.attempt,
        at=now,
        status_code=response.status,
        error=response.error[:500],
        response_ms=response.elapsed_ms,
    )
    delivery.attempts = claim.attempt
    delivery.last_status_code = response.status
    delivery.last_error = response.error[:500]
    delivery.last_response_ms = response.elapsed_ms
    backoff = _backoff()
    if response.status is not None and 200 <= response.status < 300:
        delivery.state = WebhookDelivery.State.SUCCEEDED
        delivery.delivered_at = now
        delivery.next_attempt_at = None
    elif claim.attempt > len(backoff):
        delivery.state = WebhookDelivery.State.DEAD
        delivery.next_attempt_at = None
    else:
        delivery.state = WebhookDelivery.State.FAILED
        delivery.next_attempt_at = now + timedelta(seconds=backoff[claim.attempt - 1])
    delivery.save()
    return delivery


def webhook_delivery_attempt(
    *, tenant_id: int, delivery_id: int, now: datetime | None = None
) -> WebhookDelivery | None:
    """Try one delivery if it is due: claim it (a short transaction), POST outside any
    transaction, record the attempt and the next state (another short transaction).

    2xx succeeds; anything else (status, timeout, refused target) is retried after the
    next WEBHOOK_RETRY_BACKOFF_SECONDS step, and is dead after the last. `now` (aware)
    stands for the clock in tests. Safe to run twice: the claim is a state guard.
    """
    now = now or timezone.now()
    lease = timedelta(seconds=settings.WEBHOOK_TOTAL_TIMEOUT_SECONDS * 2 + 30)
    with tenant_context(tenant_id):
        claim = _claim(delivery_id, now, lease)
    if claim is None:
        return None
    if claim.refusal:
        response = webhook_http.Response(status=None, error=claim.refusal, elapsed_ms=0)
    else:
        response = _send(claim)
    with tenant_context(tenant_id):
        return _record(claim, response, now)


def _send(claim: _Claim) -> webhook_http.Response:
    from tenants.errors import PublicError

    try:
        # TRICKY: resolved and checked again now (DNS may point elsewhere since the
        # endpoint was saved); the request connects to the very address checked.
        target = webhook_target_check(claim.url)
    except PublicError as error:
        return webhook_http.Response(
            status=None, error=f"Refused target: {error.message}", elapsed_ms=0
        )
    headers = webhook_http.signed_headers(
        secret=claim.secret,
        timestamp=int(time.time()),
        body=claim.body,
        event_type=claim.event_type,
        delivery_id=claim.delivery_id,
    )
    return webhook_http.post(
        target,
        claim.body,
        headers,
        connect_timeout=settings.WEBHOOK_CONNECT_TIMEOUT_SECONDS,
        total_timeout=settings.WEBHOOK_TOTAL_TIMEOUT_SECONDS,
    )


def webhook_delivery_redeliver(*, tenant: Tenant, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery again now, whatever its state: one more attempt (a dead or
    succeeded delivery gets a single try; a failing one simply does not wait)."""
    locked = WebhookDelivery.objects.select_for_update().filter(pk=delivery.pk).first()
    if locked is None:
        raise NotFound("Webhook delivery", field="deliveryId")
    locked.state = WebhookDelivery.State.PENDING
    locked.next_attempt_at = timezone.now()
    locked.save(update_fields=["state", "next_attempt_at"])
    tenant_id, delivery_id = locked.tenant_id, locked.pk
    transaction.on_commit(lambda: enqueue("notifications.deliver_webhook", tenant_id, delivery_id))
    return locked


def webhook_deliveries_due(*, tenant: Tenant, now: datetime, limit: int = 500) -> list[int]:
    """Ids of the tenant's deliveries due for an attempt (pending or failed, time come)."""
    return list(
        WebhookDelivery.objects.filter(
            state__in=[WebhookDelivery.State.PENDING, WebhookDelivery.State.FAILED],
            next_attempt_at__lte=now,
        )
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
