"""PostgreSQL row-level security holds for raw SQL run as the application role."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from tenants import rls
from tenants.context import ALL_TENANTS_SETTING, TENANT_SETTING, tenant_context
from tenants.tenant_proof import tenant_setting_value
from tests.factories import TeamFactory

pytestmark = pytest.mark.postgres


def _count_teams() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM tenants_team")
        return cursor.fetchone()[0]


def _set(name: str, value: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config(%s, %s, true)", [name, value])


def _enter(tenant_id: int, *, pid: int | None = None) -> None:
    """Set the tenant as the application does: with its proof for this session (or `pid`'s)."""
    connection.ensure_connection()
    own = connection.connection.info.backend_pid
    _set(TENANT_SETTING, tenant_setting_value(tenant_id, own if pid is None else pid))


@pytest.fixture
def two_tenants_teams(tenant_a, tenant_b):
    TeamFactory(tenant=tenant_a, name="A1")
    TeamFactory(tenant=tenant_a, name="A2")
    TeamFactory(tenant=tenant_b, name="B1")
    return tenant_a, tenant_b


def test_app_role_is_neither_superuser_nor_owner_nor_bypassrls(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_user, session_user, r.rolsuper, r.rolbypassrls, t.tableowner "
            "FROM pg_roles r, pg_tables t WHERE r.rolname = current_user "
            "AND t.tablename = 'tenants_team'"
        )
        current, session, is_super, bypass, owner = cursor.fetchone()
    assert current == session  # connected as the role, not switched into it
    assert (is_super, bypass) == (False, False)
    assert owner != current


def test_no_tenant_set_sees_no_rows(two_tenants_teams):
    _set(TENANT_SETTING, "")
    assert _count_teams() == 0


def test_wrong_tenant_sees_only_its_own_rows(two_tenants_teams):
    _, tenant_b = two_tenants_teams
    _enter(tenant_b.pk)
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM tenants_team ORDER BY name")
        assert [r[0] for r in cursor.fetchall()] == ["B1"]


def test_writing_into_another_tenant_is_refused(two_tenants_teams):
    tenant_a, tenant_b = two_tenants_teams
    _enter(tenant_b.pk)
    with (
        pytest.raises(DatabaseError, match="row-level security"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "INSERT INTO tenants_team (tenant_id, name, created_at) VALUES (%s, 'x', now())",
            [tenant_a.pk],
        )
    with connection.cursor() as cursor:
        cursor.execute("UPDATE tenants_team SET name = 'y' WHERE tenant_id = %s", [tenant_a.pk])
        assert cursor.rowcount == 0


@pytest.mark.parametrize("is_local", [True, False])
def test_a_tenant_id_set_without_its_proof_opens_nothing(two_tenants_teams, is_local):
    # given the app role, as SQL injected into a request would run
    tenant_a, tenant_b = two_tenants_teams
    for tenant in (tenant_a, tenant_b):
        # when it names a tenant in the setting the policies read, as a bare id
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config(%s, %s, %s)", [TENANT_SETTING, str(tenant.pk), is_local]
            )
        # then it sees none of that tenant's rows
        assert _count_teams() == 0


def test_a_proof_made_for_another_session_or_with_another_key_opens_nothing(
    two_tenants_teams, settings
):
    # given tenant B's proof as another session (seen in its statement text) would carry it
    _, tenant_b = two_tenants_teams
    connection.ensure_connection()
    own = connection.connection.info.backend_pid
    _enter(tenant_b.pk, pid=own + 1)
    # then it opens nothing in this session
    assert _count_teams() == 0
    # and a proof made with any other key opens nothing either
    settings.DATABASE_RLS_KEY = "a key the database does not hold"
    _enter(tenant_b.pk)
    assert _count_teams() == 0
    # while the application's own proof opens exactly tenant B
    settings.DATABASE_RLS_KEY = ""
    _enter(tenant_b.pk)
    assert _count_teams() == 1


def test_the_proof_key_is_out_of_the_app_roles_reach(db):
    with (
        pytest.raises(DatabaseError, match="permission denied"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(f"SELECT ipad FROM {rls.KEY_SCHEMA}.rls_key")


def test_a_process_with_another_key_fails_loudly_instead_of_seeing_nothing(tenant_a, settings):
    from tenants.context import TenantProofRefused

    # given a process configured with a key the database was not migrated with
    settings.DATABASE_RLS_KEY = "rotated without running migrate"
    # when it enters a tenant, then it is told what to do
    with pytest.raises(TenantProofRefused, match="migrate"), tenant_context(tenant_a):
        pass


@pytest.mark.parametrize("is_local", [True, False])
def test_the_old_all_tenants_setting_opens_nothing(two_tenants_teams, is_local):
    # given no tenant set
    _set(TENANT_SETTING, "")
    # when the app role sets the setting that once meant "every tenant"
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config(%s, 'on', %s)", [ALL_TENANTS_SETTING, is_local])
    # then it still sees no tenant's rows
    assert _count_teams() == 0


def test_every_tenant_owned_table_has_forced_rls(db):
    tables = rls.tenant_owned_tables()
    assert "tenants_team" in tables and "tenants_apitoken" in tables
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relname = ANY(%s) "
            "AND relrowsecurity AND relforcerowsecurity",
            [tables],
        )
        assert sorted(r[0] for r in cursor.fetchall()) == tables


@pytest.mark.django_db(transaction=True)
def test_tenant_setting_never_leaks_to_the_next_request(client, tenant_a, token_a):
    # given a request served for tenant A on this (persistent) connection
    response = client.post(
        "/graphql/",
        {"query": "{ teams { totalCount } }"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token_a}",
    )
    assert response.status_code == 200
    # then, outside that request's transaction, the connection carries no tenant
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting(%s, true), current_setting(%s, true)",
            [TENANT_SETTING, ALL_TENANTS_SETTING],
        )
        assert [v or "" for v in cursor.fetchone()] == ["", ""]
    assert _count_teams() == 0


@pytest.mark.django_db(transaction=True)
def test_context_restores_the_outer_scope(tenant_a, tenant_b):
    TeamFactory(tenant=tenant_a, name="A1")
    with tenant_context(tenant_a):
        with tenant_context(tenant_b):
            assert _count_teams() == 0
        assert _count_teams() == 1
