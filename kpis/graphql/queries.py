"""GraphQL reads of KPIs: the catalogue, values, series for charts and leaderboards."""

from __future__ import annotations

from datetime import date
from enum import Enum
from typing import Annotated

import strawberry

from kpis import leaderboards, selectors
from kpis.catalogue import KpiDefinition
from kpis.graphql.inputs import (
    Comparison,
    GrainEnum,
    ScopeInput,
    check_series_range,
    comparison_period,
    resolve_period,
    resolve_scope,
)
from kpis.graphql.types import (
    KpiDefinitionType,
    KpiMeasureType,
    KpiScopeType,
    KpiValueType,
    PeriodType,
)
from kpis.measures import MEASURES
from tenants.bounds import shown
from tenants.errors import NotFound, ValidationFailed
from tenants.graphql.context import Info
from tenants.graphql.operations import query
from tenants.scopes import Scope

MAX_KPIS_PER_REQUEST = 50


@strawberry.enum(name="LeaderboardBy")
class LeaderboardBy(Enum):
    REP = "rep"
    TEAM = "team"
    SOURCE = "source"


@strawberry.type(name="KpiSeriesPoint")
class KpiSeriesPoint:
    period: PeriodType
    value: KpiValueType
    comparison: KpiValueType | None = strawberry.field(
        description="The same KPI in the comparison period, when one was asked for."
    )


@strawberry.type(name="KpiSeries")
class KpiSeries:
    kpi: KpiDefinitionType
    scope: KpiScopeType
    grain: GrainEnum
    points: list[KpiSeriesPoint]


@strawberry.type(name="LeaderboardEntry")
class LeaderboardEntryType:
    rank: int | None = strawberry.field(
        description="1 is best; equal values share a rank (1, 1, 3); null when the value is null."
    )
    label: str
    scope: KpiScopeType
    value: KpiValueType
    comparison: KpiValueType | None


@strawberry.type(name="Leaderboard")
class LeaderboardType:
    kpi: KpiDefinitionType
    period: PeriodType
    by: LeaderboardBy
    entries: list[LeaderboardEntryType]
    total_count: int = strawberry.field(description="How many are ranked in all.")


def _series(
    info: Info,
    definitions: list[KpiDefinition],
    grain: GrainEnum,
    start: date,
    end: date,
    scope: ScopeInput | None,
    comparison: Comparison | None,
) -> list[KpiSeries]:
    """The series of each KPI for kpiSeries and kpiSeriesList, read together."""
    tenant = info.context.require_tenant()
    the_scope = resolve_scope(info, scope)
    found = leaderboards.kpi_series_many(
        tenant=tenant,
        kpis=definitions,
        grain=grain.value,
        start=start,
        end=end,
        scope=the_scope,
        comparison=comparison.value if comparison else None,
    )
    return [
        KpiSeries(
            kpi=KpiDefinitionType.from_definition(definition),
            scope=KpiScopeType.from_scope(the_scope),
            grain=grain,
            points=[
                KpiSeriesPoint(
                    period=PeriodType.from_period(value.period),
                    value=KpiValueType.from_value(value),
                    comparison=KpiValueType.from_value(other) if other else None,
                )
                for value, other in series
            ],
        )
        for definition, series in zip(definitions, found, strict=True)
    ]


def _check_kpi_count(keys: list[str]) -> None:
    if not keys:
        raise ValidationFailed("Ask for at least one KPI.", field="kpis")
    if len(keys) > MAX_KPIS_PER_REQUEST:
        raise ValidationFailed(f"At most {MAX_KPIS_PER_REQUEST} KPIs per request.", field="kpis")


