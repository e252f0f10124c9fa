"""Reading alert rules and alerts: pages in two queries, one alert with its history."""

from __future__ import annotations

from alerts.models import Alert, AlertComment, AlertEvent, AlertRule
from tenants.errors import ValidationFailed

MAX_PAGE = 100


def _check_page(first: int, offset: int) -> None:
    if not 1 <= first <= MAX_PAGE:
        raise ValidationFailed(f"first must be 1 to {MAX_PAGE}.", field="first")
    if offset < 0:
        raise ValidationFailed("offset cannot be negative.", field="offset")


def alert_rules_page(*, first: int, offset: int) -> tuple[list[AlertRule], int]:
    """The tenant's rules by name, a page of them and how many there are."""
    _check_page(first, offset)
    rules = AlertRule.objects.order_by("name", "pk")
    return list(rules[offset : offset + first]), rules.count()


def alerts_page(
    *, state: str | None, rule: AlertRule | None, first: int, offset: int
) -> tuple[list[Alert], int]:
    """Alerts, latest fired first (optionally of one state or rule), with their rules."""
    _check_page(first, offset)
    alerts = Alert.objects.all()
    if state is not None:
        alerts = alerts.filter(state=state)
    if rule is not None:
        alerts = alerts.filter(rule=rule)
    page = alerts.select_related("rule").order_by("-last_fired_at", "-pk")[offset : offset + first]
    return list(page), alerts.count()


def alert_history(*, alert: Alert) -> tuple[list[AlertEvent], list[AlertComment]]:
    """An alert's events and comments, oldest first."""
    events = list(AlertEvent.objects.filter(alert=alert).order_by("at", "pk"))
    comments = list(AlertComment.objects.filter(alert=alert).order_by("created_at", "pk"))
    return events, comments
