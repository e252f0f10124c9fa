"""The KPI catalogue: measures stored in snapshots, and the KPIs built from them.

A *measure* is a number a snapshot stores for a (period, scope): a count, a money sum or
a distinct count. A *KPI* is a measure, or a numerator measure over a denominator measure
(times 100 for percentages). Rates are always the ratio of summed numerators and summed
denominators of the period and scope, never an average of daily or per-rep rates; a zero
denominator gives null.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum


class Rollup(StrEnum):
    SUM = "sum"  # the period's value is the sum of its days
    DISTINCT = "distinct"  # a distinct count, computed per period from raw rows
    STOCK = "stock"  # a level at the period's end (stored as daily changes)
    CALENDAR = "calendar"  # from the tenant's calendar, not from data


@dataclass(frozen=True)
class Measure:
    key: str
    description: str
    rollup: Rollup = Rollup.SUM
    money: bool = False


MEASURES: dict[str, Measure] = {
    m.key: m
    for m in (
        Measure("calls", "Call activities."),
        Measure("connects", "Calls with outcome connected."),
        Measure("outreach", "Call and email activities (follow-ups)."),
        Measure("emails_sent", "Email activities."),
        Measure("emails_delivered", "Email activities flagged delivered."),
        Measure("emails_opened", "Email activities flagged opened."),
        Measure("emails_clicked", "Email activities flagged clicked."),
        Measure("leads_touched", "Distinct leads with a call or email.", Rollup.DISTINCT),
        Measure("active_reps", "Distinct reps with an activity of any type.", Rollup.DISTINCT),
        Measure("leads_created", "Leads created."),
        Measure("mqls", "Transitions into mql."),
        Measure("sqls", "Transitions into sql."),
        Measure("meetings", "Transitions into meeting."),
        Measure("opportunities", "Transitions into opportunity."),
        Measure("wins", "Transitions into won."),
        Measure("losses", "Transitions into lost."),
        Measure("recycles", "Transitions into recycled."),
        Measure("deals_created", "Inside-sales-sourced deals created."),
        Measure("pipeline_created", "Amount of IS-sourced deals created.", money=True),
        Measure("won_deals", "Deals in a won stage, by closed_at."),
        Measure("revenue", "Amount of deals in a won stage, by closed_at.", money=True),
        Measure(
            "weighted_pipeline",
            "Σ open deal amount x stage win probability at the period's end.",
            Rollup.STOCK,
            money=True,
        ),
        Measure("working_days", "Working days of the whole calendar period.", Rollup.CALENDAR),
        Measure(
            "rep_working_days",
            "Active reps x working days of the period.",
            Rollup.CALENDAR,
        ),
    )
}

# Measures stored as columns of a snapshot row (the calendar ones are derived on read).
STORED_MEASURES: tuple[str, ...] = tuple(
    key for key, m in MEASURES.items() if m.rollup != Rollup.CALENDAR
)
ADDITIVE_MEASURES: tuple[str, ...] = tuple(
    key for key, m in MEASURES.items() if m.rollup == Rollup.SUM
)
DISTINCT_MEASURES: tuple[str, ...] = tuple(
    key for key, m in MEASURES.items() if m.rollup == Rollup.DISTINCT
)


class Category(StrEnum):
    ACTIVITY = "activity"
    OUTCOME = "outcome"
    KGI = "kgi"
    MARKETING = "marketing"


class Layer(StrEnum):
    VOLUME = "volume"
    QUALITY = "quality"
    RESULT = "result"


class Unit(StrEnum):
    COUNT = "count"
    PERCENT = "percent"
    RATIO = "ratio"
    MONEY = "money"


class Direction(StrEnum):
    HIGHER_IS_BETTER = "higher_is_better"
    LOWER_IS_BETTER = "lower_is_better"


@dataclass(frozen=True)
class KpiDefinition:
    """One KPI: a measure, or numerator ÷ denominator (x 100 for percentages)."""

    key: str
    name_ja: str
    name_en: str
    category: str
    layer: str
    numerator: str
    denominator: str | None = None
    unit: str = Unit.COUNT
    direction: str = Direction.HIGHER_IS_BETTER
    reference_value: Decimal | None = None
    reference_source: str = ""
    description: str = ""
    builtin: bool = True

    @property
    def multiplier(self) -> int:
        return 100 if self.unit == Unit.PERCENT else 1

    @property
    def is_rate(self) -> bool:
        return self.denominator is not None

    @property
    def measures(self) -> tuple[str, ...]:
        return (self.numerator,) if self.denominator is None else (self.numerator, self.denominator)


_SURVEY = "インサイドセールス白書2025 (source article)"
_ARTICLE = "Source article reference value"
_OWN = "Own data (自社データ)"

BUILTIN_KPIS: tuple[KpiDefinition, ...] = (
    KpiDefinition(
        "calls", "架電数", "Calls", Category.ACTIVITY, Layer.VOLUME, "calls",
        reference_source=_OWN, description="Count of call activities.",
    ),
    KpiDefinition(
        "calls_per_rep_day", "1人1日架電数", "Calls per rep per working day",
        Category.ACTIVITY, Layer.VOLUME, "calls", "rep_working_days", Unit.RATIO,
        reference_value=Decimal(34), reference_source=_SURVEY,
        description="calls ÷ (reps with an activity in the period x working days).",
    ),
    KpiDefinition(
        "connects", "コネクト数", "Connects", Category.ACTIVITY, Layer.VOLUME, "connects",
        reference_source=_OWN, description="Calls with outcome connected.",
    ),
    KpiDefinition(
        "connect_rate", "コネクト率", "Connect rate", Category.ACTIVITY, Layer.QUALITY,
        "connects", "calls", Unit.PERCENT, reference_source="Depends on the product (own data)",
        description="connects ÷ calls x 100.",
    ),
    KpiDefinition(
        "follow_ups_per_lead", "追客回数", "Follow-ups per lead", Category.ACTIVITY,
        Layer.VOLUME, "outreach", "leads_touched", Unit.RATIO,
        reference_value=Decimal("5.1"), reference_source=_SURVEY,
        description="Call and email activities ÷ distinct leads that had one.",
    ),
    KpiDefinition(
        "leads", "リード数", "Leads", Category.OUTCOME, Layer.VOLUME, "leads_created",
        reference_source=_OWN, description="Leads created.",
    ),
    KpiDefinition(
        "mqls", "MQL数", "MQLs", Category.OUTCOME, Layer.RESULT, "mqls",
        reference_source=_OWN, description="Transitions into mql.",
    ),
    KpiDefinition(
        "sqls_created", "SQL創出数", "SQLs created", Category.OUTCOME, Layer.RESULT, "sqls",
        reference_source=_OWN, description="Transitions into sql.",
    ),
    KpiDefinition(
        "meetings_set", "商談設定数", "Meetings set", Category.OUTCOME, Layer.RESULT,
        "meetings", reference_source=_OWN, description="Transitions into meeting.",
    ),
    KpiDefinition(
        "meeting_rate", "商談化率", "Meeting rate", Category.OUTCOME, Layer.QUALITY,
        "meetings", "leads_created", Unit.PERCENT,
        reference_value=Decimal(20), reference_source=_ARTICLE,
        description="Transitions into meeting ÷ leads created x 100.",
    ),
    KpiDefinition(
        "opportunities", "案件数", "Opportunities", Category.OUTCOME, Layer.RESULT,
        "opportunities", reference_source=_OWN, description="Transitions into opportunity.",
    ),
    KpiDefinition(
        "opportunity_rate", "案件化率", "Opportunity rate", Category.OUTCOME, Layer.QUALITY,
        "opportunities", "meetings", Unit.PERCENT,
        reference_value=Decimal(50), reference_source=_ARTICLE,
        description="Transitions into opportunity ÷ transitions into meeting x 100.",
    ),
    KpiDefinition(
        "win_rate", "受注率", "Win rate", Category.OUTCOME, Layer.QUALITY,
        "wins", "opportunities", Unit.PERCENT,
        reference_value=Decimal(25), reference_source=_ARTICLE,
        description="Transitions into won ÷ transitions into opportunity x 100.",
    ),
    KpiDefinition(
        "pipeline_created", "パイプライン創出額", "Pipeline created", Category.OUTCOME,
        Layer.RESULT, "pipeline_created", unit=Unit.MONEY, reference_source=_OWN,
        description="Sum of the amounts of IS-sourced deals created.",
    ),
    KpiDefinition(
        "weighted_pipeline", "加重パイプライン", "Weighted pipeline", Category.OUTCOME,
        Layer.RESULT, "weighted_pipeline", unit=Unit.MONEY,
        description="Σ open deal amount x stage win probability, at the period's end.",
    ),
    KpiDefinition(
        "won_deals", "受注件数", "Won deals", Category.KGI, Layer.RESULT, "won_deals",
        description="Deals in a won stage, by closed_at.",
    ),
    KpiDefinition(
        "revenue", "受注額", "Revenue", Category.KGI, Layer.RESULT, "revenue",
        unit=Unit.MONEY, description="Amount of deals in a won stage, by closed_at.",
    ),
    KpiDefinition(
        "emails_sent", "メール送信数", "Emails sent", Category.MARKETING, Layer.VOLUME,
        "emails_sent", description="Email activities.",
    ),
    KpiDefinition(
        "email_delivery_rate", "到達率", "Email delivery rate", Category.MARKETING,
        Layer.QUALITY, "emails_delivered", "emails_sent", Unit.PERCENT,
        reference_value=Decimal(96), reference_source=_ARTICLE,
        description="Delivered ÷ sent x 100.",
    ),
    KpiDefinition(
        "email_open_rate", "開封率", "Email open rate", Category.MARKETING, Layer.QUALITY,
        "emails_opened", "emails_delivered", Unit.PERCENT,
        reference_value=Decimal(20), reference_source=_ARTICLE,
        description="Opened ÷ delivered x 100.",
    ),
    KpiDefinition(
        "email_click_rate", "クリック率", "Email click rate", Category.MARKETING,
        Layer.QUALITY, "emails_clicked", "emails_opened", Unit.PERCENT,
        reference_value=Decimal(25), reference_source=_ARTICLE,
        description="Clicked ÷ opened x 100.",
    ),
)  # fmt: skip

BUILTIN_BY_KEY: dict[str, KpiDefinition] = {kpi.key: kpi for kpi in BUILTIN_KPIS}
