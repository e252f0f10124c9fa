"""What a report says: tree attainment, funnel, alerts, biggest movers, per-rep table, and the
executive summary (KGI, forecast, the three biggest gaps and their drivers).

Every number comes from the same selectors as the GraphQL queries (kpiTree, funnel,
kpiValues), stored as the API shows it (4 decimals, as text) so the report reads the same.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

from django.db.models import Q

from alerts.models import Alert
from kpis.funnels import FunnelMode, funnel_compute
from kpis.leaderboards import leaderboard_candidates
from kpis.numbers import shown
from kpis.periods import Period
from kpis.scopes import KpiScope, ScopeType
from kpis.selectors import KpiValue, kpi_catalogue, kpi_definitions, kpi_values
from kpis.trees import NodeEvaluation, TreeEvaluation, kpi_tree_default_evaluate
from tenants.models import Membership, Tenant

# The per-rep table's columns.
REP_TABLE_KPIS: tuple[str, ...] = (
    "calls",
    "connects",
    "connect_rate",
    "meetings_set",
    "opportunities",
    "won_deals",
)
MOVERS = 5
# A mover needs a sample: a rate at least this denominator in both periods, a count at
# least this value in one of them (so 1 → 2 calls is not "+100 %").
MIN_RATE_SAMPLE = Decimal(20)
MIN_COUNT_SAMPLE = Decimal(5)
MAX_ALERTS = 50
EXECUTIVE_GAPS = 3


def _text(value: Decimal | None) -> str | None:
    rounded = shown(value)
    return None if rounded is None else f"{rounded:f}"


def _value(value: KpiValue | None) -> dict[str, Any] | None:
    if value is None:
        return None
    return {
        "value": _text(value.value),
        "numerator": f"{value.numerator:f}",
        "denominator": None if value.denominator is None else f"{value.denominator:f}",
    }


def _node(node: NodeEvaluation) -> dict[str, Any]:
    return {
        "id": node.node.pk,
        "parent": node.node.parent_id,
        "kind": node.node.kind,
        "depth": node.depth,
        "label": node.label,
        "kpi": None if node.kpi is None else node.kpi.key,
        "name_en": None if node.kpi is None else node.kpi.name_en,
        "unit": None if node.kpi is None else str(node.kpi.unit),
        "actual": None if node.actual is None else _text(node.actual.value),
        "target": _text(node.target),
        "required": _text(node.required),
        "required_rounded": node.required_rounded,
        "attainment": _text(node.attainment),
        "gap": _text(node.gap),
        "previous": None if node.comparison_actual is None else _text(node.comparison_actual.value),
    }


def tree_section(tree: TreeEvaluation) -> dict[str, Any]:
    bottleneck = tree.bottleneck
    return {
        "name": tree.tree.name,
        "projected_kgi": _text(tree.projected_kgi),
        "bottleneck": None if bottleneck is None else bottleneck.node.pk,
        "working_days": tree.working_days,
        "headcount": tree.headcount,
        "nodes": [_node(n) for n in tree.nodes],
    }


def funnel_section(tenant: Tenant, period: Period, previous: Period, scope: KpiScope) -> dict:
    result = funnel_compute(
        tenant=tenant,
        period=period,
        mode=FunnelMode.PERIOD,
        scope=scope,
        comparison_period=previous if previous.in_bounds else None,
    )
    before = {}
    if result.comparison is not None:
        before = {s.stage: s.count for s in result.comparison.groups[0].steps}
    group = result.groups[0]
    return {
        "steps": [
            {
                "stage": str(step.stage),
                "count": step.count,
                "previous": before.get(step.stage),
                "step_conversion": _text(step.step_conversion),
                "drop_off": step.drop_off,
            }
            for step in group.steps
        ],
        "lost": group.lost,
        "recycled": group.recycled,
    }


def alerts_section(tenant: Tenant, period: Period, scope: KpiScope) -> list[dict[str, Any]]:
    """Alerts about the period (or fired during it), of the scope (every scope for the
    workspace's report), latest first."""
    start, end = period.bounds(tenant.timezone)
    alerts = Alert.objects.filter(
        Q(period_start__gte=period.start, period_start__lt=period.end)
        | Q(first_fired_at__gte=start, first_fired_at__lt=end)
    )
    if scope.type != ScopeType.TENANT:
        alerts = alerts.filter(scope_type=scope.type, scope_key=scope.key)
    rows = alerts.select_related("rule").order_by("-last_fired_at", "-pk")[:MAX_ALERTS]
    return [
        {
            "rule": alert.rule.name,
            "kpi": alert.rule.kpi_key,
            "state": alert.state,
            "period": alert.period_label,
            "scope": f"{alert.scope_type}:{alert.scope_key}".rstrip(":"),
            "value": alert.explanation.get("value"),
            "improvement_action": alert.rule.improvement_action,
        }
        for alert in rows
    ]


def _sampled(value: KpiValue, other: KpiValue) -> bool:
    if value.kpi.is_rate:
        return (value.denominator or 0) >= MIN_RATE_SAMPLE and (
            other.denominator or 0
        ) >= MIN_RATE_SAMPLE
    return max(value.numerator, other.numerator) >= MIN_COUNT_SAMPLE


def movers_section(
    values: dict[tuple[str, Period, KpiScope], KpiValue],
    keys: list[str],
    period: Period,
    previous: Period,
    scope: KpiScope,
) -> list[dict[str, Any]]:
    """The KPIs that moved most against the previous period: relative change (current -
    previous) ÷ |previous|, largest magnitude first, among those with a sample."""
    moved: list[tuple[Fraction, str, KpiValue, KpiValue]] = []
    for key in keys:
        now, before = values[(key, period, scope)], values[(key, previous, scope)]
        if now.value is None or not before.value or not _sampled(now, before):
            continue
        change = (Fraction(now.value) - Fraction(before.value)) / abs(Fraction(before.value))
        moved.append((change, key, now, before))
    moved.sort(key=lambda item: (-abs(item[0]), item[1]))
    return [
        {
            "kpi": key,
            "name_ja": now.kpi.name_ja,
            "name_en": now.kpi.name_en,
            "value": _text(now.value),
            "previous": _text(before.value),
            "change_percent": _text(Decimal(change.numerator) * 100 / Decimal(change.denominator)),
        }
        for change, key, now, before in moved[:MOVERS]
    ]


def _rep_scopes(period: Period, scope: KpiScope) -> dict[KpiScope, str]:
    if scope.type == ScopeType.REP:
        member = Membership.objects.filter(pk=int(scope.key)).select_related("user").first()
        label = (member.display_name or member.user.username) if member else scope.key
        return {scope: label}
    candidates = leaderboard_candidates(by=ScopeType.REP, period=period)
    if scope.type == ScopeType.TEAM:
        team_reps = set(
            Membership.objects.filter(team_id=int(scope.key)).values_list("pk", flat=True)
        )
        candidates = {s: label for s, label in candidates.items() if int(s.key) in team_reps}
    return candidates


def report_content(*, tenant: Tenant, kind: str, period: Period, scope: KpiScope) -> dict[str, Any]:
    """The structured content of a report (see the module docstring)."""
    previous = period.previous()
    compared = previous if previous.in_bounds else None
    tree = kpi_tree_default_evaluate(
        tenant=tenant, period=period, scope=scope, comparison_period=compared
    )
    catalogue = kpi_catalogue(tenant=tenant)
    reps = _rep_scopes(period, scope)
    table_kpis = list(kpi_definitions(tenant=tenant, keys=REP_TABLE_KPIS).values())
    values = kpi_values(
        tenant=tenant,
        kpis=catalogue,
        periods=[period, previous] if compared else [period],
        scopes=[scope],
    )
    rep_values = kpi_values(tenant=tenant, kpis=table_kpis, periods=[period], scopes=list(reps))
    data: dict[str, Any] = {
        "kind": kind,
        "period": {"label": period.label, "start": str(period.start), "end": str(period.end)},
        "previous_period": previous.label if compared else None,
        "scope": {"type": scope.type, "key": scope.key},
        "tree": tree_section(tree),
        "funnel": funnel_section(tenant, period, previous, scope),
        "alerts": alerts_section(tenant, period, scope),
        "movers": movers_section(values, [k.key for k in catalogue], period, previous, scope)
        if compared
        else [],
        "rep_table": {
            "kpis": [k.key for k in table_kpis],
            "rows": [
                {
                    "rep": key.key,
                    "label": label,
                    "values": [_text(rep_values[(k.key, period, key)].value) for k in table_kpis],
                }
                for key, label in sorted(reps.items(), key=lambda item: (item[1], item[0].key))
            ],
        },
    }
    if kind == "executive":
        data["executive"] = executive_section(tree)
    return data


def executive_section(tree: TreeEvaluation) -> dict[str, Any]:
    """経営層への報告: the KGI against its target, the forecast (the tree's projection), and
    the three KPIs furthest short of plan, each with its own drivers furthest short."""
    root = next((n for n in tree.nodes if n.depth == 0 and n.node.kind == "kgi"), None)
    children: dict[int, list[NodeEvaluation]] = {}
    for node in tree.nodes:
        if node.node.parent_id is not None:
            children.setdefault(node.node.parent_id, []).append(node)

    def short(nodes: list[NodeEvaluation]) -> list[NodeEvaluation]:
        found = [n for n in nodes if n.attainment_exact is not None and n.attainment_exact < 1]
        return sorted(found, key=lambda n: (n.attainment_exact, n.depth, n.node.pk))

    kpis = [n for n in tree.nodes if n.node.kind == "kpi"]

    def drivers_of(node: NodeEvaluation) -> list[NodeEvaluation]:
        below: list[NodeEvaluation] = []
        stack = list(children.get(node.node.pk, []))
        while stack:
            child = stack.pop()
            below.append(child)
            stack.extend(children.get(child.node.pk, []))
        return short([n for n in below if n.node.kind == "kpi"])[:3]

    return {
        "kgi": None if root is None else _node(root),
        "forecast": _text(tree.projected_kgi),
        "forecast_attainment": _forecast_attainment(root, tree.projected_kgi),
        "gaps": [
            {**_node(node), "drivers": [_node(d) for d in drivers_of(node)]}
            for node in short(kpis)[:EXECUTIVE_GAPS]
        ],
    }


def _forecast_attainment(root: NodeEvaluation | None, forecast: Decimal | None) -> str | None:
    """The forecast ÷ the KGI's goal (its target, else the plan's required value)."""
    if root is None or forecast is None:
        return None
    goal = root.target if root.target is not None else root.required
    if not goal:
        return None
    return _text(Decimal(forecast) / Decimal(goal))
