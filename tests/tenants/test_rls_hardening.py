"""Row-level security holds against SQL the app role itself runs (an injection's view).

Every test here runs its hostile SQL on the app's own connection ("default", role kpi_app)
with tenant A in context, and checks that tenant B's rows stay unread and unwritten.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
import pytest
from django.apps import apps
from django.conf import settings
from django.db import DatabaseError, OperationalError, connection, connections, transaction

from pipeline import cross_tenant as pipeline_cross_tenant
from pipeline.models import DirtyDay, Lead
from tenants import cross_tenant, members, rls, services, tokens
from tenants.context import TENANT_SETTING, statement_timeout_raised, tenant_context
from tenants.models import ApiToken, Membership, TenantOwnedModel
from tenants.same_tenant import reference_name
from tests.factories import TeamFactory, UserFactory

pytestmark = pytest.mark.postgres


def _rows(statement: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(statement, params or [])
        return cursor.fetchall()


def _refused(statement: str, params: list[Any] | None = None) -> str | None:
    """The database's error message, or None when the statement ran."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement, params or [])
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    except DatabaseError as error:
        return str(error)
    return None


@pytest.fixture
def b_rows(tenant_a: Any, tenant_b: Any) -> dict[str, Any]:
    """Tenant B's lead, token and membership, and a token secret of B's."""
    user_b = UserFactory(username="bob")
    membership = members.membership_add(tenant=tenant_b, user=user_b, role="admin")
    token, secret = services.api_token_create(tenant=tenant_b, name="b", scopes=["kpis:read"])
    with tenant_context(tenant_b):
        lead = Lead.objects.create(company="Globex customer")
        DirtyDay.objects.create(day=dt.date(2026, 5, 1))
    return {"lead": lead, "token": token, "secret": secret, "membership": membership}


def _b_counts(tenant_b: Any) -> tuple[int, ...]:
    with transaction.atomic():  # a refused read rolls back to here
        return tuple(
            _rows(f"SELECT count(*) FROM {table} WHERE tenant_id = %s", [tenant_b.pk])[0][0]
            for table in ("pipeline_lead", "tenants_apitoken", "tenants_membership")
        )


HOSTILE_SETTINGS = [
    "SELECT set_config('app.all_tenants', 'on', false)",
    "SELECT set_config('app.all_tenants', 'on', true)",
    "SET app.all_tenants = 'on'",
    "RESET app.tenant_id",
    "SET app.tenant_id = ''",
    "RESET ALL",
    "SET row_security = off",
    "SELECT set_config('app.tenant_id', NULL, true)",
]


@pytest.mark.parametrize("statement", HOSTILE_SETTINGS)
def test_no_setting_lets_the_app_role_read_another_tenant(tenant_a, tenant_b, b_rows, statement):
    with tenant_context(tenant_a):
        # given tenant A in context, and the app role runs a hostile setting
        with connection.cursor() as cursor:
            cursor.execute(statement)
        # when it reads tenant B's leads, tokens and memberships
        try:
            counts = _b_counts(tenant_b)
        except DatabaseError as error:  # row_security = off: refused outright
            assert "row-level security" in str(error)
            return
        # then it sees none
        assert counts == (0, 0, 0)


@pytest.mark.parametrize("statement", HOSTILE_SETTINGS)
def test_no_setting_lets_the_app_role_write_another_tenant(tenant_a, tenant_b, b_rows, statement):
    with tenant_context(tenant_a):
        with connection.cursor() as cursor:
            cursor.execute(statement)
        # when it updates, deletes and inserts tenant B's rows
        update = _refused(
            "UPDATE pipeline_lead SET company = 'hacked' WHERE tenant_id = %s", [tenant_b.pk]
        )
        delete = _refused("DELETE FROM tenants_apitoken WHERE tenant_id = %s", [tenant_b.pk])
        insert = _refused(
            "INSERT INTO tenants_team (tenant_id, name, created_at) VALUES (%s, 'x', now())",
            [tenant_b.pk],
        )
        with connection.cursor() as cursor:
            cursor.execute("RESET ALL")  # so that the checks below read normally
    # then the insert is refused and nothing of B's changed
    assert insert is not None and "row-level security" in insert
    assert update is None or "row-level security" in update
    assert delete is None or "row-level security" in delete
    with tenant_context(tenant_b):
        assert Lead.objects.get().company == "Globex customer"
        assert ApiToken.objects.count() == 1
        assert not TeamFactory._meta.model.objects.exists()


