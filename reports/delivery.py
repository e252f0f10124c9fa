"""Telling people a report is ready: the `report.ready` event type (registered with
notifications, its message in Japanese and English), who receives which report, and the
publication, once per report.

Whom: from one schedule a report exists for the workspace, each team and each active rep; a
member receives the one of their own view (`member_view`: a rep their own, a manager with a
team the team's, everyone else the workspace's), unless they opted out of that kind
(`ReportSubscription`). Webhook endpoints subscribed to `report.ready` receive every report.
"""

# NOTE: the Japanese messages use full-width parentheses, as Japanese text does.
# ruff: noqa: RUF001

from __future__ import annotations

import logging
from datetime import UTC
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import transaction
from strawberry import relay

from kpis.scopes import KpiScope, ScopeType
from notifications.events import EventTypeSpec, Message, register_event_type
from notifications.services import EventDraft, events_publish
from reports.models import Report, ReportSubscription
from reports.rendering import LABELS
from tenants.models import Membership, Tenant
from tenants.scopes import Role

logger = logging.getLogger(__name__)

REPORT_READY = "report.ready"
MEMBER_CHANNELS = ("in_app", "email", "webhook")
HEADLINE_MOVERS = 3

_TEXTS: dict[str, dict[str, str]] = {
    "ja": {
        "title": "{report}（{scope}・{period}）ができました",
        "kgi": "KGI {name}: 実績 {actual} / 目標 {target}（達成率 {attainment}）",
        "forecast": "着地見込み: {forecast}（目標比 {attainment}）",
        "bottleneck": "ボトルネック: {name}（達成率 {attainment}）",
        "movers": "前期間からの変化: {movers}",
        "mover": "{name} {change}",
        "alerts": "期間中のアラート: {count}件",
        "link": "コンソールで開く: {url}",
        "list_sep": "、",
        "footer": "{tenant} の KPI プラットフォームからのお知らせです。"
        "レポートの受け取りはコンソールのレポート設定で変更できます。",
    },
    "en": {
        "title": "{report} ready ({scope}, {period})",
        "kgi": "KGI {name}: {actual} of {target} ({attainment})",
        "forecast": "Forecast: {forecast} ({attainment} of target)",
        "bottleneck": "Bottleneck: {name} ({attainment})",
        "movers": "Biggest movers: {movers}",
        "mover": "{name} {change}",
        "alerts": "Alerts of the period: {count}",
        "link": "Open in the console: {url}",
        "list_sep": "; ",
        "footer": "A notice from the KPI platform of {tenant}. "
        "Change which reports you receive in the console's report settings.",
    },
}


# --- Words ---------------------------------------------------------------------------------


def _decimal(text: Any) -> Decimal | None:
    try:
        return None if text is None else Decimal(str(text))
    except InvalidOperation:
        return None


