"""Each member's first team span, in a migration of its own: the table's foreign keys are
created at the end of 0010 (deferred SQL), and PostgreSQL refuses that ALTER TABLE on a
table with rows inserted in the same transaction ("pending trigger events")."""

import datetime

import django.utils.timezone
from django.db import migrations


def backfill(apps, schema_editor):
    """Each member's first span: the current team, since always (no move is known).

    On PostgreSQL every tenant's rows: migrations run as the table owner, which row-level
    security lets through once it is not forced on it (restored right after, in the same
    transaction), as pipeline's 0008 does.
    """
    connection = schema_editor.connection
    forced = False
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT relforcerowsecurity FROM pg_class "
                "WHERE oid = 'tenants_membership'::regclass"
            )
            forced = cursor.fetchone()[0]
    if forced:
        schema_editor.execute("ALTER TABLE tenants_membership NO FORCE ROW LEVEL SECURITY")
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO tenants_memberteamspan "
            "(tenant_id, member_id, team_id, valid_from, valid_until, recorded_at) "
            "SELECT tenant_id, id, team_id, %s, NULL, %s FROM tenants_membership",
            [datetime.date(1, 1, 1), django.utils.timezone.now()],
        )
    if forced:
        schema_editor.execute("ALTER TABLE tenants_membership FORCE ROW LEVEL SECURITY")


class Migration(migrations.Migration):

    dependencies = [
        ("tenants", "0010_member_team_history"),
    ]

    operations = [
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
