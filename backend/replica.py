"""GraphQL reads from a read replica when `DATABASE_REPLICA_URL` is set (docs/scale.md).

Only the execution of a GraphQL *query* operation reads from the replica alias, in its own
transaction scoped to the request's tenant (row-level security holds there too: the replica
is a copy of the primary, policies and key included, and is reached as the app role).
Mutations, the middleware, Celery tasks and commands never do. Inside a query, the first ORM
write (a default KPI tree created on first use, say) sends every later read back to the
primary, so nothing reads a lagging copy of what it has just written. Without the setting
the router has no opinion and everything uses "default", as before.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS
from django.db.models import Model
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from tenants.context import current_tenant_id, tenant_context

REPLICA = "replica"
_READABLE = {DEFAULT_DB_ALIAS, REPLICA}


@dataclass
class _ReplicaReads:
    wrote: bool = False


_reads: contextvars.ContextVar[_ReplicaReads | None] = contextvars.ContextVar(
    "replica_reads", default=None
)


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES


class ReplicaRouter:
    """Reads to the replica while `replica_reads` is active and nothing was written yet."""

    def db_for_read(self, model: type[Model], **hints: Any) -> str | None:
        state = _reads.get()
        if state is None or state.wrote:
            return None
        return REPLICA

    def db_for_write(self, model: type[Model], **hints: Any) -> str | None:
        state = _reads.get()
        if state is not None:
            state.wrote = True
        instance = hints.get("instance")
        # TRICKY: without an answer Django writes an instance back where it was read from,
        # which for a row read from the replica would be the (read-only) replica.
        if state is not None or (instance is not None and instance._state.db == REPLICA):
            return DEFAULT_DB_ALIAS
        return None

    def allow_relation(self, obj1: Model, obj2: Model, **hints: Any) -> bool | None:
        # The replica holds the primary's rows: an object read there may point at one
        # read from the primary.
        if {obj1._state.db, obj2._state.db} <= _READABLE:
            return True
        return None

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        return False if db == REPLICA else None


@contextmanager
def replica_reads(tenant_id: int) -> Iterator[None]:
    """Route the block's reads to the replica, in a transaction scoped to `tenant_id`."""
    if not replica_configured():
        yield
        return
    with tenant_context(tenant_id, using=REPLICA):
        token = _reads.set(_ReplicaReads())
        try:
            yield
        finally:
            _reads.reset(token)


def reading_from_replica() -> bool:
    """Whether reads go to the replica now (for tests and logs)."""
    state = _reads.get()
    return state is not None and not state.wrote


class ReplicaReadsExtension(SchemaExtension):
    """Runs a query operation's resolvers under `replica_reads`; mutations on the primary."""

    def on_execute(self) -> Iterator[None]:
        tenant_id = current_tenant_id()
        if (
            tenant_id is None
            or not replica_configured()
            or self.execution_context.operation_type is not OperationType.QUERY
        ):
            yield
            return
        with replica_reads(tenant_id):
            yield
