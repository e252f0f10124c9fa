"""The KPI catalogue: the KPIs built from the measures of `kpis.measures`.

A *measure* is a number a snapshot stores for a (period, scope): a count, a money sum or
a distinct count (declared in the registry of `kpis.measures`). A *KPI* is a measure, or
a numerator measure over a denominator measure (times 100 for percentages). Rates are
always the ratio of summed numerators and summed denominators of the period and scope,
never an average of daily or per-rep rates; a zero denominator gives null.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

# The measures are declared in one registry (kpis.measures); these names stay importable here.
from kpis.measures import (  # noqa: F401
    ADDITIVE_MEASURES,
    DISTINCT_MEASURES,
    MEASURES,
    Counting,
    Measure,
)

# Every KPI key: built-in, registered by an app, or a tenant's own (kpis.definitions).
# Matched with fullmatch: `$` would let a trailing newline through.
KEY_PATTERN = re.compile(r"[a-z][a-z0-9_]{1,49}")


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
        "calls", "架電数", "Calls", Category.ACTIVITY, Layer.VOLUME, numerator="calls",
        reference_source=_OWN, description="Count of call activities.",
    ),
    KpiDefinition(
        "calls_per_rep_day", "1人1日架電数", "Calls per rep per working day",
        Category.ACTIVITY, Layer.VOLUME, numerator="calls", denominator="rep_working_days",
        unit=Unit.RATIO, reference_value=Decimal(34), reference_source=_SURVEY,
        description="calls ÷ (reps with an activity in the period x working days).",
    ),
    KpiDefinition(
        "connects", "コネクト数", "Connects", Category.ACTIVITY, Layer.VOLUME, numerator="connects",
        reference_source=_OWN, description="Calls with outcome connected.",
    ),
    KpiDefinition(
        "connect_rate", "コネクト率", "Connect rate", Category.ACTIVITY, Layer.QUALITY,
        numerator="connects", denominator="calls", unit=Unit.PERCENT,
        reference_source="Depends on the product (own data)",
        description="connects ÷ calls x 100.",
    ),
    KpiDefinition(
        "follow_ups_per_lead", "追客回数", "Follow-ups per lead", Category.ACTIVITY,
        Layer.VOLUME, numerator="outreach", denominator="leads_touched", unit=Unit.RATIO,
        reference_value=Decimal("5.1"), reference_source=_SURVEY,
        description="Call and email activities ÷ distinct leads that had one.",
    ),
    KpiDefinition(
        "leads", "リード数", "Leads", Category.OUTCOME, Layer.VOLUME, numerator="leads_created",
        reference_source=_OWN, description="Leads created.",
    ),
    KpiDefinition(
        "mqls", "MQL数", "MQLs", Category.OUTCOME, Layer.RESULT, numerator="mqls",
        reference_source=_OWN, description="Transitions into mql.",
    ),
    KpiDefinition(
        "sqls_created", "SQL創出数", "SQLs created", Category.OUTCOME, Layer.RESULT,
        numerator="sqls", reference_source=_OWN, description="Transitions into sql.",
    ),
    KpiDefinition(
        "meetings_set", "商談設定数", "Meetings set", Category.OUTCOME, Layer.RESULT,
        numerator="meetings", reference_source=_OWN, description="Transitions into meeting.",
    ),
    KpiDefinition(
        "meeting_rate", "商談化率", "Meeting rate", Category.OUTCOME, Layer.QUALITY,
        numerator="meetings", denominator="leads_created", unit=Unit.PERCENT,
        reference_value=Decimal(20), reference_source=_ARTICLE,
        description="Transitions into meeting ÷ leads created x 100.",
    ),
    KpiDefinition(
        "opportunities", "案件数", "Opportunities", Category.OUTCOME, Layer.RESULT,
        numerator="opportunities", reference_source=_OWN,
        description="Transitions into opportunity.",
    ),
    KpiDefinition(
        "opportunity_rate", "案件化率", "Opportunity rate", Category.OUTCOME, Layer.QUALITY,
        numerator="opportunities", denominator="meetings", unit=Unit.PERCENT,
        reference_value=Decimal(50), reference_source=_ARTICLE,
        description="Transitions into opportunity ÷ transitions into meeting x 100.",
    ),
    KpiDefinition(
        "win_rate", "受注率", "Win rate", Category.OUTCOME, Layer.QUALITY,
        numerator="wins", denominator="opportunities", unit=Unit.PERCENT,
        reference_value=Decimal(25), reference_source=_ARTICLE,
        description="Transitions into won ÷ transitions into opportunity x 100.",
    ),
    KpiDefinition(
        "pipeline_created", "パイプライン創出額", "Pipeline created", Category.OUTCOME,
        Layer.RESULT, numerator="pipeline_created", unit=Unit.MONEY, reference_source=_OWN,
        description="Sum of the amounts of IS-sourced deals created.",
    ),
    KpiDefinition(
        "weighted_pipeline", "加重パイプライン", "Weighted pipeline", Category.OUTCOME,
        Layer.RESULT, numerator="weighted_pipeline", unit=Unit.MONEY,
        description="Σ open deal amount x stage win probability, at the period's end.",
    ),
    KpiDefinition(
        "won_deals", "受注件数", "Won deals", Category.KGI, Layer.RESULT, numerator="won_deals",
        description="Deals in a won stage, by closed_at.",
    ),
    KpiDefinition(
        "revenue", "受注額", "Revenue", Category.KGI, Layer.RESULT, numerator="revenue",
        unit=Unit.MONEY, description="Amount of deals in a won stage, by closed_at.",
    ),
    KpiDefinition(
        "emails_sent", "メール送信数", "Emails sent", Category.MARKETING, Layer.VOLUME,
        numerator="emails_sent", description="Email activities.",
    ),
    KpiDefinition(
        "email_delivery_rate", "到達率", "Email delivery rate", Category.MARKETING,
        Layer.QUALITY, numerator="emails_delivered", denominator="emails_sent", unit=Unit.PERCENT,
        reference_value=Decimal(96), reference_source=_ARTICLE,
        description="Delivered ÷ sent x 100.",
    ),
    KpiDefinition(
        "email_open_rate", "開封率", "Email open rate", Category.MARKETING, Layer.QUALITY,
        numerator="emails_opened", denominator="emails_delivered", unit=Unit.PERCENT,
        reference_value=Decimal(20), reference_source=_ARTICLE,
        description="Opened ÷ delivered x 100.",
    ),
    KpiDefinition(
        "email_click_rate", "クリック率", "Email click rate", Category.MARKETING,
        Layer.QUALITY, numerator="emails_clicked", denominator="emails_opened", unit=Unit.PERCENT,
        reference_value=Decimal(25), reference_source=_ARTICLE,
        description="Clicked ÷ opened x 100.",
    ),
)  # fmt: skip

BUILTIN_BY_KEY: dict[str, KpiDefinition] = {kpi.key: kpi for kpi in BUILTIN_KPIS}


# KPIs other apps register from their AppConfig.ready() (handoff's speed-to-lead, SLA
# attainment), after the built-in ones; every tenant's catalogue has them.
# NOTE: live dicts, read on every lookup, so registrations after import are seen.
REGISTERED_KPIS: dict[str, KpiDefinition] = {}
CATALOGUE_BY_KEY: dict[str, KpiDefinition] = dict(BUILTIN_BY_KEY)


def register_kpi(kpi: KpiDefinition) -> KpiDefinition:
    """Add another app's KPI to every tenant's catalogue (from its AppConfig.ready());
    idempotent for the same definition. It is validated like the built-in ones: its
    numerator and denominator must be measures of the registry (register them first)."""
    if not KEY_PATTERN.fullmatch(kpi.key):
        raise ValueError(f"A KPI key is 2 to 50 of a-z, 0-9 and _, from a letter: {kpi.key!r}.")
    existing = CATALOGUE_BY_KEY.get(kpi.key)
    if existing is not None:
        if existing == kpi:
            return existing
        raise ValueError(f"KPI {kpi.key!r} is in the catalogue already.")
    for value, allowed in (
        (kpi.category, Category), (kpi.layer, Layer), (kpi.unit, Unit),
        (kpi.direction, Direction),
    ):  # fmt: skip
        if value not in {member.value for member in allowed}:
            raise ValueError(f"KPI {kpi.key!r}: {value!r} is not a {allowed.__name__}.")
    for key in kpi.measures:
        if key not in MEASURES:
            raise ValueError(f"KPI {kpi.key!r} names unknown measure {key!r}.")
    if kpi.unit in (Unit.PERCENT, Unit.RATIO) and kpi.denominator is None:
        raise ValueError(f"KPI {kpi.key!r}: a rate needs a denominator measure.")
    if not kpi.builtin:
        raise ValueError(f"KPI {kpi.key!r}: a registered KPI is not a tenant's (builtin).")
    REGISTERED_KPIS[kpi.key] = kpi
    CATALOGUE_BY_KEY[kpi.key] = kpi
    return kpi


def unregister_kpi(key: str) -> None:
    """Remove a registered KPI (tests); built-in KPIs stay."""
    if REGISTERED_KPIS.pop(key, None) is not None:
        del CATALOGUE_BY_KEY[key]


def catalogue_kpis() -> list[KpiDefinition]:
    """Every tenant's catalogue: the built-in KPIs, then the registered ones."""
    return [*BUILTIN_KPIS, *REGISTERED_KPIS.values()]


def _check_catalogue() -> None:
    """Every built-in KPI names its numerator and denominator by a measure key the registry
    has (a typo would otherwise read as a KPI that is always zero)."""
    for kpi in BUILTIN_KPIS:
        for key in kpi.measures:
            if key not in MEASURES:
                raise ImportError(f"KPI {kpi.key!r} names unknown measure {key!r}.")


_check_catalogue()
