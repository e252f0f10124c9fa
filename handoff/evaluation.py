"""Set-based evaluation of MQL conditions: which of a tenant's leads a version qualifies now.

One SQL statement judges every candidate lead (stage `lead` or `recycled`): an inner
select computes one column per condition (a boolean for an attribute, a windowed count of
activities for a behaviour, read from the lead-history index), and an outer WHERE combines
those columns as the rule's all/any/score tree says. The outer expression is generated
from the validated tree only (numbers and column names); every client value travels as a
query parameter of the inner select.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import (
    BooleanField,
    Count,
    ExpressionWrapper,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce

from handoff.conditions import ConditionTree, Group, Leaf, describe
from pipeline.lifecycle import Stage
from pipeline.models import Activity, Lead

# Leads an MQL rule may move: new ones and those back in nurture (戻し).
CANDIDATE_STAGES: tuple[str, ...] = (Stage.LEAD, Stage.RECYCLED)

_ACTIVITY_FILTERS: dict[str, dict[str, Any]] = {
    "email": {"type": Activity.Type.EMAIL},
    "emailOpened": {"type": Activity.Type.EMAIL, "email_opened": True},
    "emailClicked": {"type": Activity.Type.EMAIL, "email_clicked": True},
    "call": {"type": Activity.Type.CALL},
    "connectedCall": {"type": Activity.Type.CALL, "call_outcome": Activity.CallOutcome.CONNECTED},
    "meeting": {"type": Activity.Type.MEETING},
}


@dataclass(frozen=True)
class Verdict:
    """A lead a version qualifies: its score (score mode) and the conditions that held."""

    lead_id: int
    score: int | None
    reasons: list[dict[str, str]]


def activity_filter(activity: str) -> dict[str, Any]:
    return dict(_ACTIVITY_FILTERS[activity])


def window_count(
    activity: str, *, days: int | None, now: dt.datetime, lead_ref: str = "pk"
) -> Coalesce:
    """How many of the lead's activities of a kind fall in the last `days` days up to `now`
    (both ends included: an activity exactly `days` days old still counts)."""
    window = Q(occurred_at__lte=now)
    if days is not None:
        window &= Q(occurred_at__gte=now - dt.timedelta(days=days))
    counted = (
        Activity.objects.filter(
            window,
            tenant_id=OuterRef("tenant_id"),
            lead_id=OuterRef(lead_ref),
            **activity_filter(activity),
        )
        .order_by()
        .values("lead_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def _key_lookup(key: str, lookup: str, value: Any) -> Q:
    # NOTE: the lookup is always spelled out, so a key is never read as one (`attributes__in`);
    # keys never hold "__" (handoff.conditions.ATTRIBUTE_KEY), so a key is one transform.
    return Q(**{f"attributes__{key}__{lookup}": value})


def _leaf_q(leaf: Leaf) -> Q:
    p = leaf.params
    if leaf.kind == "employeeCount":
        if p["op"] == "gte":
            return Q(employee_count__gte=p["value"])
        if p["op"] == "lte":
            return Q(employee_count__lte=p["value"])
        return Q(employee_count__gte=p["min"], employee_count__lte=p["max"])
    if leaf.kind == "industry":
        return Q(industry__in=p["values"])
    if leaf.kind == "source":
        return Q(source__in=p["values"])
    if leaf.kind == "titleContains":
        return Q(title__icontains=p["value"])
    if p["op"] == "exists":
        return Q(attributes__has_key=p["key"])
    if p["op"] == "equals":
        return _key_lookup(p["key"], "exact", p["value"])
    return _key_lookup(p["key"], "in", p["values"])


def _column(index: int) -> str:
    return f"c{index}"


def _sql_truth(node: Leaf | Group, columns: dict[str, int]) -> str:
    """The outer WHERE fragment of a node, over the inner select's columns."""
    if isinstance(node, Leaf):
        name = _column(columns[node.path])
        if node.kind == "activity":
            return f"({name} >= {int(node.params['at_least'])})"
        return f"({name})"
    joiner = " AND " if node.combinator == "all" else " OR "
    return "(" + joiner.join(_sql_truth(child, columns) for child in node.children) + ")"


