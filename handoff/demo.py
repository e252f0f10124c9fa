"""The demo workspace's handoff rules: one version agreed by marketing and a manager, active,
with the leads it qualifies moved to MQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model

from handoff import services
from handoff.models import RuleSet, RuleVersion, VersionStatus
from handoff.qualification import handoff_evaluate
from tenants import members
from tenants.context import tenant_context
from tenants.models import Membership, Tenant
from tenants.scopes import Role

DEMO_RULE_SET = "標準 MQL/SQL 引き渡しルール"
DEMO_MQL: dict[str, Any] = {
    "mode": "score",
    "threshold": 20,
    "conditions": [
        {"kind": "activity", "activity": "emailOpened", "days": 30, "atLeast": 1, "points": 10},
        {"kind": "activity", "activity": "emailClicked", "days": 30, "atLeast": 1, "points": 10},
        {"kind": "activity", "activity": "call", "days": 30, "atLeast": 2, "points": 10},
        {"kind": "activity", "activity": "connectedCall", "days": 30, "atLeast": 1, "points": 20},
    ],
}
DEMO_SQL: dict[str, Any] = {
    "activity": {"activity": "connectedCall", "atLeast": 1, "days": 90},
    "requiredFields": ["budget", "authority", "need", "timeline"],
}


@dataclass(frozen=True)
class DemoHandoff:
    version: RuleVersion
    moved: int


def _member(tenant: Tenant, suffix: str, role: str, display_name: str) -> Membership:
    user_model = get_user_model()
    username = f"{tenant.slug}-{suffix}"
    user = user_model.objects.filter(username=username).first()
    if user is None:
        user = user_model(username=username, email=f"{username}@example.com")
        user.set_unusable_password()  # demo approvers do not log in
        user.save()
    membership = members.membership_add(tenant=tenant, user=user, role=role)
    if membership.display_name != display_name:
        with tenant_context(tenant):
            membership.display_name = display_name
            membership.save(update_fields=["display_name"])
    return membership


def demo_handoff_seed(*, tenant: Tenant, now: datetime | None = None) -> DemoHandoff:
    """Give the tenant an active rule version agreed by a marketing member and a manager
    (kept if one is active already), then qualify its leads under it."""
    marketer = _member(tenant, "marketing", Role.MARKETING, "マーケ 花子")
    manager = _member(tenant, "manager", Role.MANAGER, "営業部長 太郎")
    with tenant_context(tenant):
        version = RuleVersion.objects.filter(status=VersionStatus.ACTIVE).first()
        if version is None:
            rule_set = RuleSet.objects.filter(name=DEMO_RULE_SET).first()
            if rule_set is None:
                rule_set = services.rule_set_create(
                    tenant=tenant,
                    name=DEMO_RULE_SET,
                    description="開封・クリック・架電の反応をスコア化し、20点以上で MQL。"
                    "SQL にはコネクト済みの架電と BANT 情報が必要。",
                    actor=marketer,
                )
            version = services.rule_version_create(
                tenant=tenant,
                rule_set=rule_set,
                parts={"mql_conditions": DEMO_MQL, "sql_requirements": DEMO_SQL},
                actor=marketer,
            )
            services.rule_version_approve(tenant=tenant, version=version, member=marketer)
            services.rule_version_approve(tenant=tenant, version=version, member=manager)
            version = services.rule_version_activate(tenant=tenant, version=version, actor=manager)
        result = handoff_evaluate(tenant=tenant, now=now)
    return DemoHandoff(version=version, moved=len(result.moved))
