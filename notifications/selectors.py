"""Reading the inbox, webhook endpoints and deliveries: pages in a query or two."""

from __future__ import annotations

from notifications.models import Notification, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tenants.errors import ValidationFailed
from tenants.models import Membership

MAX_PAGE = 100


def _check_page(first: int, offset: int) -> None:
    if not 1 <= first <= MAX_PAGE:
        raise ValidationFailed(f"first must be 1 to {MAX_PAGE}.", field="first")
    if offset < 0:
        raise ValidationFailed("offset cannot be negative.", field="offset")


def notifications_page(
    *, recipient: Membership, unread_only: bool, first: int, offset: int
) -> tuple[list[Notification], int, int]:
    """The member's notifications, newest first: a page, how many match, how many unread."""
    _check_page(first, offset)
    mine = Notification.objects.filter(recipient=recipient)
    unread = mine.filter(read_at__isnull=True)
    matching = unread if unread_only else mine
    page = list(matching.order_by("-created_at", "-pk")[offset : offset + first])
    total = matching.count()
    unread_count = total if unread_only else unread.count()
    return page, total, unread_count


def webhook_endpoints_page(*, first: int, offset: int) -> tuple[list[WebhookEndpoint], int]:
    _check_page(first, offset)
    endpoints = WebhookEndpoint.objects.order_by("name", "pk")
    return list(endpoints[offset : offset + first]), endpoints.count()


def webhook_deliveries_page(
    *, endpoint: WebhookEndpoint | None, state: str | None, first: int, offset: int
) -> tuple[list[WebhookDelivery], int]:
    """Deliveries, newest first, with their event and endpoint."""
    _check_page(first, offset)
    deliveries = WebhookDelivery.objects.all()
    if endpoint is not None:
        deliveries = deliveries.filter(endpoint=endpoint)
    if state is not None:
        deliveries = deliveries.filter(state=state)
    page = deliveries.select_related("event", "endpoint").order_by("-created_at", "-pk")
    return list(page[offset : offset + first]), deliveries.count()


def webhook_attempts(*, deliveries: list[WebhookDelivery]) -> dict[int, list[WebhookAttempt]]:
    """The attempts of these deliveries, by delivery id, oldest first (one query)."""
    found: dict[int, list[WebhookAttempt]] = {d.pk: [] for d in deliveries}
    for attempt in WebhookAttempt.objects.filter(delivery_id__in=list(found)).order_by(
        "number", "pk"
    ):
        found[attempt.delivery_id].append(attempt)
    return found