@strawberry.type
class KpiQuery:
    @query(scope=Scope.KPIS_READ, description="Every KPI of the workspace: built-in, then its own.")
    def kpi_catalogue(self, info: Info) -> list[KpiDefinitionType]:
        tenant = info.context.require_tenant()
        return [
            KpiDefinitionType.from_definition(kpi) for kpi in selectors.kpi_catalogue(tenant=tenant)
        ]

    @query(
        scope=Scope.KPIS_READ,
        description="Every measure a KPI of the workspace may divide (createKpi names them).",
    )
    def kpi_measures(self, info: Info) -> list[KpiMeasureType]:
        return [KpiMeasureType.from_measure(measure) for measure in MEASURES.values()]

    @query(
        scope=Scope.KPIS_READ,
        description=(
            "KPIs for one period and scope, from snapshots. `period` is a label: 2026-11-26, "
            "2026-W48, 2026-11, FY2026-Q2 or FY2026 (fiscal periods follow the workspace's "
            "fiscal-year start)."
        ),
    )
    def kpi_values(
        self,
        info: Info,
        period: str,
        kpis: list[str] | None = None,
        scope: ScopeInput | None = None,
        comparison: Comparison | None = None,
    ) -> list[KpiSeriesPoint]:
        tenant = info.context.require_tenant()
        the_period = resolve_period(info, period)
        the_scope = resolve_scope(info, scope)
        if kpis is None:
            definitions = selectors.kpi_catalogue(tenant=tenant)
        else:
            _check_kpi_count(kpis)
            found = selectors.kpi_definitions(tenant=tenant, keys=kpis)
            unknown = [key for key in kpis if key not in found]
            if unknown:
                raise ValidationFailed(f"Unknown KPI {unknown[0]!r}.", field="kpis")
            definitions = [found[key] for key in dict.fromkeys(kpis)]
        other = comparison_period(the_period, comparison)
        periods = [the_period] + ([other] if other else [])
        values = selectors.kpi_values(
            tenant=tenant, kpis=definitions, periods=periods, scopes=[the_scope]
        )
        return [
            KpiSeriesPoint(
                period=PeriodType.from_period(the_period),
                value=KpiValueType.from_value(values[(kpi.key, the_period, the_scope)]),
                comparison=(
                    KpiValueType.from_value(values[(kpi.key, other, the_scope)]) if other else None
                ),
            )
            for kpi in definitions
        ]

    @query(
        scope=Scope.KPIS_READ,
        description=(
            "One KPI over time for charts: every period of `grain` overlapping the dates "
            "[start, end] (at most 400 points). Several KPIs: kpiSeriesList."
        ),
    )
    def kpi_series(
        self,
        info: Info,
        kpi: str,
        grain: GrainEnum,
        start: date,
        end: date,
        scope: ScopeInput | None = None,
        comparison: Comparison | None = None,
    ) -> KpiSeries:
        tenant = info.context.require_tenant()
        check_series_range(
            grain=grain.value,
            start=start,
            end=end,
            comparison=comparison,
            fiscal_start=tenant.fiscal_year_start_month,
        )
        definition = selectors.kpi_definition(tenant=tenant, key=kpi)
        (series,) = _series(info, [definition], grain, start, end, scope, comparison)
        return series

    @query(
        scope=Scope.KPIS_READ,
        description=(
            "Several KPIs over time in one request (a chart of many lines): one series per "
            "KPI, in the order asked, each as kpiSeries gives it. At most "
            f"{MAX_KPIS_PER_REQUEST} KPIs and {leaderboards.MAX_SERIES_CELLS} values (KPIs x "
            "points) per request (else BATCH_TOO_LARGE); the same SQL queries whatever the "
            "number of KPIs."
        ),
    )
    def kpi_series_list(
        self,
        info: Info,
        kpis: list[str],
        grain: GrainEnum,
        start: date,
        end: date,
        scope: ScopeInput | None = None,
        comparison: Comparison | None = None,
    ) -> list[KpiSeries]:
        tenant = info.context.require_tenant()
        _check_kpi_count(kpis)
        check_series_range(
            grain=grain.value,
            start=start,
            end=end,
            comparison=comparison,
            fiscal_start=tenant.fiscal_year_start_month,
        )
        found = selectors.kpi_definitions(tenant=tenant, keys=kpis)
        unknown = [key for key in kpis if key not in found]
        if unknown:
            raise NotFound(f"KPI {shown(unknown[0])}", field="kpis")
        definitions = [found[key] for key in dict.fromkeys(kpis)]
        return _series(info, definitions, grain, start, end, scope, comparison)

    @query(
        scope=Scope.KPIS_READ, description="Reps, teams or sources ranked by one KPI (best first)."
    )
    def leaderboard(
        self,
        info: Info,
        kpi: str,
        period: str,
        by: LeaderboardBy = LeaderboardBy.REP,
        first: int = 50,
        offset: Annotated[
            int, strawberry.argument(description="How many of the best to skip (next page).")
        ] = 0,
        comparison: Comparison | None = None,
    ) -> LeaderboardType:
        tenant = info.context.require_tenant()
        if not 1 <= first <= 100:
            raise ValidationFailed("first must be 1 to 100.", field="first")
        if offset < 0:
            raise ValidationFailed("offset cannot be negative.", field="offset")
        definition = selectors.kpi_definition(tenant=tenant, key=kpi)
        the_period = resolve_period(info, period)
        entries, total = leaderboards.kpi_leaderboard(
            tenant=tenant,
            kpi=definition,
            period=the_period,
            by=by.value,
            comparison_period=comparison_period(the_period, comparison),
            limit=first,
            offset=offset,
        )
        return LeaderboardType(
            kpi=KpiDefinitionType.from_definition(definition),
            period=PeriodType.from_period(the_period),
            by=by,
            total_count=total,
            entries=[
                LeaderboardEntryType(
                    rank=entry.rank,
                    label=entry.label,
                    scope=KpiScopeType.from_scope(entry.value.scope),
                    value=KpiValueType.from_value(entry.value),
                    comparison=KpiValueType.from_value(entry.comparison)
                    if entry.comparison
                    else None,
                )
                for entry in entries
            ],
        )
