"""GraphQL API of dashboards: layouts, their editing, and `dashboard` with all widgets' data."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from alerts.graphql.types import AlertPage, AlertType
from kpis.graphql.funnel import FunnelType
from kpis.graphql.inputs import (
    Comparison,
    GrainEnum,
    ScopeInput,
    comparison_period,
    resolve_period,
    resolve_scope,
)
from kpis.graphql.queries import (
    KpiSeries,
    KpiSeriesPoint,
    LeaderboardBy,
    LeaderboardEntryType,
    LeaderboardType,
)
from kpis.graphql.trees import KpiTreeResultType
from kpis.graphql.types import KpiDefinitionType, KpiScopeType, KpiValueType, PeriodType
from kpis.numbers import shown
from reports import dashboards as services
from reports.dashboard_data import DashboardData, Tile, WidgetData, dashboard_data_read
from reports.models import Dashboard, DashboardWidget, WidgetKind
from tenants.errors import NotFound, ValidationFailed
from tenants.graphql.base import given, resolve_global_id
from tenants.graphql.context import Info
from tenants.graphql.operations import MutationPayload, mutation, query
from tenants.scopes import Scope

DASHBOARD, WIDGET = "Dashboard", "DashboardWidget"

DashboardWidgetKind = strawberry.enum(
    WidgetKind,
    name="DashboardWidgetKind",
    description=(
        "KPI_TREE (the default tree; config {}), KPI_TILES ({kpis: [key]}), SERIES ({kpis: "
        "[key], grain: day|week|month|quarter, points: 1-60}), FUNNEL ({mode: period|cohort}), "
        "LEADERBOARD ({kpi, by: rep|team|source, first: 1-100}), ALERTS ({first: 1-50})."
    ),
)


@strawberry.enum(name="DashboardRole", description="The role a dashboard is the default for.")
class DashboardRole(Enum):
    ADMIN = "admin"
    MANAGER = "manager"
    REP = "rep"
    MARKETING = "marketing"
    FIELD_SALES = "field_sales"
    VIEWER = "viewer"


def _gid(type_name: str, pk: Any) -> strawberry.ID:
    return strawberry.ID(relay.to_base64(type_name, pk))


@strawberry.type(name="DashboardWidget", description="A widget of a stored dashboard layout.")
class DashboardWidgetType:
    id: strawberry.ID
    kind: DashboardWidgetKind  # type: ignore[valid-type]
    title: str
    order: int
    config: JSON = strawberry.field(description="The validated configuration of its kind.")

    @classmethod
    def of(cls, widget: DashboardWidget) -> DashboardWidgetType:
        return cls(
            id=_gid(WIDGET, widget.pk),
            kind=WidgetKind(widget.kind),
            title=widget.title,
            order=widget.order,
            config=widget.config,
        )


@strawberry.type(name="Dashboard", description="A stored layout: shared, or personal to its owner.")
class DashboardType:
    id: strawberry.ID
    name: str
    shared: bool
    owner_id: strawberry.ID | None = strawberry.field(description="The owning Membership.")
    default_for_role: DashboardRole | None
    created_at: datetime
    updated_at: datetime
    widgets: list[DashboardWidgetType] = strawberry.field(description="In order.")

    @classmethod
    def of(cls, dashboard: Dashboard, widgets: list[DashboardWidget]) -> DashboardType:
        return cls(
            id=_gid(DASHBOARD, dashboard.pk),
            name=dashboard.name,
            shared=dashboard.is_shared,
            owner_id=None if dashboard.owner_id is None else _gid("Membership", dashboard.owner_id),
            default_for_role=(
                DashboardRole(dashboard.default_for_role) if dashboard.default_for_role else None
            ),
            created_at=dashboard.created_at,
            updated_at=dashboard.updated_at,
            widgets=[
                DashboardWidgetType.of(w) for w in sorted(widgets, key=lambda w: (w.order, w.pk))
            ],
        )


@strawberry.type(name="DashboardPage")
class DashboardPage:
    total_count: int
    items: list[DashboardType]


@strawberry.type(name="KpiTile", description="A KPI of a tiles widget.")
class KpiTileType:
    kpi: KpiDefinitionType
    value: KpiValueType
    comparison: KpiValueType | None = strawberry.field(
        description="The comparison period's value, when one was asked for."
    )
    target: Decimal | None = strawberry.field(description="The explicit target (4 decimals).")
    attainment: Decimal | None = strawberry.field(
        description="value ÷ target as a ratio, rounded half up to 4 decimals; null without both."
    )

    @classmethod
    def of(cls, tile: Tile) -> KpiTileType:
        return cls(
            kpi=KpiDefinitionType.from_definition(tile.kpi),
            value=KpiValueType.from_value(tile.value),
            comparison=None
            if tile.comparison is None
            else KpiValueType.from_value(tile.comparison),
            target=shown(tile.target),
            attainment=shown(tile.attainment),
        )


@strawberry.type(
    name="DashboardWidgetData",
    description=(
        "A widget with its data: the field of its kind is set (tiles, series, tree, funnel, "
        "leaderboard or alerts), the others are null. Types are those of the standalone "
        "queries (kpiValues, kpiSeries, kpiTree, funnel, leaderboard, alerts)."
    ),
)
class DashboardWidgetDataType:
    id: strawberry.ID
    kind: DashboardWidgetKind  # type: ignore[valid-type]
    title: str
    order: int
    config: JSON
    missing_kpis: list[str] = strawberry.field(
        description="KPIs of the config no longer in the catalogue (left out of the data)."
    )
    tiles: list[KpiTileType] | None
    series: list[KpiSeries] | None
    tree: KpiTreeResultType | None
    funnel: FunnelType | None
    leaderboard: LeaderboardType | None
    alerts: AlertPage | None = strawberry.field(description="Open (firing) alerts, latest first.")

    @classmethod
    def of(cls, data: WidgetData, scope: KpiScopeType) -> DashboardWidgetDataType:
        widget = data.widget
        board = data.leaderboard
        return cls(
            id=_gid(WIDGET, widget.pk),
            kind=WidgetKind(widget.kind),
            title=widget.title,
            order=widget.order,
            config=widget.config,
            missing_kpis=data.missing_kpis,
            tiles=None if data.tiles is None else [KpiTileType.of(t) for t in data.tiles],
            series=None
            if data.series is None
            else [
                KpiSeries(
                    kpi=KpiDefinitionType.from_definition(s.kpi),
                    scope=scope,
                    grain=GrainEnum(s.grain),
                    points=[
                        KpiSeriesPoint(
                            period=PeriodType.from_period(value.period),
                            value=KpiValueType.from_value(value),
                            comparison=None if other is None else KpiValueType.from_value(other),
                        )
                        for value, other in s.points
                    ],
                )
                for s in data.series
            ],
            tree=None if data.tree is None else KpiTreeResultType.from_evaluation(data.tree),
            funnel=None if data.funnel is None else FunnelType.from_result(data.funnel),
            leaderboard=None
            if board is None
            else LeaderboardType(
                kpi=KpiDefinitionType.from_definition(board.kpi),
                period=PeriodType.from_period(board.period),
                by=LeaderboardBy(board.by),
                total_count=board.total,
                entries=[
                    LeaderboardEntryType(
                        rank=entry.rank,
                        label=entry.label,
                        scope=KpiScopeType.from_scope(entry.value.scope),
                        value=KpiValueType.from_value(entry.value),
                        comparison=None
                        if entry.comparison is None
                        else KpiValueType.from_value(entry.comparison),
                    )
                    for entry in board.entries
                ],
            ),
            alerts=None
            if data.alerts is None
            else AlertPage(
                total_count=data.alert_count or 0, items=[AlertType.of(a) for a in data.alerts]
            ),
        )


@strawberry.type(name="DashboardView", description="A dashboard with every widget's data.")
class DashboardViewType:
    dashboard: DashboardType
    period: PeriodType
    comparison_period: PeriodType | None
    scope: KpiScopeType
    widgets: list[DashboardWidgetDataType] = strawberry.field(description="In order.")

    @classmethod
    def of(cls, data: DashboardData) -> DashboardViewType:
        scope = KpiScopeType.from_scope(data.scope)
        return cls(
            dashboard=DashboardType.of(data.dashboard, [w.widget for w in data.widgets]),
            period=PeriodType.from_period(data.period),
            comparison_period=None
            if data.comparison_period is None
            else PeriodType.from_period(data.comparison_period),
            scope=scope,
            widgets=[DashboardWidgetDataType.of(w, scope) for w in data.widgets],
        )


def _dashboard(info: Info, global_id: relay.GlobalID, field: str = "id") -> Dashboard:
    found = resolve_global_id(info, global_id, model=Dashboard, type_name=DASHBOARD, field=field)
    # A personal dashboard of another member is not found, as another tenant's would be.
    return services.dashboard_get(principal=info.context.principal, pk=found.pk)


def _widget(info: Info, global_id: relay.GlobalID, field: str = "id") -> DashboardWidget:
    widget = resolve_global_id(
        info, global_id, model=DashboardWidget, type_name=WIDGET, what="Dashboard widget",
        field=field,
    )  # fmt: skip
    services.dashboard_get(principal=info.context.principal, pk=widget.dashboard_id)
    return widget


@strawberry.type
class DashboardQuery:
    @query(
        scope=Scope.KPIS_READ, description="The dashboards the caller sees, by name (kpis:read)."
    )
    def dashboards(self, info: Info, first: int = 50, offset: int = 0) -> DashboardPage:
        items, total = services.dashboards_page(
            principal=info.context.principal, first=first, offset=offset
        )
        return DashboardPage(
            total_count=total, items=[DashboardType.of(d, list(d.widgets.all())) for d in items]
        )

    @query(
        scope=Scope.KPIS_READ,
        description=(
            "A dashboard with every widget's data for a period and scope, in one request "
            "(a bounded number of SQL queries whatever the widgets). Without `id`: the "
            "caller's role default (an API token: the manager's)."
        ),
    )
    def dashboard(
        self,
        info: Info,
        period: str,
        id: relay.GlobalID | None = None,
        scope: ScopeInput | None = None,
        comparison: Comparison | None = None,
    ) -> DashboardViewType:
        tenant = info.context.require_tenant()
        principal = info.context.principal
        the_period = resolve_period(info, period)
        the_scope = resolve_scope(info, scope)
        compared = comparison_period(the_period, comparison)
        board = (
            services.dashboard_default(principal=principal) if id is None else _dashboard(info, id)
        )
        data = dashboard_data_read(
            tenant=tenant,
            dashboard=board,
            widgets=services.dashboard_widgets(dashboard=board),
            period=the_period,
            scope=the_scope,
            comparison=None if comparison is None else comparison.value,
            comparison_period=compared,
        )
        return DashboardViewType.of(data)


# --- mutations -----------------------------------------------------------------------------


@strawberry.input(name="CreateDashboardInput")
class CreateDashboardInput:
    name: str
    shared: bool = strawberry.field(
        default=False, description="true: the whole workspace sees it (needs kpis:write)."
    )
    default_for_role: DashboardRole | None = None


@strawberry.input(name="UpdateDashboardInput", description="Only the fields sent change.")
class UpdateDashboardInput:
    id: relay.GlobalID
    name: str | None = strawberry.UNSET
    shared: bool | None = strawberry.UNSET
    default_for_role: DashboardRole | None = strawberry.field(
        default=strawberry.UNSET, description="null: no longer a role's default."
    )


@strawberry.type(name="DashboardPayload")
class DashboardPayload(MutationPayload):
    dashboard: DashboardType | None = None


@strawberry.type(name="DeleteDashboardPayload")
class DeleteDashboardPayload(MutationPayload):
    deleted_id: relay.GlobalID | None = None
    removed_widget_count: int = 0


@strawberry.input(name="AddDashboardWidgetInput")
class AddDashboardWidgetInput:
    dashboard_id: relay.GlobalID
    kind: DashboardWidgetKind  # type: ignore[valid-type]
    config: JSON | None = strawberry.field(default=None, description="See DashboardWidgetKind.")
    title: str = ""
    order: int | None = strawberry.field(default=None, description="Last when null.")


@strawberry.input(name="UpdateDashboardWidgetInput", description="Only the fields sent change.")
class UpdateDashboardWidgetInput:
    id: relay.GlobalID
    config: JSON | None = strawberry.UNSET
    title: str | None = strawberry.UNSET


@strawberry.type(name="DashboardWidgetPayload")
class DashboardWidgetPayload(MutationPayload):
    widget: DashboardWidgetType | None = None


@strawberry.type(name="RemoveDashboardWidgetPayload")
class RemoveDashboardWidgetPayload(MutationPayload):
    removed_id: relay.GlobalID | None = None


def _payload(dashboard: Dashboard) -> DashboardPayload:
    return DashboardPayload(
        dashboard=DashboardType.of(dashboard, services.dashboard_widgets(dashboard=dashboard))
    )


@strawberry.type
class DashboardMutation:
    @mutation(
        scope=Scope.KPIS_READ,
        description="Create an empty dashboard: personal, or shared (kpis:write).",
    )
    def create_dashboard(self, info: Info, input: CreateDashboardInput) -> DashboardPayload:
        tenant = info.context.require_tenant()
        dashboard = services.dashboard_create(
            tenant=tenant,
            principal=info.context.principal,
            name=input.name,
            shared=input.shared,
            default_for_role=input.default_for_role.value if input.default_for_role else "",
        )
        return _payload(dashboard)

    @mutation(
        scope=Scope.KPIS_READ, description="Rename, share or unshare a dashboard, or set its role."
    )
    def update_dashboard(self, info: Info, input: UpdateDashboardInput) -> DashboardPayload:
        tenant = info.context.require_tenant()
        dashboard = _dashboard(info, input.id)
        role: str | None = None
        if given(input.default_for_role):
            role = input.default_for_role.value if input.default_for_role else ""
        updated = services.dashboard_update(
            tenant=tenant,
            principal=info.context.principal,
            dashboard=dashboard,
            name=input.name if given(input.name) and input.name is not None else None,
            shared=input.shared if given(input.shared) else None,
            default_for_role=role,
        )
        return _payload(updated)

    @mutation(scope=Scope.KPIS_READ, description="Delete a dashboard and its widgets.")
    def delete_dashboard(self, info: Info, id: relay.GlobalID) -> DeleteDashboardPayload:
        removed = services.dashboard_delete(
            principal=info.context.principal, dashboard=_dashboard(info, id)
        )
        return DeleteDashboardPayload(deleted_id=id, removed_widget_count=removed)

    @mutation(
        scope=Scope.KPIS_READ, description="Add a widget (its config validated for its kind)."
    )
    def add_dashboard_widget(
        self, info: Info, input: AddDashboardWidgetInput
    ) -> DashboardWidgetPayload:
        tenant = info.context.require_tenant()
        widget = services.dashboard_widget_add(
            tenant=tenant,
            principal=info.context.principal,
            dashboard=_dashboard(info, input.dashboard_id, "dashboardId"),
            kind=WidgetKind(input.kind).value,
            config=input.config,
            title=input.title,
            order=input.order,
        )
        return DashboardWidgetPayload(widget=DashboardWidgetType.of(widget))

    @mutation(scope=Scope.KPIS_READ, description="Change a widget's config or title.")
    def update_dashboard_widget(
        self, info: Info, input: UpdateDashboardWidgetInput
    ) -> DashboardWidgetPayload:
        tenant = info.context.require_tenant()
        widget = services.dashboard_widget_update(
            tenant=tenant,
            principal=info.context.principal,
            widget=_widget(info, input.id),
            config=input.config if given(input.config) else None,
            title=input.title if given(input.title) else None,
        )
        return DashboardWidgetPayload(widget=DashboardWidgetType.of(widget))

    @mutation(scope=Scope.KPIS_READ, description="Remove a widget.")
    def remove_dashboard_widget(
        self, info: Info, id: relay.GlobalID
    ) -> RemoveDashboardWidgetPayload:
        services.dashboard_widget_remove(principal=info.context.principal, widget=_widget(info, id))
        return RemoveDashboardWidgetPayload(removed_id=id)

    @mutation(
        scope=Scope.KPIS_READ, description="Order a dashboard's widgets: list every widget once."
    )
    def reorder_dashboard_widgets(
        self, info: Info, dashboard_id: relay.GlobalID, widget_ids: list[relay.GlobalID]
    ) -> DashboardPayload:
        dashboard = _dashboard(info, dashboard_id, "dashboardId")
        if len(widget_ids) > services.MAX_WIDGETS:
            raise ValidationFailed("Too many widget ids.", field="widgetIds")
        pks = []
        for gid in widget_ids:
            if gid.type_name != WIDGET or not gid.node_id.isdigit():
                raise NotFound("Dashboard widget", field="widgetIds")
            pks.append(int(gid.node_id))
        services.dashboard_widgets_reorder(
            principal=info.context.principal, dashboard=dashboard, widget_ids=pks
        )
        return _payload(dashboard)