def _amount(text: Any, unit: str | None, currency: str) -> str:
    number = _decimal(text)
    if number is None:
        return "—"
    if unit == "percent":
        return f"{number.quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)}%"
    if unit == "money":
        return f"{number.quantize(Decimal(1), rounding=ROUND_HALF_UP):,} {currency}".strip()
    if unit == "ratio":
        return str(number.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
    if number == number.to_integral_value():
        return f"{number.quantize(Decimal(1)):,}"
    return f"{number.quantize(Decimal('0.1'), rounding=ROUND_HALF_UP):,}"


def _ratio(text: Any) -> str:
    number = _decimal(text)
    if number is None:
        return "—"
    return f"{(number * 100).quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)}%"


def _change(text: Any) -> str:
    number = _decimal(text)
    if number is None:
        return "—"
    shown = number.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return f"{'+' if shown > 0 else ''}{shown}%"


def _name(node: dict[str, Any], language: str) -> str:
    if language == "en":
        return node.get("nameEn") or node.get("name") or node.get("kpi") or ""
    return node.get("name") or node.get("kpi") or ""


def render_report_ready(payload: dict[str, Any], language: str) -> Message:
    """The message of a report.ready event: the report, its headline numbers and the link."""
    words = _TEXTS["ja" if language == "ja" else "en"]
    labels = LABELS["ja" if language == "ja" else "en"]
    report = payload["report"]
    head = payload.get("headline") or {}
    currency = payload.get("currency", "")
    scope = report["scope"]
    scope_name = labels["tenant"] if scope["type"] == ScopeType.TENANT else scope.get("name")
    title = words["title"].format(
        report=labels.get(report["kind"], report["kind"]), scope=scope_name, period=report["period"]
    )
    lines = []
    kgi = head.get("kgi")
    if kgi:
        lines.append(
            words["kgi"].format(
                name=_name(kgi, language),
                actual=_amount(kgi.get("actual"), kgi.get("unit"), currency),
                target=_amount(kgi.get("target"), kgi.get("unit"), currency),
                attainment=_ratio(kgi.get("attainment")),
            )
        )
    if head.get("forecast") is not None:
        lines.append(
            words["forecast"].format(
                forecast=_amount(head["forecast"], (kgi or {}).get("unit"), currency),
                attainment=_ratio(head.get("forecastAttainment")),
            )
        )
    bottleneck = head.get("bottleneck")
    if bottleneck:
        lines.append(
            words["bottleneck"].format(
                name=_name(bottleneck, language), attainment=_ratio(bottleneck.get("attainment"))
            )
        )
    movers = head.get("movers") or []
    if movers:
        lines.append(
            words["movers"].format(
                movers=words["list_sep"].join(
                    words["mover"].format(name=_name(m, language), change=_change(m["change"]))
                    for m in movers
                )
            )
        )
    lines.append(words["alerts"].format(count=head.get("alerts", 0)))
    if report.get("url"):
        lines.append(words["link"].format(url=report["url"]))
    return Message(title=title, lines=lines)


def report_event_type_register() -> None:
    """Called from ReportsConfig.ready: report.ready with its message."""
    register_event_type(
        EventTypeSpec(
            REPORT_READY,
            "Report ready",
            "レポート作成",
            render_report_ready,
            email_footer={"ja": _TEXTS["ja"]["footer"], "en": _TEXTS["en"]["footer"]},
        )
    )


# --- Payload ---------------------------------------------------------------------------------


def _headline_node(node: dict[str, Any] | None) -> dict[str, Any] | None:
    if not node:
        return None
    return {
        "kpi": node.get("kpi"),
        "name": node.get("label"),
        "nameEn": node.get("name_en"),
        "unit": node.get("unit"),
        "actual": node.get("actual"),
        "target": node.get("target") if node.get("target") is not None else node.get("required"),
        "attainment": node.get("attainment"),
    }


def report_headline(data: dict[str, Any]) -> dict[str, Any]:
    """The numbers a mail leads with: the KGI against its target, the forecast (executive),
    the tree's bottleneck, the three biggest movers and how many alerts the period had."""
    tree = data.get("tree") or {}
    nodes = tree.get("nodes") or []
    root = next((n for n in nodes if n.get("depth") == 0 and n.get("kind") == "kgi"), None)
    bottleneck = next((n for n in nodes if n.get("id") == tree.get("bottleneck")), None)
    executive = data.get("executive") or {}
    return {
        "kgi": _headline_node(root),
        "forecast": executive.get("forecast") if executive else None,
        "forecastAttainment": executive.get("forecast_attainment") if executive else None,
        "bottleneck": _headline_node(bottleneck),
        "movers": [
            {
                "kpi": m["kpi"],
                "name": m.get("name_ja"),
                "nameEn": m.get("name_en"),
                "value": m.get("value"),
                "previous": m.get("previous"),
                "change": m.get("change_percent"),
            }
            for m in (data.get("movers") or [])[:HEADLINE_MOVERS]
        ],
        "alerts": len(data.get("alerts") or []),
    }


def report_url(report_gid: str) -> str:
    """The console's view of a report (absolute, for mails and webhooks)."""
    return f"{settings.PUBLIC_BASE_URL.rstrip('/')}/app/#report={report_gid}"


def report_payload(*, tenant: Tenant, report: Report, scope_name: str) -> dict[str, Any]:
    gid = relay.to_base64("Report", report.pk)
    return {
        "currency": tenant.currency,
        "report": {
            "id": gid,
            "kind": report.kind,
            "grain": report.grain,
            "period": report.period_label,
            "periodStart": report.period_start.isoformat(),
            "periodEnd": report.period_end.isoformat(),
            "scope": {"type": report.scope_type, "key": report.scope_key, "name": scope_name},
            "language": report.language,
            "generatedAt": report.generated_at.astimezone(UTC).isoformat(),
            "url": report_url(gid),
        },
        "headline": report_headline(report.data),
    }


# --- Recipients ------------------------------------------------------------------------------


def member_view(*, role: str | None, team_id: int | None, member_id: int | None) -> KpiScope:
    """The scope a member reads and receives reports of: a rep their own, a manager their
    team's (the workspace's without a team), everyone else the workspace's."""
    if role == Role.REP and member_id is not None:
        return KpiScope.rep(member_id)
    if role == Role.MANAGER and team_id is not None:
        return KpiScope.team(team_id)
    return KpiScope.tenant()


def report_recipients(*, report: Report) -> list[int]:
    """Active members whose own view is the report's scope and who did not opt out of its
    kind (in the tenant's context; two queries)."""
    members = Membership.objects.filter(is_active=True)
    if report.scope_type == ScopeType.REP:
        members = members.filter(pk=int(report.scope_key), role=Role.REP)
    elif report.scope_type == ScopeType.TEAM:
        members = members.filter(team_id=int(report.scope_key), role=Role.MANAGER)
    elif report.scope_type != ScopeType.TENANT:
        return []
    wanted = KpiScope(report.scope_type, report.scope_key)
    ids = [
        pk
        for pk, role, team_id in members.values_list("pk", "role", "team_id")
        if member_view(role=role, team_id=team_id, member_id=pk) == wanted
    ]
    if not ids:
        return []
    out = set(
        ReportSubscription.objects.filter(
            member_id__in=ids, kind=report.kind, subscribed=False
        ).values_list("member_id", flat=True)
    )
    return sorted(pk for pk in ids if pk not in out)


# --- Publication -----------------------------------------------------------------------------


def report_ready_publish(*, tenant: Tenant, report: Report, scope_name: str) -> bool:
    """Publish report.ready for a newly generated report, once (the dedup key is the
    report's): inside the caller's transaction, delivery queued on its commit. A failure is
    logged and swallowed: telling people never stops a report being stored."""
    try:
        with transaction.atomic():
            draft = EventDraft(
                event_type=REPORT_READY,
                payload=report_payload(tenant=tenant, report=report, scope_name=scope_name),
                recipients=report_recipients(report=report),
                channels=list(MEMBER_CHANNELS),
                dedup_key=f"{REPORT_READY}:{report.pk}",
            )
            return bool(events_publish(tenant=tenant, drafts=[draft]))
    except Exception:
        logger.exception("report.ready not published for report %s", report.pk)
        return False
