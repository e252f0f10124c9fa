"""Resolves every request's tenant and principal, then runs it inside that tenant's scope."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

from tenants.auth import resolve_principal
from tenants.context import no_tenant, tenant_context
from tenants.errors import ErrorCode, PublicError

_STATUS = {
    ErrorCode.TOKEN_INVALID: 401,
    ErrorCode.TOKEN_EXPIRED: 401,
    ErrorCode.TOKEN_REVOKED: 401,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.NOT_A_MEMBER: 403,
}


def error_response(error: PublicError) -> JsonResponse:
    """A GraphQL-shaped error body, so clients handle it like any other API error."""
    return JsonResponse(
        {"data": None, "errors": [{"message": error.message, "extensions": {"code": error.code}}]},
        status=_STATUS.get(error.code, 400),
    )


class TenantMiddleware:
    """Sets request.principal and request.tenant, and scopes the rest of the request.

    The view runs inside one transaction with the tenant set for the ORM managers and for
    PostgreSQL row-level security, so no view can reach another tenant's rows.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            principal = resolve_principal(request)
        except PublicError as error:
            return error_response(error)
        request.principal = principal  # type: ignore[attr-defined]
        request.tenant = principal.tenant  # type: ignore[attr-defined]
        # NOTE: never several tenants: a superuser too chooses one (POST /tenant/switch/).
        scope = tenant_context(principal.tenant) if principal.tenant is not None else no_tenant()
        with scope:
            return self.get_response(request)
