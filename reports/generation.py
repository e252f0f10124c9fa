"""Generating reports: which are due in the tenant's local time, exactly once per tenant,
kind, period and scope, and regenerated on demand.

Schedule: WEEKLY for each ISO week, MONTHLY and EXECUTIVE for each month, due from the
tenant's local midnight that closes the period (the hourly beat generates them within the
hour). A new report publishes `report.ready` (reports/delivery.py) in the same transaction.
Scopes, from one schedule: the workspace, each team, and each rep with data in the period
(a rep without activity gets none); the executive report is the workspace's only.
"""

from __future__ import annotations

import zlib
import zoneinfo
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from kpis.models import KpiSnapshot
from kpis.periods import Grain, Period, local_date, period_containing
from kpis.scopes import KpiScope, ScopeType
from kpis.targets import reading_context
from reports.content import report_content
from reports.delivery import report_ready_publish
from reports.models import Report, ReportKind
from reports.rendering import LABELS, report_html
from tenants.models import Membership, Team, Tenant

GRAINS: dict[str, str] = {
    ReportKind.WEEKLY: Grain.WEEK,
    ReportKind.MONTHLY: Grain.MONTH,
    ReportKind.EXECUTIVE: Grain.MONTH,
}
# At most this many scopes get a report of one kind and period (teams and active reps).
MAX_SCOPES = 500
_LOCK_NAMESPACE = zlib.crc32(b"reports.generate") & 0x7FFFFFFF


@dataclass(frozen=True)
class DueReport:
    kind: str
    period: Period


def reports_due(*, tenant: Tenant, now: datetime) -> list[DueReport]:
    """The latest closed period of each kind, in the tenant's local time: at 00:30 on the
    1st the month before; at 23:30 on the 31st still the month before (this one is open)."""
    today = local_date(now, tenant.timezone)
    fiscal = tenant.fiscal_year_start_month
    due = []
    for kind, grain in GRAINS.items():
        closed = period_containing(grain, today, fiscal).previous()
        if closed.in_bounds:
            due.append(DueReport(kind=kind, period=closed))
    return due


def report_scopes(*, kind: str, period: Period) -> list[KpiScope]:
    """The workspace, its teams and its reps with data in the period (in the tenant's
    context); only the workspace for the executive report."""
    scopes = [KpiScope.tenant()]
    if kind == ReportKind.EXECUTIVE:
        return scopes
    scopes += [KpiScope.team(pk) for pk in Team.objects.order_by("pk").values_list("pk", flat=True)]
    active = (
        KpiSnapshot.objects.filter(
            grain=period.grain, period_start=period.start, scope_type=ScopeType.REP
        )
        .values_list("scope_key", flat=True)
        .distinct()
    )
    scopes += [KpiScope.rep(int(key)) for key in sorted(active, key=int) if key.isdigit()]
    return scopes[:MAX_SCOPES]


def scope_label(*, tenant: Tenant, scope: KpiScope, language: str) -> str:
    if scope.type == ScopeType.TEAM:
        name = Team.objects.filter(pk=int(scope.key)).values_list("name", flat=True).first()
        return name or scope.key
    if scope.type == ScopeType.REP:
        member = Membership.objects.filter(pk=int(scope.key)).select_related("user").first()
        return (member.display_name or member.user.username) if member else scope.key
    return LABELS.get(language, LABELS["en"])["tenant"]


def _lock(tenant: Tenant) -> None:
    # TRICKY: two beats (or a task delivered twice) generating at once would both see "no
    # report yet"; the second waits here until the first commits, then finds its rows. The
    # unique constraint backs this up (and is all SQLite, which serialises writers, needs).
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_NAMESPACE, tenant.pk])


def _render(tenant: Tenant, report: Report) -> str:
    """Fill the report's data and HTML; returns the scope's name in the tenant's language."""
    report.language = tenant.language
    report.data = report_content(
        tenant=tenant,
        kind=report.kind,
        period=period_containing(report.grain, report.period_start, tenant.fiscal_year_start_month),
        scope=KpiScope(report.scope_type, report.scope_key),
    )
    local = timezone.localtime(report.generated_at, timezone=zoneinfo.ZoneInfo(tenant.timezone))
    label = scope_label(
        tenant=tenant, scope=KpiScope(report.scope_type, report.scope_key), language=tenant.language
    )
    report.html = report_html(
        data=report.data,
        language=tenant.language,
        tenant_name=tenant.name,
        scope_label=label,
        generated_at=local.strftime("%Y-%m-%d %H:%M %Z"),
    )
    return label


def report_generate(
    *, tenant: Tenant, kind: str, period: Period, scope: KpiScope, now: datetime | None = None
) -> tuple[Report, bool]:
    """The report of (kind, period, scope), generated unless it exists: (report, created)."""
    key = {
        "kind": kind,
        "period_start": period.start,
        "scope_type": scope.type,
        "scope_key": scope.key,
    }
    with reading_context(tenant), transaction.atomic():
        _lock(tenant)
        existing = Report.objects.filter(**key).first()
        if existing is not None:
            return existing, False
        report = Report(
            tenant=tenant,
            grain=period.grain,
            period_label=period.label,
            period_end=period.end,
            generated_at=now or timezone.now(),
            **key,
        )
        label = _render(tenant, report)
        try:
            with transaction.atomic():
                report.save()
        except IntegrityError:
            return Report.objects.get(**key), False
        # NOTE: published in the report's own transaction, so the event exists exactly when
        # the report does; only creation publishes (never report_regenerate), and the dedup
        # key (the report's id) stops a second publication anyway.
        report_ready_publish(tenant=tenant, report=report, scope_name=label)
        return report, True


def reports_generate_due(*, tenant: Tenant, now: datetime | None = None) -> list[Report]:
    """Generate every report due now that does not exist yet; returns those created."""
    now = now or timezone.now()
    created: list[Report] = []
    with reading_context(tenant):
        for due in reports_due(tenant=tenant, now=now):
            done = set(
                Report.objects.filter(kind=due.kind, period_start=due.period.start).values_list(
                    "scope_type", "scope_key"
                )
            )
            for scope in report_scopes(kind=due.kind, period=due.period):
                if (scope.type, scope.key) in done:
                    continue
                report, new = report_generate(
                    tenant=tenant, kind=due.kind, period=due.period, scope=scope, now=now
                )
                if new:
                    created.append(report)
    return created


def report_regenerate(*, tenant: Tenant, report: Report, now: datetime | None = None) -> Report:
    """Compute a report again from today's data (after a correction, say): same row."""
    with reading_context(tenant), transaction.atomic():
        _lock(tenant)
        report = Report.objects.select_for_update().get(pk=report.pk)
        report.generated_at = now or timezone.now()
        report.regenerated_count += 1
        _render(tenant, report)
        report.save(update_fields=["generated_at", "regenerated_count", "language", "data", "html"])
    return report
