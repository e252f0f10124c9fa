"""Migration operations: references between tenant-owned rows stay in one tenant (PostgreSQL).

Django declares each foreign key on one column (`lead_id REFERENCES pipeline_lead (id)`),
which lets an activity of tenant A point at a lead of tenant B if the Python checks are
ever bypassed. A composite key `(tenant_id, lead_id) REFERENCES pipeline_lead (tenant_id,
id)` makes the database refuse it too; it needs a UNIQUE (tenant_id, id) on the referenced
table. SQLite has no row-level security and keeps the ORM checks only.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

# NOTE: deferred like Django's own foreign keys, so rows written in one transaction may
# arrive in any order; ON DELETE stays NO ACTION (Django's collector cascades and sets
# NULL first, and a NULL column satisfies a composite key: MATCH SIMPLE).
_ADD_REFERENCE = (
    'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" FOREIGN KEY (tenant_id, "{column}") '
    'REFERENCES "{target}" (tenant_id, id) DEFERRABLE INITIALLY DEFERRED'
)


def unique_key_name(table: str) -> str:
    return f"{table}_tenant_id_id_key"[:63]


def reference_name(table: str, column: str) -> str:
    return f"{table}_{column}_same_tenant"[:63]


def _run(schema_editor: Any, statements: list[str]) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for statement in statements:
        schema_editor.execute(statement)


def tenant_id_keys(*tables: str) -> migrations.RunPython:
    """UNIQUE (tenant_id, id) on each table, so composite references can point at it."""
    forward = [
        f'ALTER TABLE "{t}" ADD CONSTRAINT "{unique_key_name(t)}" UNIQUE (tenant_id, id)'
        for t in tables
    ]
    backward = [f'ALTER TABLE "{t}" DROP CONSTRAINT "{unique_key_name(t)}"' for t in tables]
    return migrations.RunPython(
        lambda apps, schema_editor: _run(schema_editor, forward),
        lambda apps, schema_editor: _run(schema_editor, backward),
    )


def same_tenant_references(*references: tuple[str, str, str]) -> migrations.RunPython:
    """A composite key per (table, column, referenced table)."""
    forward = [
        _ADD_REFERENCE.format(
            table=table, name=reference_name(table, column), column=column, target=target
        )
        for table, column, target in references
    ]
    backward = [
        f'ALTER TABLE "{table}" DROP CONSTRAINT "{reference_name(table, column)}"'
        for table, column, _ in references
    ]
    return migrations.RunPython(
        lambda apps, schema_editor: _run(schema_editor, forward),
        lambda apps, schema_editor: _run(schema_editor, backward),
    )
