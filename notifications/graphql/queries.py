"""GraphQL queries of notifications: the member's inbox, event types, webhooks."""

from __future__ import annotations

import strawberry
from strawberry import relay

from notifications import selectors
from notifications.events import event_types
from notifications.graphql.access import request_member
from notifications.graphql.types import (
    ENDPOINT,
    EventTypeType,
    NotificationPage,
    NotificationType,
    WebhookDeliveryPage,
    WebhookDeliveryStateEnum,
    WebhookDeliveryType,
    WebhookEndpointPage,
    WebhookEndpointType,
)
from notifications.models import WebhookEndpoint
from tenants.graphql.base import resolve_global_id
from tenants.graphql.context import Info
from tenants.graphql.operations import query
from tenants.scopes import Scope


@strawberry.type
class NotificationQuery:
    @strawberry.field(
        description="The signed-in member's own notifications, newest first, with the unread "
        "count. API tokens have no inbox (PERMISSION_DENIED): they receive events by webhook."
    )
    def notifications(
        self, info: Info, unread_only: bool = False, first: int = 20, offset: int = 0
    ) -> NotificationPage:
        member = request_member(info)
        rows, total, unread = selectors.notifications_page(
            recipient=member, unread_only=unread_only, first=first, offset=offset
        )
        return NotificationPage(
            total_count=total, unread_count=unread, items=[NotificationType.of(r) for r in rows]
        )

    @strawberry.field(description="The event types webhooks can subscribe to.")
    def notification_event_types(self, info: Info) -> list[EventTypeType]:
        info.context.require_tenant()
        return [EventTypeType.of(spec) for spec in event_types()]

    @query(
        scope=Scope.CONFIG_WRITE, description="The workspace's webhook endpoints (config:write)."
    )
    def webhook_endpoints(
        self, info: Info, first: int = 50, offset: int = 0
    ) -> WebhookEndpointPage:
        rows, total = selectors.webhook_endpoints_page(first=first, offset=offset)
        return WebhookEndpointPage(
            total_count=total, items=[WebhookEndpointType.of(e) for e in rows]
        )

    @query(
        scope=Scope.CONFIG_WRITE,
        description="Webhook deliveries, newest first, with every attempt (config:write).",
    )
    def webhook_deliveries(
        self,
        info: Info,
        endpoint_id: relay.GlobalID | None = None,
        state: WebhookDeliveryStateEnum | None = None,  # type: ignore[valid-type]
        first: int = 20,
        offset: int = 0,
    ) -> WebhookDeliveryPage:
        endpoint = (
            None
            if endpoint_id is None
            else resolve_global_id(
                info,
                endpoint_id,
                model=WebhookEndpoint,
                type_name=ENDPOINT,
                what="Webhook endpoint",
                field="endpointId",
            )
        )
        rows, total = selectors.webhook_deliveries_page(
            endpoint=endpoint,
            state=None if state is None else state.value,
            first=first,
            offset=offset,
        )
        attempts = selectors.webhook_attempts(deliveries=rows)
        return WebhookDeliveryPage(
            total_count=total,
            items=[WebhookDeliveryType.of(d, attempts[d.pk]) for d in rows],
        )
