"""The typed GraphQL context: the request, its principal and tenant, and access checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.http import HttpRequest, HttpResponse
from strawberry.types import Info as StrawberryInfo

from tenants.errors import AuthenticationFailed, PermissionDenied
from tenants.principal import ANONYMOUS, Principal

if TYPE_CHECKING:
    from tenants.models import Tenant


@dataclass
class Context:
    request: HttpRequest
    response: HttpResponse | None
    principal: Principal

    @property
    def tenant(self) -> Tenant | None:
        return self.principal.tenant

    def require_tenant(self) -> Tenant:
        """The request's tenant, or a clear error for anonymous callers."""
        if self.principal.tenant is None:
            if not self.principal.is_authenticated:
                raise AuthenticationFailed("Sign in or send 'Authorization: Bearer <API token>'.")
            raise PermissionDenied("Choose a workspace with the 'X-Tenant' header.")
        return self.principal.tenant

    def require_scope(self, scope: str) -> Tenant:
        tenant = self.require_tenant()
        if not self.principal.has_scope(scope):
            raise PermissionDenied(f"This needs the '{scope}' permission.")
        return tenant


def context_from_request(request: HttpRequest, response: HttpResponse | None) -> Context:
    return Context(
        request=request, response=response, principal=getattr(request, "principal", ANONYMOUS)
    )


Info = StrawberryInfo[Context, Any]
