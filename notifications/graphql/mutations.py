"""GraphQL mutations of notifications: mark read (members), webhook endpoints, secret
rotation and redelivery (config:write)."""

from __future__ import annotations

import strawberry
from strawberry import relay

from notifications import services
from notifications.graphql.access import request_member
from notifications.graphql.types import (
    DELIVERY,
    ENDPOINT,
    NOTIFICATION,
    WebhookDeliveryType,
    WebhookEndpointType,
    WebhookFormatEnum,
)
from notifications.models import WebhookDelivery, WebhookEndpoint
from notifications.selectors import notifications_page, webhook_attempts
from tenants.errors import NotFound, ValidationFailed
from tenants.graphql.base import resolve_global_id, sent_changes
from tenants.graphql.context import Info
from tenants.graphql.operations import MutationPayload, mutation
from tenants.scopes import Scope


@strawberry.type(name="MarkNotificationsReadPayload")
class MarkNotificationsReadPayload(MutationPayload):
    marked_count: int = 0
    unread_count: int = 0


@strawberry.input(name="CreateWebhookEndpointInput")
class CreateWebhookEndpointInput:
    name: str
    url: str = strawberry.field(description="http(s); private and metadata addresses refused.")
    event_types: list[str] = strawberry.field(description="Keys of notificationEventTypes.")
    format: WebhookFormatEnum = WebhookEndpoint.Format.JSON  # type: ignore[valid-type]
    is_active: bool = True


@strawberry.input(name="UpdateWebhookEndpointInput", description="Only the fields sent change.")
class UpdateWebhookEndpointInput:
    id: relay.GlobalID
    name: str | None = strawberry.UNSET
    url: str | None = strawberry.UNSET
    event_types: list[str] | None = strawberry.UNSET
    format: WebhookFormatEnum | None = strawberry.UNSET  # type: ignore[valid-type]
    is_active: bool | None = strawberry.UNSET


@strawberry.type(name="WebhookEndpointPayload")
class WebhookEndpointPayload(MutationPayload):
    endpoint: WebhookEndpointType | None = None
    secret: str | None = strawberry.field(
        default=None,
        description="The signing secret: returned by create and rotate only, this once.",
    )


@strawberry.type(name="DeleteWebhookEndpointPayload")
class DeleteWebhookEndpointPayload(MutationPayload):
    deleted_id: strawberry.ID | None = None


@strawberry.type(name="WebhookDeliveryPayload")
class WebhookDeliveryPayload(MutationPayload):
    delivery: WebhookDeliveryType | None = None


def _notification_pks(ids: list[relay.GlobalID]) -> list[int]:
    if len(ids) > services.MAX_MARK_READ_IDS:
        raise ValidationFailed(f"At most {services.MAX_MARK_READ_IDS} ids.", field="ids")
    pks = []
    for global_id in ids:
        if global_id.type_name != NOTIFICATION or not global_id.node_id.isdigit():
            raise NotFound("Notification", field="ids")
        pks.append(int(global_id.node_id))
    return pks


def _endpoint(info: Info, global_id: relay.GlobalID) -> WebhookEndpoint:
    return resolve_global_id(
        info, global_id, model=WebhookEndpoint, type_name=ENDPOINT, what="Webhook endpoint",
        field="id",
    )  # fmt: skip


@strawberry.type
class NotificationMutation:
    @mutation(
        scope=None, description="Mark the member's own notifications read: `ids`, or `all: true`."
    )
    def mark_notifications_read(
        self, info: Info, ids: list[relay.GlobalID] | None = None, all: bool = False
    ) -> MarkNotificationsReadPayload:
        member = request_member(info)
        marked = services.notifications_mark_read(
            recipient=member, ids=_notification_pks(ids or []), all=all
        )
        _, _, unread = notifications_page(recipient=member, unread_only=True, first=1, offset=0)
        return MarkNotificationsReadPayload(marked_count=marked, unread_count=unread)

    @mutation(
        scope=Scope.CONFIG_WRITE,
        description="Add a webhook endpoint; its secret is shown this once.",
    )
    def create_webhook_endpoint(
        self, info: Info, input: CreateWebhookEndpointInput
    ) -> WebhookEndpointPayload:
        tenant = info.context.require_tenant()
        endpoint, secret = services.webhook_endpoint_create(
            tenant=tenant,
            name=input.name,
            url=input.url,
            event_types=list(input.event_types),
            format=WebhookEndpoint.Format(input.format).value,
            is_active=input.is_active,
        )
        return WebhookEndpointPayload(endpoint=WebhookEndpointType.of(endpoint), secret=secret)

    @mutation(scope=Scope.CONFIG_WRITE, description="Change a webhook endpoint (config:write).")
    def update_webhook_endpoint(
        self, info: Info, input: UpdateWebhookEndpointInput
    ) -> WebhookEndpointPayload:
        tenant = info.context.require_tenant()
        endpoint = _endpoint(info, input.id)
        changes = sent_changes(input, services.ENDPOINT_FIELDS)
        if "format" in changes:
            changes["format"] = WebhookEndpoint.Format(changes["format"]).value
        endpoint = services.webhook_endpoint_update(tenant=tenant, endpoint=endpoint, **changes)
        return WebhookEndpointPayload(endpoint=WebhookEndpointType.of(endpoint))

    @mutation(
        scope=Scope.CONFIG_WRITE, description="Delete a webhook endpoint with its deliveries."
    )
    def delete_webhook_endpoint(
        self, info: Info, id: relay.GlobalID
    ) -> DeleteWebhookEndpointPayload:
        tenant = info.context.require_tenant()
        services.webhook_endpoint_delete(tenant=tenant, endpoint=_endpoint(info, id))
        return DeleteWebhookEndpointPayload(deleted_id=strawberry.ID(str(id)))

    @mutation(
        scope=Scope.CONFIG_WRITE,
        description="A new signing secret, shown this once; the old one stops at once.",
    )
    def rotate_webhook_secret(self, info: Info, id: relay.GlobalID) -> WebhookEndpointPayload:
        tenant = info.context.require_tenant()
        endpoint, secret = services.webhook_secret_rotate(
            tenant=tenant, endpoint=_endpoint(info, id)
        )
        return WebhookEndpointPayload(endpoint=WebhookEndpointType.of(endpoint), secret=secret)

    @mutation(
        scope=Scope.CONFIG_WRITE, description="Send a delivery again now, whatever its state."
    )
    def redeliver_webhook(self, info: Info, delivery_id: relay.GlobalID) -> WebhookDeliveryPayload:
        tenant = info.context.require_tenant()
        delivery = resolve_global_id(
            info, delivery_id, model=WebhookDelivery, type_name=DELIVERY,
            what="Webhook delivery", field="deliveryId",
        )  # fmt: skip
        services.webhook_delivery_redeliver(tenant=tenant, delivery=delivery)
        fresh = WebhookDelivery.objects.select_related("event").get(pk=delivery.pk)
        attempts = webhook_attempts(deliveries=[fresh])
        return WebhookDeliveryPayload(delivery=WebhookDeliveryType.of(fresh, attempts[fresh.pk]))
