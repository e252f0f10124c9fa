"""GraphQL read of snapshot freshness: days waiting for a refresh and days that failed."""

from __future__ import annotations

from datetime import date, datetime

import strawberry

from kpis import failures
from tenants.graphql.context import Info
from tenants.graphql.operations import query
from tenants.scopes import Scope


@strawberry.type(name="FailedSnapshotDay", description="A day whose snapshot refresh failed.")
class FailedSnapshotDayType:
    day: date = strawberry.field(
        description=(
            "The workspace-local day (0001-01-01 or 9999-12-31 for a row whose time has no "
            "date there)."
        )
    )
    error: str = strawberry.field(description="Why its latest refresh failed.")
    attempts: int = strawberry.field(description="Failed refreshes in a row.")
    failed_at: datetime
    retry_at: datetime | None = strawberry.field(description="When it is refreshed again.")


@strawberry.type(name="SnapshotHealth")
class SnapshotHealthType:
    pending_days: int = strawberry.field(
        description="Days whose data changed and that wait for their first refresh."
    )
    failed_day_count: int
    failed_days: list[FailedSnapshotDayType] = strawberry.field(
        description=(
            f"The failed days, earliest first (at most {failures.FAILED_DAYS_SHOWN}). Their "
            "periods read as pending until a retry succeeds."
        )
    )
    rebuild_requested_at: datetime | None = strawberry.field(
        description="Set while a full rebuild is waiting: every value reads as pending."
    )


@strawberry.type
class SnapshotHealthQuery:
    @query(
        scope=Scope.KPIS_READ,
        description=(
            "How fresh the KPI snapshots are: days waiting for a refresh, days whose refresh "
            "failed (with the reason and the next retry), and a pending rebuild."
        ),
    )
    def snapshot_health(self, info: Info) -> SnapshotHealthType:
        tenant = info.context.require_tenant()
        health = failures.snapshot_health(tenant=tenant)
        return SnapshotHealthType(
            pending_days=health.pending_days,
            failed_day_count=health.failed_day_count,
            failed_days=[
                FailedSnapshotDayType(
                    day=day.day,
                    error=day.error,
                    attempts=day.attempts,
                    failed_at=day.failed_at,
                    retry_at=day.retry_at,
                )
                for day in health.failed_days
            ],
            rebuild_requested_at=health.rebuild_requested_at,
        )
