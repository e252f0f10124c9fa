"""A rule version's rule set, approvals, audit entries and qualifications, and the leads,
transitions and members they name, stay in their tenant, checked by the database
(PostgreSQL), as every other reference between tenant-owned rows is."""

from django.db import migrations

from tenants.same_tenant import same_tenant_references, tenant_id_keys


class Migration(migrations.Migration):
    dependencies = [
        ("handoff", "0001_rule_sets"),
        ("pipeline", "0010_same_tenant_references"),
        ("tenants", "0005_same_tenant_references"),
    ]

    operations = [
        # NOTE: the first reference into pipeline_stagetransition, so its key is made here.
        tenant_id_keys("handoff_ruleset", "handoff_ruleversion", "pipeline_stagetransition"),
        same_tenant_references(
            ("handoff_ruleversion", "rule_set_id", "handoff_ruleset"),
            ("handoff_ruleversion", "created_by_id", "tenants_membership"),
            ("handoff_approval", "version_id", "handoff_ruleversion"),
            ("handoff_approval", "member_id", "tenants_membership"),
            ("handoff_auditentry", "actor_id", "tenants_membership"),
            ("handoff_auditentry", "version_id", "handoff_ruleversion"),
            ("handoff_auditentry", "lead_id", "pipeline_lead"),
            ("handoff_qualification", "lead_id", "pipeline_lead"),
            ("handoff_qualification", "version_id", "handoff_ruleversion"),
            ("handoff_qualification", "transition_id", "pipeline_stagetransition"),
        ),
    ]
