"""Snapshot pages keep 30% free, so a refresh's in-place updates stay on their page (HOT):
no new index entries and no foreign-key checks. PostgreSQL only."""

from django.db import migrations


def _set(fillfactor: int):
    def run(apps, schema_editor) -> None:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(f"ALTER TABLE kpis_kpisnapshot SET (fillfactor = {fillfactor})")

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("kpis", "0002_members"),
    ]

    operations = [migrations.RunPython(_set(70), _set(100))]
