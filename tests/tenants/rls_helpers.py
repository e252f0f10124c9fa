"""Test-only ways to widen row-level security from the schema owner's side (PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import connections
from psycopg import sql

from tenants import rls

WIDE_POLICY = "test_every_row_visible"


@contextmanager
def every_row_visible_to_the_app_role() -> Iterator[None]:
    """Give the app role a policy that shows every tenant's rows for the block.

    Only the schema owner can do this (the app role has no setting that would): a test
    uses it to prove that a statement's own filters keep other tenants out. Needs a
    transactional test (the owner's DDL must not wait on the test's open transaction).
    """
    role = sql.Identifier(settings.DATABASE_APP_ROLE)
    tables = [sql.Identifier(table) for table in rls.tenant_owned_tables()]
    policy = sql.Identifier(WIDE_POLICY)
    with connections["owner"].cursor() as cursor:
        for table in tables:
            cursor.execute(
                sql.SQL("CREATE POLICY {} ON {} TO {} USING (true)").format(policy, table, role)
            )
    try:
        yield
    finally:
        with connections["owner"].cursor() as cursor:
            for table in tables:
                cursor.execute(sql.SQL("DROP POLICY {} ON {}").format(policy, table))
