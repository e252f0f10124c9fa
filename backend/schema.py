"""The root GraphQL schema: merges the apps' queries and mutations and installs the limits."""

from __future__ import annotations

import functools

import strawberry
from django.conf import settings
from graphql import ASTValidationRule
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry_django.optimizer import DjangoOptimizerExtension

from alerts.graphql.mutations import AlertMutation
from alerts.graphql.queries import AlertQuery
from backend.replica import ReplicaReadsExtension
from handoff.graphql.mutations import HandoffMutation
from handoff.graphql.queries import HandoffQuery
from handoff.graphql.queue import HandoffQueueMutation, HandoffQueueQuery
from kpis.graphql.funnel import FunnelQuery
from kpis.graphql.health import SnapshotHealthQuery
from kpis.graphql.mutations import KpiMutation
from kpis.graphql.queries import KpiQuery
from kpis.graphql.scalars import SCALAR_MAP
from kpis.graphql.tree_cache import KpiTreeResponseCache
from kpis.graphql.trees import TreeMutation, TreeQuery
from notifications.graphql.mutations import NotificationMutation
from notifications.graphql.queries import NotificationQuery
from pipeline.graphql.deal_stages import DealStageMutation
from pipeline.graphql.imports import CrmImportMutation
from pipeline.graphql.ingestion import IngestionMutation
from pipeline.graphql.mutations import PipelineMutation
from pipeline.graphql.queries import PipelineQuery
from reports.graphql.checklist import ChecklistMutation, ChecklistQuery
from reports.graphql.dashboards import DashboardMutation, DashboardQuery
from reports.graphql.reports import ReportMutation, ReportQuery
from reports.graphql.subscriptions import ReportSubscriptionMutation, ReportSubscriptionQuery
from tenants.graphql.absences import AbsenceMutation, AbsenceQuery
from tenants.graphql.errors import PublicErrorsOnly
from tenants.graphql.mutations import TenantMutation
from tenants.graphql.queries import TenantQuery

Query = merge_types(
    "Query",
    (
        TenantQuery,
        AbsenceQuery,
        PipelineQuery,
        KpiQuery,
        FunnelQuery,
        TreeQuery,
        SnapshotHealthQuery,
        AlertQuery,
        HandoffQuery,
        HandoffQueueQuery,
        NotificationQuery,
        DashboardQuery,
        ReportQuery,
        ReportSubscriptionQuery,
        ChecklistQuery,
    ),
)
Mutation = merge_types(
    "Mutation",
    (
        TenantMutation,
        AbsenceMutation,
        PipelineMutation,
        DealStageMutation,
        IngestionMutation,
        CrmImportMutation,
        KpiMutation,
        TreeMutation,
        AlertMutation,
        HandoffMutation,
        HandoffQueueMutation,
        NotificationMutation,
        DashboardMutation,
        ReportMutation,
        ReportSubscriptionMutation,
        ChecklistMutation,
    ),
)


@functools.cache
def _limit_rules(max_depth: int, max_aliases: int) -> tuple[type[ASTValidationRule], ...]:
    # TRICKY: every QueryDepthLimiter / MaxAliasesLimiter instance defines a new rule class
    # and ValidationCache is keyed by the rules, so limiters built per request made every
    # request validate its document again. One set of rule classes per limits keeps it hitting.
    return (
        *QueryDepthLimiter(max_depth=max_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=max_aliases).validation_rules,
    )


def _limiters() -> AddValidationRules:
    """The depth and alias limits, with the same rule classes on every request."""
    return AddValidationRules(
        list(_limit_rules(settings.GRAPHQL_MAX_DEPTH, settings.GRAPHQL_MAX_ALIASES))
    )


class QuerysetOptimizer(DjangoOptimizerExtension):
    """strawberry-django's optimizer without its per-field hook.

    strawberry-django's own fields and connections optimize their querysets themselves while
    the extension is active; the hook only adds the same for plain resolvers that return a
    QuerySet, and ours return lists or model instances. As a middleware it wrapped every field
    of every response (a KPI tree has over 200).
    """

    resolve = SchemaExtension.resolve


def _extensions() -> list:
    # Factories, not instances: each request gets fresh extension state.
    extensions = [
        _limiters,
        lambda: MaxTokensLimiter(max_token_count=settings.GRAPHQL_MAX_TOKENS),
        PublicErrorsOnly,
        QuerysetOptimizer,
        # kpiTree answers kept per tenant KPI read version (kpis/graphql/tree_cache.py).
        KpiTreeResponseCache,
        # Query operations read from DATABASE_REPLICA_URL when set (a no-op otherwise).
        ReplicaReadsExtension,
        # Front ends send the same few documents again and again: parse and validate once.
        lambda: ParserCache(maxsize=256),
        lambda: ValidationCache(maxsize=256),
    ]
    if not settings.GRAPHQL_INTROSPECTION:
        extensions.insert(0, DisableIntrospection)
    return extensions


schema = strawberry.Schema(
    query=Query,
    mutation=Mutation,
    extensions=_extensions(),
    config=StrawberryConfig(
        relay_max_results=settings.GRAPHQL_MAX_PAGE_SIZE,
        # Suggestions ("Did you mean ...?") would reveal the schema to anonymous callers.
        disable_field_suggestions=True,
        scalar_map=SCALAR_MAP,
    ),
)
