"""Defaults a new tenant starts with: its deal stages."""

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


def deal_stages_seed_defaults(tenant: Tenant) -> None:
    """Give a new tenant the default deal stages (idempotent)."""
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
        for position, (name, probability, won, lost) in enumerate(DEFAULT_DEAL_STAGES, start=1)
    )
