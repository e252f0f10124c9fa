"""A response cache for `kpiTree` (and other registered) queries, keyed by the tenant's KPI
read version.

A dashboard asks for the same tree again and again; between two changes of what it reads
the answer is the same, so the whole response of a query operation whose root fields are
only cacheable ones (`kpiTree`, and those registered with `register_cacheable_root`, such
as reports' `dashboard`) and `__typename` is kept in the shared cache under the tenant, its
KPI read version (kpis.versions, bumped by every writer of what such a query reads:
snapshots, dirty marks, targets, trees, custom KPIs, settings, closures, members; apps
above kpis bump it for their own rows), the tenant-local date (a running period's
projection and elapsed working days follow it), the language, the asking member and role
when a root field's answer depends on who asks, and the document with its variables. A hit
skips evaluation and execution alike: the request costs what a trivial query costs, plus
two cache reads. `pending` and `computedAt` stay exact, since a dirty mark or a refresh
bumps the version. Responses with errors are not kept.

Used only with a shared cache (`CACHE_URL`, Redis): with a process's own memory, a write
made by another process (a worker's refresh, a management command) would bump a version
this process never sees. Not used either when `KPI_TREE_CACHE_SECONDS` is 0, or with a read
replica (a lagging replica could put an old answer under a new version).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.locmem import LocMemCache
from django.utils import timezone
from django.utils.translation import get_language
from graphql import ExecutionResult, FieldNode, OperationDefinitionNode, OperationType
from strawberry.extensions import SchemaExtension

from kpis.periods import local_date
from kpis.versions import kpi_read_version
from tenants.scopes import Scope

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CacheableRoot:
    scope: str  # the scope its resolver requires: checked before any cached answer is served
    per_member: bool  # its answer depends on who asks (their member and role)


_CACHEABLE_ROOTS: dict[str, CacheableRoot] = {"kpiTree": CacheableRoot(Scope.KPIS_READ, False)}


def register_cacheable_root(name: str, *, scope: str, per_member: bool = False) -> None:
    """Let queries of root field `name` (its GraphQL name) be served from this cache.

    Its app must make every writer of what the field reads bump the KPI read version
    (kpis.versions), including writes that send no signal (bulk updates, raw SQL).
    `per_member`: its answer depends on the asking member or role (personal rows, a
    role's default), which then go into the key."""
    _CACHEABLE_ROOTS[name] = CacheableRoot(scope=scope, per_member=per_member)


def enabled() -> bool:
    """Whether kpiTree responses may be cached in this process (see the module docstring)."""
    if settings.KPI_TREE_CACHE_SECONDS <= 0 or "replica" in settings.DATABASES:
        return False
    return not isinstance(cache, LocMemCache | DummyCache)


def _operation(document, name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        return operations[0] if len(operations) == 1 else None
    return next((o for o in operations if o.name is not None and o.name.value == name), None)


def cached_roots(document, operation_name: str | None) -> list[CacheableRoot] | None:
    """The cacheable root fields of a query whose root selections are all plain fields among
    them and __typename, one at least (fragments at the root are not looked into); else
    None."""
    operation = _operation(document, operation_name)
    if operation is None or operation.operation is not OperationType.QUERY:
        return None
    selections = operation.selection_set.selections
    if not all(isinstance(s, FieldNode) for s in selections):
        return None
    names = {s.name.value for s in selections} - {"__typename"}  # type: ignore[attr-defined]
    if not names or not names <= _CACHEABLE_ROOTS.keys():
        return None
    return [_CACHEABLE_ROOTS[name] for name in sorted(names)]


def cacheable(document, operation_name: str | None) -> bool:
    return cached_roots(document, operation_name) is not None


def response_key(
    *, tenant_id: int, version: int, today: str, query: str, operation_name, variables, who=""
) -> str:
    request = json.dumps(
        [query, operation_name, variables, who], sort_keys=True, default=str, ensure_ascii=False
    )
    digest = hashlib.sha256(request.encode()).hexdigest()
    return f"kpis:tree-response:{tenant_id}:{version}:{today}:{get_language()}:{digest}"


def _who(principal) -> str:
    """Who asks, as far as a per-member answer can tell: their member and role (a token
    without a member answers as every such token does)."""
    member = principal.membership
    return "-" if member is None else f"{member.pk}:{member.role}"


# How often a request waiting for another's answer looks for it.
_WAIT_STEP_SECONDS = 0.005


def _lock_key(key: str) -> str:
    return f"{key}:computing"


def _take_lock(key: str) -> bool:
    """Whether this request is the one to compute the answer of `key` (the lock is free, or
    the cache cannot tell)."""
    try:
        return bool(cache.add(_lock_key(key), 1, timeout=settings.KPI_TREE_CACHE_LOCK_SECONDS))
    except Exception:
        logger.warning("The kpiTree response cache lock could not be taken.", exc_info=True)
        return True


def _await_answer(key: str) -> tuple[object | None, bool]:
    """Wait for the request computing `key` to keep its answer: (the answer, or None, and
    whether this request took the lock meanwhile: its computer gave up or failed)."""
    deadline = time.monotonic() + settings.KPI_TREE_CACHE_WAIT_SECONDS
    while time.monotonic() < deadline:
        time.sleep(_WAIT_STEP_SECONDS)
        try:
            data = cache.get(key)
        except Exception:
            return None, False
        if data is not None:
            return data, False
        if _take_lock(key):
            return None, True
    return None, False


class KpiTreeResponseCache(SchemaExtension):
    """Serves a cached kpiTree response, or keeps the one just computed.

    After a version bump every reader misses at once (a dashboard wall, a team refreshing
    together): one of them computes the answer while the others wait for it instead of
    computing the same answer each (under a steady ingestion, eight readers recomputed every
    answer eight times over). The wait is bounded (KPI_TREE_CACHE_WAIT_SECONDS); past it, or
    when the computing request fails, a waiter computes the answer itself. An answer waited
    for is the one of the same key, so of the same version: as exact as one computed here.
    """

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        key = self._key()
        if key is None:
            yield
            return
        try:
            data = cache.get(key)
        except Exception:
            logger.warning("The kpiTree response cache could not be read.", exc_info=True)
            yield
            return
        locked = False
        if data is None:
            locked = _take_lock(key)
            if not locked:
                data, locked = _await_answer(key)
        if data is not None:
            context.result = ExecutionResult(data=data, errors=None)
            yield
            return
        try:
            yield
            result = context.result
            if result is not None and not result.errors and result.data is not None:
                try:
                    cache.set(key, result.data, timeout=settings.KPI_TREE_CACHE_SECONDS)
                except Exception:
                    logger.warning(
                        "The kpiTree response cache could not be written.", exc_info=True
                    )
        finally:
            if locked:
                try:
                    cache.delete(_lock_key(key))
                except Exception:
                    logger.warning("The kpiTree response cache lock was left.", exc_info=True)

    def _key(self) -> str | None:
        """The response's key, or None when this operation is not served from the cache."""
        context = self.execution_context
        if context.graphql_document is None or not enabled():
            return None
        principal = getattr(context.context, "principal", None)
        tenant = getattr(principal, "tenant", None)
        if tenant is None:
            return None
        roots = cached_roots(context.graphql_document, context.operation_name)
        # NOTE: the scopes are checked here too: a principal without one must get the
        # resolver's error, never another principal's cached answer.
        if roots is None or not all(principal.has_scope(root.scope) for root in roots):
            return None
        try:
            # Read before anything is evaluated: an answer is kept under the version it
            # started from, so it is never newer-keyed than what it saw.
            version = kpi_read_version(tenant.pk)
        except Exception:
            logger.warning("The KPI read version could not be read.", exc_info=True)
            return None
        return response_key(
            tenant_id=tenant.pk,
            version=version,
            today=local_date(timezone.now(), tenant.timezone).isoformat(),
            query=context.query or "",
            operation_name=context.operation_name,
            variables=context.variables or {},
            who=_who(principal) if any(root.per_member for root in roots) else "",
        )
