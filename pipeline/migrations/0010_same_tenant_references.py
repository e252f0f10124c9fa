"""References between pipeline rows (and to members and teams) stay in one tenant, checked
by the database (PostgreSQL)."""

from django.db import migrations

from tenants.same_tenant import same_tenant_references, tenant_id_keys


class Migration(migrations.Migration):
    dependencies = [
        ("pipeline", "0009_dirtyday_failures"),
        ("tenants", "0005_same_tenant_references"),
    ]

    operations = [
        tenant_id_keys("pipeline_lead", "pipeline_deal", "pipeline_dealstage"),
        same_tenant_references(
            ("pipeline_lead", "owner_id", "tenants_membership"),
            ("pipeline_lead", "created_owner_id", "tenants_membership"),
            ("pipeline_lead", "team_id", "tenants_team"),
            ("pipeline_activity", "lead_id", "pipeline_lead"),
            ("pipeline_activity", "rep_id", "tenants_membership"),
            ("pipeline_deal", "lead_id", "pipeline_lead"),
            ("pipeline_deal", "stage_id", "pipeline_dealstage"),
            ("pipeline_deal", "owner_id", "tenants_membership"),
            ("pipeline_dealstagechange", "deal_id", "pipeline_deal"),
            ("pipeline_dealstagechange", "stage_id", "pipeline_dealstage"),
            ("pipeline_stagetransition", "lead_id", "pipeline_lead"),
            ("pipeline_stagetransition", "actor_id", "tenants_membership"),
            ("pipeline_stagetransition", "owner_id", "tenants_membership"),
            ("pipeline_stagetransition", "team_id", "tenants_team"),
        ),
    ]
