"""Resolves every request's tenant and principal, then runs it inside that tenant's scope."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from django.http import HttpRequest, HttpResponse, JsonResponse

from tenants import rate_limits
from tenants.auth import TENANT_HEADER, resolve_principal
from tenants.bounds import has_control_characters
from tenants.context import no_tenant, tenant_context
from tenants.errors import ErrorCode, PublicError, ValidationFailed

_STATUS = {
    ErrorCode.TOKEN_INVALID: 401,
    ErrorCode.TOKEN_EXPIRED: 401,
    ErrorCode.TOKEN_REVOKED: 401,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.NOT_A_MEMBER: 403,
    ErrorCode.RATE_LIMITED: 429,
}


def error_response(error: PublicError, headers: Mapping[str, str] | None = None) -> JsonResponse:
    """A GraphQL-shaped error body, so clients handle it like any other API error."""
    extensions = {"code": str(error.code), **getattr(error, "extensions", {})}
    if error.field:
        extensions["field"] = error.field
    return JsonResponse(
        {"data": None, "errors": [{"message": error.message, "extensions": extensions}]},
        status=_STATUS.get(error.code, 400),
        headers=headers,
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
        # Token requests count against the token's per-minute limit before any view runs.
        admission = rate_limits.request_admit(principal)
        if admission is not None and not admission.allowed:
            return error_response(admission.error(), headers=admission.headers())
        request.principal = principal  # type: ignore[attr-defined]
        request.tenant = principal.tenant  # type: ignore[attr-defined]
        # NOTE: never several tenants: a superuser too chooses one (POST /tenant/switch/).
        scope = tenant_context(principal.tenant) if principal.tenant is not None else no_tenant()
        with scope:
            response = self.get_response(request)
        for name, value in (admission.headers() if admission is not None else {}).items():
            response[name] = value
        return response