@pytest.mark.parametrize(
    "statement",
    [
        "SET ROLE {owner}",
        "SET SESSION AUTHORIZATION {owner}",
        "SET ROLE postgres",
        "SET SESSION AUTHORIZATION postgres",
        "ALTER TABLE pipeline_lead DISABLE ROW LEVEL SECURITY",
        "ALTER TABLE pipeline_lead NO FORCE ROW LEVEL SECURITY",
        "DROP POLICY tenant_isolation ON pipeline_lead",
        "CREATE POLICY mine ON pipeline_lead USING (true)",
        "ALTER ROLE CURRENT_USER BYPASSRLS",
    ],
)
def test_the_app_role_cannot_become_another_role_or_change_the_policies(
    tenant_a, tenant_b, b_rows, statement
):
    owner = connections["owner"].settings_dict["USER"]
    with tenant_context(tenant_a):
        error = _refused(statement.format(owner=owner))
        assert error is not None and ("permission denied" in error or "must be" in error)
        assert _rows("SELECT current_user")[0][0] == settings.DATABASE_APP_ROLE
        assert _b_counts(tenant_b) == (0, 0, 0)


def test_token_function_returns_a_token_only_to_the_holder_of_its_secret(
    tenant_a, tenant_b, b_rows
):
    token = b_rows["token"]
    good_hash = tokens.hash_secret(tokens.parse(b_rows["secret"]).secret)
    function = f"public.{rls.TOKEN_FOR_KEY_FUNCTION}"
    with tenant_context(tenant_a):
        # when the app role calls it with hostile arguments
        hostile = [
            (token.key_id, "0" * 64),
            (token.key_id, ""),
            ("%", "%"),
            (token.key_id, "' OR '1'='1"),
            ("' OR '1'='1", "' OR '1'='1"),
            (None, good_hash),
            (token.key_id, None),
        ]
        answers = [_rows(f"SELECT id FROM {function}(%s, %s)", list(args)) for args in hostile]
        # then nothing; only the exact key id and secret hash return B's token
        assert answers == [[]] * len(hostile)
        assert _rows(
            f"SELECT id, tenant_id FROM {function}(%s, %s)", [token.key_id, good_hash]
        ) == [(token.pk, tenant_b.pk)]
        # and the table itself still shows A's context nothing of B's
        assert _b_counts(tenant_b) == (0, 0, 0)


def test_membership_and_dirty_day_functions_answer_only_their_narrow_question(
    tenant_a, tenant_b, b_rows, admin_a
):
    user_b = b_rows["membership"].user
    with tenant_context(tenant_a), connection.cursor() as cursor:
        # when the app role asks about B's user, and with hostile ids
        cursor.execute(f"SELECT * FROM public.{rls.USER_MEMBERSHIPS_FUNCTION}(%s)", [user_b.pk])
        columns = [c.name for c in cursor.description]
        memberships = cursor.fetchall()
        hostile = [
            _rows(f"SELECT * FROM public.{rls.USER_MEMBERSHIPS_FUNCTION}(%s)", [value])
            for value in (None, -1, 0)
        ]
        cursor.execute(f"SELECT * FROM public.{pipeline_cross_tenant.DIRTY_TENANTS_FUNCTION}()")
        dirty_columns = [c.name for c in cursor.description]
        dirty = cursor.fetchall()
    # then only tenant ids and roles come back, never names, emails or other columns
    assert (columns, memberships) == (["tenant_id", "role"], [(tenant_b.pk, "admin")])
    assert hostile == [[], [], []]
    assert (len(dirty_columns), dirty) == (1, [(tenant_b.pk,)])


