"""GraphQL API of the KPI design checklist and of the KPIs shared across departments."""

from __future__ import annotations

from decimal import Decimal

import strawberry

from kpis.graphql.inputs import Comparison, comparison_period, resolve_period
from kpis.graphql.types import KpiDefinitionType, KpiValueType, PeriodType
from kpis.numbers import shown
from kpis.scopes import KpiScope
from kpis.selectors import kpi_definitions, kpi_values
from kpis.targets import query_target_values
from reports import checklist
from reports.models import ChecklistDecision, Department, SharedKpi
from tenants.graphql.context import Info
from tenants.graphql.operations import MutationPayload, mutation, query
from tenants.principal import PrincipalKind
from tenants.scopes import Scope

ChecklistDecisionItem = strawberry.enum(
    ChecklistDecision.Item,
    name="ChecklistDecisionItem",
    description="Checklist items that need a person's decision, recorded rather than guessed.",
)
DepartmentEnum = strawberry.enum(Department, name="Department")


@strawberry.type(name="KpiChecklistItem", description="One item of the KPI design checklist.")
class KpiChecklistItemType:
    key: str
    title_ja: str
    title_en: str
    passed: bool
    evidence: str = strawberry.field(description="What was found in the workspace.")
    how_to_pass: str
    needs_decision: bool = strawberry.field(
        description="Passes when a person records the decision (recordChecklistDecision)."
    )
    decision: str | None


@strawberry.type(name="SharedKpiDepartment", description="One department's view of a KPI.")
class SharedKpiDepartmentType:
    department: DepartmentEnum  # type: ignore[valid-type]
    value: KpiValueType
    comparison: KpiValueType | None


@strawberry.type(
    name="SharedKpi",
    description="A KPI shared by marketing, inside sales and field sales: one definition and "
    "one number, shown side by side for each department.",
)
class SharedKpiType:
    kpi: KpiDefinitionType
    owner_department: DepartmentEnum  # type: ignore[valid-type]
    note: str
    target: Decimal | None
    departments: list[SharedKpiDepartmentType]


@strawberry.type(name="SharedKpis")
class SharedKpisType:
    period: PeriodType
    comparison_period: PeriodType | None
    kpis: list[SharedKpiType]


@strawberry.type(name="ChecklistDecisionPayload")
class ChecklistDecisionPayload(MutationPayload):
    item: KpiChecklistItemType | None = None


@strawberry.type(name="SetSharedKpiPayload")
class SetSharedKpiPayload(MutationPayload):
    shared_kpi_keys: list[str] = strawberry.field(default_factory=list)


def _item(result: checklist.ChecklistResult) -> KpiChecklistItemType:
    return KpiChecklistItemType(
        key=result.key,
        title_ja=result.title_ja,
        title_en=result.title_en,
        passed=result.passed,
        evidence=result.evidence,
        how_to_pass=result.how_to_pass,
        needs_decision=result.needs_decision,
        decision=result.decision,
    )


@strawberry.type
class ChecklistQuery:
    @query(
        scope=Scope.KPIS_READ, description="The article's 15-item KPI design checklist, judged now."
    )
    def kpi_checklist(self, info: Info) -> list[KpiChecklistItemType]:
        tenant = info.context.require_tenant()
        return [_item(r) for r in checklist.kpi_checklist(tenant=tenant)]

    @query(
        scope=Scope.KPIS_READ,
        description="The shared KPIs (共通KPI) for a period: the same definition and number "
        "for marketing, inside sales and field sales, side by side.",
    )
    def shared_kpis(
        self, info: Info, period: str, comparison: Comparison | None = None
    ) -> SharedKpisType:
        tenant = info.context.require_tenant()
        the_period = resolve_period(info, period)
        other = comparison_period(the_period, comparison)
        rows = list(SharedKpi.objects.order_by("kpi_key"))
        found = kpi_definitions(tenant=tenant, keys=[r.kpi_key for r in rows])
        rows = [r for r in rows if r.kpi_key in found]
        scope = KpiScope.tenant()
        values = kpi_values(
            tenant=tenant,
            kpis=[found[r.kpi_key] for r in rows],
            periods=[the_period] + ([other] if other else []),
            scopes=[scope],
        )
        targets = query_target_values(
            periods=[the_period], scopes=[scope], kpi_keys=[r.kpi_key for r in rows]
        )
        items = []
        for row in rows:
            value = KpiValueType.from_value(values[(row.kpi_key, the_period, scope)])
            compared = (
                KpiValueType.from_value(values[(row.kpi_key, other, scope)]) if other else None
            )
            items.append(
                SharedKpiType(
                    kpi=KpiDefinitionType.from_definition(found[row.kpi_key]),
                    owner_department=Department(row.owner_department),
                    note=row.note,
                    target=shown(targets.get((row.kpi_key, the_period, scope))),
                    departments=[
                        SharedKpiDepartmentType(department=d, value=value, comparison=compared)
                        for d in Department
                    ],
                )
            )
        return SharedKpisType(
            period=PeriodType.from_period(the_period),
            comparison_period=None if other is None else PeriodType.from_period(other),
            kpis=items,
        )


@strawberry.type
class ChecklistMutation:
    @mutation(
        scope=Scope.KPIS_WRITE,
        description="Record a checklist decision (kpis:write); an empty value clears it.",
    )
    def record_checklist_decision(
        self,
        info: Info,
        item: ChecklistDecisionItem,  # type: ignore[valid-type]
        value: str,
    ) -> ChecklistDecisionPayload:
        tenant = info.context.require_tenant()
        principal = info.context.principal
        checklist.checklist_decision_record(
            tenant=tenant,
            item=ChecklistDecision.Item(item).value,
            value=value,
            decided_by=principal.membership if principal.kind == PrincipalKind.USER else None,
        )
        key = ChecklistDecision.Item(item).value
        result = next(r for r in checklist.kpi_checklist(tenant=tenant) if r.key == key)
        return ChecklistDecisionPayload(item=_item(result))

    @mutation(
        scope=Scope.KPIS_WRITE,
        description="Mark a KPI as shared across departments, or not (kpis:write).",
    )
    def set_shared_kpi(
        self,
        info: Info,
        kpi: str,
        shared: bool = True,
        owner_department: DepartmentEnum = Department.INSIDE_SALES,  # type: ignore[valid-type]
        note: str = "",
    ) -> SetSharedKpiPayload:
        tenant = info.context.require_tenant()
        checklist.shared_kpi_set(
            tenant=tenant,
            kpi_key=kpi,
            shared=shared,
            owner_department=Department(owner_department).value,
            note=note,
        )
        keys = list(SharedKpi.objects.order_by("kpi_key").values_list("kpi_key", flat=True))
        return SetSharedKpiPayload(shared_kpi_keys=keys)
