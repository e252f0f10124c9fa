"""Reads for tenants (selectors)."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser

from tenants.context import dangerously_all_tenants
from tenants.models import Membership


def user_workspaces(*, user: AbstractBaseUser) -> list[tuple[str, str, str]]:
    """(slug, name, role) of every active workspace the user belongs to."""
    # The user's own memberships live in several tenants; this lists only theirs.
    with dangerously_all_tenants():
        return list(
            Membership.objects.filter(user=user, is_active=True, tenant__is_active=True)
            .order_by("tenant__slug")
            .values_list("tenant__slug", "tenant__name", "role")
        )


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