def test_cross_tenant_functions_are_pinned_and_granted_to_the_app_role_only(db):
    rows = _rows(
        "SELECT proname, prosecdef, proconfig, "
        "has_function_privilege('public', p.oid, 'EXECUTE'), "
        "has_function_privilege(current_user, p.oid, 'EXECUTE') "
        "FROM pg_proc p WHERE proname = ANY(%s) ORDER BY proname",
        [[name for name, _, _ in rls.cross_tenant_functions()]],
    )
    assert rows == [
        (name, True, ["search_path=pg_catalog, pg_temp"], False, True)
        for name in sorted(name for name, _, _ in rls.cross_tenant_functions())
    ]


@pytest.mark.django_db(transaction=True)
def test_pg_stat_activity_shows_the_app_role_no_other_session(tenant_a):
    # given another session of the app role whose last statement carries a secret
    params = connections["default"].get_connection_params()
    with psycopg.connect(**params, autocommit=True) as other:
        other.execute("SELECT 'tenant-b-secret-7f3a'").fetchall()
        # when this session looks for it in the statistics views and functions
        errors = [
            _refused(statement)
            for statement in (
                "SELECT query FROM pg_stat_activity",
                "SELECT query FROM pg_stat_get_activity(NULL)",
                "SELECT pg_stat_get_backend_activity(s) FROM pg_stat_get_backend_idset() s",
            )
        ]
    # then each is refused
    assert all(error is not None and "permission denied" in error for error in errors)


def _composite_references() -> set[tuple[str, str, str]]:
    """(table, column, referenced table) of every key between tenant-owned rows."""
    found = set()
    for model in apps.get_models():
        if not issubclass(model, TenantOwnedModel):
            continue
        for field in model._meta.concrete_fields:
            target = field.related_model if field.is_relation else None
            if target is not None and issubclass(target, TenantOwnedModel):
                found.add((model._meta.db_table, field.column, target._meta.db_table))
    return found


def test_every_reference_between_tenant_owned_rows_is_checked_by_the_database(db):
    # given every foreign key from a tenant-owned model to another (from the models)
    expected = _composite_references()
    assert ("pipeline_activity", "lead_id", "pipeline_lead") in expected
    # then each has a composite key (tenant_id, column) -> (tenant_id, id)
    rows = _rows(
        "SELECT c.conname, src.relname, dst.relname, "
        "ARRAY(SELECT attname FROM unnest(c.conkey) WITH ORDINALITY k(n, i) "
        "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i), "
        "ARRAY(SELECT attname FROM unnest(c.confkey) WITH ORDINALITY k(n, i) "
        "JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.i) "
        "FROM pg_constraint c JOIN pg_class src ON src.oid = c.conrelid "
        "JOIN pg_class dst ON dst.oid = c.confrelid "
        "WHERE c.contype = 'f' AND array_length(c.conkey, 1) = 2"
    )
    found = {
        (table, columns[1], target)
        for _, table, target, columns, target_columns in rows
        if columns[0] == "tenant_id" and target_columns == ["tenant_id", "id"]
    }
    assert expected - found == set()
    assert {reference_name(t, c) for t, c, _ in expected} <= {row[0] for row in rows}


