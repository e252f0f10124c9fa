"""Permission scopes carried by API tokens and granted to member roles."""

from enum import StrEnum


class Scope(StrEnum):
    RECORDS_READ = "records:read"
    RECORDS_WRITE = "records:write"
    KPIS_READ = "kpis:read"
    KPIS_WRITE = "kpis:write"  # targets, trees, alert rules, reports
    CONFIG_WRITE = "config:write"  # tenant settings, teams, handoff rules
    TOKENS_MANAGE = "tokens:manage"


class Role(StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"
    REP = "rep"
    MARKETING = "marketing"
    FIELD_SALES = "field_sales"
    VIEWER = "viewer"


ALL_SCOPES: frozenset[str] = frozenset(Scope)

# Scopes an API token may be given. Token management stays with human admins.
TOKEN_SCOPES: frozenset[str] = ALL_SCOPES - {Scope.TOKENS_MANAGE}

ROLE_SCOPES: dict[str, frozenset[str]] = {
    Role.ADMIN: ALL_SCOPES,
    Role.MANAGER: frozenset(
        {Scope.RECORDS_READ, Scope.RECORDS_WRITE, Scope.KPIS_READ, Scope.KPIS_WRITE}
    ),
    Role.REP: frozenset({Scope.RECORDS_READ, Scope.RECORDS_WRITE, Scope.KPIS_READ}),
    Role.MARKETING: frozenset({Scope.RECORDS_READ, Scope.RECORDS_WRITE, Scope.KPIS_READ}),
    Role.FIELD_SALES: frozenset({Scope.RECORDS_READ, Scope.RECORDS_WRITE, Scope.KPIS_READ}),
    Role.VIEWER: frozenset({Scope.RECORDS_READ, Scope.KPIS_READ}),
}
