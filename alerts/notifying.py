"""Telling people about alerts: the alert event types (registered with notifications, with
their messages in Japanese and English), recipients resolved to members, and publication.

notifications knows no scope, rule or KPI: everything it needs travels in the payload, and
the renderer here turns the payload into words.
"""

# NOTE: the Japanese messages use full-width parentheses, as Japanese text does.
# ruff: noqa: RUF001

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from strawberry import relay

from alerts.models import Alert, AlertKind, AlertRule, RuleScope
from notifications.events import EventType, EventTypeSpec, Message, register_event_type
from notifications.services import EventDraft, events_publish
from tenants.models import Membership, Team, Tenant
from tenants.scopes import Role

# --- Words ---------------------------------------------------------------------------------

_TEXTS: dict[str, dict[str, str]] = {
    "ja": {
        "below": "アラート: {kpi}が基準を下回りました（{scope}・{period}）",
        "above": "アラート: {kpi}が基準を上回りました（{scope}・{period}）",
        "pace": "アラート: {kpi}が目標ペースを下回っています（{scope}・{period}）",
        "drop": "アラート: {kpi}が前期間から{threshold}%超下落しました（{scope}・{period}）",
        "silence": "アラート: {scope}の活動が{threshold}営業時間ありません",
        "resolved": "解消: {kpi}のアラートが解消しました（{scope}・{period}）",
        "resolved_silence": "解消: {scope}の活動が再開しました",
        "rule": "ルール: {rule}",
        "where": "KPI: {kpi} / 対象: {scope} / 期間: {period}（{start}〜{end}、"
        "営業日 {elapsed}/{total}日経過）",
        "value": "実績: {value}（基準: {threshold}）",
        "sample": "母数: {sample}",
        "target": "目標: {target}",
        "needed": "目標達成には、残り{remaining}営業日で1日あたりあと{needed}が必要です。",
        "previous": "前期間（{period}）: {value}",
        "last_activity": "最終活動: {at}",
        "no_activity": "最終活動: 直近の記録なし",
        "drivers": "要因（KPIツリーで計画に届いていない指標）: {drivers}",
        "driver": "{name} 実績 {actual} / 計画 {plan}（達成率 {attainment}%）",
        "action": "改善アクション: {action}",
        "no_source": "（ソースなし）",
        "none": "なし",
        "list_sep": "、",
    },
    "en": {
        "below": "Alert: {kpi} fell below its threshold ({scope}, {period})",
        "above": "Alert: {kpi} rose above its threshold ({scope}, {period})",
        "pace": "Alert: {kpi} is behind pace ({scope}, {period})",
        "drop": "Alert: {kpi} dropped more than {threshold}% against the previous period "
        "({scope}, {period})",
        "silence": "Alert: no activity from {scope} for {threshold} working hours",
        "resolved": "Resolved: the {kpi} alert ({scope}, {period})",
        "resolved_silence": "Resolved: activity from {scope} resumed",
        "rule": "Rule: {rule}",
        "where": "KPI: {kpi} / Scope: {scope} / Period: {period} ({start} to {end}, "
        "{elapsed} of {total} working days elapsed)",
        "value": "Value: {value} (threshold: {threshold})",
        "sample": "Sample: {sample}",
        "target": "Target: {target}",
        "needed": "To reach the target: {needed} more a day over the {remaining} remaining "
        "working days.",
        "previous": "Previous period ({period}): {value}",
        "last_activity": "Last activity: {at}",
        "no_activity": "Last activity: none recently",
        "drivers": "Drivers (KPI-tree nodes furthest short of plan): {drivers}",
        "driver": "{name} {actual} of {plan} ({attainment}%)",
        "action": "Improvement action (改善アクション): {action}",
        "no_source": "(no source)",
        "none": "none",
        "list_sep": "; ",
    },
}


