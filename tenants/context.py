"""The current tenant of this thread/task, and the database setting that mirrors it.

One mechanism scopes everything: `tenant_context(tenant)` sets a context variable that
every tenant-owned manager filters on, and (on PostgreSQL) the transaction-local setting
`app.tenant_id` that row-level security policies check, signed so that only this
application can name a tenant there (`tenants.tenant_proof`). No setting lets the app role see
several tenants at once: cross-tenant paths loop over tenants each in its own context, or
ask one of the narrow functions of `tenants.cross_tenant`.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from django.db import connections, transaction


class HasPk(Protocol):
    """A Tenant, as far as a scope needs one (models imports this module: no import back)."""

    pk: int


TENANT_SETTING = "app.tenant_id"
# NOTE: no longer read by any policy (the app role can set any custom setting itself); kept
# so old sessions and tests can prove that setting it changes nothing.
ALL_TENANTS_SETTING = "app.all_tenants"


@dataclass(frozen=True)
class _Scope:
    tenant_id: int | None
    all_tenants: bool = False


_NO_SCOPE = _Scope(tenant_id=None)
_scope: contextvars.ContextVar[_Scope] = contextvars.ContextVar("tenant_scope", default=_NO_SCOPE)


class TenantNotSet(RuntimeError):
    """Raised when tenant-owned rows are read with no tenant in context."""


def current_tenant_id() -> int | None:
    """The id of the tenant in context, or None (none set, or all-tenants mode)."""
    return _scope.get().tenant_id


def in_all_tenants_mode() -> bool:
    return _scope.get().all_tenants


class TenantProofRefused(RuntimeError):
    """The database does not accept this process's tenant proof: its key is not ours."""


def _set_db_scope(scope: _Scope, using: str) -> None:
    from django.conf import settings

    from tenants.tenant_proof import tenant_setting_value

    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        if connection.settings_dict["USER"] != settings.DATABASE_APP_ROLE:
            # The schema owner (migrations, maintenance, bulk seeding) has its own policy that
            # sees every row; the setting only keeps the ORM and the owner's reads in step.
            cursor.execute(
                "SELECT set_config(%s, %s, true)",
                [TENANT_SETTING, "" if scope.tenant_id is None else str(scope.tenant_id)],
            )
            return
        value = tenant_setting_value(scope.tenant_id, connection.connection.info.backend_pid)
        # TRICKY: is_local=true makes the value last only until the transaction ends, so a
        # pooled connection can never carry one request's tenant into the next. The same
        # statement asks which tenant the policies now see: a key that differs from the
        # database's fails loudly here instead of showing every tenant an empty workspace.
        cursor.execute(
            "SELECT public.app_current_tenant() FROM (SELECT set_config(%s, %s, true)) AS s",
            [TENANT_SETTING, value],
        )
        proven = cursor.fetchone()[0]
    if proven != scope.tenant_id:
        raise TenantProofRefused(
            "The database refuses this process's tenant proof: DATABASE_RLS_KEY (or the "
            "DJANGO_SECRET_KEY it derives from) differs from the key stored at the last "
            "`migrate`. Run `manage.py migrate` with this configuration."
        )


@contextmanager
def _scoped(scope: _Scope, using: str) -> Iterator[None]:
    previous = _scope.get()
    with transaction.atomic(using=using):
        token = _scope.set(scope)
        try:
            _set_db_scope(scope, using)
            yield
        except BaseException:
            # TRICKY: the block's transaction (or savepoint) rolls back, which restores the
            # outer setting too; a statement here would fail on the aborted transaction and
            # hide the real error (a statement timeout, say).
            _scope.reset(token)
            raise
        _scope.reset(token)
        # Restore the outer scope for the rest of an enclosing transaction. If the
        # transaction is broken, the rollback resets the setting anyway.
        if not connections[using].needs_rollback:
            _set_db_scope(previous, using)


@contextmanager
def tenant_context(tenant: HasPk | int, *, using: str = "default") -> Iterator[None]:
    """Run the block in one transaction that sees only `tenant`'s rows."""
    tenant_id = tenant if isinstance(tenant, int) else tenant.pk
    with _scoped(_Scope(tenant_id=tenant_id), using):
        yield


@contextmanager
def dangerously_all_tenants(*, using: str = "default") -> Iterator[None]:
    """Run the block in one transaction whose ORM managers do not filter by tenant.

    TRICKY: on PostgreSQL this lifts only the ORM filter: row-level security still shows
    the app role ("default") no tenant-owned row at all, since no tenant is set, and only
    the schema owner's alias (`using="owner"`, maintenance and benchmarks) sees every row.
    Application code does not use it: cross-tenant paths are in `tenants.cross_tenant`.
    """
    with _scoped(_Scope(tenant_id=None, all_tenants=True), using):
        yield


def statement_timeout_raised(*, using: str = "default") -> None:
    """Raise the app role's statement timeout for the rest of the current transaction.

    For the few statements that legitimately run long (a full rebuild of a large tenant):
    the role's default (`DATABASE_APP_STATEMENT_TIMEOUT`) cancels anything slower.
    """
    from django.conf import settings

    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('statement_timeout', %s, true)",
            [settings.DATABASE_APP_LONG_STATEMENT_TIMEOUT],
        )


@contextmanager
def no_tenant(*, using: str = "default") -> Iterator[None]:
    """Run the block with no tenant: tenant-owned rows are invisible (anonymous requests)."""
    with _scoped(_NO_SCOPE, using):
        yield
