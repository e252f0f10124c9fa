"""The demo workspace's handoff queue: a field-sales team, the active rules extended with
routing, an SLA and return rules (a new version, agreed and activated through the services),
and a few SQLs awaiting acceptance at different points of their SLA."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Max
from django.utils import timezone

from handoff import services
from handoff.handoffs import lead_entered_stage
from handoff.models import Handoff, HandoffState, RuleVersion, VersionStatus
from pipeline.lifecycle import Stage
from pipeline.models import Lead
from pipeline.services import lead_transition
from tenants import members
from tenants.context import tenant_context
from tenants.models import Membership, Team, Tenant
from tenants.scopes import Role

FIELD_TEAM = "フィールドセールス"
FIELD_SELLERS = (
    ("fs-sato", "佐藤 一郎"),
    ("fs-suzuki", "鈴木 次郎"),
    ("fs-takahashi", "高橋 三郎"),
)
DEMO_SLA: dict[str, Any] = {
    "speedToLeadHours": 1,
    "acceptHours": 8,
    "steps": [
        {"atPercent": 50, "action": "remindOwner"},
        {"atPercent": 100, "action": "notifyManager"},
        {"atPercent": 150, "action": "reassign"},
    ],
}
DEMO_RETURNS: dict[str, Any] = {
    "meetingWithinDays": 14,
    "reasons": ["予算なし", "時期尚早", "決裁者不在", "ニーズ不一致"],
}
# Hours before now at which the demo SQLs were handed over: fresh, half-way, breached.
HANDED_HOURS_AGO = (1, 3, 6, 10, 30)


@dataclass(frozen=True)
class DemoQueue:
    version: RuleVersion
    opened: int


def _member(tenant: Tenant, suffix: str, role: str, name: str, team: Team | None) -> Membership:
    user_model = get_user_model()
    username = f"{tenant.slug}-{suffix}"
    user = user_model.objects.filter(username=username).first()
    if user is None:
        user = user_model(username=username, email=f"{username}@example.com")
        user.set_unusable_password()  # demo sellers do not log in
        user.save()
    membership = members.membership_add(tenant=tenant, user=user, role=role, team=team)
    if membership.display_name != name:
        with tenant_context(tenant):
            membership.display_name = name
            membership.save(update_fields=["display_name"])
    return membership


def _routed_version(tenant: Tenant, team: Team) -> RuleVersion:
    active = RuleVersion.objects.filter(status=VersionStatus.ACTIVE).first()
    if active is None:
        raise ValueError("Run seed_demo_handoff first: the demo needs an active rule version.")
    if active.routing:
        return active
    marketer = _member(tenant, "marketing", Role.MARKETING, "マーケ 花子", None)
    manager = _member(tenant, "manager", Role.MANAGER, "営業部長 太郎", None)
    draft = services.rule_version_copy(tenant=tenant, version=active, actor=marketer)
    draft = services.rule_version_update(
        tenant=tenant,
        version=draft,
        parts={
            "routing": {"sql": {"teamId": team.pk, "capacity": {"max": 30, "period": "week"}}},
            "sla": DEMO_SLA,
            "return_rules": DEMO_RETURNS,
        },
        actor=marketer,
    )
    services.rule_version_approve(tenant=tenant, version=draft, member=marketer)
    draft = services.rule_version_approve(tenant=tenant, version=draft, member=manager)
    return services.rule_version_activate(tenant=tenant, version=draft, actor=manager)


def demo_handoff_queue_seed(*, tenant: Tenant, now: dt.datetime | None = None) -> DemoQueue:
    """Idempotent: a second run keeps the version and opens no more handoffs while some
    await acceptance."""
    now = now or timezone.now()
    with tenant_context(tenant):
        team, _ = Team.objects.get_or_create(tenant=tenant, name=FIELD_TEAM)
        for suffix, name in FIELD_SELLERS:
            _member(tenant, suffix, Role.FIELD_SALES, name, team)
        version = _routed_version(tenant, team)
        if Handoff.objects.filter(state=HandoffState.AWAITING).exists():
            return DemoQueue(version=version, opened=0)
        leads = list(
            Lead.objects.filter(stage=Stage.MQL)
            .annotate(last_at=Max("transitions__at"))
            .order_by("-last_at", "pk")[: len(HANDED_HOURS_AGO)]
        )
        opened = 0
        for lead, hours in zip(leads, HANDED_HOURS_AGO, strict=False):
            at = max(now - dt.timedelta(hours=hours), lead.last_at + dt.timedelta(minutes=1))
            transition = lead_transition(
                lead=lead, to_stage=Stage.SQL, at=min(at, now), actor_label="demo"
            )
            lead_entered_stage(lead=lead, transition=transition, version=version)
            opened += 1
    return DemoQueue(version=version, opened=opened)
