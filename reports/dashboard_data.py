"""Every widget's data of a dashboard for a period and scope, in a bounded number of queries.

The widgets are grouped by what they read, and each group is read once whatever its number
of widgets: one snapshot read (kpi_values) for every tile and series point, one target read
for the tiles, one tree evaluation, one funnel per mode, one candidate list and one snapshot
read per leaderboard grouping (rep, team, source), one page of open alerts. The numbers come
from the same selectors as the standalone queries (kpiValues, kpiSeries, kpiTree, funnel,
leaderboard, alerts), so a widget shows exactly what they show for the same arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from alerts import selectors as alert_selectors
from alerts.models import Alert
from kpis import funnels, leaderboards
from kpis.catalogue import KpiDefinition
from kpis.funnels import FunnelMode, FunnelResult
from kpis.leaderboards import LeaderboardEntry
from kpis.periods import Period, period_containing
from kpis.scopes import KpiScope
from kpis.selectors import KpiValue, kpi_definitions, kpi_values
from kpis.targets import as_decimal, query_target_values
from kpis.trees import TreeEvaluation, kpi_tree_default_evaluate
from reports.models import Dashboard, DashboardWidget, WidgetKind
from tenants.models import Tenant


@dataclass(frozen=True)
class Tile:
    """A KPI of a tiles widget: its value, comparison, target and attainment."""

    kpi: KpiDefinition
    value: KpiValue
    comparison: KpiValue | None
    target: Decimal | None
    attainment: Decimal | None  # value ÷ target (a ratio), exact; None without either


@dataclass(frozen=True)
class Series:
    kpi: KpiDefinition
    grain: str
    points: list[tuple[KpiValue, KpiValue | None]]


@dataclass(frozen=True)
class Board:
    kpi: KpiDefinition
    period: Period
    by: str
    entries: list[LeaderboardEntry]
    total: int


@dataclass
class WidgetData:
    widget: DashboardWidget
    missing_kpis: list[str] = field(default_factory=list)
    tiles: list[Tile] | None = None
    series: list[Series] | None = None
    tree: TreeEvaluation | None = None
    funnel: FunnelResult | None = None
    leaderboard: Board | None = None
    alerts: list[Alert] | None = None
    alert_count: int | None = None


@dataclass(frozen=True)
class DashboardData:
    dashboard: Dashboard
    period: Period
    scope: KpiScope
    comparison_period: Period | None
    widgets: list[WidgetData]


def series_periods(*, period: Period, grain: str, points: int, fiscal_start: int) -> list[Period]:
    """The `points` periods of `grain` ending with the one holding the period's last day
    (fewer when they would leave the years 1970..2100), oldest first."""
    last = period_containing(grain, period.end - timedelta(days=1), fiscal_start)
    found = [last]
    while len(found) < points:
        before = found[-1].previous()
        if not before.in_bounds:
            break
        found.append(before)
    return found[::-1]


def _shift(period: Period, comparison: str | None) -> Period | None:
    if comparison == "previous_period":
        return period.previous()
    if comparison == "same_period_last_year":
        return period.same_period_last_year()
    return None


def _attainment(value: KpiValue, target: Decimal | None) -> Decimal | None:
    if value.value is None or not target:
        return None
    return as_decimal(Fraction(value.value) / Fraction(target))


def dashboard_data_read(
    *,
    tenant: Tenant,
    dashboard: Dashboard,
    widgets: list[DashboardWidget],
    period: Period,
    scope: KpiScope,
    comparison: str | None = None,
    comparison_period: Period | None = None,
) -> DashboardData:
    """Every widget's data (see the module docstring). `comparison` is previous_period or
    same_period_last_year; `comparison_period` the period it gives for `period` (checked
    in bounds by the caller)."""
    keys: list[str] = []
    for widget in widgets:
        config = widget.config or {}
        if widget.kind in (WidgetKind.KPI_TILES, WidgetKind.SERIES):
            keys += list(config.get("kpis", []))
        elif widget.kind == WidgetKind.LEADERBOARD:
            keys.append(config.get("kpi", ""))
    definitions = kpi_definitions(tenant=tenant, keys=keys) if keys else {}
    results = [WidgetData(widget=w) for w in widgets]

    # Tiles and series: one snapshot read for all of them, one target read for the tiles.
    periods: list[Period] = [period] + ([comparison_period] if comparison_period else [])
    tile_kpis: dict[str, KpiDefinition] = {}
    series_of: dict[int, list[tuple[Period, Period | None]]] = {}
    for data in results:
        config = data.widget.config or {}
        if data.widget.kind not in (WidgetKind.KPI_TILES, WidgetKind.SERIES):
            continue
        wanted = list(config.get("kpis", []))
        data.missing_kpis = [key for key in wanted if key not in definitions]
        if data.widget.kind == WidgetKind.KPI_TILES:
            tile_kpis.update({key: definitions[key] for key in wanted if key in definitions})
        else:
            points = series_periods(
                period=period,
                grain=config["grain"],
                points=config["points"],
                fiscal_start=tenant.fiscal_year_start_month,
            )
            pairs = [(p, _shift(p, comparison)) for p in points]
            series_of[data.widget.pk] = pairs
            for point, shifted in pairs:
                periods.append(point)
                if shifted is not None:
                    periods.append(shifted)
    value_kpis = {
        key: definitions[key]
        for data in results
        if data.widget.kind in (WidgetKind.KPI_TILES, WidgetKind.SERIES)
        for key in (data.widget.config or {}).get("kpis", [])
        if key in definitions
    }
    values = (
        kpi_values(
            tenant=tenant,
            kpis=list(value_kpis.values()),
            periods=list(dict.fromkeys(periods)),
            scopes=[scope],
        )
        if value_kpis
        else {}
    )
    targets = (
        query_target_values(periods=[period], scopes=[scope], kpi_keys=list(tile_kpis))
        if tile_kpis
        else {}
    )

    # Leaderboards: one candidate list and one snapshot read per grouping.
    boards: dict[str, list[WidgetData]] = {}
    funnel_modes: set[str] = set()
    alert_rows = 0
    needs_tree = False
    for data in results:
        config = data.widget.config or {}
        kind = data.widget.kind
        if kind == WidgetKind.LEADERBOARD:
            if config.get("kpi") in definitions:
                boards.setdefault(config["by"], []).append(data)
            else:
                data.missing_kpis = [config.get("kpi", "")]
        elif kind == WidgetKind.FUNNEL:
            funnel_modes.add(config.get("mode", "period"))
        elif kind == WidgetKind.ALERTS:
            alert_rows = max(alert_rows, int(config.get("first", 10)))
        elif kind == WidgetKind.KPI_TREE:
            needs_tree = True
    board_results: dict[int, Board] = {}
    for by, group in boards.items():
        candidates = leaderboards.leaderboard_candidates(by=by, period=period)
        board_kpis = {d.widget.config["kpi"]: definitions[d.widget.config["kpi"]] for d in group}
        board_values = kpi_values(
            tenant=tenant,
            kpis=list(board_kpis.values()),
            periods=[period] + ([comparison_period] if comparison_period else []),
            scopes=list(candidates),
        )
        for data in group:
            kpi = board_kpis[data.widget.config["kpi"]]
            entries, total = leaderboards.leaderboard_rank(
                kpi=kpi,
                period=period,
                candidates=candidates,
                values=board_values,
                comparison_period=comparison_period,
                limit=data.widget.config["first"],
            )
            board_results[data.widget.pk] = Board(kpi, period, by, entries, total)

    funnel_results = {
        mode: funnels.funnel_compute(
            tenant=tenant,
            period=period,
            mode=FunnelMode(mode),
            scope=scope,
            comparison_period=comparison_period,
        )
        for mode in sorted(funnel_modes)
    }
    tree = (
        kpi_tree_default_evaluate(
            tenant=tenant, period=period, scope=scope, comparison_period=comparison_period
        )
        if needs_tree
        else None
    )
    open_alerts: list[Alert] = []
    alert_total = 0
    if alert_rows:
        open_alerts, alert_total = alert_selectors.alerts_page(
            state="firing", rule=None, first=alert_rows, offset=0
        )

    for data in results:
        config: dict[str, Any] = data.widget.config or {}
        kind = data.widget.kind
        if kind == WidgetKind.KPI_TILES:
            data.tiles = [
                Tile(
                    kpi=definitions[key],
                    value=values[(key, period, scope)],
                    comparison=(
                        values[(key, comparison_period, scope)] if comparison_period else None
                    ),
                    target=targets.get((key, period, scope)),
                    attainment=_attainment(
                        values[(key, period, scope)], targets.get((key, period, scope))
                    ),
                )
                for key in config.get("kpis", [])
                if key in definitions
            ]
        elif kind == WidgetKind.SERIES:
            pairs = series_of.get(data.widget.pk, [])
            data.series = [
                Series(
                    kpi=definitions[key],
                    grain=config["grain"],
                    points=[
                        (
                            values[(key, point, scope)],
                            values[(key, shifted, scope)] if shifted is not None else None,
                        )
                        for point, shifted in pairs
                    ],
                )
                for key in config.get("kpis", [])
                if key in definitions
            ]
        elif kind == WidgetKind.LEADERBOARD:
            data.leaderboard = board_results.get(data.widget.pk)
        elif kind == WidgetKind.FUNNEL:
            data.funnel = funnel_results[config.get("mode", "period")]
        elif kind == WidgetKind.KPI_TREE:
            data.tree = tree
        elif kind == WidgetKind.ALERTS:
            data.alerts = open_alerts[: int(config.get("first", 10))]
            data.alert_count = alert_total
    return DashboardData(
        dashboard=dashboard,
        period=period,
        scope=scope,
        comparison_period=comparison_period,
        widgets=results,
    )
