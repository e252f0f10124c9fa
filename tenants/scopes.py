"""Permission scopes carried by API tokens and granted to member roles."""

from enum import StrEnum


class Scope(StrEnum):
    RECORDS_READ = "records:read"
    RECORDS_WRITE = "records:write"
    KPIS_READ = "kpis:read"
    KPIS_WRITE = "kpis:write"  # targets, trees, alert rules, reports
    CONFIG_WRITE = "config:write"  # tenant settings, teams, handoff rules
    TOKENS_MANAGE = "tokens:manage"
    HANDOFF_READ = "handoff:read"  # handoff rule sets, versions, audit trail, dry runs
    HANDOFF_WRITE = "handoff:write"  # drafts, approvals (合意), activation, handoffs to SQL


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

_HANDOFF = {Scope.HANDOFF_READ, Scope.HANDOFF_WRITE}

ROLE_SCOPES: dict[str, frozenset[str]] = {
    Role.ADMIN: ALL_SCOPES,
    Role.MANAGER: frozenset(
        {Scope.RECORDS_READ, Scope.RECORDS_WRITE, Scope.KPIS_READ, Scope.KPIS_WRITE} | _HANDOFF
    ),
    Role.REP: frozenset(
        {Scope.RECORDS_READ, Scope.RECORDS_WRITE, Scope.KPIS_READ, Scope.HANDOFF_READ}
    ),
    # The two sides of a handoff agreement (合意) write rules; which side a member approves
    # for follows from the role (handoff.services).
    Role.MARKETING: frozenset(
        {Scope.RECORDS_READ, Scope.RECORDS_WRITE, Scope.KPIS_READ} | _HANDOFF
    ),
    Role.FIELD_SALES: frozenset(
        {Scope.RECORDS_READ, Scope.RECORDS_WRITE, Scope.KPIS_READ} | _HANDOFF
    ),
    Role.VIEWER: frozenset({Scope.RECORDS_READ, Scope.KPIS_READ, Scope.HANDOFF_READ}),
}