def _sql_score(tree: ConditionTree, columns: dict[str, int]) -> str:
    terms = [
        f"(CASE WHEN {_sql_truth(child, columns)} THEN {int(child.points or 0)} ELSE 0 END)"
        for child in tree.children
    ]
    return "(" + " + ".join(terms) + ")"


def _held(node: Leaf | Group, flags: dict[str, bool]) -> bool:
    if isinstance(node, Leaf):
        return flags[node.path]
    results = [_held(child, flags) for child in node.children]
    return all(results) if node.combinator == "all" else any(results)


def candidate_leads() -> QuerySet[Lead]:
    return Lead.objects.filter(stage__in=CANDIDATE_STAGES)


def _inner(tree: ConditionTree, *, now: dt.datetime, leads: QuerySet[Lead]) -> QuerySet[Lead]:
    annotations: dict[str, Any] = {}
    for index, leaf in enumerate(tree.leaves):
        if leaf.kind == "activity":
            annotations[_column(index)] = window_count(
                leaf.params["activity"], days=leaf.params["days"], now=now
            )
        else:
            annotations[_column(index)] = ExpressionWrapper(
                _leaf_q(leaf), output_field=BooleanField()
            )
    if tree.mode == "all":
        # NOTE: a top-level attribute condition of `all` must hold anyway; filtering on it
        # in the inner select spares the windowed counts of every lead it rules out.
        leads = leads.filter(
            *(_leaf_q(c) for c in tree.children if isinstance(c, Leaf) and c.kind != "activity")
        )
    return leads.order_by().annotate(**annotations).values("pk", *annotations)


def qualifying_leads(
    tree: ConditionTree, *, now: dt.datetime, leads: QuerySet[Lead] | None = None
) -> list[Verdict]:
    """The leads (by default every candidate of the tenant in context) that `tree` qualifies
    at `now`, by lead id, each with its score and the conditions that held: one query."""
    if tree.is_empty:
        return []
    leads = candidate_leads() if leads is None else leads
    columns = {leaf.path: index for index, leaf in enumerate(tree.leaves)}
    if tree.mode == "score":
        where = f"{_sql_score(tree, columns)} >= {int(tree.threshold or 0)}"
    else:
        joiner = " AND " if tree.mode == "all" else " OR "
        where = "(" + joiner.join(_sql_truth(child, columns) for child in tree.children) + ")"
    inner_sql, params = _inner(tree, now=now, leads=leads).query.sql_with_params()
    # TRICKY: OFFSET 0 keeps PostgreSQL from pulling the inner select up into the outer
    # one, which would copy each windowed count into the WHERE and count twice.
    fence = " OFFSET 0" if connection.vendor == "postgresql" else ""
    names = ", ".join(_column(i) for i in range(len(tree.leaves)))
    statement = f"SELECT t.pk, {names} FROM ({inner_sql}{fence}) t WHERE {where} ORDER BY t.pk"
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        rows = cursor.fetchall()
    return [_verdict(tree, row) for row in rows]


def _verdict(tree: ConditionTree, row: tuple[Any, ...]) -> Verdict:
    lead_id, values = row[0], row[1:]
    flags: dict[str, bool] = {}
    for leaf, value in zip(tree.leaves, values, strict=True):
        if leaf.kind == "activity":
            flags[leaf.path] = (value or 0) >= leaf.params["at_least"]
        else:
            flags[leaf.path] = bool(value)
    score = None
    if tree.mode == "score":
        score = sum(child.points or 0 for child in tree.children if _held(child, flags))
    reasons = [
        {"condition": leaf.path, "reason": describe(leaf)}
        for leaf in tree.leaves
        if flags[leaf.path]
    ]
    return Verdict(lead_id=lead_id, score=score, reasons=reasons)
