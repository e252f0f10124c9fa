"""A workspace can be deleted with everything in it: deals in stages, qualified leads."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.db.models import RestrictedError

from handoff.models import Qualification, RuleVersion
from handoff.qualification import handoff_evaluate
from pipeline import services as pipeline_services
from pipeline.models import Deal, DealStage, DealStageChange
from tenants import services
from tenants.context import tenant_context
from tenants.models import Tenant

from .conftest import NOW, agreed_version, clicks, make_lead

pytestmark = pytest.mark.django_db

DAY = dt.timedelta(days=1)


def test_a_workspace_with_deals_and_qualified_leads_can_be_deleted(
    tenant_a: Any, tenant_b: Any, marketer: Any, seller: Any
) -> None:
    # given a workspace with a lead qualified under an active rule version, and a won deal
    agreed_version(tenant_a, marketer, seller)
    lead = make_lead(tenant_a, employee_count=80)
    clicks(lead, DAY, 2 * DAY)
    with tenant_context(tenant_a):
        handoff_evaluate(tenant=tenant_a, now=NOW)
        assert Qualification.objects.count() == 1
        won = DealStage.objects.filter(is_won=True).first()
        deal = pipeline_services.deal_create(
            tenant=tenant_a, lead=lead, amount=Decimal("1200"), created_at=NOW - 3 * DAY
        )
        pipeline_services.deal_move_stage(deal=deal, stage=won, at=NOW - DAY)
        assert DealStageChange.objects.filter(deal=deal).count() >= 2
    # when the workspace is deleted (as a superuser does in admin)
    services.tenant_delete(tenant=tenant_a)
    # then it is gone with its deals, stages, versions and qualifications; B is untouched
    assert not Tenant.objects.filter(pk=tenant_a.pk).exists()
    with tenant_context(tenant_a):
        for model in (Deal, DealStageChange, DealStage, RuleVersion, Qualification):
            assert not model.objects.exists(), model
    with tenant_context(tenant_b):
        assert DealStage.objects.exists()


def test_a_stage_or_version_in_use_still_cannot_be_deleted_on_its_own(
    tenant_a: Any, marketer: Any, seller: Any
) -> None:
    version = agreed_version(tenant_a, marketer, seller)
    lead = make_lead(tenant_a, employee_count=80)
    clicks(lead, DAY, 2 * DAY)
    with tenant_context(tenant_a):
        handoff_evaluate(tenant=tenant_a, now=NOW)
        deal = pipeline_services.deal_create(tenant=tenant_a, lead=lead, amount=Decimal("10"))
        stage = DealStage.objects.get(pk=deal.stage_id)
        with pytest.raises(RestrictedError):
            stage.delete()
        with pytest.raises(RestrictedError):
            RuleVersion.objects.get(pk=version.pk).delete()
        assert DealStage.objects.filter(pk=stage.pk).exists()
