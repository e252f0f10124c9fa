"""GraphQL types of the inbox, event types, webhook endpoints, deliveries and attempts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry import relay

from notifications.events import EventTypeSpec
from notifications.models import Notification, WebhookAttempt, WebhookDelivery, WebhookEndpoint

NOTIFICATION, ENDPOINT, DELIVERY = "Notification", "WebhookEndpoint", "WebhookDelivery"

WebhookFormatEnum = strawberry.enum(
    WebhookEndpoint.Format, name="WebhookFormat", description="JSON (ours) or Slack-compatible."
)
WebhookDeliveryStateEnum = strawberry.enum(WebhookDelivery.State, name="WebhookDeliveryState")


def gid(type_name: str, pk: Any) -> strawberry.ID:
    return strawberry.ID(relay.to_base64(type_name, pk))


@strawberry.type(name="NotificationEventType", description="An event type one can subscribe to.")
class EventTypeType:
    key: str
    label_en: str
    label_ja: str

    @classmethod
    def of(cls, spec: EventTypeSpec) -> EventTypeType:
        return cls(key=spec.key, label_en=spec.label_en, label_ja=spec.label_ja)


@strawberry.type(name="Notification", description="An event in the member's own inbox.")
class NotificationType:
    id: strawberry.ID
    event_type: str
    title: str
    body: str
    created_at: datetime
    read_at: datetime | None

    @classmethod
    def of(cls, row: Notification) -> NotificationType:
        return cls(
            id=gid(NOTIFICATION, row.pk),
            event_type=row.event_type,
            title=row.title,
            body=row.body,
            created_at=row.created_at,
            read_at=row.read_at,
        )


@strawberry.type(name="NotificationPage")
class NotificationPage:
    total_count: int
    unread_count: int = strawberry.field(description="All unread notifications of the member.")
    items: list[NotificationType]


@strawberry.type(
    name="WebhookEndpoint",
    description="A URL receiving signed events; its secret is only ever returned by the "
    "mutation that created or rotated it.",
)
class WebhookEndpointType:
    id: strawberry.ID
    name: str
    url: str
    event_types: list[str]
    format: WebhookFormatEnum  # type: ignore[valid-type]
    is_active: bool
    secret_hint: str = strawberry.field(description="whsec_… and the last four characters.")
    secret_rotated_at: datetime
    created_at: datetime

    @classmethod
    def of(cls, endpoint: WebhookEndpoint) -> WebhookEndpointType:
        return cls(
            id=gid(ENDPOINT, endpoint.pk),
            name=endpoint.name,
            url=endpoint.url,
            event_types=list(endpoint.event_types),
            format=WebhookEndpoint.Format(endpoint.format),
            is_active=endpoint.is_active,
            secret_hint=endpoint.secret_hint,
            secret_rotated_at=endpoint.secret_rotated_at,
            created_at=endpoint.created_at,
        )


@strawberry.type(name="WebhookEndpointPage")
class WebhookEndpointPage:
    total_count: int
    items: list[WebhookEndpointType]


@strawberry.type(name="WebhookAttempt", description="One HTTP request of a delivery.")
class WebhookAttemptType:
    number: int
    at: datetime
    status_code: int | None
    error: str
    response_ms: int | None

    @classmethod
    def of(cls, attempt: WebhookAttempt) -> WebhookAttemptType:
        return cls(
            number=attempt.number,
            at=attempt.at,
            status_code=attempt.status_code,
            error=attempt.error,
            response_ms=attempt.response_ms,
        )


@strawberry.type(name="WebhookDelivery", description="One event sent to one endpoint.")
class WebhookDeliveryType:
    id: strawberry.ID
    endpoint_id: strawberry.ID
    event_type: str
    event_title: str
    state: WebhookDeliveryStateEnum  # type: ignore[valid-type]
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str
    last_response_ms: int | None
    delivered_at: datetime | None
    created_at: datetime
    attempt_log: list[WebhookAttemptType]

    @classmethod
    def of(
        cls, delivery: WebhookDelivery, attempts: list[WebhookAttempt] | None = None
    ) -> WebhookDeliveryType:
        return cls(
            id=gid(DELIVERY, delivery.pk),
            endpoint_id=gid(ENDPOINT, delivery.endpoint_id),
            event_type=delivery.event.event_type,
            event_title=delivery.event.title,
            state=WebhookDelivery.State(delivery.state),
            attempts=delivery.attempts,
            next_attempt_at=delivery.next_attempt_at,
            last_status_code=delivery.last_status_code,
            last_error=delivery.last_error,
            last_response_ms=delivery.last_response_ms,
            delivered_at=delivery.delivered_at,
            created_at=delivery.created_at,
            attempt_log=[WebhookAttemptType.of(a) for a in attempts or []],
        )


@strawberry.type(name="WebhookDeliveryPage")
class WebhookDeliveryPage:
    total_count: int
    items: list[WebhookDeliveryType]
