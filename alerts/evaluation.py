"""Evaluating a tenant's alert rules, set-based: every rule and scope in a handful of queries.

Exact conditions (DESIGN "Alerts"), with v the KPI's exact value (a Fraction from the
snapshot's numerator and denominator, never the 4-decimal display) for the rule's grain,
period and scope:

- below_value: `v < x` (`v > x` for a lower-is-better KPI);
- below_target_percent: `v < p/100 x target` (`>` for lower-is-better); no target: idle;
- behind_pace (count KPIs): `actual < target x elapsed ÷ total` in working days of the
  tenant's calendar (holidays and closures respected, today counted as elapsed); no target:
  idle; needed per remaining working day = (target - actual) ÷ (total - elapsed);
- drop_vs_previous: `v < prev x (1 - n/100)` against the previous period of the grain;
  prev null or 0: idle;
- silence: no activity of the scope within the last N working hours (09:00-18:00 local on
  working days), judged now, for the current period only;
- a rate rule whose denominator is below its min sample is idle.

Rules judge the current and the previous period of their grain. Per rule, scope and period:
ok → firing → resolved; firing again after resolution only once the rule's cooldown has
passed since the resolution (re-fired); idle counts as not holding, so it resolves.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

from django.db import connection, transaction
from django.db.models import Max, OuterRef, Q, Subquery
from django.utils import timezone

from alerts.bulk_writes import alerts_bulk_update
from alerts.models import Alert, AlertEvent, AlertKind, AlertRule, RuleScope
from alerts.notifying import alerts_publish
from kpis.catalogue import Direction, KpiDefinition
from kpis.periods import Period, local_date, period_containing
from kpis.scopes import KpiScope, ScopeType
from kpis.selectors import kpi_definitions, kpi_values_from_measures, measure_values
from kpis.targets import as_decimal, query_target_values, reading_context
from kpis.trees.decomposition import exact
from kpis.versions import kpi_read_version_bump
from pipeline.models import Activity
from tenants import business_hours
from tenants.calendars import count_working_days, days_off
from tenants.models import Membership, Team, Tenant
from tenants.scopes import Role

FIRING, OK, IDLE = "firing", "ok", "idle"
SYSTEM = "system"
# Tree drivers are worked out for at most this many (period, scope) pairs per evaluation
# (a tree evaluation is one query on PostgreSQL, about six elsewhere); alerts beyond it get
# theirs at the next evaluation.
DRIVER_EVALUATIONS_PER_RUN = 3
DRIVERS_SHOWN = 3
_LOCK_NAMESPACE = 7_240_017


@dataclass(frozen=True)
class Outcome:
    """One rule's judgement for one scope and period."""

    state: str  # firing, ok or idle
    value: Decimal | None
    threshold: Decimal | None
    sample: Decimal | None
    explanation: dict[str, Any]


@dataclass
class EvaluationResult:
    rules: int = 0
    judged: int = 0
    fired: list[int] = field(default_factory=list)  # alert ids fired or fired again
    resolved: list[int] = field(default_factory=list)
    notified: list[int] = field(default_factory=list)
    published: int = 0  # notification events new in this evaluation (alerts.notifying)


def _text(value: Fraction | Decimal | int | None) -> str | None:
    """An exact number for the explanation (JSON): a Decimal of 28 significant digits."""
    if value is None:
        return None
    if isinstance(value, Fraction):
        value = as_decimal(value)
    return str(value)


_STORED = Decimal(1).scaleb(-12)  # Alert's decimal fields keep 12 places


