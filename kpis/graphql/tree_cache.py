"""A response cache for `kpiTree` queries, keyed by the tenant's KPI read version.

A dashboard asks for the same tree again and again; between two changes of what it reads
the answer is the same, so the whole response of a query operation whose root fields are
only `kpiTree` (and `__typename`) is kept in the shared cache under the tenant, its KPI
read version (kpis.versions, bumped by every writer of what a tree reads: snapshots, dirty
marks, targets, trees, custom KPIs, settings, closures, members), the tenant-local date (a
running period's projection and elapsed working days follow it), the language, and the
document with its variables. A hit skips evaluation and execution alike: the request costs
what a trivial query costs, plus two cache reads. `pending` and `computedAt` stay exact,
since a dirty mark or a refresh bumps the version. Responses with errors are not kept.

Used only with a shared cache (`CACHE_URL`, Redis): with a process's own memory, a write
made by another process (a worker's refresh, a management command) would bump a version
this process never sees. Not used either when `KPI_TREE_CACHE_SECONDS` is 0, or with a read
replica (a lagging replica could put an old answer under a new version).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator

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

CACHED_ROOT_FIELDS = frozenset({"kpiTree"})
_ALLOWED_ROOT_FIELDS = CACHED_ROOT_FIELDS | {"__typename"}


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


def cacheable(document, operation_name: str | None) -> bool:
    """A query whose root selections are all plain fields among kpiTree and __typename,
    kpiTree at least once (fragments at the root are not looked into)."""
    operation = _operation(document, operation_name)
    if operation is None or operation.operation is not OperationType.QUERY:
        return False
    selections = operation.selection_set.selections
    if not all(isinstance(s, FieldNode) for s in selections):
        return False
    names = {s.name.value for s in selections}  # type: ignore[attr-defined]
    return names <= _ALLOWED_ROOT_FIELDS and bool(names & CACHED_ROOT_FIELDS)


def response_key(
    *, tenant_id: int, version: int, today: str, query: str, operation_name, variables
) -> str:
    request = json.dumps(
        [query, operation_name, variables], sort_keys=True, default=str, ensure_ascii=False
    )
    digest = hashlib.sha256(request.encode()).hexdigest()
    return f"kpis:tree-response:{tenant_id}:{version}:{today}:{get_language()}:{digest}"


class KpiTreeResponseCache(SchemaExtension):
    """Serves a cached kpiTree response, or keeps the one just computed."""

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
        if data is not None:
            context.result = ExecutionResult(data=data, errors=None)
            yield
            return
        yield
        result = context.result
        if result is not None and not result.errors and result.data is not None:
            try:
                cache.set(key, result.data, timeout=settings.KPI_TREE_CACHE_SECONDS)
            except Exception:
                logger.warning("The kpiTree response cache could not be written.", exc_info=True)

    def _key(self) -> str | None:
        """The response's key, or None when this operation is not served from the cache."""
        context = self.execution_context
        if context.graphql_document is None or not enabled():
            return None
        principal = getattr(context.context, "principal", None)
        tenant = getattr(principal, "tenant", None)
        # NOTE: the scope is checked here too: a principal without it must get the
        # resolver's error, never another principal's cached answer.
        if tenant is None or not principal.has_scope(Scope.KPIS_READ):
            return None
        if not cacheable(context.graphql_document, context.operation_name):
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
        )
