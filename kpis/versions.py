"""A version per tenant of everything its KPI reads read, kept in the shared cache.

Response caches key their entries by it (kpis/graphql/tree_cache.py), so an entry is never
served after a change it did not see: every writer of what a read reads bumps the version
(snapshot refreshes and rebuilds, dirty marks, rebuild requests, targets, trees, custom
KPIs, the workspace's settings, closures, members and teams, users' usernames (the labels of
members without a display name), deal stages; kpis/apps.py connects them). Apps above kpis
whose rows a cached query reads bump it for those rows themselves (alerts, reports: their
AppConfig and their bulk writers).

A bump happens twice: at once, so the writer's own transaction (a mutation's later reads,
a test) never reads an entry from before its write, and again on commit, so that a reader
who took the first bump before the write committed (and cached what it saw then, the
state before the write) is not served that entry afterwards. Between the commit and the
second bump (microseconds, in the writer's process) a reader may still get the entry of
the state just before the commit, as if it had read a moment earlier.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.core.cache import cache
from django.db import transaction

from tenants.cross_tenant import user_tenant_ids

logger = logging.getLogger(__name__)


def _key(tenant_id: int) -> str:
    return f"kpis:read-version:{tenant_id}"


def _fresh() -> int:
    # NOTE: a version lost with the cache (evicted, flushed) restarts at a value never used
    # before, so an entry keyed by an old value cannot be served again.
    return time.time_ns()


def kpi_read_version(tenant_id: int) -> int:
    """The tenant's current version (one cache read; two the first time)."""
    version = cache.get(_key(tenant_id))
    if version is None:
        cache.add(_key(tenant_id), _fresh(), timeout=None)
        version = cache.get(_key(tenant_id))
    return int(version)


def _bump_once(tenant_id: int) -> None:
    try:
        try:
            cache.incr(_key(tenant_id))
        except ValueError:  # no version yet (or evicted): any fresh value is a new one
            cache.set(_key(tenant_id), _fresh(), timeout=None)
    except Exception:
        logger.warning("Could not bump the KPI read version of tenant %s.", tenant_id)


def kpi_read_version_bump(tenant_id: int) -> None:
    """Bump the tenant's version now and once the caller's transaction commits."""
    _bump_once(tenant_id)
    transaction.on_commit(lambda: _bump_once(tenant_id))


def bump_for_instance(sender: Any, instance: Any, **kwargs: Any) -> None:
    """post_save / post_delete receiver for the rows a KPI read reads (a tenant's own rows,
    or the Tenant itself)."""
    tenant_id = getattr(instance, "tenant_id", None)
    if tenant_id is None and sender._meta.label == "tenants.Tenant":
        tenant_id = instance.pk
    if tenant_id is not None:
        kpi_read_version_bump(tenant_id)


def bump_for_user(sender: Any, instance: Any, update_fields: Any = None, **kwargs: Any) -> None:
    """post_save receiver of the user model: a username is the label of a member without a
    display name (leaderboards, funnel breakdowns), in every tenant the user belongs to.
    NOTE: a save of other fields only (a login's last_login) bumps nothing."""
    if update_fields is not None and "username" not in update_fields:
        return
    # NOTE: across tenants through tenants.cross_tenant: row-level security shows a plain
    # query no membership outside the tenant in context.
    for tenant_id in user_tenant_ids(user=instance):
        kpi_read_version_bump(tenant_id)


def bump_for_tenant_id(tenant_id: int, *args: Any) -> None:
    """A listener of pipeline.dirty and kpis.hooks (tenant_id first, anything after)."""
    kpi_read_version_bump(tenant_id)
