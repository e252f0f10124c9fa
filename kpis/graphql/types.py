"""GraphQL types shared by the KPI queries."""

from __future__ import annotations

from datetime import date

import strawberry

from kpis.periods import Period


@strawberry.type(name="Period", description="A half-open range [start, end) of tenant-local dates.")
class PeriodType:
    label: str
    grain: str
    start: date
    end: date = strawberry.field(description="The first day after the period.")

    @classmethod
    def from_period(cls, period: Period) -> PeriodType:
        return cls(label=period.label, grain=period.grain, start=period.start, end=period.end)
