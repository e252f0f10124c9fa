"""PostgreSQL row-level security: the app role, its grants and one policy per tenant-owned table.

Run after every `migrate` (post_migrate), as the schema owner, so a new tenant-owned model
is covered by the same policy the moment its table exists. Idempotent.
"""

from __future__ import annotations

import logging
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import connections
from psycopg import sql

from tenants.context import ALL_TENANTS_SETTING, TENANT_SETTING

logger = logging.getLogger(__name__)

POLICY_NAME = "tenant_isolation"


def tenant_owned_tables() -> list[str]:
    from tenants.models import TenantOwnedModel

    return sorted(
        model._meta.db_table
        for model in apps.get_models()
        if issubclass(model, TenantOwnedModel) and not model._meta.proxy
    )


def policy_predicate() -> sql.Composed:
    # TRICKY: current_setting(..., true) is NULL before the first set_config and '' after
    # a transaction that set it ended; NULLIF folds both into "no tenant" (sees nothing).
    # NOTE: each setting is read in a scalar subquery, which the planner evaluates once per
    # statement (an InitPlan); as plain calls they ran for every row a statement read
    # (about 0.5 us a row: 9 ms of a 1,000-lead history read).
    return sql.SQL(
        "(tenant_id = (SELECT NULLIF(current_setting({tenant}, true), '')::bigint)"
        " OR (SELECT current_setting({all}, true) = 'on'))"
    ).format(tenant=sql.Literal(TENANT_SETTING), all=sql.Literal(ALL_TENANTS_SETTING))


def ensure_app_role(cursor: Any, role: str, password: str) -> None:
    cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
    if cursor.fetchone() is None:
        cursor.execute(
            sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS").format(
                sql.Identifier(role)
            )
        )
    if password:
        cursor.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(password))
        )


def grant_app_role(cursor: Any, role: str) -> None:
    privileges = "SELECT, INSERT, UPDATE, DELETE"
    if settings.DATABASE_APP_GRANT_TRUNCATE:
        privileges += ", TRUNCATE"
    ident = sql.Identifier(role)
    cursor.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(ident))
    cursor.execute(
        sql.SQL("GRANT " + privileges + " ON ALL TABLES IN SCHEMA public TO {}").format(ident)
    )
    cursor.execute(
        sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {}").format(ident)
    )


def enable_policies(cursor: Any) -> None:
    predicate = policy_predicate()
    for table in tenant_owned_tables():
        ident = sql.Identifier(table)
        cursor.execute(sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(ident))
        # FORCE: the table owner is subject to the policy too.
        cursor.execute(sql.SQL("ALTER TABLE {} FORCE ROW LEVEL SECURITY").format(ident))
        cursor.execute(
            sql.SQL("DROP POLICY IF EXISTS {} ON {}").format(sql.Identifier(POLICY_NAME), ident)
        )
        cursor.execute(
            sql.SQL("CREATE POLICY {} ON {} USING {} WITH CHECK {}").format(
                sql.Identifier(POLICY_NAME), ident, predicate, predicate
            )
        )


def sync(using: str = "owner") -> None:
    """Create the app role if needed, grant it table access, and (re)apply every policy."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    role = settings.DATABASE_APP_ROLE
    if using != "owner":
        # The app role's own post_migrate (e.g. after a test flush) cannot change the schema.
        return
    if role == connection.settings_dict["USER"]:
        logger.warning("The app connects as the schema owner %r: RLS cannot hold.", role)
    with connection.cursor() as cursor:
        ensure_app_role(cursor, role, settings.DATABASE_APP_PASSWORD)
        grant_app_role(cursor, role)
        enable_policies(cursor)


def sync_after_migrate(sender: Any, using: str = "default", **kwargs: Any) -> None:
    # post_migrate fires once per app; run once, after the last app of ours.
    if getattr(sender, "label", None) != "tenants":
        return
    sync(using=using)
