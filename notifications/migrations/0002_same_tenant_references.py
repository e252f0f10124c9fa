"""A notification's event and recipient, a delivery's event and endpoint, and an attempt's
delivery stay in one tenant, checked by the database (PostgreSQL)."""

from django.db import migrations

from tenants.same_tenant import same_tenant_references, tenant_id_keys


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0001_events_inbox_webhooks"),
        ("tenants", "0005_same_tenant_references"),
    ]

    operations = [
        tenant_id_keys(
            "notifications_event", "notifications_webhookendpoint", "notifications_webhookdelivery"
        ),
        same_tenant_references(
            ("notifications_notification", "event_id", "notifications_event"),
            ("notifications_notification", "recipient_id", "tenants_membership"),
            ("notifications_webhookdelivery", "event_id", "notifications_event"),
            ("notifications_webhookdelivery", "endpoint_id", "notifications_webhookendpoint"),
            ("notifications_webhookattempt", "delivery_id", "notifications_webhookdelivery"),
        ),
    ]