def _decimal(value: Fraction | Decimal | None) -> Decimal | None:
    """A number as the alert stores it (12 places), so an unchanged value compares equal to
    the stored one; the explanation keeps the exact value."""
    if value is None:
        return None
    number = as_decimal(value) if isinstance(value, Fraction) else Decimal(value)
    return number.quantize(_STORED, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class _Calendar:
    today: date
    now: datetime
    zone: zoneinfo.ZoneInfo
    off: set[date]
    opens: time = business_hours.OPENS
    closes: time = business_hours.CLOSES
    # NOTE: every (rule, scope) judged in a period asks for the same days: count each period
    # once per evaluation (200 rules over every rep asked about 1,750 times for 10 periods).
    _days: dict[Period, dict[str, Any]] = field(default_factory=dict, compare=False, repr=False)

    def working_days(self, start: date, end: date) -> int:
        return count_working_days(start, end, self.off)

    def period_days(self, period: Period) -> dict[str, Any]:
        days = self._days.get(period)
        if days is None:
            total = self.working_days(period.start, period.end)
            elapsed = self.working_days(
                period.start, min(period.end, self.today + timedelta(days=1))
            )
            days = self._days[period] = {
                "label": period.label,
                "start": period.start.isoformat(),
                "end": period.end.isoformat(),
                "workingDays": total,
                "elapsedWorkingDays": elapsed,
            }
        return dict(days)  # a copy: each explanation owns its dict


def _rule_periods(rule: AlertRule, today: date, fiscal_start: int) -> list[Period]:
    current = period_containing(rule.grain, today, fiscal_start)
    if rule.kind == AlertKind.SILENCE:
        return [current]
    return [current, current.previous()]


def _rule_scopes(
    rule: AlertRule, reps: list[tuple[int, int | None]], teams: list[int]
) -> list[KpiScope]:
    if rule.scope_type == RuleScope.EVERY_REP:
        return [KpiScope.rep(pk) for pk, _ in reps]
    if rule.scope_type == RuleScope.EVERY_TEAM:
        return [KpiScope.team(pk) for pk in teams]
    return [KpiScope(rule.scope_type, rule.scope_key)]


def _base(rule: AlertRule, kpi: KpiDefinition | None, calendar: _Calendar, period: Period) -> dict:
    return {
        "kind": rule.kind,
        "kpi": rule.kpi_key or None,
        "kpiName": kpi.name_ja if kpi else None,
        "kpiNameEn": kpi.name_en if kpi else None,
        "unit": str(kpi.unit) if kpi else None,
        "period": calendar.period_days(period),
        "minSample": _text(rule.min_sample),
        "improvementAction": rule.improvement_action,
    }


def _judge_kpi(
    rule: AlertRule,
    kpi: KpiDefinition,
    period: Period,
    scope: KpiScope,
    values: dict,
    targets: dict,
    calendar: _Calendar,
) -> Outcome:
    current = values[(kpi.key, period, scope)]
    v = exact(current)
    sample = current.denominator if kpi.is_rate else None
    explanation = _base(rule, kpi, calendar, period) | {"sample": _text(sample)}
    threshold = Fraction(rule.threshold)
    lower_is_better = kpi.direction == Direction.LOWER_IS_BETTER

    def outcome(state: str, bound: Fraction | None, **more: Any) -> Outcome:
        explanation.update(more)
        explanation["value"] = _text(v)
        explanation["threshold"] = _text(bound)
        explanation["state"] = state
        return Outcome(state, _decimal(v), _decimal(bound), _decimal(sample), explanation)

    if kpi.is_rate and rule.min_sample is not None and (sample or 0) < rule.min_sample:
        return outcome(IDLE, None, reason="min_sample_not_met")
    if v is None:
        return outcome(IDLE, None, reason="no_value")
    if rule.kind == AlertKind.BELOW_VALUE:
        holds = v > threshold if lower_is_better else v < threshold
        return outcome(FIRING if holds else OK, threshold)
    if rule.kind == AlertKind.BELOW_TARGET_PERCENT:
        target = targets.get((kpi.key, period, scope))
        if target is None:
            return outcome(IDLE, None, reason="no_target")
        bound = threshold / 100 * Fraction(target)
        holds = v > bound if lower_is_better else v < bound
        return outcome(FIRING if holds else OK, bound, target=_text(target))
    if rule.kind == AlertKind.BEHIND_PACE:
        target = targets.get((kpi.key, period, scope))
        if target is None:
            return outcome(IDLE, None, reason="no_target")
        days = explanation["period"]
        total, elapsed = days["workingDays"], days["elapsedWorkingDays"]
        if total == 0:
            return outcome(IDLE, None, reason="no_working_day", target=_text(target))
        # NOTE: the threshold is the share of the pro-rated target to keep up with; 100 is
        # DESIGN's condition `actual < target x elapsed ÷ total` itself.
        expected = threshold / 100 * Fraction(target) * elapsed / total
        remaining = total - elapsed
        short = Fraction(target) - v
        needed = short / remaining if remaining and short > 0 else None
        more = {
            "target": _text(target),
            "remainingWorkingDays": remaining,
            "neededPerRemainingDay": _text(needed),
        }
        return outcome(FIRING if v < expected else OK, expected, **more)
    if rule.kind == AlertKind.DROP_VS_PREVIOUS:
        previous = values[(kpi.key, period.previous(), scope)]
        prev = exact(previous)
        more = {"previousValue": _text(prev), "previousPeriod": period.previous().label}
        if not prev:
            return outcome(IDLE, None, reason="no_previous_value", **more)
        bound = prev * (1 - threshold / 100)
        return outcome(FIRING if v < bound else OK, bound, **more)
    raise ValueError(f"Unknown alert kind {rule.kind!r}")


def _judge_silence(
    rule: AlertRule,
    period: Period,
    scope: KpiScope,
    last_activity: dict[KpiScope, datetime],
    calendar: _Calendar,
) -> Outcome:
    hours = int(rule.threshold)
    start = business_hours.window_start(
        now=calendar.now,
        hours=hours,
        zone=calendar.zone,
        off=calendar.off,
        opens=calendar.opens,
        closes=calendar.closes,
    )
    last = last_activity.get(scope)
    silent = (
        None
        if last is None
        else business_hours.working_hours_between(
            last,
            calendar.now,
            zone=calendar.zone,
            off=calendar.off,
            opens=calendar.opens,
            closes=calendar.closes,
        )
    )
    silent_hours = None if silent is None else Fraction(int(silent.total_seconds()), 3600)
    holds = last is None or (start is not None and last < start)
    explanation = _base(rule, None, calendar, period) | {
        "state": FIRING if holds else OK,
        "value": _text(silent_hours),
        "threshold": str(hours),
        "sample": None,
        "lastActivityAt": None if last is None else last.astimezone(calendar.zone).isoformat(),
        "windowStart": None if start is None else start.astimezone(calendar.zone).isoformat(),
        "silentWorkingHours": _text(silent_hours),
    }
    return Outcome(
        FIRING if holds else OK, _decimal(silent_hours), _decimal(Decimal(hours)), None, explanation
    )


def _last_activities(
    tenant_id: int, scopes: set[KpiScope], window: tuple[datetime, datetime]
) -> dict[KpiScope, datetime]:
    """The latest activity in `window` per silence scope: a query or two per scope type.

    A team's activities are those of the reps in it now (as its KPIs count them)."""
    found: dict[KpiScope, datetime] = {}
    types = {scope.type for scope in scopes}
    activities = Activity.objects.filter(occurred_at__gte=window[0], occurred_at__lte=window[1])
    if types & {ScopeType.REP, ScopeType.TEAM}:
        # One index probe per member (tenant, rep, occurred_at, backwards) instead of grouping
        # a year of the tenant's activities: measured about 0.4 s at 46,000 activities.
        latest = (
            activities.filter(rep=OuterRef("pk")).order_by("-occurred_at").values("occurred_at")
        )
        rows = Membership.objects.annotate(last=Subquery(latest[:1])).values_list(
            "pk", "team_id", "last"
        )
        for rep_id, team, last in rows:
            if last is None:
                continue
            found[KpiScope.rep(rep_id)] = last
            if team is not None and ScopeType.TEAM in types:
                scope = KpiScope.team(team)
                found[scope] = max(found.get(scope, last), last)
    sources = sorted({scope.key for scope in scopes if scope.type == ScopeType.SOURCE})
    if sources:
        # One scalar subquery per watched source, each reading the tenant's activities from
        # the newest back until one of that source turns up (index on tenant, occurred_at):
        # grouping a year of activities by their leads' source took about 0.3 s at 46,000.
        latest = {
            f"s{n}": Subquery(
                activities.filter(lead__source=source)
                .order_by("-occurred_at")
                .values("occurred_at")[:1]
            )
            for n, source in enumerate(sources)
        }
        row = Tenant.objects.filter(pk=tenant_id).annotate(**latest).values(*latest).first()
        for n, source in enumerate(sources):
            last = (row or {}).get(f"s{n}")
            if last is not None:
                found[KpiScope.source(source)] = last
    if ScopeType.TENANT in types:
        last = activities.aggregate(last=Max("occurred_at"))["last"]
        if last is not None:
            found[KpiScope.tenant()] = last
    return found


def _lock(tenant: Tenant) -> None:
    # TRICKY: two workers evaluating one tenant at once (a refresh's task and the beat's)
    # would both see "no alert yet" and both insert; the second waits here instead and then
    # reads what the first wrote. The unique constraint (upserted against) backs this up.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_NAMESPACE, tenant.pk])


def alerts_evaluate(*, tenant: Tenant, now: datetime | None = None) -> EvaluationResult:
    """Judge every active rule of the tenant for its scopes and periods and move the alerts
    (fire, update, resolve, re-fire after the cooldown), in one transaction.

    `now` (aware) defaults to the current time; its tenant-local date is "today".
    """
    now = now or timezone.now()
    result = EvaluationResult()
    with reading_context(tenant), transaction.atomic():
        rules = list(AlertRule.objects.filter(is_active=True).order_by("pk"))
        if not rules:
            return result
        _lock(tenant)
        result.rules = len(rules)
        zone = zoneinfo.ZoneInfo(tenant.timezone)
        today = local_date(now, zone)
        fy = tenant.fiscal_year_start_month
        definitions = kpi_definitions(
            tenant=tenant, keys=[r.kpi_key for r in rules if r.kind != AlertKind.SILENCE]
        )
        every = {r.scope_type for r in rules}
        reps: list[tuple[int, int | None]] = (
            list(
                Membership.objects.filter(role=Role.REP, is_active=True)
                .order_by("pk")
                .values_list("pk", "team_id")
            )
            if RuleScope.EVERY_REP in every
            else []
        )
        teams = (
            list(Team.objects.order_by("pk").values_list("pk", flat=True))
            if RuleScope.EVERY_TEAM in every
            else []
        )
        plan: list[tuple[AlertRule, KpiScope, Period]] = []
        for rule in rules:
            if rule.kind != AlertKind.SILENCE and rule.kpi_key not in definitions:
                continue  # its custom KPI was deleted: nothing to judge
            for period in _rule_periods(rule, today, fy):
                for scope in _rule_scopes(rule, reps, teams):
                    plan.append((rule, scope, period))
        kpi_plan = [item for item in plan if item[0].kind != AlertKind.SILENCE]
        silence_plan = [item for item in plan if item[0].kind == AlertKind.SILENCE]
        read_periods = {p for _, _, p in kpi_plan} | {
            p.previous() for r, _, p in kpi_plan if r.kind == AlertKind.DROP_VS_PREVIOUS
        }
        read_scopes = {s for _, s, _ in kpi_plan}
        first = min([p.start for p in read_periods] + [today])
        if silence_plan:
            first = min(first, today - timedelta(days=business_hours.LOOKBACK_DAYS))
        last = max([p.end for p in read_periods] + [today + timedelta(days=1)])
        calendar = _Calendar(
            today,
            now,
            zone,
            days_off(tenant, first, last),
            opens=tenant.business_opens,
            closes=tenant.business_closes,
        )

        values: dict = {}
        targets: dict = {}
        if kpi_plan:
            kpis = [definitions[key] for key in sorted({r.kpi_key for r, _, _ in kpi_plan})]
            measures = measure_values(
                tenant=tenant,
                periods=sorted(read_periods),
                scopes=sorted(read_scopes, key=lambda s: (s.type, s.key)),
                needed={m for kpi in kpis for m in kpi.measures},
                off_days=calendar.off,
            )
            values = kpi_values_from_measures(kpis=kpis, measures=measures)
            if any(
                r.kind in (AlertKind.BELOW_TARGET_PERCENT, AlertKind.BEHIND_PACE)
                for r, _, _ in kpi_plan
            ):
                targets = query_target_values(
                    periods=sorted(read_periods),
                    scopes=list(read_scopes),
                    kpi_keys={r.kpi_key for r, _, _ in kpi_plan},
                )
        last_activity: dict[KpiScope, datetime] = {}
        if silence_plan:
            last_activity = _last_activities(
                tenant.pk,
                {s for _, s, _ in silence_plan},
                (now - timedelta(days=business_hours.LOOKBACK_DAYS), now),
            )

        outcomes: dict[tuple[int, KpiScope, Period], Outcome] = {}
        for rule, scope, period in plan:
            if rule.kind == AlertKind.SILENCE:
                outcome = _judge_silence(rule, period, scope, last_activity, calendar)
            else:
                outcome = _judge_kpi(
                    rule, definitions[rule.kpi_key], period, scope, values, targets, calendar
                )
            outcomes[(rule.pk, scope, period)] = outcome
        result.judged = len(outcomes)
        _apply(tenant, rules, outcomes, calendar, result)
    return result


def _alert_key(alert: Alert) -> tuple[int, KpiScope, str, date]:
    return (
        alert.rule_id,
        KpiScope(alert.scope_type, alert.scope_key),
        alert.grain,
        alert.period_start,
    )


def _apply(
    tenant: Tenant,
    rules: list[AlertRule],
    outcomes: dict[tuple[int, KpiScope, Period], Outcome],
    calendar: _Calendar,
    result: EvaluationResult,
) -> None:
    """Move the alerts to the outcomes: a few set-based writes."""
    now = calendar.now
    by_rule = {rule.pk: rule for rule in rules}
    starts = [period.start for _, _, period in outcomes]
    existing = {
        _alert_key(alert): alert
        for alert in Alert.objects.filter(rule_id__in=list(by_rule)).filter(
            Q(state=Alert.State.FIRING) | Q(period_start__gte=min(starts, default=calendar.today))
        )
    }
    new: list[Alert] = []
    changed: list[Alert] = []
    touched: list[int] = []
    events: list[AlertEvent] = []
    fired: list[Alert] = []
    judged: set[tuple[int, KpiScope, str, date]] = set()
    for (rule_id, scope, period), outcome in outcomes.items():
        key = (rule_id, scope, period.grain, period.start)
        judged.add(key)
        alert = existing.get(key)
        rule = by_rule[rule_id]
        if alert is None:
            if outcome.state != FIRING:
                continue
            alert = Alert(
                tenant=tenant,
                rule_id=rule_id,
                scope_type=scope.type,
                scope_key=scope.key,
                grain=period.grain,
                period_label=period.label,
                period_start=period.start,
                period_end=period.end,
                state=Alert.State.FIRING,
                first_fired_at=now,
                last_fired_at=now,
                last_evaluated_at=now,
            )
            _set_numbers(alert, outcome)
            new.append(alert)
            fired.append(alert)
            continue
        if alert.state == Alert.State.FIRING:
            if outcome.state == FIRING:
                drivers = alert.explanation.get("drivers")
                if _set_numbers(alert, outcome, drivers=drivers):
                    alert.last_evaluated_at = now
                    changed.append(alert)
                else:
                    touched.append(alert.pk)
            else:
                _set_numbers(alert, outcome, drivers=alert.explanation.get("drivers"))
                alert.state = Alert.State.RESOLVED
                alert.resolved_at = now
                alert.last_evaluated_at = now
                changed.append(alert)
                events.append(_event(alert, AlertEvent.Kind.RESOLVED))
                result.resolved.append(alert.pk)
        elif outcome.state == FIRING:
            cooldown_ends = alert.resolved_at + timedelta(minutes=rule.cooldown_minutes)
            if now < cooldown_ends:
                continue  # NOTE: flapping: stays resolved until the cooldown has passed
            _set_numbers(alert, outcome)
            alert.state = Alert.State.FIRING
            alert.resolved_at = None
            alert.last_fired_at = now
            alert.last_evaluated_at = now
            # A new firing is a new problem: an earlier acknowledgement no longer covers it.
            alert.acknowledged_at = None
            alert.acknowledged_by = None
            changed.append(alert)
            fired.append(alert)
            events.append(_event(alert, AlertEvent.Kind.REFIRED))
    # Firing alerts no rule judged any more (a period left behind, a rep made inactive, a
    # rule's scope or grain changed) resolve.
    for key, alert in existing.items():
        if key not in judged and alert.state == Alert.State.FIRING:
            alert.state = Alert.State.RESOLVED
            alert.resolved_at = now
            alert.last_evaluated_at = now
            alert.explanation = {**alert.explanation, "state": OK, "reason": "no_longer_judged"}
            changed.append(alert)
            events.append(
                AlertEvent(
                    tenant=tenant,
                    alert=alert,
                    kind=AlertEvent.Kind.RESOLVED,
                    actor_label=SYSTEM,
                    at=now,
                    data={"reason": "no_longer_judged"},
                )
            )
            result.resolved.append(alert.pk)
    _add_drivers(tenant, by_rule, fired, calendar)
    # Before the insert, so that new alerts are stored with their notification time.
    notified = _notify_due(by_rule, [*fired, *changed, *existing.values()], now)
    if new:
        Alert.objects.bulk_create(
            new,
            update_conflicts=True,
            unique_fields=["tenant", "rule", "scope_type", "scope_key", "grain", "period_start"],
            update_fields=["last_evaluated_at"],
        )
        events.extend(_event(alert, AlertEvent.Kind.FIRED) for alert in new)
    result.fired = [alert.pk for alert in fired]
    fresh = {id(alert) for alert in [*new, *changed]}
    for alert in notified:
        events.append(
            AlertEvent(
                tenant=tenant,
                alert=alert,
                kind=AlertEvent.Kind.NOTIFIED,
                actor_label=SYSTEM,
                at=now,
                data={"channels": by_rule[alert.rule_id].channels},
            )
        )
        if id(alert) not in fresh:
            changed.append(alert)
            fresh.add(id(alert))
            if alert.pk in touched:
                touched.remove(alert.pk)
    result.notified = [alert.pk for alert in notified]
    if changed:
        alerts_bulk_update(changed)
    if touched:
        Alert.objects.filter(pk__in=touched).update(last_evaluated_at=now)
    if new or touched:
        # Bulk writes send no post_save: a cached dashboard shows the alerts (kpis.versions).
        kpi_read_version_bump(tenant.pk)
    if events:
        AlertEvent.objects.bulk_create(events, batch_size=500)
    # Told in the same transaction, delivered after it commits (notifications queues the
    # e-mails and webhook requests on commit): a rolled-back evaluation tells no one.
    resolved_ids = set(result.resolved)
    result.published = alerts_publish(
        tenant=tenant,
        rules=by_rule,
        notified=notified,
        resolved=[a for a in changed if a.state == Alert.State.RESOLVED and a.pk in resolved_ids],
        now=now,
    )


def _set_numbers(alert: Alert, outcome: Outcome, *, drivers: Any = None) -> bool:
    """Copy the outcome's numbers onto the alert; whether anything changed."""
    explanation = dict(outcome.explanation)
    if drivers is not None:
        explanation["drivers"] = drivers
    before = (alert.value, alert.threshold, alert.sample, alert.explanation)
    alert.value, alert.threshold, alert.sample = outcome.value, outcome.threshold, outcome.sample
    alert.explanation = explanation
    return before != (alert.value, alert.threshold, alert.sample, alert.explanation)


def _event(alert: Alert, kind: str) -> AlertEvent:
    return AlertEvent(
        tenant_id=alert.tenant_id,
        alert=alert,
        kind=kind,
        actor_label=SYSTEM,
        at=alert.last_evaluated_at,
        data={
            "value": alert.explanation.get("value"),
            "threshold": alert.explanation.get("threshold"),
            "sample": alert.explanation.get("sample"),
        },
    )


def _notify_due(
    by_rule: dict[int, AlertRule], alerts: Iterable[Alert], now: datetime
) -> list[Alert]:
    """The firing alerts whose notification is due, marked notified now: not snoozed, not
    acknowledged, and not notified within their rule's cadence (notify_every_hours)."""
    due: list[Alert] = []
    seen: set[int] = set()
    for alert in alerts:
        if id(alert) in seen or alert.state != Alert.State.FIRING:
            continue
        seen.add(id(alert))
        rule = by_rule[alert.rule_id]
        if alert.snoozed_until is not None and alert.snoozed_until > now:
            continue
        if alert.acknowledged_at is not None:
            continue
        cadence = timedelta(hours=rule.notify_every_hours)
        if alert.last_notified_at is not None and now < alert.last_notified_at + cadence:
            continue
        alert.last_notified_at = now
        due.append(alert)
    return due


def _add_drivers(
    tenant: Tenant, by_rule: dict[int, AlertRule], fired: list[Alert], calendar: _Calendar
) -> None:
    """The KPI-tree drivers furthest short of plan, for alerts that (re-)fired now: the
    default tree's KPI nodes (but the KGI and the alert's own KPI) with the lowest
    attainment, for at most DRIVER_EVALUATIONS_PER_RUN (period, scope) pairs."""
    from kpis.trees.evaluation import kpi_tree_default_evaluate

    pairs: dict[tuple[KpiScope, str, date], list[Alert]] = {}
    for alert in fired:
        if by_rule[alert.rule_id].kind == AlertKind.SILENCE:
            continue
        key = (KpiScope(alert.scope_type, alert.scope_key), alert.grain, alert.period_start)
        pairs.setdefault(key, []).append(alert)
    for (scope, grain, start), alerts in list(pairs.items())[:DRIVER_EVALUATIONS_PER_RUN]:
        period = period_containing(grain, start, tenant.fiscal_year_start_month)
        tree = kpi_tree_default_evaluate(
            tenant=tenant, period=period, scope=scope, today=calendar.today
        )
        nodes = [
            node
            for node in tree.nodes
            if node.kpi is not None
            and node.node.kind == node.node.Kind.KPI
            and node.attainment_exact is not None
        ]
        for alert in alerts:
            own = by_rule[alert.rule_id].kpi_key
            ranked = sorted(
                (node for node in nodes if node.kpi.key != own),
                key=lambda node: node.attainment_exact,
            )[:DRIVERS_SHOWN]
            alert.explanation = alert.explanation | {
                "drivers": [
                    {
                        "kpi": node.kpi.key,
                        "name": node.label,
                        "actual": _text(exact(node.actual)),
                        "plan": _text(node.target if node.target is not None else node.required),
                        "attainment": _text(node.attainment_exact),
                    }
                    for node in ranked
                ]
            }
