"""KPI targets' setters and KPI tree nodes' trees and parents stay in one tenant, checked
by the database (PostgreSQL)."""

from django.db import migrations

from tenants.same_tenant import same_tenant_references, tenant_id_keys


class Migration(migrations.Migration):
    dependencies = [
        ("kpis", "0003_snapshot_fillfactor"),
        ("tenants", "0005_same_tenant_references"),
    ]

    operations = [
        tenant_id_keys("kpis_kpitree", "kpis_kpitreenode"),
        same_tenant_references(
            ("kpis_kpitarget", "set_by_id", "tenants_membership"),
            ("kpis_kpitreenode", "tree_id", "kpis_kpitree"),
            ("kpis_kpitreenode", "parent_id", "kpis_kpitreenode"),
        ),
    ]
