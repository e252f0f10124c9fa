"""Funnels kept between requests, under the version of the data they read (kpis.data_generations).

A funnel is computed from raw leads and stage transitions (seconds for a large tenant: the
time from the previous stage is looked up per transition), while dashboards and reports ask
for the same few funnels over and over. Each computed funnel's groups (counts, conversions,
drop-offs, medians; labels are read fresh, they follow renames) are kept in the cache under
the tenant's data generation, the period's bounds in its time zone, the mode, the scope and
the breakdown. While a lead or transition change is not yet refreshed (or a rebuild is
pending) there is no version, and funnels are computed from the raw rows and not kept, so a
funnel served is always the one the raw rows give.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.cache import cache

from kpis.periods import Period
from kpis.scopes import KpiScope
from tenants.models import Tenant

logger = logging.getLogger(__name__)

T = TypeVar("T")
# A generation is never drawn twice, so an entry only ages out; a day keeps the funnels of
# a busy dashboard without holding dead generations long.
TIMEOUT_SECONDS = 24 * 3600


def _key(
    *, tenant: Tenant, version: str, period: Period, mode: str, scope: KpiScope, breakdown: Any
) -> str:
    # NOTE: a source scope's key is any string: hashed, so every cache backend takes it.
    parts = (
        tenant.timezone, period.grain, period.start, period.end,
        str(mode), str(scope.type), scope.key, str(breakdown),
    )  # fmt: skip
    digest = hashlib.sha256(repr(parts).encode()).hexdigest()[:32]
    return f"kpis:funnel:{tenant.pk}:{version}:{digest}"


def funnel_groups_cached(
    *,
    tenant: Tenant,
    version: str | None,
    period: Period,
    mode: str,
    scope: KpiScope,
    breakdown: Any,
    compute: Callable[[], T],
) -> T:
    """The kept result for these arguments at `version`, else `compute()` (kept when there
    is a version). A cache that fails is logged and bypassed: it only saves time."""
    if version is None:
        return compute()
    key = _key(
        tenant=tenant, version=version, period=period, mode=mode, scope=scope, breakdown=breakdown
    )
    try:
        found = cache.get(key)
    except Exception:
        logger.warning("Funnel cache read failed; computing from raw rows.", exc_info=True)
        return compute()
    if found is not None:
        return found
    result = compute()
    try:
        cache.set(key, result, TIMEOUT_SECONDS)
    except Exception:
        logger.warning("Funnel cache write failed.", exc_info=True)
    return result
