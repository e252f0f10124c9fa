"""Reads for tenants (selectors)."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser

from tenants.cross_tenant import user_memberships
from tenants.models import Membership, Tenant


def user_workspaces(*, user: AbstractBaseUser) -> list[tuple[str, str, str]]:
    """(slug, name, role) of every active workspace the user belongs to, by slug."""
    # The user's own memberships live in several tenants: only their tenant ids and roles
    # cross tenants (tenants.cross_tenant); the Tenant table is not tenant-owned.
    roles = dict(user_memberships(user=user))
    tenants = Tenant.objects.filter(pk__in=roles, is_active=True).order_by("slug")
    return [(tenant.slug, tenant.name, roles[tenant.pk]) for tenant in tenants]


def workspace_summary(*, tenant_id: int) -> dict[str, int]:
    """Counts for a workspace's health check; runs in the caller's tenant scope."""
    from django.db.models import Q
    from django.utils import timezone

    from tenants.models import ApiToken, Team

    live = Q(revoked_at__isnull=True) & (
        Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())
    )
    return {
        "tenant_id": tenant_id,
        "members": Membership.objects.filter(is_active=True).count(),
        "teams": Team.objects.count(),
        "live_tokens": ApiToken.objects.filter(live).count(),
    }
