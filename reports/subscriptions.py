"""Who receives reports: each member's choice per kind of report (opt-out, or opt-in again)
over the default that every member receives the reports of their own view."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils import timezone

from kpis.scopes import KpiScope
from reports.delivery import member_view
from reports.models import ReportKind, ReportSubscription
from tenants.errors import ValidationFailed
from tenants.models import Membership, Tenant


@dataclass(frozen=True)
class SubscriptionState:
    member: Membership
    kind: str
    subscribed: bool
    is_default: bool
    view: KpiScope


def report_subscriptions(*, member: Membership) -> list[SubscriptionState]:
    """The member's setting for each kind of report (in the tenant's context; one query)."""
    chosen = dict(
        ReportSubscription.objects.filter(member=member).values_list("kind", "subscribed")
    )
    view = member_view(role=member.role, team_id=member.team_id, member_id=member.pk)
    return [
        SubscriptionState(
            member=member,
            kind=kind.value,
            subscribed=chosen.get(kind.value, True),
            is_default=kind.value not in chosen,
            view=view,
        )
        for kind in ReportKind
    ]


def report_subscription_set(
    *, tenant: Tenant, member: Membership, kind: str, subscribed: bool
) -> list[SubscriptionState]:
    """Record the member's choice for one kind of report; returns every kind's state."""
    if kind not in ReportKind.values:
        raise ValidationFailed(f"Unknown report kind '{kind}'.", field="kind")
    ReportSubscription.objects.update_or_create(
        tenant=tenant,
        member=member,
        kind=kind,
        defaults={"subscribed": subscribed, "updated_at": timezone.now()},
    )
    return report_subscriptions(member=member)
