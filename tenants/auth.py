"""Resolve a request to exactly one (tenant, principal, scopes), before any view runs."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest

from tenants.context import tenant_context
from tenants.errors import ErrorCode, PublicError
from tenants.models import Membership, Tenant
from tenants.principal import ANONYMOUS, Principal, PrincipalKind
from tenants.scopes import ALL_SCOPES, ROLE_SCOPES
from tenants.selectors import user_workspaces
from tenants.services import api_token_authenticate

TENANT_HEADER = "HTTP_X_TENANT"
SESSION_TENANT_KEY = "tenant_slug"


def resolve_principal(request: HttpRequest) -> Principal:
    """Bearer token first, then the session user and the tenant they chose; else anonymous."""
    authorization = request.META.get("HTTP_AUTHORIZATION", "")
    if authorization:
        return _principal_from_authorization(authorization)
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return principal_for_user(user, _chosen_slug(request))
    return ANONYMOUS


def _principal_from_authorization(authorization: str) -> Principal:
    scheme, _, raw = authorization.partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        raise PublicError("Use 'Authorization: Bearer <API token>'.", code=ErrorCode.TOKEN_INVALID)
    token = api_token_authenticate(raw=raw.strip())
    return Principal(
        kind=PrincipalKind.TOKEN,
        tenant=token.tenant,
        token=token,
        scopes=frozenset(token.scopes),
    )


def _chosen_slug(request: HttpRequest) -> str | None:
    header = request.META.get(TENANT_HEADER, "").strip()
    if header:
        return header
    session = getattr(request, "session", None)
    return session.get(SESSION_TENANT_KEY) if session is not None else None


def principal_for_user(user: AbstractBaseUser, slug: str | None) -> Principal:
    """A session user in the tenant they chose by slug; they must be an active member."""
    if not slug:
        workspaces = user_workspaces(user=user)
        if len(workspaces) == 1:
            slug = workspaces[0][0]
    if not slug:
        # NOTE: a superuser too works inside one tenant at a time, chosen with the tenant
        # switcher (any tenant for them); with none chosen they see no tenant's rows.
        return Principal(kind=PrincipalKind.USER, user=user)
    tenant = Tenant.objects.filter(slug=slug, is_active=True).first()
    membership = None
    if tenant is not None:
        with tenant_context(tenant):
            membership = (
                Membership.objects.select_related("team").filter(user=user, is_active=True).first()
            )
    if membership is not None:
        scopes = ROLE_SCOPES[membership.role]
    elif tenant is not None and user.is_superuser:
        scopes = ALL_SCOPES
    else:
        # An unknown slug and a tenant the user is not in look the same.
        raise PublicError(
            f"You are not a member of a workspace {slug!r}.", code=ErrorCode.NOT_A_MEMBER
        )
    return Principal(
        kind=PrincipalKind.USER, tenant=tenant, user=user, membership=membership, scopes=scopes
    )
