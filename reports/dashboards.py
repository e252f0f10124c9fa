"""Dashboards: widget configurations, who sees and edits what, editing services, defaults.

A shared dashboard is seen by the whole workspace and edited with `kpis:write`; a personal
one is seen and edited by its owner only (anyone else gets "not found", as for another
tenant's row). Each widget kind has a JSON configuration, validated and normalised here.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Max, Q, QuerySet
from django.utils.timezone import now

from kpis.periods import Grain
from kpis.selectors import kpi_definitions
from kpis.versions import kpi_read_version_bump
from reports.models import Dashboard, DashboardWidget, WidgetKind
from tenants.bounds import shown, text_check
from tenants.errors import NotFound, PermissionDenied, ValidationFailed
from tenants.models import Membership, Tenant
from tenants.principal import Principal
from tenants.scopes import Role, Scope

MAX_WIDGETS = 12
MAX_DASHBOARDS = 200
MAX_TILE_KPIS = 12
MAX_SERIES_KPIS = 5
MAX_SERIES_POINTS = 60
MAX_LEADERBOARD_ROWS = 100
MAX_ALERT_ROWS = 50
SERIES_GRAINS = (Grain.DAY, Grain.WEEK, Grain.MONTH, Grain.QUARTER)
LEADERBOARD_BY = ("rep", "team", "source")
FUNNEL_MODES = ("period", "cohort")

# The keys each kind's configuration may hold, with their defaults.
CONFIG_DEFAULTS: dict[str, dict[str, Any]] = {
    WidgetKind.KPI_TREE: {},
    WidgetKind.KPI_TILES: {"kpis": None},
    WidgetKind.SERIES: {"kpis": None, "grain": Grain.MONTH.value, "points": 6},
    WidgetKind.FUNNEL: {"mode": "period"},
    WidgetKind.LEADERBOARD: {"kpi": None, "by": "rep", "first": 10},
    WidgetKind.ALERTS: {"first": 10},
}


# --- configuration -------------------------------------------------------------------------


def _int(config: dict[str, Any], key: str, low: int, high: int) -> int:
    value = config[key]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationFailed(
            f"config.{key} must be a whole number {low} to {high}.", field="config"
        )
    return value


def _choice(config: dict[str, Any], key: str, choices: tuple[str, ...]) -> str:
    value = config[key]
    if isinstance(value, str):
        value = value.lower()
    if value not in choices:
        raise ValidationFailed(f"config.{key} must be one of {', '.join(choices)}.", field="config")
    return value


def _kpi_keys(config: dict[str, Any], key: str, high: int) -> list[str]:
    value = config[key]
    if isinstance(value, str):
        value = [value]
    if (
        not isinstance(value, list)
        or not 1 <= len(value) <= high
        or not all(isinstance(k, str) for k in value)
    ):
        raise ValidationFailed(f"config.{key} must list 1 to {high} KPI keys.", field="config")
    return list(dict.fromkeys(value))


def widget_config_validate(*, tenant: Tenant, kind: str, config: Any) -> dict[str, Any]:
    """The configuration of a widget of `kind`, completed with defaults; ValidationFailed
    (field "config") for an unknown key, a bad value or an unknown KPI (named)."""
    if kind not in CONFIG_DEFAULTS:
        raise ValidationFailed(f"Unknown widget kind {shown(str(kind))}.", field="kind")
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise ValidationFailed("config must be a JSON object.", field="config")
    defaults = CONFIG_DEFAULTS[kind]
    unknown = [key for key in config if key not in defaults]
    if unknown:
        raise ValidationFailed(
            f"Unknown config key {shown(str(unknown[0]))} for a {kind} widget.", field="config"
        )
    merged = defaults | config
    missing = [key for key, value in merged.items() if value is None]
    if missing:
        raise ValidationFailed(f"config.{missing[0]} is required.", field="config")
    result: dict[str, Any] = {}
    keys: list[str] = []
    if kind == WidgetKind.KPI_TILES:
        result["kpis"] = keys = _kpi_keys(merged, "kpis", MAX_TILE_KPIS)
    elif kind == WidgetKind.SERIES:
        result["kpis"] = keys = _kpi_keys(merged, "kpis", MAX_SERIES_KPIS)
        result["grain"] = _choice(merged, "grain", tuple(g.value for g in SERIES_GRAINS))
        result["points"] = _int(merged, "points", 1, MAX_SERIES_POINTS)
    elif kind == WidgetKind.FUNNEL:
        result["mode"] = _choice(merged, "mode", FUNNEL_MODES)
    elif kind == WidgetKind.LEADERBOARD:
        if not isinstance(merged["kpi"], str):
            raise ValidationFailed("config.kpi must be a KPI key.", field="config")
        result["kpi"] = merged["kpi"]
        keys = [merged["kpi"]]
        result["by"] = _choice(merged, "by", LEADERBOARD_BY)
        result["first"] = _int(merged, "first", 1, MAX_LEADERBOARD_ROWS)
    elif kind == WidgetKind.ALERTS:
        result["first"] = _int(merged, "first", 1, MAX_ALERT_ROWS)
    if keys:
        found = kpi_definitions(tenant=tenant, keys=keys)
        unknown_kpis = [key for key in keys if key not in found]
        if unknown_kpis:
            raise ValidationFailed(f"Unknown KPI {shown(unknown_kpis[0])}.", field="config")
    return result


# --- reading -------------------------------------------------------------------------------


def _member(principal: Principal) -> Membership | None:
    return principal.membership


def dashboards_visible(*, principal: Principal) -> QuerySet[Dashboard]:
    """The dashboards the principal sees: shared ones, and their own personal ones."""
    member = _member(principal)
    visible = Q(is_shared=True)
    if member is not None:
        visible |= Q(owner_id=member.pk)
    return Dashboard.objects.filter(visible)


def dashboards_page(
    *, principal: Principal, first: int, offset: int
) -> tuple[list[Dashboard], int]:
    """A page of visible dashboards (by name) with their widgets, and how many there are."""
    if not 1 <= first <= 100:
        raise ValidationFailed("first must be 1 to 100.", field="first")
    if offset < 0:
        raise ValidationFailed("offset cannot be negative.", field="offset")
    visible = dashboards_visible(principal=principal)
    page = list(visible.order_by("name", "pk").prefetch_related("widgets")[offset : offset + first])
    return page, visible.count()


def dashboard_get(*, principal: Principal, pk: int) -> Dashboard:
    """One visible dashboard; another member's personal one is not found."""
    dashboard = dashboards_visible(principal=principal).filter(pk=pk).first()
    if dashboard is None:
        raise NotFound("Dashboard", field="id")
    return dashboard