@pytest.mark.parametrize(
    ("statement", "constraint"),
    [
        (
            "INSERT INTO pipeline_activity (tenant_id, source_system, lead_id, type, "
            "occurred_at, call_outcome, email_delivered, email_opened, email_clicked, "
            "received_at) VALUES (%(a)s, '', %(b_lead)s, 'call', now(), '', false, false, "
            "false, now())",
            "pipeline_activity_lead_id_same_tenant",
        ),
        (
            "UPDATE tenants_membership SET team_id = %(b_team)s WHERE tenant_id = %(a)s",
            "tenants_membership_team_id_same_tenant",
        ),
        (
            "UPDATE pipeline_lead SET owner_id = %(b_membership)s WHERE tenant_id = %(a)s",
            "pipeline_lead_owner_id_same_tenant",
        ),
    ],
)
def test_a_reference_into_another_tenant_is_refused_by_the_database(
    tenant_a, tenant_b, b_rows, admin_a, statement, constraint
):
    # given rows of A, and B's lead, team and membership (whose ids A can guess)
    team_b = TeamFactory(tenant=tenant_b, name="NY IS")
    with tenant_context(tenant_a):
        Lead.objects.create(company="Acme customer")
        before = _rows("SELECT count(*) FROM pipeline_activity")[0][0]
        # when the app role, in A's context, writes an A row that points into B
        error = _refused(
            statement,
            {
                "a": tenant_a.pk,
                "b_lead": b_rows["lead"].pk,
                "b_team": team_b.pk,
                "b_membership": b_rows["membership"].pk,
            },
        )
        # then the database refuses it, and nothing changed
        assert error is not None and constraint in error
        assert _rows("SELECT count(*) FROM pipeline_activity")[0][0] == before
        assert Membership.objects.get(user=admin_a).team_id is None
        assert Lead.objects.get().owner_id is None


def test_the_app_role_has_the_configured_statement_timeout(db):
    assert _rows("SHOW statement_timeout") == [(settings.DATABASE_APP_STATEMENT_TIMEOUT,)]


@pytest.mark.django_db(transaction=True)
def test_a_rebuild_raises_the_timeout_for_its_transaction_only(tenant_a):
    with tenant_context(tenant_a):
        statement_timeout_raised()
        inside = _rows("SHOW statement_timeout")
    assert inside == [(settings.DATABASE_APP_LONG_STATEMENT_TIMEOUT,)]
    assert _rows("SHOW statement_timeout") == [(settings.DATABASE_APP_STATEMENT_TIMEOUT,)]


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_a_statement_beyond_the_role_timeout_is_cancelled_cleanly(tenant_a, settings):
    # given the app role's timeout set (by the same sync as after migrate) to 200 ms
    original = settings.DATABASE_APP_STATEMENT_TIMEOUT
    settings.DATABASE_APP_STATEMENT_TIMEOUT = "200ms"
    rls.sync()
    connections["default"].close()
    try:
        # when a statement of the app runs longer
        with (
            pytest.raises(OperationalError, match="statement timeout"),
            tenant_context(tenant_a),
        ):
            _rows("SELECT pg_sleep(1)")
        # then it is cancelled with a database error, and the connection serves the next one
        assert _rows("SHOW statement_timeout") == [("200ms",)]
        with tenant_context(tenant_a):
            assert _rows("SELECT 1") == [(1,)]
    finally:
        settings.DATABASE_APP_STATEMENT_TIMEOUT = original
        rls.sync()
        connections["default"].close()


def test_cross_tenant_selectors_answer_through_the_functions(tenant_a, tenant_b, b_rows):
    # the Python side of the functions, as the token look-up and the sweep use them
    token = b_rows["token"]
    secret = tokens.parse(b_rows["secret"]).secret
    found = cross_tenant.api_token_for_key(
        key_id=token.key_id, secret_hash=tokens.hash_secret(secret)
    )
    wrong = cross_tenant.api_token_for_key(key_id=token.key_id, secret_hash="0" * 64)
    assert (found.pk, found.tenant.slug, wrong) == (token.pk, "globex", None)
    assert cross_tenant.user_memberships(user=b_rows["membership"].user) == [(tenant_b.pk, "admin")]
    assert pipeline_cross_tenant.tenants_with_dirty_days() == [tenant_b.pk]
    assert TENANT_SETTING == "app.tenant_id"
