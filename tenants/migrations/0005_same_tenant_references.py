"""A membership's team is in the membership's tenant, checked by the database (PostgreSQL)."""

from django.db import migrations

from tenants.same_tenant import same_tenant_references, tenant_id_keys


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0004_api_token_rate_limits"),
    ]

    operations = [
        tenant_id_keys("tenants_team", "tenants_membership"),
        same_tenant_references(("tenants_membership", "team_id", "tenants_team")),
    ]