def dashboard_default(*, principal: Principal) -> Dashboard:
    """The dashboard a principal sees first: their role's default (a token: the manager's),
    else the first shared one by name."""
    role = principal.role or Role.MANAGER
    shared = Dashboard.objects.filter(is_shared=True)
    found = shared.filter(default_for_role=role).first() or shared.order_by("name", "pk").first()
    if found is None:
        raise NotFound("Dashboard", field="id")
    return found


def dashboard_widgets(*, dashboard: Dashboard) -> list[DashboardWidget]:
    return list(DashboardWidget.objects.filter(dashboard_id=dashboard.pk).order_by("order", "pk"))


# --- editing -------------------------------------------------------------------------------


def _check_can_edit(principal: Principal, dashboard: Dashboard) -> None:
    if dashboard.is_shared:
        if not principal.has_scope(Scope.KPIS_WRITE):
            raise PermissionDenied(f"Changing a shared dashboard needs '{Scope.KPIS_WRITE}'.")
        return
    member = _member(principal)
    if member is None or dashboard.owner_id != member.pk:
        raise NotFound("Dashboard", field="id")


def _check_sharing(principal: Principal, *, shared: bool, default_for_role: str) -> None:
    if default_for_role and default_for_role not in {r.value for r in Role}:
        raise ValidationFailed(f"Unknown role {shown(default_for_role)}.", field="defaultForRole")
    if default_for_role and not shared:
        raise ValidationFailed("A role's default dashboard is shared.", field="defaultForRole")
    if shared and not principal.has_scope(Scope.KPIS_WRITE):
        raise PermissionDenied(f"A shared dashboard needs '{Scope.KPIS_WRITE}'.")
    if not shared and _member(principal) is None:
        raise ValidationFailed("Only a member can own a personal dashboard.", field="shared")


@transaction.atomic
def dashboard_create(
    *, tenant: Tenant, principal: Principal, name: str, shared: bool, default_for_role: str = ""
) -> Dashboard:
    """Create an empty dashboard (shared: kpis:write; personal: any member)."""
    text_check(name, field="name", max_length=200, required=True)
    _check_sharing(principal, shared=shared, default_for_role=default_for_role)
    if Dashboard.objects.count() >= MAX_DASHBOARDS:
        raise ValidationFailed(
            f"A workspace has at most {MAX_DASHBOARDS} dashboards.", field="name"
        )
    if default_for_role:
        Dashboard.objects.filter(default_for_role=default_for_role).update(default_for_role="")
    return Dashboard.objects.create(
        tenant=tenant,
        name=name,
        owner=_member(principal),
        is_shared=shared,
        default_for_role=default_for_role,
    )


