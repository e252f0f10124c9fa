"""Evaluation is triggered after records arrive (pipeline.hooks) and by the periodic task."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from handoff.models import Qualification
from handoff.tasks import evaluate_all_task
from pipeline.ingestion.service import records_ingest
from pipeline.models import Lead
from tenants.context import tenant_context

from .conftest import add_activity, agreed_version, make_lead

# The ingestion listener and the periodic task queue evaluations: run them here.
pytestmark = pytest.mark.usefixtures("eager_tasks")


def _batch(now: dt.datetime) -> dict:
    clicked = (now - dt.timedelta(hours=2)).isoformat()
    return {
        "source_system": "ma",
        "leads": [
            {"external_id": "L1", "company": "Big", "employee_count": 300,
             "created_at": (now - dt.timedelta(days=3)).isoformat()},
            {"external_id": "L2", "company": "Small", "employee_count": 3,
             "created_at": (now - dt.timedelta(days=3)).isoformat()},
        ],
        "activities": [
            {"external_id": f"A{i}{lead}", "lead_external_id": lead, "type": "email",
             "email_clicked": True, "occurred_at": clicked}
            for i in range(2) for lead in ("L1", "L2")
        ],
    }  # fmt: skip


def test_records_arriving_qualify_the_new_leads_after_commit(
    tenant_a, marketer, seller, django_capture_on_commit_callbacks
):
    # given an active version
    agreed_version(tenant_a, marketer, seller)
    # when a batch commits
    with tenant_context(tenant_a), django_capture_on_commit_callbacks(execute=True):
        records_ingest(tenant=tenant_a, batch=_batch(timezone.now()), actor_label="t")
    # then its qualifying lead is an MQL, the other is not
    with tenant_context(tenant_a):
        assert dict(Lead.objects.values_list("external_id", "stage")) == {
            "L1": "mql",
            "L2": "lead",
        }
        assert Qualification.objects.get().lead.external_id == "L1"


def test_the_periodic_task_evaluates_every_tenant(tenant_a, tenant_b, marketer, seller):
    # given a qualifying lead of tenant A (clicked within the window up to now)
    agreed_version(tenant_a, marketer, seller)
    lead = make_lead(tenant_a, employee_count=90)
    for _ in range(2):
        add_activity(lead, "email", timezone.now() - dt.timedelta(hours=1), email_clicked=True)
    # when
    tenants = evaluate_all_task.delay().get()
    # then
    assert tenants == [tenant_a.pk, tenant_b.pk]
    with tenant_context(tenant_a):
        assert Lead.objects.get(pk=lead.pk).stage == "mql"
