"""Defaults a new tenant starts with: its deal stages, named in the workspace's language."""

from __future__ import annotations

from decimal import Decimal

from pipeline.models import DealStage
from tenants.models import Tenant

# (name, win probability, won, lost): a common Japanese B2B sales process.
DEFAULT_DEAL_STAGES: tuple[tuple[str, str, bool, bool], ...] = (
    ("初回商談", "0.10", False, False),
    ("ヒアリング", "0.20", False, False),
    ("提案", "0.40", False, False),
    ("見積提示", "0.60", False, False),
    ("最終交渉", "0.80", False, False),
    ("受注", "1", True, False),
    ("失注", "0", False, True),
)

# The same process for an English-speaking workspace: same probabilities, same order.
DEFAULT_DEAL_STAGES_EN: tuple[tuple[str, str, bool, bool], ...] = (
    ("First meeting", "0.10", False, False),
    ("Discovery", "0.20", False, False),
    ("Proposal", "0.40", False, False),
    ("Quote", "0.60", False, False),
    ("Negotiation", "0.80", False, False),
    ("Won", "1", True, False),
    ("Lost", "0", False, True),
)

_BY_LANGUAGE: dict[str, tuple[tuple[str, str, bool, bool], ...]] = {
    Tenant.Language.JA: DEFAULT_DEAL_STAGES,
    Tenant.Language.EN: DEFAULT_DEAL_STAGES_EN,
}


def default_deal_stages(language: str) -> tuple[tuple[str, str, bool, bool], ...]:
    """The default stages named in `language` (Japanese for a language without a set)."""
    return _BY_LANGUAGE.get(language, DEFAULT_DEAL_STAGES)


def deal_stages_seed_defaults(tenant: Tenant) -> None:
    """Give a new tenant the default deal stages in its language (idempotent)."""
    if DealStage.objects.filter(tenant=tenant).exists():
        return
    DealStage.objects.bulk_create(
        DealStage(
            tenant=tenant,
            name=name,
            order=position,
            win_probability=Decimal(probability),
            is_won=won,
            is_lost=lost,
        )
        for position, (name, probability, won, lost) in enumerate(
            default_deal_stages(tenant.language), start=1
        )
    )
