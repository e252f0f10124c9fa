"""GraphQL queries of alerts: rules, alerts (kpis:read) and one alert with its history."""

from __future__ import annotations

import strawberry
from strawberry import relay

from alerts import selectors
from alerts.graphql.types import (
    ALERT,
    RULE,
    AlertPage,
    AlertRulePage,
    AlertRuleType,
    AlertStateEnum,
    AlertType,
)
from alerts.models import Alert, AlertRule
from tenants.graphql.base import resolve_global_id
from tenants.graphql.context import Info
from tenants.graphql.operations import query
from tenants.scopes import Scope


@strawberry.type
class AlertQuery:
    @query(scope=Scope.KPIS_READ, description="The workspace's alert rules by name (kpis:read).")
    def alert_rules(self, info: Info, first: int = 50, offset: int = 0) -> AlertRulePage:
        rules, total = selectors.alert_rules_page(first=first, offset=offset)
        return AlertRulePage(total_count=total, items=[AlertRuleType.of(r) for r in rules])

    @query(scope=Scope.KPIS_READ, description="Alerts, latest fired first (kpis:read).")
    def alerts(
        self,
        info: Info,
        state: AlertStateEnum | None = None,
        rule_id: relay.GlobalID | None = None,
        first: int = 50,
        offset: int = 0,
    ) -> AlertPage:
        rule = (
            None
            if rule_id is None
            else resolve_global_id(
                info, rule_id, model=AlertRule, type_name=RULE, what="Alert rule", field="ruleId"
            )
        )
        alerts, total = selectors.alerts_page(
            state=None if state is None else state.value, rule=rule, first=first, offset=offset
        )
        return AlertPage(total_count=total, items=[AlertType.of(a) for a in alerts])

    @query(
        scope=Scope.KPIS_READ, description="One alert with its history and comments (kpis:read)."
    )
    def alert(self, info: Info, id: relay.GlobalID) -> AlertType:
        alert = resolve_global_id(info, id, model=Alert, type_name=ALERT, field="id")
        events, comments = selectors.alert_history(alert=alert)
        return AlertType.of(alert, events=events, comments=comments)
