"""GraphQL API of the funnel analysis (ファネル分析): the `funnel` query and its types."""

from __future__ import annotations

from decimal import Decimal

import strawberry
from strawberry import relay

from kpis import funnels
from kpis.funnels import FunnelBreakdown, FunnelMode
from kpis.graphql.inputs import (
    Comparison,
    ScopeInput,
    comparison_period,
    resolve_period,
    resolve_scope,
)
from kpis.graphql.types import PeriodType
from kpis.numbers import shown
from pipeline.graphql.types import LeadStage
from pipeline.lifecycle import Stage
from tenants.graphql.context import Info
from tenants.graphql.operations import query
from tenants.scopes import Scope

FunnelModeEnum = strawberry.enum(
    FunnelMode,
    name="FunnelMode",
    description=(
        "PERIOD: leads created and transitions made in the period. COHORT: the leads "
        "created in the period and the stages they ever reached."
    ),
)
FunnelBreakdownEnum = strawberry.enum(
    FunnelBreakdown, name="FunnelBreakdown", description="What to split a funnel by."
)

# The type name a breakdown key is a global id of.
_KEY_TYPE_NAMES: dict[FunnelBreakdown, str] = {
    FunnelBreakdown.TEAM: "Team",
    FunnelBreakdown.REP: "Membership",
}


@strawberry.type(name="FunnelStep", description="One stage of a funnel.")
class FunnelStepType:
    stage: LeadStage  # type: ignore[valid-type]
    count: int
    step_conversion: Decimal | None = strawberry.field(
        description="count ÷ the previous step's count x 100; null for the first step or 0."
    )
    overall_conversion: Decimal | None = strawberry.field(
        description="count ÷ the lead count x 100; null when there are no leads."
    )
    drop_off: int | None = strawberry.field(
        description="The previous step's count - count (歩留まり); null for the first step."
    )
    median_seconds_from_previous: float | None = strawberry.field(
        description="Median time from the previous stage, in seconds; null when none."
    )
    median_seconds_from_creation: float | None = strawberry.field(
        description=(
            "Median time from the lead's creation to this stage, in seconds (per transition "
            "in PERIOD mode, per lead's first entry in COHORT mode); null for `lead` and when "
            "none."
        )
    )

    @classmethod
    def from_step(cls, step: funnels.FunnelStep) -> FunnelStepType:
        median = step.median_seconds_from_previous
        from_creation = step.median_seconds_from_creation
        return cls(
            stage=Stage(step.stage),
            count=step.count,
            step_conversion=shown(step.step_conversion),
            overall_conversion=shown(step.overall_conversion),
            drop_off=step.drop_off,
            median_seconds_from_previous=None if median is None else float(median),
            median_seconds_from_creation=None if from_creation is None else float(from_creation),
        )


@strawberry.type(name="FunnelGroup", description="The funnel of one breakdown group.")
class FunnelGroupType:
    key: str | None = strawberry.field(
        description=(
            "Null without a breakdown; the Team or Membership id for a team or rep "
            "breakdown; the lead source for a source breakdown."
        )
    )
    label: str | None = strawberry.field(
        description="Team name, member display name (or username), or source."
    )
    steps: list[FunnelStepType]
    lost: int = strawberry.field(description="Transitions into lost (cohort: leads).")
    recycled: int = strawberry.field(description="Transitions into recycled (cohort: leads).")

    @classmethod
    def from_group(
        cls, group: funnels.FunnelGroup, breakdown: FunnelBreakdown | None
    ) -> FunnelGroupType:
        key: str | None = None
        if group.key is not None and breakdown is not None:
            type_name = _KEY_TYPE_NAMES.get(breakdown)
            key = relay.to_base64(type_name, group.key) if type_name else str(group.key)
        return cls(
            key=key,
            label=group.label,
            steps=[FunnelStepType.from_step(step) for step in group.steps],
            lost=group.lost,
            recycled=group.recycled,
        )


@strawberry.type(
    name="Funnel",
    description="Stage counts, conversion, drop-off and median time between stages.",
)
class FunnelType:
    period: PeriodType
    mode: FunnelModeEnum  # type: ignore[valid-type]
    breakdown: FunnelBreakdownEnum | None  # type: ignore[valid-type]
    groups: list[FunnelGroupType] = strawberry.field(
        description="One group with a null key without a breakdown; else the groups with data."
    )
    comparison: FunnelType | None = strawberry.field(
        description="The same funnel for the comparison period, when one was asked for."
    )

    @classmethod
    def from_result(cls, result: funnels.FunnelResult) -> FunnelType:
        return cls(
            period=PeriodType.from_period(result.period),
            mode=result.mode,
            breakdown=result.breakdown,
            groups=[FunnelGroupType.from_group(group, result.breakdown) for group in result.groups],
            comparison=None if result.comparison is None else cls.from_result(result.comparison),
        )


@strawberry.type
class FunnelQuery:
    @query(
        scope=Scope.KPIS_READ, description="The funnel (ファネル分析) of a period, mode and scope."
    )
    def funnel(
        self,
        info: Info,
        period: str,
        mode: FunnelModeEnum = FunnelMode.PERIOD,  # type: ignore[valid-type]
        scope: ScopeInput | None = None,
        breakdown: FunnelBreakdownEnum | None = None,  # type: ignore[valid-type]
        comparison: Comparison | None = None,
    ) -> FunnelType:
        tenant = info.context.require_tenant()
        the_period = resolve_period(info, period)
        result = funnels.funnel_compute(
            tenant=tenant,
            period=the_period,
            mode=mode,
            scope=resolve_scope(info, scope),
            breakdown=breakdown,
            comparison_period=comparison_period(the_period, comparison),
        )
        return FunnelType.from_result(result)
