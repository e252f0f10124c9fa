"""How the KGI decomposes into rates and volumes, and the 逆算 / projection arithmetic on it.

The KGI (won deals) decomposes multiplicatively, as data in `DECOMPOSITION`:
won_deals = opportunities x win_rate, opportunities = meetings_set x opportunity_rate,
meetings_set = leads x meeting_rate; below meetings the activity chain gives connects
(meetings x the historical connects per meeting), calls (connects ÷ connect_rate) and calls
per rep per working day (calls ÷ (headcount x working days)).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from typing import Final

from kpis.catalogue import KpiDefinition
from kpis.periods import Period
from kpis.scopes import KpiScope
from kpis.selectors import KpiValue
from kpis.targets import history_fraction

# required(child) = required(parent) ÷ (rate ÷ 100), from the KGI down.
DECOMPOSITION: Final[dict[str, tuple[str, str]]] = {
    "won_deals": ("opportunities", "win_rate"),
    "opportunities": ("meetings_set", "opportunity_rate"),
    "meetings_set": ("leads", "meeting_rate"),
}
# The activity chain hangs below the meetings.
MEETINGS: Final = "meetings_set"
CONNECTS: Final = "connects"
CALLS: Final = "calls"
CONNECT_RATE: Final = "connect_rate"
CALLS_PER_REP_DAY: Final = "calls_per_rep_day"
ACTIVITY_CHAIN: Final[tuple[str, ...]] = (CONNECTS, CALLS, CONNECT_RATE, CALLS_PER_REP_DAY)


class RequiredBasis(StrEnum):
    """Where a node's required value comes from."""

    TARGET = "target"  # an explicit target (the KGI's, or a rate's)
    HISTORY = "history"  # the tenant's own value over the previous three periods
    REFERENCE = "reference"  # the source article's reference value
    DERIVED = "derived"  # 逆算 from the KGI target through the rates


def chain(kgi_key: str | None) -> list[tuple[str, str, str]]:
    """The decomposition steps (parent, child, rate) from the KGI down."""
    steps: list[tuple[str, str, str]] = []
    key = kgi_key
    while key in DECOMPOSITION and len(steps) < len(DECOMPOSITION):
        child, rate = DECOMPOSITION[key]
        steps.append((key, child, rate))
        key = child
    return steps


def exact(value: KpiValue | None) -> Fraction | None:
    """A KPI value as an exact fraction (a rate from its numerator and denominator)."""
    if value is None:
        return None
    if value.kpi.is_rate:
        if not value.denominator:
            return None
        return Fraction(value.numerator) * value.kpi.multiplier / Fraction(value.denominator)
    return Fraction(value.numerator)


class Evaluator:
    """The arithmetic of one evaluation over values already read."""

    def __init__(
        self,
        *,
        definitions: dict[str, KpiDefinition],
        values: dict[tuple[str, Period, KpiScope], KpiValue],
        targets: dict[tuple[str, Period, KpiScope], Decimal],
        period: Period,
        history: Sequence[Period],
        scope: KpiScope,
    ):
        self.definitions = definitions
        self.values = values
        self.targets = targets
        self.period = period
        self.history = history
        self.scope = scope
        # A rate's planning value feeds the 逆算 and is shown on the rate's node: worked out once.
        self._rates: dict[str, tuple[Fraction | None, RequiredBasis | None]] = {}

    def target(self, key: str) -> Decimal | None:
        return self.targets.get((key, self.period, self.scope))

    def actual(self, key: str, period: Period | None = None) -> KpiValue | None:
        return self.values.get((key, period or self.period, self.scope))

    def history_sum(self, key: str) -> Fraction:
        return sum(
            (Fraction(self.values[(key, p, self.scope)].numerator) for p in self.history),
            Fraction(0),
        )

    def rate(self, key: str) -> tuple[Fraction | None, RequiredBasis | None]:
        """A rate's planning value: its target, else own history, else the reference."""
        if key not in self._rates:
            self._rates[key] = self._rate(key)
        return self._rates[key]

    def _rate(self, key: str) -> tuple[Fraction | None, RequiredBasis | None]:
        kpi = self.definitions.get(key)
        if kpi is None:
            return None, None
        target = self.target(key)
        if target is not None:
            return Fraction(target), RequiredBasis.TARGET
        own = history_fraction(kpi, [self.values[(key, p, self.scope)] for p in self.history])
        if own is not None:
            return own, RequiredBasis.HISTORY
        if kpi.reference_value is not None:
            return Fraction(kpi.reference_value), RequiredBasis.REFERENCE
        return None, None

    def divide_by_rate(self, amount: Fraction | None, rate_key: str) -> Fraction | None:
        rate, _ = self.rate(rate_key)
        kpi = self.definitions.get(rate_key)
        if amount is None or not rate or kpi is None:
            return None
        return amount * kpi.multiplier / rate

    def derived(
        self, kgi_key: str | None, headcount: int, working_days: int
    ) -> dict[str, tuple[Fraction | None, RequiredBasis | None]]:
        """Required values 逆算 from the KGI target: the decomposition, then the activities."""
        if kgi_key is None or kgi_key not in self.definitions:
            return {}
        kgi_target = self.target(kgi_key)
        required: dict[str, Fraction | None] = {
            kgi_key: None if kgi_target is None else Fraction(kgi_target)
        }
        for parent, child, rate in chain(kgi_key):
            required[child] = self.divide_by_rate(required[parent], rate)
        if MEETINGS in required:
            meetings = self.history_sum(MEETINGS)
            per_meeting = self.history_sum(CONNECTS) / meetings if meetings else None
            connects = required[MEETINGS]
            required[CONNECTS] = (
                None if connects is None or per_meeting is None else connects * per_meeting
            )
            required[CALLS] = self.divide_by_rate(required[CONNECTS], CONNECT_RATE)
            capacity = headcount * working_days
            calls = required[CALLS]
            required[CALLS_PER_REP_DAY] = (
                None if calls is None or not capacity else calls / capacity
            )
        result: dict[str, tuple[Fraction | None, RequiredBasis | None]] = {}
        for key, value in required.items():
            if value is None:
                result[key] = (None, None)
            elif key == kgi_key:
                result[key] = (value, RequiredBasis.TARGET)
            else:
                result[key] = (value, RequiredBasis.DERIVED)
        return result

    def projected(self, kgi_key: str | None) -> Fraction | None:
        """actual base volume x the actual rates of the chain (as fractions), unscaled."""
        steps = chain(kgi_key)
        if not steps:
            return None
        value = exact(self.actual(steps[-1][1]))
        for _, _, rate_key in reversed(steps):
            if value is None or value == 0:
                break  # a zero volume makes the rest of the chain zero
            rate = exact(self.actual(rate_key))
            kpi = self.definitions[rate_key]
            value = None if rate is None else value * rate / kpi.multiplier
        return value


def drivers(kgi_key: str | None) -> list[str]:
    """The decomposition's drivers, nearest the KGI first: its rates, then the base volume."""
    steps = chain(kgi_key)
    if not steps:
        return []
    return [rate for _, _, rate in steps] + [steps[-1][1]]