@transaction.atomic
def dashboard_update(
    *,
    tenant: Tenant,
    principal: Principal,
    dashboard: Dashboard,
    name: str | None = None,
    shared: bool | None = None,
    default_for_role: str | None = None,
) -> Dashboard:
    """Rename a dashboard, share or unshare it, or make it a role's default."""
    _check_can_edit(principal, dashboard)
    if name is not None:
        dashboard.name = text_check(name, field="name", max_length=200, required=True)
    new_shared = dashboard.is_shared if shared is None else shared
    new_role = dashboard.default_for_role if default_for_role is None else default_for_role
    if new_shared != dashboard.is_shared or new_role != dashboard.default_for_role:
        _check_sharing(principal, shared=new_shared, default_for_role=new_role)
        if not new_shared and dashboard.owner_id is None:
            raise ValidationFailed("A dashboard without an owner stays shared.", field="shared")
    if new_role and new_role != dashboard.default_for_role:
        Dashboard.objects.filter(default_for_role=new_role).exclude(pk=dashboard.pk).update(
            default_for_role=""
        )
    dashboard.is_shared, dashboard.default_for_role = new_shared, new_role
    dashboard.updated_at = now()
    dashboard.save(update_fields=["name", "is_shared", "default_for_role", "updated_at"])
    return dashboard


@transaction.atomic
def dashboard_delete(*, principal: Principal, dashboard: Dashboard) -> int:
    """Delete a dashboard and its widgets; returns how many widgets went with it."""
    _check_can_edit(principal, dashboard)
    widgets = DashboardWidget.objects.filter(dashboard_id=dashboard.pk).count()
    dashboard.delete()
    return widgets


def _touch(dashboard: Dashboard) -> None:
    dashboard.updated_at = now()
    dashboard.save(update_fields=["updated_at"])


@transaction.atomic
def dashboard_widget_add(
    *,
    tenant: Tenant,
    principal: Principal,
    dashboard: Dashboard,
    kind: str,
    config: Any,
    title: str = "",
    order: int | None = None,
) -> DashboardWidget:
    """Add a widget (last unless `order` is given) after validating its configuration."""
    _check_can_edit(principal, dashboard)
    text_check(title, field="title", max_length=200)
    normalised = widget_config_validate(tenant=tenant, kind=kind, config=config)
    # Lock the dashboard so two concurrent adds cannot pass the cap together.
    Dashboard.objects.select_for_update().filter(pk=dashboard.pk).first()
    widgets = DashboardWidget.objects.filter(dashboard_id=dashboard.pk)
    if widgets.count() >= MAX_WIDGETS:
        raise ValidationFailed(f"A dashboard has at most {MAX_WIDGETS} widgets.", field="kind")
    if order is None:
        order = (widgets.aggregate(last=Max("order"))["last"] or 0) + 1
    elif not 0 <= order <= 10_000:
        raise ValidationFailed("order must be 0 to 10000.", field="order")
    widget = DashboardWidget.objects.create(
        tenant=tenant, dashboard=dashboard, kind=kind, title=title, order=order, config=normalised
    )
    _touch(dashboard)
    return widget


@transaction.atomic
def dashboard_widget_update(
    *,
    tenant: Tenant,
    principal: Principal,
    widget: DashboardWidget,
    config: Any = None,
    title: str | None = None,
) -> DashboardWidget:
    """Change a widget's configuration (validated for its kind) or title."""
    dashboard = Dashboard.objects.get(pk=widget.dashboard_id)
    _check_can_edit(principal, dashboard)
    if title is not None:
        widget.title = text_check(title, field="title", max_length=200)
    if config is not None:
        widget.config = widget_config_validate(tenant=tenant, kind=widget.kind, config=config)
    widget.save(update_fields=["title", "config"])
    _touch(dashboard)
    return widget


@transaction.atomic
def dashboard_widget_remove(*, principal: Principal, widget: DashboardWidget) -> None:
    dashboard = Dashboard.objects.get(pk=widget.dashboard_id)
    _check_can_edit(principal, dashboard)
    widget.delete()
    _touch(dashboard)


