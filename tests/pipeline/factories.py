"""factory_boy factories of pipeline data."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import factory

from pipeline.lifecycle import Stage
from pipeline.models import Activity, Deal, DealStage, Lead
from tenants.context import tenant_context
from tests.factories import TenantOwnedFactory

AT = dt.datetime(2025, 4, 1, 1, 0, tzinfo=dt.UTC)  # 10:00 in Tokyo


def _first_open_stage(deal: object) -> DealStage:
    tenant = deal.tenant  # type: ignore[attr-defined]
    with tenant_context(tenant):
        return DealStage.objects.filter(is_won=False, is_lost=False).order_by("order").first()


class LeadFactory(TenantOwnedFactory):
    class Meta:
        model = Lead

    company = factory.Sequence(lambda n: f"Company {n}")
    contact_name = factory.Sequence(lambda n: f"Contact {n}")
    stage = Stage.LEAD
    created_at = AT


class ActivityFactory(TenantOwnedFactory):
    class Meta:
        model = Activity

    lead = factory.SubFactory(LeadFactory, tenant=factory.SelfAttribute("..tenant"))
    type = Activity.Type.CALL
    occurred_at = AT


class DealFactory(TenantOwnedFactory):
    class Meta:
        model = Deal

    lead = factory.SubFactory(LeadFactory, tenant=factory.SelfAttribute("..tenant"))
    amount = Decimal("100000.00")
    currency = "JPY"
    stage = factory.LazyAttribute(_first_open_stage)
    created_at = AT
