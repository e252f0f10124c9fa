"""Deleting a workspace removes every row it owns, in every app, and nothing of another's."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.management import call_command

from pipeline.demo import seed_demo
from tenants import rls, services
from tenants.context import tenant_context
from tenants.models import Tenant

# "__all__": seed_demo writes through the owner connection when it is a superuser.
pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

TODAY = dt.date(2026, 11, 2)
# Kinds the demo gives every workspace: if one came out empty, the test would prove less.
SEEDED = (
    "pipeline.Lead", "pipeline.Activity", "pipeline.StageTransition", "pipeline.Deal",
    "pipeline.DealStageChange", "pipeline.DealStage", "tenants.Membership", "tenants.Team",
    "tenants.MemberTeamSpan", "kpis.KpiSnapshot", "kpis.KpiTarget", "kpis.KpiTree",
    "alerts.AlertRule", "handoff.RuleSet", "handoff.RuleVersion", "handoff.Handoff",
    "reports.Report", "reports.Dashboard",
)  # fmt: skip


def _seeded_workspace(slug: str, seed: int) -> Tenant:
    """A workspace with what `make run` gives the demo one: records, snapshots, targets,
    alerts, handoff rules and queue, reports and dashboards."""
    seed_demo(tenant_slug=slug, leads=60, months=2, seed=seed, today=TODAY)
    for command in (
        "rebuild_kpi_snapshots", "seed_demo_targets", "seed_demo_alerts", "seed_demo_handoff",
        "seed_demo_handoff_queue",
    ):  # fmt: skip
        call_command(command, "--tenant", slug)
    call_command("generate_due_reports", "--tenant", slug, "--with-dashboards")
    return Tenant.objects.get(slug=slug)


def _rows(tenant_id: int) -> dict[str, int]:
    """The workspace's rows in every tenant-owned table, by model."""
    with tenant_context(tenant_id):
        return {
            model._meta.label: model._base_manager.filter(tenant_id=tenant_id).count()
            for model in rls.tenant_owned_models()
        }


def test_deleting_a_workspace_removes_its_rows_in_every_app_and_no_other_workspaces(
    tenant_b: Any,
) -> None:
    # given two workspaces seeded alike
    doomed = _seeded_workspace("doomed", seed=3)
    kept = _seeded_workspace("kept", seed=4)
    before, kept_before = _rows(doomed.pk), _rows(kept.pk)
    assert [label for label in SEEDED if not before[label]] == []
    # when one is deleted
    deleted = services.tenant_delete(tenant=doomed)
    # then each of its rows is gone, counted by kind, with the workspace itself
    assert deleted == {label: count for label, count in before.items() if count}
    assert not Tenant.objects.filter(pk=doomed.pk).exists()
    assert set(_rows(doomed.pk).values()) == {0}
    # and the other workspaces keep every row
    assert _rows(kept.pk) == kept_before
    assert Tenant.objects.filter(pk__in=[kept.pk, tenant_b.pk]).count() == 2
