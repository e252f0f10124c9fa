"""An alert's rule, its events and comments, and the members they name stay in the alert's
tenant, checked by the database (PostgreSQL), as every other reference between
tenant-owned rows is."""

from django.db import migrations

from tenants.same_tenant import same_tenant_references, tenant_id_keys


class Migration(migrations.Migration):
    dependencies = [
        ("alerts", "0001_alert_rules_alerts_events"),
        ("tenants", "0005_same_tenant_references"),
    ]

    operations = [
        tenant_id_keys("alerts_alertrule", "alerts_alert"),
        same_tenant_references(
            ("alerts_alert", "rule_id", "alerts_alertrule"),
            ("alerts_alert", "acknowledged_by_id", "tenants_membership"),
            ("alerts_alert", "assignee_id", "tenants_membership"),
            ("alerts_alertevent", "alert_id", "alerts_alert"),
            ("alerts_alertevent", "actor_id", "tenants_membership"),
            ("alerts_alertcomment", "alert_id", "alerts_alert"),
            ("alerts_alertcomment", "author_id", "tenants_membership"),
        ),
    ]
