"""Who is making a request, for which tenant, with which scopes."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    from tenants.models import ApiToken, Membership, Tenant


class PrincipalKind(StrEnum):
    ANONYMOUS = "anonymous"
    USER = "user"
    TOKEN = "token"


@dataclass(frozen=True)
class Principal:
    kind: PrincipalKind
    tenant: Tenant | None = None
    user: AbstractBaseUser | None = None
    membership: Membership | None = None
    token: ApiToken | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_authenticated(self) -> bool:
        return self.kind != PrincipalKind.ANONYMOUS

    @property
    def role(self) -> str | None:
        return self.membership.role if self.membership else None

    def has_scope(self, scope: str) -> bool:
        return self.tenant is not None and scope in self.scopes


ANONYMOUS = Principal(kind=PrincipalKind.ANONYMOUS)