def _number(value: Any, unit: str | None, *, currency: str = "") -> str:
    if value is None:
        return "—"
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    if unit == "percent":
        return f"{number.quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)}%"
    if unit == "money":
        amount = f"{number.quantize(Decimal(1), rounding=ROUND_HALF_UP):,}"
        return f"{amount} {currency}".strip()
    if unit == "ratio":
        return str(number.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
    if number == number.to_integral_value():
        return f"{number.quantize(Decimal(1)):,}"
    return str(number.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def _render(payload: dict[str, Any], language: str, *, resolved: bool) -> Message:
    words = _TEXTS["ja" if language == "ja" else "en"]
    alert = payload["alert"]
    x = alert.get("explanation") or {}
    ja = language == "ja"
    kpi = (alert.get("kpiName") if ja else alert.get("kpiNameEn")) or alert.get("kpi") or ""
    unit = alert.get("unit")
    currency = payload.get("currency", "")
    scope = alert["scope"]["name"] or words["no_source"]
    period = x.get("period") or {}
    fields = {
        "kpi": kpi,
        "scope": scope,
        "period": alert["period"],
        "threshold": _number(alert["rule"]["threshold"], None),
    }
    kind = alert["rule"]["kind"]
    if resolved:
        title = words["resolved_silence" if kind == AlertKind.SILENCE else "resolved"]
    elif kind == AlertKind.SILENCE:
        title = words["silence"]
    elif kind == AlertKind.BEHIND_PACE:
        title = words["pace"]
    elif kind == AlertKind.DROP_VS_PREVIOUS:
        title = words["drop"]
    else:
        above = (
            x.get("value") is not None
            and x.get("threshold") is not None
            and Decimal(x["value"]) > Decimal(x["threshold"])
        )
        title = words["above" if above else "below"]
    lines = [words["rule"].format(rule=alert["rule"]["name"])]
    if kind != AlertKind.SILENCE:
        lines.append(
            words["where"].format(
                kpi=kpi,
                scope=scope,
                period=alert["period"],
                start=period.get("start", ""),
                end=period.get("end", ""),
                elapsed=period.get("elapsedWorkingDays", "—"),
                total=period.get("workingDays", "—"),
            )
        )
        lines.append(
            words["value"].format(
                value=_number(x.get("value"), unit, currency=currency),
                threshold=_number(x.get("threshold"), unit, currency=currency),
            )
        )
        if x.get("sample") is not None:
            lines.append(words["sample"].format(sample=_number(x["sample"], "count")))
        if x.get("target") is not None:
            lines.append(
                words["target"].format(target=_number(x["target"], unit, currency=currency))
            )
        if kind == AlertKind.BEHIND_PACE and x.get("neededPerRemainingDay") is not None:
            lines.append(
                words["needed"].format(
                    needed=_number(
                        Decimal(x["neededPerRemainingDay"]).quantize(Decimal("0.1")),
                        unit if unit == "money" else None,
                        currency=currency,
                    ),
                    remaining=x.get("remainingWorkingDays"),
                )
            )
        if kind == AlertKind.DROP_VS_PREVIOUS and "previousValue" in x:
            lines.append(
                words["previous"].format(
                    period=x.get("previousPeriod", ""),
                    value=_number(x.get("previousValue"), unit, currency=currency),
                )
            )
        drivers = x.get("drivers") or []
        if drivers and not resolved:
            lines.append(
                words["drivers"].format(
                    drivers=words["list_sep"].join(
                        words["driver"].format(
                            name=d.get("name", d.get("kpi")),
                            actual=_number(d.get("actual"), None),
                            plan=_number(d.get("plan"), None),
                            attainment=_number(
                                None
                                if d.get("attainment") is None
                                else Decimal(d["attainment"]) * 100,
                                None,
                            ),
                        )
                        for d in drivers
                    )
                )
            )
    else:
        last = x.get("lastActivityAt")
        lines.append(words["last_activity"].format(at=last) if last else words["no_activity"])
    if not resolved:
        lines.append(words["action"].format(action=alert["improvementAction"]))
    return Message(title=title.format(**fields), lines=lines)


def _render_fired(payload: dict[str, Any], language: str) -> Message:
    return _render(payload, language, resolved=False)


def _render_resolved(payload: dict[str, Any], language: str) -> Message:
    return _render(payload, language, resolved=True)


def alert_event_types_register() -> None:
    """Called from AlertsConfig.ready: alert.fired and alert.resolved with their messages."""
    register_event_type(
        EventTypeSpec(EventType.ALERT_FIRED, "Alert fired", "アラート発生", _render_fired)
    )
    register_event_type(
        EventTypeSpec(EventType.ALERT_RESOLVED, "Alert resolved", "アラート解消", _render_resolved)
    )


# --- Recipients and payloads -----------------------------------------------------------------


class _Directory:
    """The tenant's active members and teams, read once per publication (two queries)."""

    def __init__(self, tenant: Tenant, need_teams: bool) -> None:
        self.tenant = tenant
        self.members = {
            pk: (role, team_id, name or username)
            for pk, role, team_id, name, username in Membership.objects.filter(
                is_active=True
            ).values_list("pk", "role", "team_id", "display_name", "user__username")
        }
        self.teams = dict(Team.objects.values_list("pk", "name")) if need_teams else {}

    def recipients(self, rule: AlertRule, alert: Alert) -> list[int]:
        """Members, roles, the scope's own rep, and its team's managers (every manager when
        the scope has no team): active members only."""
        ids = {pk for pk in rule.recipient_member_ids if pk in self.members}
        roles = set(rule.recipient_roles)
        ids |= {pk for pk, (role, _, _) in self.members.items() if role in roles}
        rep = int(alert.scope_key) if alert.scope_type == RuleScope.REP else None
        if rule.notify_scope_owner and rep in self.members:
            ids.add(rep)  # type: ignore[arg-type]
        if rule.notify_scope_manager:
            team: int | None = None
            if alert.scope_type == RuleScope.TEAM:
                team = int(alert.scope_key)
            elif rep is not None and rep in self.members:
                team = self.members[rep][1]
            ids |= {
                pk
                for pk, (role, team_id, _) in self.members.items()
                if role == Role.MANAGER and (team is None or team_id == team)
            }
        return sorted(ids)

    def scope_name(self, scope_type: str, key: str) -> str:
        if scope_type == RuleScope.REP:
            found = self.members.get(int(key))
            return found[2] if found else f"#{key}"
        if scope_type == RuleScope.TEAM:
            return self.teams.get(int(key), f"#{key}")
        if scope_type == RuleScope.SOURCE:
            return key
        return self.tenant.name


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _payload(tenant: Tenant, rule: AlertRule, alert: Alert, directory: _Directory) -> dict:
    x = alert.explanation or {}
    return {
        "currency": tenant.currency,
        "alert": {
            "id": relay.to_base64("Alert", alert.pk),
            "state": alert.state,
            "rule": {
                "id": relay.to_base64("AlertRule", rule.pk),
                "name": rule.name,
                "kind": rule.kind,
                "threshold": str(rule.threshold),
            },
            "kpi": rule.kpi_key or None,
            "kpiName": x.get("kpiName"),
            "kpiNameEn": x.get("kpiNameEn"),
            "unit": x.get("unit"),
            "scope": {
                "type": alert.scope_type,
                "key": alert.scope_key,
                "name": directory.scope_name(alert.scope_type, alert.scope_key),
            },
            "grain": alert.grain,
            "period": alert.period_label,
            "periodStart": alert.period_start.isoformat(),
            "periodEnd": alert.period_end.isoformat(),
            "value": x.get("value"),
            "threshold": x.get("threshold"),
            "sample": x.get("sample"),
            "explanation": x,
            "improvementAction": rule.improvement_action,
            "firedAt": _iso(alert.last_fired_at),
            "resolvedAt": _iso(alert.resolved_at),
        },
    }


def alerts_publish(
    *,
    tenant: Tenant,
    rules: dict[int, AlertRule],
    notified: Iterable[Alert],
    resolved: Iterable[Alert],
    now: datetime,
) -> int:
    """Publish alert.fired for the alerts whose notification fell due and alert.resolved
    for resolved alerts someone was told about (not while snoozed); how many events were
    new. Runs inside the evaluation's transaction: delivery is queued on its commit."""
    notified = [a for a in notified if a.pk is not None]
    resolved = [
        a
        for a in resolved
        if a.last_notified_at is not None
        and not (a.snoozed_until is not None and a.snoozed_until > now)
    ]
    if not notified and not resolved:
        return 0
    directory = _Directory(
        tenant,
        need_teams=any(a.scope_type == RuleScope.TEAM for a in [*notified, *resolved]),
    )
    drafts = []
    for event_type, alerts, stamp in (
        (EventType.ALERT_FIRED, notified, lambda a: a.last_notified_at),
        (EventType.ALERT_RESOLVED, resolved, lambda a: a.resolved_at),
    ):
        for alert in alerts:
            rule = rules[alert.rule_id]
            drafts.append(
                EventDraft(
                    event_type=event_type,
                    payload=_payload(tenant, rule, alert, directory),
                    recipients=directory.recipients(rule, alert),
                    channels=list(rule.channels),
                    # NOTE: one event per notification time: the cadence decides when a
                    # firing alert is told again; a retried evaluation tells nobody twice.
                    dedup_key=f"{event_type}:{alert.pk}:{stamp(alert).isoformat()}",
                )
            )
    return len(events_publish(tenant=tenant, drafts=drafts))
