"""The KPI design checklist (チェックリスト): the source article's 15 items, each judged
against the tenant's live configuration and data, with its evidence and how to pass.

Items that only a person can answer (review meetings held, MQL/SQL definitions agreed
while the handoff app has no rule versions, handoff rules written down, the KPI review
cycle) pass when a decision is recorded (ChecklistDecision), never by a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from alerts.models import AlertRule
from kpis.catalogue import Category
from kpis.models import KpiCustomDefinition, KpiTarget
from kpis.periods import Grain, local_date, period_containing
from kpis.scopes import KpiScope, ScopeType
from kpis.selectors import kpi_definition
from kpis.trees import RequiredBasis, kpi_tree_default_evaluate
from reports.models import ChecklistDecision, Dashboard, Report, ReportKind, SharedKpi
from tenants.bounds import text_check
from tenants.models import ApiToken, Membership, Tenant

Item = ChecklistDecision.Item


@dataclass(frozen=True)
class ChecklistResult:
    key: str
    title_ja: str
    title_en: str
    passed: bool
    evidence: str
    how_to_pass: str
    needs_decision: bool = False
    decision: str | None = None


TITLES: dict[str, tuple[str, str]] = {
    "kgi_defined": ("KGI(売上・受注目標)が明確に定義されている", "The KGI is defined"),
    "ksf_listed": ("KSF(成功要因)を洗い出している", "Key success factors are listed"),
    "kpis_from_kgi": ("KPIをKGIから逆算して設計している", "KPIs are worked back from the KGI"),
    "activity_and_outcome": (
        "活動指標と成果指標の両方を設定している",
        "Both activity and outcome KPIs are set",
    ),
    "definitions_documented": (
        "各KPIの計算方法・定義を明文化している",
        "Every KPI's definition is written down",
    ),
    "targets_from_own_data": (
        "目標値の根拠を自社データに基づいて設定している",
        "Targets are based on the tenant's own data",
    ),
    "data_automated": (
        "MA/SFAでKPIデータを自動取得できる設計になっている",
        "KPI data arrives automatically from MA/SFA",
    ),
    "dashboard": (
        "ダッシュボードでリアルタイムに確認できる環境がある",
        "A dashboard shows the KPIs",
    ),
    Item.REVIEW_MEETINGS: (
        "週次・月次での振り返りミーティングを設定している",
        "Weekly/monthly review meetings are set",
    ),
    Item.MQL_SQL_AGREED: (
        "MQL・SQLの定義をマーケ・営業と合意している",
        "MQL/SQL definitions are agreed by marketing and sales",
    ),
    Item.HANDOFF_RULES: ("リード引き渡しルールを明文化している", "Lead handoff rules are written"),
    "shared_rates": (
        "商談化率・受注率を共通KPIとして設定している",
        "Meeting rate and win rate are shared KPIs",
    ),
    "improvement_actions": (
        "KPIが未達の場合の改善アクションを定めている",
        "Improvement actions are defined for missed KPIs",
    ),
    Item.REVIEW_CYCLE: ("定期的なKPI見直しのサイクルを設定している", "A KPI review cycle is set"),
    "executive_report": (
        "経営層への報告フォーマットを整備している",
        "An executive report format is in place",
    ),
}
# How recent the last automated input must be.
DATA_FRESH_DAYS = 7


def _result(key: str, passed: bool, evidence: str, how: str, **extra: object) -> ChecklistResult:
    ja, en = TITLES[key]
    return ChecklistResult(
        key=str(key),
        title_ja=ja,
        title_en=en,
        passed=passed,
        evidence=evidence,
        how_to_pass=how,
        **extra,
    )  # type: ignore[arg-type]


def _decision(key: str, decisions: dict[str, ChecklistDecision], how: str) -> ChecklistResult:
    found = decisions.get(key)
    return _result(
        key,
        found is not None,
        f"Recorded on {found.decided_at:%Y-%m-%d}: {found.value}" if found else "Not recorded.",
        how,
        needs_decision=True,
        decision=None if found is None else found.value,
    )


def kpi_checklist(*, tenant: Tenant, now: datetime | None = None) -> list[ChecklistResult]:
    """The 15 items in the article's order (in the tenant's context)."""
    now = now or timezone.now()
    today = local_date(now, tenant.timezone)
    month = period_containing(Grain.MONTH, today, tenant.fiscal_year_start_month)
    tree = kpi_tree_default_evaluate(
        tenant=tenant, period=month, scope=KpiScope.tenant(), today=today
    )
    kgi = next((n for n in tree.nodes if n.depth == 0 and n.node.kind == "kgi"), None)
    kpi_nodes = [n for n in tree.nodes if n.node.kind == "kpi" and n.kpi is not None]
    ksf_nodes = [n for n in tree.nodes if n.node.kind == "ksf"]
    parents = {n.node.parent_id for n in tree.nodes}
    decisions = {d.item: d for d in ChecklistDecision.objects.all()}
    results: list[ChecklistResult] = []

    # 1. KGI with a target for the current month.
    if kgi is None or kgi.kpi is None:
        results.append(
            _result(
                "kgi_defined",
                False,
                "The default tree has no KGI.",
                "Add a KGI node (e.g. won_deals or revenue) to the KPI tree.",
            )
        )
    else:
        results.append(
            _result(
                "kgi_defined",
                kgi.target is not None,
                f"KGI {kgi.kpi.key}; target for {month.label}: "
                f"{'none' if kgi.target is None else kgi.target}.",
                f"Set a target for {kgi.kpi.key} for {month.label} (setKpiTarget).",
            )
        )
    # 2. KSFs that group KPIs.
    grouping = [n for n in ksf_nodes if n.node.pk in parents]
    results.append(
        _result(
            "ksf_listed",
            bool(grouping),
            f"{len(grouping)} KSF node(s) with KPIs: "
            + (", ".join(n.label for n in grouping) or "none")
            + ".",
            "Add KSF nodes (e.g. 商談の質向上) to the tree and put KPIs under them.",
        )
    )
    # 3. Required volumes derived (逆算) from the KGI target.
    derived = [n for n in kpi_nodes if n.basis == RequiredBasis.DERIVED]
    results.append(
        _result(
            "kpis_from_kgi",
            bool(derived),
            f"{len(derived)} KPI(s) worked back from the KGI target for {month.label}.",
            "Set the KGI's target: the tree then derives the required volumes of its drivers.",
        )
    )
    # 4. Activity and outcome KPIs both in the tree.
    categories = {str(n.kpi.category) for n in kpi_nodes if n.kpi is not None}
    has_activity = Category.ACTIVITY in categories
    has_outcome = bool(categories & {Category.OUTCOME, Category.KGI})
    results.append(
        _result(
            "activity_and_outcome",
            has_activity and has_outcome,
            f"Categories in the tree: {', '.join(sorted(categories)) or 'none'}.",
            "Put activity KPIs (calls, connects) and outcome KPIs (meetings, win rate) in "
            "the tree.",
        )
    )
    # 5. Every tenant-defined KPI has a written definition (built-in ones do).
    undocumented = list(
        KpiCustomDefinition.objects.filter(description="").values_list("key", flat=True)
    )
    results.append(
        _result(
            "definitions_documented",
            not undocumented,
            "Every KPI has a description."
            if not undocumented
            else f"Without a description: {', '.join(sorted(undocumented))}.",
            "Write a description for each of the tenant's own KPIs (admin or updateKpiDefinition).",
        )
    )
    # 6. Targets exist and the plan's rates come from targets or own history, not references.
    reference = [n.kpi.key for n in kpi_nodes if n.basis == RequiredBasis.REFERENCE and n.kpi]
    any_target = KpiTarget.objects.exists()
    results.append(
        _result(
            "targets_from_own_data",
            any_target and not reference,
            ("Targets are set. " if any_target else "No target is set. ")
            + (
                f"Planned with the article's reference values: {', '.join(reference)}."
                if reference
                else "No rate is planned with a reference value."
            ),
            "Set targets from kpiTargetSuggestion (own last three periods), or let three "
            "periods of own data build up, instead of the article's reference values.",
        )
    )
    # 7. Data arrives automatically: an API token used in the last days.
    since = now - timedelta(days=DATA_FRESH_DAYS)
    used = list(
        ApiToken.objects.filter(revoked_at__isnull=True, last_used_at__gte=since).values_list(
            "name", flat=True
        )
    )
    results.append(
        _result(
            "data_automated",
            bool(used),
            f"API tokens used in the last {DATA_FRESH_DAYS} days: {', '.join(used) or 'none'}.",
            "Connect the MA/SFA tool with an API token (records:write) so that leads and "
            "activities arrive without manual imports.",
        )
    )
    # 8. A shared dashboard with widgets.
    boards = list(
        Dashboard.objects.filter(is_shared=True, widgets__isnull=False)
        .values_list("name", flat=True)
        .distinct()
    )
    results.append(
        _result(
            "dashboard",
            bool(boards),
            f"{len(boards)} shared dashboard(s) with widgets.",
            "Create a shared dashboard with widgets (createDashboard, addDashboardWidget).",
        )
    )
    # 9-11. Human decisions (the handoff app has no rule versions yet).
    results.append(
        _decision(
            Item.REVIEW_MEETINGS,
            decisions,
            "Record the cadence of the weekly and monthly review meetings.",
        )
    )
    results.append(
        _decision(
            Item.MQL_SQL_AGREED,
            decisions,
            "Record where marketing and sales agreed the MQL/SQL definitions.",
        )
    )
    results.append(
        _decision(
            Item.HANDOFF_RULES, decisions, "Record where the lead handoff rules are written down."
        )
    )
    # 12. Meeting rate and win rate shared across departments.
    shared = set(SharedKpi.objects.values_list("kpi_key", flat=True))
    missing = [k for k in ("meeting_rate", "win_rate") if k not in shared]
    results.append(
        _result(
            "shared_rates",
            not missing,
            f"Shared KPIs: {', '.join(sorted(shared)) or 'none'}.",
            f"Mark {' and '.join(missing) or 'them'} as shared KPIs (setSharedKpi).",
        )
    )
    # 13. Active alert rules, each with its improvement action.
    rules = list(AlertRule.objects.filter(is_active=True).values_list("name", "improvement_action"))
    without = [name for name, action in rules if not action.strip()]
    results.append(
        _result(
            "improvement_actions",
            bool(rules) and not without,
            f"{len(rules)} active alert rule(s)"
            + (f"; without an action: {', '.join(without)}." if without else "."),
            "Create alert rules on the KPIs that matter, each with its improvement action.",
        )
    )
    # 14. The KPI review cycle.
    results.append(
        _decision(
            Item.REVIEW_CYCLE,
            decisions,
            "Record how often the KPIs and targets are reviewed (e.g. quarterly).",
        )
    )
    # 15. An executive report generated for the last closed month.
    last_month = month.previous()
    executive = Report.objects.filter(
        kind=ReportKind.EXECUTIVE, scope_type=ScopeType.TENANT, period_start=last_month.start
    ).exists()
    results.append(
        _result(
            "executive_report",
            executive,
            f"Executive report for {last_month.label}: {'yes' if executive else 'no'}.",
            "Run the reports beat (celery beat) or generate the reports due: the executive "
            "report is made after each month closes.",
        )
    )
    return results


@transaction.atomic
def checklist_decision_record(
    *, tenant: Tenant, item: str, value: str, decided_by: Membership | None
) -> ChecklistDecision | None:
    """Record (or with an empty value, clear) a decision item; returns the row or None."""
    text_check(value, field="value", max_length=1000)
    if not value.strip():
        ChecklistDecision.objects.filter(item=item).delete()
        return None
    decision, _ = ChecklistDecision.objects.update_or_create(
        tenant=tenant,
        item=item,
        defaults={"value": value.strip(), "decided_by": decided_by, "decided_at": timezone.now()},
    )
    return decision


@transaction.atomic
def shared_kpi_set(
    *, tenant: Tenant, kpi_key: str, shared: bool, owner_department: str, note: str = ""
) -> SharedKpi | None:
    """Mark a KPI as shared by the departments (or not); unknown KPIs are NOT_FOUND."""
    kpi_definition(tenant=tenant, key=kpi_key, field="kpi")
    text_check(note, field="note", max_length=500)
    if not shared:
        SharedKpi.objects.filter(kpi_key=kpi_key).delete()
        return None
    found, _ = SharedKpi.objects.update_or_create(
        tenant=tenant,
        kpi_key=kpi_key,
        defaults={"owner_department": owner_department, "note": note},
    )
    return found
