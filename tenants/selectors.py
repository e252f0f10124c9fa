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
