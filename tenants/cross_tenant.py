"""The few reads (and one delete) that must cross tenants, each answering only its question.

On PostgreSQL the app role cannot see several tenants at once (row-level security has no
switch it could flip), so each selector here calls a narrow SECURITY DEFINER function of
`tenants.rls`; on SQLite (no row security) the same question is asked through the ORM with
every tenant visible. Anything else that spans tenants loops over them, each in its own
`tenant_context`: the Tenant table itself is not tenant-owned.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction

from tenants import rls
from tenants.context import dangerously_all_tenants, no_tenant, tenant_context
from tenants.models import ApiToken, Membership, Tenant


def _is_postgres() -> bool:
    return connection.vendor == "postgresql"


def api_token_for_key(*, key_id: str, secret_hash: str) -> ApiToken | None:
    """The token (and its tenant) with this public key id and secret hash, in any tenant."""
    if not _is_postgres():
        with dangerously_all_tenants():
            return (
                ApiToken.objects.select_related("tenant")
                .filter(key_id=key_id, secret_hash=secret_hash)
                .first()
            )
    # One statement, as select_related would: the tenant's columns come prefixed.
    tenant_fields = [f.attname for f in Tenant._meta.concrete_fields]
    tenant_columns = ", ".join(
        f'w."{Tenant._meta.get_field(name).column}" AS "tenant__{name}"' for name in tenant_fields
    )
    tokens = list(
        ApiToken.all_tenants.raw(
            f"SELECT t.*, {tenant_columns} FROM public.{rls.TOKEN_FOR_KEY_FUNCTION}(%s, %s) t "
            f'JOIN "{Tenant._meta.db_table}" w ON w.id = t.tenant_id',
            [key_id, secret_hash],
        )
    )
    if not tokens:
        return None
    token = tokens[0]
    token.tenant = Tenant(**{name: getattr(token, f"tenant__{name}") for name in tenant_fields})
    token.tenant._state.adding = False
    token.tenant._state.db = token._state.db
    return token


def user_memberships(*, user: AbstractBaseUser) -> list[tuple[int, str]]:
    """(tenant id, role) of the user's active memberships in active tenants, by slug."""
    if _is_postgres():
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT tenant_id, role FROM public.{rls.USER_MEMBERSHIPS_FUNCTION}(%s)",
                [user.pk],
            )
            return [(tenant_id, role) for tenant_id, role in cursor.fetchall()]
    with dangerously_all_tenants():
        return list(
            Membership.objects.filter(user=user, is_active=True, tenant__is_active=True)
            .order_by("tenant__slug")
            .values_list("tenant_id", "role")
        )


def user_tenant_ids(*, user: AbstractBaseUser) -> list[int]:
    """Ids of the tenants holding rows that point at the user (memberships, tokens made)."""
    if _is_postgres():
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT * FROM public.{rls.USER_TENANT_IDS_FUNCTION}(%s)", [user.pk])
            return [row[0] for row in cursor.fetchall()]
    with dangerously_all_tenants():
        ids = set(Membership.objects.filter(user=user).values_list("tenant_id", flat=True))
        ids |= set(ApiToken.objects.filter(created_by=user).values_list("tenant_id", flat=True))
    return sorted(ids)


@transaction.atomic
def user_delete(*, user: AbstractBaseUser) -> None:
    """Delete an account: its rows in each tenant first (each in that tenant's context),
    then the account itself, whose remaining references are then all gone."""
    for tenant_id in user_tenant_ids(user=user):
        with tenant_context(tenant_id):
            # Membership deletion cascades in the ORM (leads' owners, activities' reps).
            Membership.objects.filter(user=user).delete()
            ApiToken.objects.filter(created_by=user).update(created_by=None)
    with no_tenant():
        user.delete()
