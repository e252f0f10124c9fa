"""PostgreSQL row-level security: the app role, its grants, one policy per tenant-owned table,
the few cross-tenant functions, and the app role's statement timeout.

Run after every `migrate` (post_migrate), as the schema owner, so a new tenant-owned model
is covered by the same policy the moment its table exists. Idempotent.

The app role sees a row only when its `tenant_id` is the transaction's `app.tenant_id` AND
that value carries the application's proof for this session (`tenants.tenant_proof`):
there is no setting that widens this, and a tenant id set without its proof opens
nothing, so SQL injected into the app's statements cannot read or write across tenants.
What must cross tenants asks one of the narrow SECURITY DEFINER functions below (owned by
the schema owner, who alone has a policy that sees every row), which return only what
that path needs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import connections
from psycopg import sql

from tenants.context import TENANT_SETTING
from tenants.tenant_proof import hmac_pads, rls_key

logger = logging.getLogger(__name__)

POLICY_NAME = "tenant_isolation"
OWNER_POLICY_NAME = "schema_owner_maintenance"

# The cross-tenant functions, by name (see cross_tenant_functions for their contracts).
TOKEN_FOR_KEY_FUNCTION = "app_api_token_for_key"
USER_MEMBERSHIPS_FUNCTION = "app_user_memberships"
USER_TENANT_IDS_FUNCTION = "app_user_tenant_ids"
# The tenant the transaction's setting proves (NULL when it proves none), read by the policies.
CURRENT_TENANT_FUNCTION = "app_current_tenant"
# Where the proof's key lives: a schema the app role has no privilege on.
KEY_SCHEMA = "app_private"


def tenant_owned_models() -> list[type[Any]]:
    """Every installed model of tenant-owned rows (TenantOwnedModel), by table name."""
    from tenants.models import TenantOwnedModel

    return sorted(
        (
            model
            for model in apps.get_models()
            if issubclass(model, TenantOwnedModel) and not model._meta.proxy
        ),
        key=lambda model: model._meta.db_table,
    )


def tenant_owned_tables() -> list[str]:
    return [model._meta.db_table for model in tenant_owned_models()]


def policy_predicate() -> sql.Composed:
    # NOTE: the function is read in a scalar subquery, which the planner evaluates once per
    # statement (an InitPlan); as a plain call it would run for every row a statement read.
    return sql.SQL("(tenant_id = (SELECT public.{}()))").format(
        sql.Identifier(CURRENT_TENANT_FUNCTION)
    )


def store_key(cursor: Any) -> None:
    """Keep the proof's padded HMAC keys where only the schema owner reads them."""
    schema = sql.Identifier(KEY_SCHEMA)
    cursor.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema))
    cursor.execute(sql.SQL("REVOKE ALL ON SCHEMA {} FROM PUBLIC").format(schema))
    cursor.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {}.rls_key (one boolean PRIMARY KEY DEFAULT true "
            "CHECK (one), ipad bytea NOT NULL, opad bytea NOT NULL)"
        ).format(schema)
    )
    ipad, opad = hmac_pads(rls_key())
    cursor.execute(
        sql.SQL(
            "INSERT INTO {}.rls_key (ipad, opad) VALUES (%s, %s) "
            "ON CONFLICT (one) DO UPDATE SET ipad = EXCLUDED.ipad, opad = EXCLUDED.opad"
        ).format(schema),
        [ipad, opad],
    )


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
    # A runaway statement is cancelled instead of holding its connection and locks; a
    # long rebuild raises it for its own transaction (tenants.context).
    # NOTE: for this database only (the role may serve others with other needs).
    cursor.execute("SELECT current_database()")
    database = cursor.fetchone()[0]
    cursor.execute(
        sql.SQL("ALTER ROLE {} IN DATABASE {} SET statement_timeout = {}").format(
            sql.Identifier(role),
            sql.Identifier(database),
            sql.Literal(settings.DATABASE_APP_STATEMENT_TIMEOUT),
        )
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


def enable_policies(cursor: Any, *, owner_sees_all: bool) -> None:
    predicate = policy_predicate()
    for table in tenant_owned_tables():
        ident = sql.Identifier(table)
        cursor.execute(sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(ident))
        # FORCE: the table owner is subject to the policies too (its own one below).
        cursor.execute(sql.SQL("ALTER TABLE {} FORCE ROW LEVEL SECURITY").format(ident))
        for name in (POLICY_NAME, OWNER_POLICY_NAME):
            cursor.execute(
                sql.SQL("DROP POLICY IF EXISTS {} ON {}").format(sql.Identifier(name), ident)
            )
        cursor.execute(
            sql.SQL("CREATE POLICY {} ON {} USING {} WITH CHECK {}").format(
                sql.Identifier(POLICY_NAME), ident, predicate, predicate
            )
        )
        if owner_sees_all:
            # The schema owner (migrations, maintenance, the SECURITY DEFINER functions)
            # sees every row without any setting; the app role cannot become it.
            cursor.execute(
                sql.SQL(
                    "CREATE POLICY {} ON {} TO CURRENT_USER USING (true) WITH CHECK (true)"
                ).format(sql.Identifier(OWNER_POLICY_NAME), ident)
            )


@dataclass(frozen=True)
class CrossTenantFunction:
    """A SECURITY DEFINER function an app above tenants needs (e.g. pipeline's sweep over
    dirty days): `returns` and `body` name tables as {key}, each key a model of `tables`."""

    name: str
    args: str
    returns: str
    body: str
    tables: tuple[tuple[str, Any], ...]


_registered: dict[str, CrossTenantFunction] = {}


def register_cross_tenant_function(function: CrossTenantFunction) -> CrossTenantFunction:
    """Called from an AppConfig.ready(): created with the others after every migrate."""
    _registered[function.name] = function
    return function


def _table(model: Any) -> str:
    return f'public."{model._meta.db_table}"'


def cross_tenant_functions() -> list[tuple[str, str, sql.Composable]]:
    """(name, argument types, CREATE statement) of each cross-tenant function.

    Each returns only what one path needs, for exactly the key it is given: no pattern,
    no list, no "all" (tests/tenants/test_rls_hardening.py calls them with hostile input).
    """
    from tenants.models import ApiToken, Membership, Tenant

    tables = {
        key: _table(model)
        for key, model in (("token", ApiToken), ("membership", Membership), ("tenant", Tenant))
    }
    # TRICKY: a SECURITY DEFINER function runs as its owner, so it pins search_path (no
    # object of the caller's can shadow a table or an operator) and names tables in full.
    head = (
        "CREATE OR REPLACE FUNCTION public.{name}({args}) RETURNS {returns} LANGUAGE sql "
        "STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS "
    )

    def function(
        name: str, args: str, returns: str, body: str, names: dict[str, str] = tables
    ) -> tuple[str, str, Any]:
        arg_types = ", ".join(a.split()[-1] for a in args.split(", ")) if args else ""
        statement = sql.SQL(head).format(
            name=sql.Identifier(name),
            args=sql.SQL(args),
            returns=sql.SQL(returns.format(**names)),
        ) + sql.Literal(body.format(**names))
        return name, arg_types, statement

    # TRICKY: the setting is "<tenant id>.<hex HMAC-SHA256 of '<tenant id>:<backend pid>'>";
    # anything else (a bare id, another session's proof, another key's) proves no tenant.
    # NOTE: digits are checked with translate(), not a regular expression: this runs once
    # per statement and table, and the regex alone cost about 30 us a call (measured).
    current_tenant = (
        "SELECT CASE WHEN length(s.id) BETWEEN 1 AND 18 AND translate(s.id, '0123456789', '') "
        "= '' AND s.proof = encode(sha256(k.opad || sha256(k.ipad || convert_to(s.id || ':' "
        "|| pg_backend_pid()::text, 'UTF8'))), 'hex') THEN s.id::bigint END "
        "FROM (SELECT split_part(v, '.', 1) AS id, split_part(v, '.', 2) AS proof FROM "
        f"(SELECT current_setting('{TENANT_SETTING}', true) AS v) AS x) AS s, "
        f"{KEY_SCHEMA}.rls_key AS k"
    )
    return [
        # The tenant of the transaction, for the policies (any role may call it: it only
        # says which tenant the caller's own setting proves).
        function(CURRENT_TENANT_FUNCTION, "", "bigint", current_tenant),
        # Token authentication before the tenant is known: the token whose public key id
        # AND secret hash both match (the hash of a 256-bit secret), or nothing.
        function(
            TOKEN_FOR_KEY_FUNCTION,
            "p_key_id text, p_secret_hash text",
            "SETOF {token}",
            "SELECT * FROM {token} WHERE key_id = p_key_id AND secret_hash = p_secret_hash",
        ),
        # A signed-in user's workspaces: tenant id and role of their active memberships
        # in active tenants.
        function(
            USER_MEMBERSHIPS_FUNCTION,
            "p_user_id bigint",
            "TABLE(tenant_id bigint, role text)",
            "SELECT m.tenant_id, m.role::text FROM {membership} m JOIN {tenant} t "
            "ON t.id = m.tenant_id WHERE m.user_id = p_user_id AND m.is_active "
            "AND t.is_active ORDER BY t.slug",
        ),
        # Deleting an account: the tenants holding rows that point at it.
        function(
            USER_TENANT_IDS_FUNCTION,
            "p_user_id bigint",
            "SETOF bigint",
            "SELECT tenant_id FROM {membership} WHERE user_id = p_user_id UNION "
            "SELECT tenant_id FROM {token} WHERE created_by_id = p_user_id ORDER BY 1",
        ),
    ] + [
        function(
            f.name,
            f.args,
            f.returns,
            f.body,
            {key: _table(model) for key, model in f.tables},
        )
        for f in sorted(_registered.values(), key=lambda f: f.name)
    ]


def create_functions(cursor: Any, role: str) -> None:
    for name, arg_types, statement in cross_tenant_functions():
        cursor.execute(statement)
        signature = sql.SQL("public.{}({})").format(sql.Identifier(name), sql.SQL(arg_types))
        cursor.execute(sql.SQL("REVOKE ALL ON FUNCTION {} FROM PUBLIC").format(signature))
        cursor.execute(
            sql.SQL("GRANT EXECUTE ON FUNCTION {} TO {}").format(signature, sql.Identifier(role))
        )


def hide_other_sessions(cursor: Any, role: str) -> None:
    """Keep the app role from reading other sessions' statements in pg_stat_activity.

    TRICKY: PostgreSQL shows a session's query text to every session of the same role, and
    psycopg binds parameters client-side, so one tenant's request could read the values
    another tenant's request is writing. Only a superuser can revoke these catalog grants;
    monitoring keeps them through pg_read_all_stats (pg_monitor).
    """
    cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    if not cursor.fetchone()[0]:
        logger.warning(
            "The schema owner is not a superuser: revoke SELECT on pg_stat_activity and "
            "EXECUTE on pg_stat_get_activity from PUBLIC by hand, or %r can read the "
            "statements of other sessions.",
            role,
        )
        return
    for statement in (
        "REVOKE EXECUTE ON FUNCTION pg_catalog.pg_stat_get_backend_activity(integer) FROM PUBLIC",
        "GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_get_backend_activity(integer) "
        "TO pg_read_all_stats",
        "REVOKE SELECT ON pg_catalog.pg_stat_activity FROM PUBLIC",
        "REVOKE EXECUTE ON FUNCTION pg_catalog.pg_stat_get_activity(integer) FROM PUBLIC",
        "GRANT SELECT ON pg_catalog.pg_stat_activity TO pg_read_all_stats",
        "GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_get_activity(integer) TO pg_read_all_stats",
    ):
        cursor.execute(statement)


def sync(using: str = "owner") -> None:
    """Create the app role if needed, grant it table access, and (re)apply every policy."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    role = settings.DATABASE_APP_ROLE
    if using != "owner":
        # The app role's own post_migrate (e.g. after a test flush) cannot change the schema.
        return
    separate = role != connection.settings_dict["USER"]
    if not separate:
        logger.warning("The app connects as the schema owner %r: RLS cannot hold.", role)
    with connection.cursor() as cursor:
        ensure_app_role(cursor, role, settings.DATABASE_APP_PASSWORD)
        grant_app_role(cursor, role)
        store_key(cursor)
        create_functions(cursor, role)  # before the policies, which call one of them
        enable_policies(cursor, owner_sees_all=separate)
        if separate:
            hide_other_sessions(cursor, role)


def sync_after_migrate(sender: Any, using: str = "default", **kwargs: Any) -> None:
    # post_migrate fires once per app; run once, after the last app of ours.
    if getattr(sender, "label", None) != "tenants":
        return
    sync(using=using)
