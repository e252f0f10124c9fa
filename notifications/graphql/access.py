"""Who has an inbox: a signed-in member; an API token has none (it is not a person)."""

from __future__ import annotations

from tenants.errors import PermissionDenied
from tenants.graphql.context import Info
from tenants.models import Membership
from tenants.principal import PrincipalKind


def request_member(info: Info) -> Membership:
    """The member whose inbox this is; tokens and anonymous callers are refused."""
    info.context.require_tenant()
    principal = info.context.principal
    if principal.kind != PrincipalKind.USER or principal.membership is None:
        raise PermissionDenied(
            "API tokens have no inbox: subscribe a webhook endpoint to receive events."
        )
    return principal.membership