@transaction.atomic
def dashboard_widgets_reorder(
    *, principal: Principal, dashboard: Dashboard, widget_ids: list[int]
) -> list[DashboardWidget]:
    """Put the dashboard's widgets in the order given: every widget exactly once."""
    _check_can_edit(principal, dashboard)
    widgets = {w.pk: w for w in dashboard_widgets(dashboard=dashboard)}
    if len(widget_ids) != len(set(widget_ids)) or set(widget_ids) != set(widgets):
        raise ValidationFailed(
            "List every widget of the dashboard exactly once.", field="widgetIds"
        )
    for position, pk in enumerate(widget_ids, start=1):
        widgets[pk].order = position
    DashboardWidget.objects.bulk_update(list(widgets.values()), ["order"])
    _touch(dashboard)
    return [widgets[pk] for pk in widget_ids]


# --- defaults ------------------------------------------------------------------------------

_TREE: tuple[str, dict[str, Any]] = (WidgetKind.KPI_TREE, {})
_ALERTS: tuple[str, dict[str, Any]] = (WidgetKind.ALERTS, {"first": 10})

# The layout each role starts from (kind, config), in order.
DEFAULT_LAYOUTS: dict[str, tuple[str, list[tuple[str, dict[str, Any]]]]] = {
    Role.MANAGER: (
        "Team overview / チーム概況",
        [
            (WidgetKind.KPI_TILES, {"kpis": ["won_deals", "meetings_set", "calls", "win_rate"]}),
            _TREE,
            (WidgetKind.SERIES, {"kpis": ["meetings_set"], "grain": "month", "points": 6}),
            (WidgetKind.FUNNEL, {"mode": "period"}),
            (WidgetKind.LEADERBOARD, {"kpi": "meetings_set", "by": "rep", "first": 10}),
            _ALERTS,
        ],
    ),
    Role.ADMIN: (
        "Workspace overview / 全体概況",
        [
            (WidgetKind.KPI_TILES, {"kpis": ["revenue", "won_deals", "pipeline_created"]}),
            _TREE,
            (WidgetKind.FUNNEL, {"mode": "period"}),
            (WidgetKind.LEADERBOARD, {"kpi": "won_deals", "by": "team", "first": 10}),
            _ALERTS,
        ],
    ),
    Role.REP: (
        "My activity / 自分の活動",
        [
            (WidgetKind.KPI_TILES, {"kpis": ["calls", "connects", "connect_rate", "meetings_set"]}),
            (WidgetKind.SERIES, {"kpis": ["calls"], "grain": "week", "points": 8}),
            (WidgetKind.LEADERBOARD, {"kpi": "calls", "by": "rep", "first": 10}),
            _ALERTS,
        ],
    ),
    Role.MARKETING: (
        "Marketing / マーケティング",
        [
            (WidgetKind.KPI_TILES, {"kpis": ["leads", "mqls", "email_open_rate"]}),
            (WidgetKind.FUNNEL, {"mode": "cohort"}),
            (WidgetKind.LEADERBOARD, {"kpi": "leads", "by": "source", "first": 10}),
        ],
    ),
    Role.FIELD_SALES: (
        "Field sales / フィールドセールス",
        [
            (WidgetKind.KPI_TILES, {"kpis": ["opportunities", "win_rate", "won_deals"]}),
            (WidgetKind.FUNNEL, {"mode": "period"}),
        ],
    ),
    Role.VIEWER: (
        "Overview / 概況",
        [(WidgetKind.KPI_TILES, {"kpis": ["won_deals", "meetings_set"]}), _TREE],
    ),
}


def dashboards_seed_defaults(tenant: Tenant) -> int:
    """Give the tenant (in its context) a shared default dashboard per role it lacks one for;
    returns how many were created. Idempotent: the tenant_created hook and the command."""
    taken = set(
        Dashboard.objects.exclude(default_for_role="").values_list("default_for_role", flat=True)
    )
    created = 0
    for role, (name, layout) in DEFAULT_LAYOUTS.items():
        if role in taken:
            continue
        dashboard = Dashboard.objects.create(
            tenant=tenant, name=name, is_shared=True, default_for_role=role
        )
        DashboardWidget.objects.bulk_create(
            DashboardWidget(
                tenant=tenant,
                dashboard=dashboard,
                kind=kind,
                order=position,
                config=widget_config_validate(tenant=tenant, kind=kind, config=config),
            )
            for position, (kind, config) in enumerate(layout, start=1)
        )
        created += 1
    if created:
        # The bulk insert sends no post_save: a cached dashboard (kpis.versions) must see it.
        kpi_read_version_bump(tenant.pk)
    return created
