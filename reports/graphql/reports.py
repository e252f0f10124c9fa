"""GraphQL API of reports (list, fetch, regenerate) and CSV exports."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from kpis import leaderboards
from kpis import selectors as kpi_selectors
from kpis.graphql.inputs import (
    GrainEnum,
    ScopeInput,
    check_series_range,
    resolve_period,
    resolve_scope,
)
from kpis.graphql.queries import LeaderboardBy
from kpis.graphql.types import KpiScopeType, PeriodType
from kpis.periods import period_containing
from kpis.scopes import KpiScope
from reports import exports
from reports.delivery import member_view
from reports.generation import report_regenerate
from reports.models import Report, ReportKind
from tenants.errors import ValidationFailed
from tenants.graphql.base import resolve_global_id
from tenants.graphql.context import Info
from tenants.graphql.operations import MutationPayload, mutation, query
from tenants.principal import Principal
from tenants.scopes import Scope

REPORT = "Report"

ReportKindEnum = strawberry.enum(ReportKind, name="ReportKind")


@strawberry.enum(name="ReportTable", description="A table of a report, for CSV export.")
class ReportTable(Enum):
    REP_TABLE = "rep_table"
    MOVERS = "movers"
    TREE = "tree"
    FUNNEL = "funnel"


@strawberry.type(name="Report", description="A generated report of a closed period and scope.")
class ReportType:
    id: strawberry.ID
    kind: ReportKindEnum  # type: ignore[valid-type]
    period: PeriodType
    scope: KpiScopeType
    language: str
    generated_at: datetime
    regenerated_count: int
    data: JSON = strawberry.field(
        description="tree, funnel, alerts, movers, rep_table (and executive): numbers as text."
    )
    html: str = strawberry.field(description="Self-contained HTML with inline SVG charts.")

    @classmethod
    def of(cls, report: Report, fiscal_start: int) -> ReportType:
        return cls(
            id=strawberry.ID(relay.to_base64(REPORT, report.pk)),
            kind=ReportKind(report.kind),
            period=PeriodType.from_period(
                period_containing(report.grain, report.period_start, fiscal_start)
            ),
            scope=KpiScopeType.from_scope(KpiScope(report.scope_type, report.scope_key)),
            language=report.language,
            generated_at=report.generated_at,
            regenerated_count=report.regenerated_count,
            data=report.data,
            html=report.html,
        )


@strawberry.type(name="ReportPage")
class ReportPage:
    total_count: int
    items: list[ReportType]


@strawberry.type(name="ReportPayload")
class ReportPayload(MutationPayload):
    report: ReportType | None = None


def own_view(principal: Principal) -> KpiScope:
    """The scope a member reads reports of by default: a rep their own, a manager their
    team's, everyone else (and tokens) the workspace's."""
    member = principal.membership
    if member is None:
        return KpiScope.tenant()
    return member_view(role=member.role, team_id=member.team_id, member_id=member.pk)


def _report(info: Info, id: relay.GlobalID) -> Report:
    return resolve_global_id(info, id, model=Report, type_name=REPORT, field="id")


def _page(first: int, offset: int) -> None:
    if not 1 <= first <= 100:
        raise ValidationFailed("first must be 1 to 100.", field="first")
    if offset < 0:
        raise ValidationFailed("offset cannot be negative.", field="offset")


@strawberry.type
class ReportQuery:
    @query(
        scope=Scope.KPIS_READ,
        description=(
            "Reports, latest period first. Without `scope`: the caller's own view (a rep "
            "their own, a manager their team's, others the workspace's)."
        ),
    )
    def reports(
        self,
        info: Info,
        kind: ReportKindEnum | None = None,  # type: ignore[valid-type]
        scope: ScopeInput | None = None,
        first: int = 20,
        offset: int = 0,
    ) -> ReportPage:
        tenant = info.context.require_tenant()
        _page(first, offset)
        the_scope = own_view(info.context.principal) if scope is None else resolve_scope(
            info, scope
        )  # fmt: skip
        reports = Report.objects.filter(scope_type=the_scope.type, scope_key=the_scope.key)
        if kind is not None:
            reports = reports.filter(kind=ReportKind(kind).value)
        page = reports.order_by("-period_start", "kind", "pk")[offset : offset + first]
        return ReportPage(
            total_count=reports.count(),
            items=[ReportType.of(r, tenant.fiscal_year_start_month) for r in page],
        )

    @query(scope=Scope.KPIS_READ, description="One report with its data and HTML.")
    def report(self, info: Info, id: relay.GlobalID) -> ReportType:
        tenant = info.context.require_tenant()
        return ReportType.of(_report(info, id), tenant.fiscal_year_start_month)

    @query(scope=Scope.KPIS_READ, description="A KPI series as CSV (the rows of kpiSeries).")
    def kpi_series_csv(
        self,
        info: Info,
        kpi: str,
        grain: GrainEnum,
        start: date,
        end: date,
        scope: ScopeInput | None = None,
    ) -> str:
        tenant = info.context.require_tenant()
        check_series_range(
            grain=grain.value,
            start=start,
            end=end,
            comparison=None,
            fiscal_start=tenant.fiscal_year_start_month,
        )
        series = leaderboards.kpi_series(
            tenant=tenant,
            kpi=kpi_selectors.kpi_definition(tenant=tenant, key=kpi),
            grain=grain.value,
            start=start,
            end=end,
            scope=resolve_scope(info, scope),
        )
        return exports.series_csv(series)

    @query(
        scope=Scope.KPIS_READ, description="A whole leaderboard as CSV (every entry, best first)."
    )
    def leaderboard_csv(
        self, info: Info, kpi: str, period: str, by: LeaderboardBy = LeaderboardBy.REP
    ) -> str:
        tenant = info.context.require_tenant()
        entries, _ = leaderboards.kpi_leaderboard(
            tenant=tenant,
            kpi=kpi_selectors.kpi_definition(tenant=tenant, key=kpi),
            period=resolve_period(info, period),
            by=by.value,
            limit=10_000,
        )
        return exports.leaderboard_csv(entries)

    @query(scope=Scope.KPIS_READ, description="A table of a report as CSV.")
    def report_csv(
        self, info: Info, id: relay.GlobalID, table: ReportTable = ReportTable.REP_TABLE
    ) -> str:
        return exports.report_table_csv(_report(info, id).data, table.value)


@strawberry.type
class ReportMutation:
    @mutation(
        scope=Scope.KPIS_WRITE, description="Compute a report again from today's data (kpis:write)."
    )
    def regenerate_report(self, info: Info, id: relay.GlobalID) -> ReportPayload:
        tenant = info.context.require_tenant()
        report = report_regenerate(tenant=tenant, report=_report(info, id))
        return ReportPayload(report=ReportType.of(report, tenant.fiscal_year_start_month))
