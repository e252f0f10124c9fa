"""Callbacks other apps register to prepare a newly created tenant (e.g. default deal stages).

`tenants` imports no other app; dependants register here from their AppConfig.ready().
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tenants.models import Tenant

TenantCreatedHook = Callable[["Tenant"], None]
_tenant_created_hooks: list[TenantCreatedHook] = []


def register_tenant_created(hook: TenantCreatedHook) -> TenantCreatedHook:
    if hook not in _tenant_created_hooks:
        _tenant_created_hooks.append(hook)
    return hook


def run_tenant_created(tenant: Tenant) -> None:
    for hook in _tenant_created_hooks:
        hook(tenant)
