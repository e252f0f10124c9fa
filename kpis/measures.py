"""The measure registry: every number a KPI divides is declared here once, or registered by
the app that owns its rows.

A measure says where its rows come from, how it is counted (an additive sum of its days, an
exact distinct count per period, or a stock at the period's end), how it is attributed to
each scope and which writes make it dirty (DirtyKind bits). The snapshot refresh, rebuild,
`pending`, KPI definitions, alerts and trees all read this registry.

Built-in measures are stored as columns of KpiSnapshot and computed by the oracle-matched
SQL of `kpis.aggregates`, `kpis.snapshots.daily_sql` and `kpis.snapshots.members_sql`; their
declarations drive which columns each kind of change recomputes (`kind_columns`). A
registered measure (another app's, added from its AppConfig.ready()) is stored as one
KpiMeasureValue row per (grain, period, scope) and computed by its own `daily` function for
the dirty days only; coarser periods move by the change of their days, so a refresh never
rescans a period.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType

from pipeline.models import DirtyKind


class Counting(StrEnum):
    ADDITIVE = "sum"  # the period's value is the sum of its days
    DISTINCT = "distinct"  # an exact distinct count per period
    STOCK = "stock"  # a level at the period's end (stored as daily changes)
    CALENDAR = "calendar"  # from the tenant's calendar, not from data


# {(day, scope_type, scope_key): value}: what a registered measure's `daily` returns.
DailyValues = dict[tuple[date, str, str], Decimal | int]
# daily(tenant_id=, start=, end=, zone=): the values of the tenant-local days [start, end),
# run in the tenant's context (the ORM's tenant manager and row security apply).
DailyFunction = Callable[..., DailyValues]
# span(tenant_id=, zone=): the tenant-local days [first, last + 1) holding the measure's rows
# (None: no row), for a measure whose rows are not pipeline rows a rebuild must cover.
SpanFunction = Callable[..., "tuple[date, date] | None"]
# related_days(tenant_id=, start=, end=, zone=): other days whose values a change of rows
# on the days [start, end) can move, for a measure whose fact's day depends on rows of
# another day (speed-to-lead: an MQL's first touch is counted on the touch's day).
RelatedDaysFunction = Callable[..., "set[date]"]

# One rule for every team: the team the rep or owner was in on the fact's tenant-local day,
# from the member's team history (tenants.team_history; docs/kpis.md "Scopes").
_BY_ACT = {
    "tenant": "every row",
    "team": "the rep's team on the activity's day",
    "rep": "the activity's rep",
    "source": "the lead's source",
}
_BY_LEAD = {
    "tenant": "every row",
    "team": "that owner's team on the day the lead was created",
    "rep": "the lead's owner when it was created",
    "source": "the lead's source",
}
_BY_TRANS = {
    "tenant": "every row",
    "team": "that owner's team on the transition's day",
    "rep": "the lead's owner at the transition",
    "source": "the lead's source",
}
_BY_DEAL = {
    "tenant": "every row",
    "team": "that owner's team on the deal's day (the weighted pipeline: on each day open)",
    "rep": "the deal's owner, else the lead's owner",
    "source": "the lead's source",
}


@dataclass(frozen=True)
class Measure:
    """One measure: a numerator or denominator of KPIs.

    `column`: the KpiSnapshot column of a built-in measure (None: a registered one, stored
    in KpiMeasureValue). `daily`: a registered measure's portable computation (ORM or
    Python over the tenant's rows); `pg_daily`, optionally, a faster one for PostgreSQL
    with the same contract. Both must give equal values. `span`, optionally, the days of its
    own rows when they can lie outside the days of the pipeline's (a rebuild covers both).
    `related_days`, optionally, the other days a refresh of some days must recompute too.
    """

    key: str
    description: str
    counting: Counting = Counting.ADDITIVE
    money: bool = False
    dirty_kinds: int = 0
    source: str = ""
    attribution: Mapping[str, str] = field(default_factory=dict)
    column: str | None = None
    daily: DailyFunction | None = None
    pg_daily: DailyFunction | None = None
    span: SpanFunction | None = None
    related_days: RelatedDaysFunction | None = None

    @property
    def builtin(self) -> bool:
        return self.column is not None or self.counting == Counting.CALENDAR

    @property
    def stored(self) -> bool:
        """Whether a refresh computes it (calendar measures are derived on read)."""
        return self.counting != Counting.CALENDAR

    def daily_values(
        self, *, tenant_id: int, start: date, end: date, zone: zoneinfo.ZoneInfo, postgres: bool
    ) -> DailyValues:
        function = self.pg_daily if postgres and self.pg_daily is not None else self.daily
        if function is None:
            raise ValueError(f"Measure {self.key!r} has no daily computation.")
        return function(tenant_id=tenant_id, start=start, end=end, zone=zone)


def _builtin(
    key: str,
    description: str,
    kinds: DirtyKind,
    source: str,
    attribution: Mapping[str, str],
    counting: Counting = Counting.ADDITIVE,
    *,
    money: bool = False,
    column: str | None = None,
) -> Measure:
    return Measure(
        key=key,
        description=description,
        counting=counting,
        money=money,
        dirty_kinds=int(kinds),
        source=source,
        attribution=MappingProxyType(dict(attribution)),
        column=column or key,
    )


_A, _L, _T, _D = DirtyKind.ACTIVITIES, DirtyKind.LEADS, DirtyKind.TRANSITIONS, DirtyKind.DEALS
_ACT, _LEAD, _TRANS, _DEAL = (
    "pipeline.Activity",
    "pipeline.Lead",
    "pipeline.StageTransition",
    ("pipeline.Deal"),
)

BUILTIN_MEASURES: tuple[Measure, ...] = (
    _builtin("calls", "Call activities.", _A, _ACT, _BY_ACT),
    _builtin("connects", "Calls with outcome connected.", _A, _ACT, _BY_ACT),
    _builtin("outreach", "Call and email activities (follow-ups).", _A, _ACT, _BY_ACT),
    _builtin("emails_sent", "Email activities.", _A, _ACT, _BY_ACT),
    _builtin("emails_delivered", "Email activities flagged delivered.", _A, _ACT, _BY_ACT),
    _builtin("emails_opened", "Email activities flagged opened.", _A, _ACT, _BY_ACT),
    _builtin("emails_clicked", "Email activities flagged clicked.", _A, _ACT, _BY_ACT),
    _builtin(
        "leads_touched", "Distinct leads with a call or email.", _A, _ACT,
        _BY_ACT, Counting.DISTINCT,
    ),
    _builtin(
        "active_reps", "Distinct reps with an activity of any type.", _A, _ACT,
        _BY_ACT, Counting.DISTINCT,
    ),
    _builtin("leads_created", "Leads created.", _L, _LEAD, _BY_LEAD),
    _builtin("mqls", "Transitions into mql.", _T, _TRANS, _BY_TRANS),
    _builtin("sqls", "Transitions into sql.", _T, _TRANS, _BY_TRANS),
    _builtin("meetings", "Transitions into meeting.", _T, _TRANS, _BY_TRANS),
    _builtin("opportunities", "Transitions into opportunity.", _T, _TRANS, _BY_TRANS),
    _builtin("wins", "Transitions into won.", _T, _TRANS, _BY_TRANS),
    _builtin("losses", "Transitions into lost.", _T, _TRANS, _BY_TRANS),
    _builtin("recycles", "Transitions into recycled.", _T, _TRANS, _BY_TRANS),
    _builtin("deals_created", "Inside-sales-sourced deals created.", _D, _DEAL, _BY_DEAL),
    _builtin(
        "pipeline_created", "Amount of IS-sourced deals created.", _D, _DEAL,
        _BY_DEAL, money=True,
    ),
    _builtin("won_deals", "Deals in a won stage, by closed_at.", _D, _DEAL, _BY_DEAL),
    _builtin(
        "revenue", "Amount of deals in a won stage, by closed_at.", _D, _DEAL,
        _BY_DEAL, money=True,
    ),
    _builtin(
        "weighted_pipeline", "Σ open deal amount x stage win probability at the period's end.",
        _D, "pipeline.Deal, pipeline.DealStageChange", _BY_DEAL, Counting.STOCK,
        money=True, column="weighted_pipeline_change",
    ),
    Measure(
        "working_days", "Working days of the whole calendar period.", Counting.CALENDAR,
        source="the tenant's calendar",
    ),
    Measure(
        "rep_working_days", "Active reps x working days of the period.", Counting.CALENDAR,
        source="active_reps and the tenant's calendar",
    ),
)  # fmt: skip

# The registry: built-in measures first, then registered ones in registration order.
# NOTE: a live dict, so `kpis.catalogue.MEASURES` (this object) sees registrations.
MEASURES: dict[str, Measure] = {measure.key: measure for measure in BUILTIN_MEASURES}

KEY_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")
# KpiCustomDefinition.numerator/denominator and KpiMeasureValue.measure hold 40 characters.
MAX_KEY_LENGTH = 40


def register_measure(measure: Measure) -> Measure:
    """Add another app's measure (from its AppConfig.ready()); idempotent for the same one.

    Registered measures are additive: the handoff and alert measures planned are sums
    (seconds, breaches, returns); a distinct count or stock would need membership rows or
    day changes of its own, which this registry does not offer yet.
    """
    key = measure.key
    if not key or len(key) > MAX_KEY_LENGTH or not set(key) <= KEY_CHARACTERS or key[0] == "_":
        raise ValueError(f"A measure key is 1 to {MAX_KEY_LENGTH} of a-z, 0-9 and _: {key!r}.")
    existing = MEASURES.get(key)
    if existing is not None:
        if existing == measure:
            return existing
        raise ValueError(f"Measure {key!r} is registered already.")
    if measure.column is not None or measure.counting != Counting.ADDITIVE:
        raise ValueError("A registered measure is additive and has no snapshot column.")
    if measure.daily is None:
        raise ValueError(f"Measure {key!r} needs a daily computation.")
    if not measure.dirty_kinds:
        raise ValueError(f"Measure {key!r} must name the DirtyKind bits that make it dirty.")
    MEASURES[key] = measure
    return measure


def unregister_measure(key: str) -> None:
    """Remove a registered measure (tests); built-in measures stay."""
    measure = MEASURES.get(key)
    if measure is not None and not measure.builtin:
        del MEASURES[key]


def get_measure(key: str) -> Measure | None:
    return MEASURES.get(key)


def registered_measures() -> list[Measure]:
    """The measures other apps registered (stored in KpiMeasureValue)."""
    return [measure for measure in MEASURES.values() if not measure.builtin]


def kind_columns() -> dict[DirtyKind, tuple[str, ...]]:
    """The snapshot columns each built-in kind of change can move."""
    out: dict[DirtyKind, tuple[str, ...]] = {}
    for kind in (_A, _L, _T, _D):
        out[kind] = tuple(
            m.column for m in BUILTIN_MEASURES if m.column and m.dirty_kinds == int(kind)
        )
    return out


def is_dirty(measure: Measure, kinds: int) -> bool:
    """Whether a day marked with `kinds` must recompute `measure`: a mark naming every
    built-in kind (a rescan, a re-attribution) recomputes every measure."""
    return bool(kinds & measure.dirty_kinds) or kinds & DirtyKind.ALL == DirtyKind.ALL


def _columns_of(counting: Counting) -> tuple[str, ...]:
    return tuple(m.key for m in BUILTIN_MEASURES if m.column and m.counting == counting)


ADDITIVE_MEASURES: tuple[str, ...] = _columns_of(Counting.ADDITIVE)
DISTINCT_MEASURES: tuple[str, ...] = _columns_of(Counting.DISTINCT)
