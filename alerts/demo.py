"""A few sensible alert rules for the demo workspace, evaluated at once so one shows."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from alerts import services
from alerts.evaluation import EvaluationResult, alerts_evaluate
from alerts.models import AlertRule
from tenants.context import tenant_context
from tenants.models import Tenant

DEMO_RULES: tuple[dict[str, Any], ...] = (
    {
        "name": "コネクト率 60%未満 (担当者別)",
        "kind": "below_value",
        "kpi_key": "connect_rate",
        "threshold": Decimal(60),
        "min_sample": Decimal(30),
        "scope_type": "every_rep",
        "improvement_action": "架電時間帯を見直し (10-12時, 16-18時)、リストの電話番号を精査する。",
        "notify_scope_owner": True,
        "recipient_roles": ["manager"],
    },
    {
        "name": "1人1日架電数 34件未満 (担当者別)",
        "kind": "below_value",
        "kpi_key": "calls_per_rep_day",
        "threshold": Decimal(34),
        "scope_type": "every_rep",
        "improvement_action": "架電ブロックを予定表に確保し、会議・事務作業を午後にまとめる。",
        "notify_scope_owner": True,
        "notify_scope_manager": True,
    },
    {
        "name": "受注件数 ペース遅れ",
        "kind": "behind_pace",
        "kpi_key": "won_deals",
        "threshold": Decimal(100),
        "scope_type": "tenant",
        "improvement_action": "商談化率・案件化率のボトルネックを KPI ツリーで確認し、"
        "停滞案件の次回アクションを今週中に設定する。",
        "recipient_roles": ["manager", "admin"],
    },
)


def demo_alerts_seed(*, tenant: Tenant, now: datetime | None = None) -> EvaluationResult:
    """Add the demo rules the tenant lacks (by name), then evaluate its rules."""
    with tenant_context(tenant):
        existing = set(AlertRule.objects.values_list("name", flat=True))
        for fields in DEMO_RULES:
            if fields["name"] not in existing:
                services.alert_rule_create(
                    tenant=tenant,
                    created_by_label="demo",
                    grain="month",
                    channels=["in_app", "email"],
                    **fields,
                )
        return alerts_evaluate(tenant=tenant, now=now)
