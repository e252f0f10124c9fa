"""GraphQL queries of handoff (handoff:read): rule sets with versions, the audit trail, dry runs."""

from __future__ import annotations

import strawberry
from strawberry import relay

from handoff import selectors
from handoff.graphql.types import (
    LEAD,
    VERSION,
    AuditEntryType,
    AuditPage,
    DryRunType,
    RuleSetPage,
    RuleSetType,
    RuleVersionType,
)
from handoff.models import RuleVersion
from handoff.qualification import handoff_dry_run
from pipeline.models import Lead
from tenants.graphql.base import resolve_global_id
from tenants.graphql.context import Info
from tenants.graphql.operations import query
from tenants.scopes import Scope


def version_of(info: Info, global_id: relay.GlobalID, field: str = "id") -> RuleVersion:
    return resolve_global_id(
        info, global_id, model=RuleVersion, type_name=VERSION, what="Rule version", field=field
    )


def with_approvals(version: RuleVersion) -> RuleVersion:
    """The version again with its approvals and their members: two queries, not one each."""
    return RuleVersion.objects.prefetch_related(selectors.approvals_prefetch()).get(pk=version.pk)


@strawberry.type
class HandoffQuery:
    @query(
        scope=Scope.HANDOFF_READ, description="Handoff rule sets by name, each with its versions."
    )
    def handoff_rule_sets(self, info: Info, first: int = 20, offset: int = 0) -> RuleSetPage:
        rule_sets, total = selectors.rule_sets_page(first=first, offset=offset)
        versions = selectors.versions_of([r.pk for r in rule_sets])
        return RuleSetPage(
            total_count=total, items=[RuleSetType.of(r, versions[r.pk]) for r in rule_sets]
        )

    @query(scope=Scope.HANDOFF_READ, description="One rule version with its approvals.")
    def handoff_rule_version(self, info: Info, id: relay.GlobalID) -> RuleVersionType:
        return RuleVersionType.of(with_approvals(version_of(info, id)))

    @query(scope=Scope.HANDOFF_READ, description="The workspace's active version, if one is.")
    def handoff_active_version(self, info: Info) -> RuleVersionType | None:
        version = selectors.active_version()
        return None if version is None else RuleVersionType.of(with_approvals(version))

    @query(
        scope=Scope.HANDOFF_READ,
        description="The audit trail, latest first, optionally of a version or lead.",
    )
    def handoff_audit_trail(
        self,
        info: Info,
        version_id: relay.GlobalID | None = None,
        lead_id: relay.GlobalID | None = None,
        first: int = 50,
        offset: int = 0,
    ) -> AuditPage:
        version = None if version_id is None else version_of(info, version_id, "versionId")
        lead = (
            None
            if lead_id is None
            else resolve_global_id(info, lead_id, model=Lead, type_name=LEAD, field="leadId")
        )
        entries, total = selectors.audit_page(
            first=first, offset=offset, version=version, lead_id=None if lead is None else lead.pk
        )
        return AuditPage(total_count=total, items=[AuditEntryType.of(e) for e in entries])

    @query(
        scope=Scope.HANDOFF_READ,
        description="Which leads a version (typically a draft) would qualify as MQL now, and "
        "the difference with the active version. Changes nothing.",
    )
    def handoff_dry_run(self, info: Info, version_id: relay.GlobalID) -> DryRunType:
        tenant = info.context.require_tenant()
        version = version_of(info, version_id, "versionId")
        return DryRunType.of(handoff_dry_run(tenant=tenant, version=version))
