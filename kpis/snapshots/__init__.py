"""Computing and storing KPI snapshots, one module per concern:

- `refresh`: dirty-day refreshes (the days writes marked, with their periods; failing days
  isolated).
- `rebuild`: full rebuilds (one set-based pass through a stage, or day by day when it fails).
- `writing`: inserting day and period rows, and the new day rows of changed days.
- `measuring`: reading the day measures of a pass from raw rows.
- `warm`: the membership rows of the open periods, built ahead of the first refresh.
- `common`: what the passes share (the tenant's lock, day ranges, periods, results).
- `scheduling`: queueing refreshes and rebuilds (one per tenant, after commit).
- `daily_sql`, `members_sql`, `rollup_sql`, `literals_sql`: the PostgreSQL of the passes,
  by purpose: day measures, exact distinct members, periods rolled up from days, and the
  array literals of large parameters.

NOTE: `refresh` and `rebuild` call `writing` and `measuring` through the module, so
patching a name there reaches every caller.
"""

from kpis.snapshots.common import DayChange, RefreshResult
from kpis.snapshots.rebuild import kpi_snapshots_rebuild
from kpis.snapshots.refresh import kpi_snapshots_refresh_days, kpi_snapshots_refresh_dirty
from kpis.snapshots.warm import kpi_snapshots_warm

__all__: list[str] = [
    "DayChange",
    "RefreshResult",
    "kpi_snapshots_rebuild",
    "kpi_snapshots_refresh_days",
    "kpi_snapshots_refresh_dirty",
    "kpi_snapshots_warm",
]
