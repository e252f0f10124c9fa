"""Assignments, rotation states and SQL handoffs, and the leads, transitions, members, teams
and rule versions they name, stay in their tenant, checked by the database (PostgreSQL)."""

from django.db import migrations

from tenants.same_tenant import same_tenant_references


class Migration(migrations.Migration):
    dependencies = [
        ("handoff", "0003_routing_and_handoffs"),
        ("handoff", "0002_same_tenant_references"),
    ]

    operations = [
        same_tenant_references(
            ("handoff_assignment", "lead_id", "pipeline_lead"),
            ("handoff_assignment", "member_id", "tenants_membership"),
            ("handoff_assignment", "version_id", "handoff_ruleversion"),
            ("handoff_rotationstate", "team_id", "tenants_team"),
            ("handoff_handoff", "lead_id", "pipeline_lead"),
            ("handoff_handoff", "transition_id", "pipeline_stagetransition"),
            ("handoff_handoff", "version_id", "handoff_ruleversion"),
            ("handoff_handoff", "owner_id", "tenants_membership"),
        ),
    ]
