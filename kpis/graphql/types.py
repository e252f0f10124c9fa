"""GraphQL types shared by the KPI queries."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import strawberry
from strawberry.relay import to_base64

from kpis.catalogue import KpiDefinition, Unit
from kpis.graphql.inputs import GrainEnum, ScopeTypeEnum
from kpis.graphql.scalars import BigInt
from kpis.measures import Measure
from kpis.numbers import as_int, displayed, minor_units, shown
from kpis.periods import Period
from kpis.scopes import KpiScope, ScopeType
from kpis.selectors import KpiValue
from tenants.graphql.context import Info


def _currency(info: Info) -> str:
    return info.context.require_tenant().currency


@strawberry.type(name="Period", description="A half-open range [start, end) of tenant-local dates.")
class PeriodType:
    label: str
    grain: GrainEnum
    start: date
    end: date = strawberry.field(description="The first day after the period.")

    @classmethod
    def from_period(cls, period: Period) -> PeriodType:
        return cls(
            label=period.label, grain=GrainEnum(period.grain), start=period.start, end=period.end
        )


@strawberry.type(
    name="KpiMeasure",
    description="A measure KPIs divide: built in, or registered by another app.",
)
class KpiMeasureType:
    key: str = strawberry.field(description="What a KPI names as numerator or denominator.")
    description: str
    counting: str = strawberry.field(description="sum, distinct, stock or calendar.")
    money: bool
    builtin: bool

    @classmethod
    def from_measure(cls, measure: Measure) -> KpiMeasureType:
        return cls(
            key=measure.key,
            description=measure.description,
            counting=str(measure.counting),
            money=measure.money,
            builtin=measure.builtin,
        )


@strawberry.type(
    name="KpiDefinition", description="A KPI of the catalogue (built-in or the tenant's)."
)
class KpiDefinitionType:
    key: str
    name_ja: str
    name_en: str
    category: str
    layer: str
    numerator: str = strawberry.field(description="The measure counted above the line.")
    denominator: str | None = strawberry.field(description="The measure below; null for counts.")
    unit: str = strawberry.field(description="count, percent (x 100), ratio or money.")
    direction: str
    reference_value: Decimal | None = strawberry.field(
        description="The source article's reference value, where it gives one."
    )
    reference_source: str
    description: str
    builtin: bool

    @classmethod
    def from_definition(cls, kpi: KpiDefinition) -> KpiDefinitionType:
        return cls(
            key=kpi.key,
            name_ja=kpi.name_ja,
            name_en=kpi.name_en,
            category=str(kpi.category),
            layer=str(kpi.layer),
            numerator=kpi.numerator,
            denominator=kpi.denominator,
            unit=str(kpi.unit),
            direction=str(kpi.direction),
            reference_value=kpi.reference_value,
            reference_source=kpi.reference_source,
            description=kpi.description,
            builtin=kpi.builtin,
        )


@strawberry.type(name="KpiScope", description="Whom a value is measured for.")
class KpiScopeType:
    type: ScopeTypeEnum
    id: strawberry.ID | None = strawberry.field(description="Team or Membership id.")
    source: str | None

    @classmethod
    def from_scope(cls, scope: KpiScope) -> KpiScopeType:
        kind = ScopeTypeEnum(scope.type)
        if scope.type == ScopeType.TEAM:
            return cls(type=kind, id=strawberry.ID(to_base64("Team", scope.key)), source=None)
        if scope.type == ScopeType.REP:
            return cls(type=kind, id=strawberry.ID(to_base64("Membership", scope.key)), source=None)
        if scope.type == ScopeType.SOURCE:
            return cls(type=kind, id=None, source=scope.key)
        return cls(type=kind, id=None, source=None)


@strawberry.type(name="KpiValue", description="A KPI for one period and scope, from snapshots.")
class KpiValueType:
    kpi: KpiDefinitionType
    period: PeriodType
    scope: KpiScopeType
    value: Decimal | None = strawberry.field(
        description="Rounded half up to 4 decimals; null when the denominator is 0."
    )
    numerator: Decimal = strawberry.field(description="Exact.")
    denominator: Decimal | None = strawberry.field(description="Exact; null for counts.")
    computed_at: datetime | None = strawberry.field(
        description="When the snapshot was computed; null when the period has no data."
    )
    pending: bool = strawberry.field(
        description="Some day of the period changed and waits for its refresh."
    )
    exact: strawberry.Private[Decimal | None] = None
    unit: strawberry.Private[str] = ""

    @strawberry.field(
        description=(
            "The exact value rounded half up for display: a count as an integer (1235), money "
            "at the workspace currency's minor unit (JPY 1235, USD 1234.50), a percent to 1 "
            "decimal (33.3), a ratio to 2 (1.50); null when the value is null."
        )
    )
    def display(self, info: Info) -> str | None:
        return displayed(self.exact, unit=self.unit, currency=_currency(info))

    @strawberry.field(
        name="asInt",
        description=(
            "A count as an integer (the exact value rounded half up); null for rates and money, "
            "and when the value is null."
        ),
    )
    def as_int(self) -> BigInt | None:
        return as_int(self.exact) if self.unit == Unit.COUNT else None

    @strawberry.field(
        description=(
            "Money in the workspace currency's minor unit, rounded half up (USD 1234.505 is "
            "123451 cents, JPY 1234.5 is 1235 yen); null for other units and a null value."
        )
    )
    def minor_units(self, info: Info) -> BigInt | None:
        if self.unit != Unit.MONEY:
            return None
        return minor_units(self.exact, currency=_currency(info))

    @strawberry.field(description="The workspace's currency (ISO 4217) for money; else null.")
    def currency(self, info: Info) -> str | None:
        return _currency(info) if self.unit == Unit.MONEY else None

    @classmethod
    def from_value(cls, value: KpiValue) -> KpiValueType:
        return cls(
            exact=value.value,
            unit=str(value.kpi.unit),
            kpi=KpiDefinitionType.from_definition(value.kpi),
            period=PeriodType.from_period(value.period),
            scope=KpiScopeType.from_scope(value.scope),
            value=shown(value.value),
            numerator=value.numerator,
            denominator=value.denominator,
            computed_at=value.computed_at,
            pending=value.pending,
        )
