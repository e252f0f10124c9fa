"""Resolves every request's tenant and principal, then runs it inside that tenant's scope."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

from tenants.auth import TENANT_HEADER, resolve_principal
from tenants.bounds import has_control_characters
from tenants.context import dangerously_all_tenants, no_tenant, tenant_context
from tenants.errors import ErrorCode, PublicError, ValidationFailed

_STATUS = {
    ErrorCode.TOKEN_INVALID: 401,
    ErrorCode.TOKEN_EXPIRED: 401,
    ErrorCode.TOKEN_REVOKED: 401,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.NOT_A_MEMBER: 403,
}


def error_response(error: PublicError) -> JsonResponse:
    """A GraphQL-shaped error body, so clients handle it like any other API error."""
    extensions = {"code": str(error.code)}
    if error.field:
        extensions["field"] = error.field
    return JsonResponse(
        {"data": None, "errors": [{"message": error.message, "extensions": extensions}]},
        status=_STATUS.get(error.code, 400),
    )


# Tenant.slug is a SlugField(max_length=63).
_MAX_TENANT_HEADER = 63


def _check_tenant_header(request: HttpRequest) -> None:
    """The X-Tenant header is a workspace slug: short, without control characters."""
    value = request.META.get(TENANT_HEADER, "")
    if len(value) > _MAX_TENANT_HEADER or has_control_characters(value):
        raise ValidationFailed(
            f"The X-Tenant header is a workspace slug of at most {_MAX_TENANT_HEADER} characters.",
            field="X-Tenant",
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
            _check_tenant_header(request)
            principal = resolve_principal(request)
        except PublicError as error:
            return error_response(error)
        request.principal = principal  # type: ignore[attr-defined]
        request.tenant = principal.tenant  # type: ignore[attr-defined]
        if principal.tenant is not None:
            scope = tenant_context(principal.tenant)
        elif principal.all_tenants:
            scope = dangerously_all_tenants()
        else:
            scope = no_tenant()
        with scope:
            return self.get_response(request)
