"""Benchmark: evaluating an active handoff rule over 100,000 leads vs one hand-written query.

A tenant gets BENCH_HANDOFF_LEADS leads (100,000 by default; 70 % in `lead`, 10 % in
`recycled`, the rest past them) with 4 activities each (e-mails opened or clicked, calls
connected or not) over the last 40 days, written by INSERT ... SELECT in a few seconds.
The rule: employees >= 50, industry IT or 製造, and (clicked >= 2 e-mails in 14 days or
>= 1 connected call in 30 days). Ours: `qualifying_leads` as evaluation runs it (the
statement the condition tree compiles to, plus reading the verdicts). The floor: one SQL
statement written by hand for this rule, selecting the same leads. Goal: ours <= 2x the
floor. PostgreSQL only: `make bench`.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import time
from typing import Any

SLUG = "bench-handoff"
SOURCE = "bench-handoff"
LEADS = int(os.environ.get("BENCH_HANDOFF_LEADS", "100000"))
RUNS = 5
GOAL = 2.0
NOW = dt.datetime(2026, 9, 30, 1, 0, tzinfo=dt.UTC)

RULE: dict[str, Any] = {
    "mode": "all",
    "conditions": [
        {"kind": "employeeCount", "op": "gte", "value": 50},
        {"kind": "industry", "values": ["IT", "製造"]},
        {
            "kind": "any",
            "conditions": [
                {"kind": "activity", "activity": "emailClicked", "days": 14, "atLeast": 2},
                {"kind": "activity", "activity": "connectedCall", "days": 30, "atLeast": 1},
            ],
        },
    ],
}

FLOOR_SQL = """
SELECT l.id FROM pipeline_lead l
WHERE l.tenant_id = %(tenant)s AND l.stage IN ('lead', 'recycled')
  AND l.employee_count >= 50 AND l.industry IN ('IT', '製造')
  AND (
    (SELECT count(*) FROM pipeline_activity a
      WHERE a.tenant_id = l.tenant_id AND a.lead_id = l.id AND a.type = 'email'
        AND a.email_clicked AND a.occurred_at BETWEEN %(d14)s AND %(now)s) >= 2
    OR EXISTS (SELECT 1 FROM pipeline_activity a
      WHERE a.tenant_id = l.tenant_id AND a.lead_id = l.id AND a.type = 'call'
        AND a.call_outcome = 'connected' AND a.occurred_at BETWEEN %(d30)s AND %(now)s)
  )
ORDER BY l.id
"""

_LEADS_SQL = """
INSERT INTO pipeline_lead (tenant_id, source_system, company, contact_name, email, industry,
  employee_count, title, attributes, source, stage, score, created_at, received_at, updated_at)
SELECT %(tenant)s, %(source)s, 'Bench ' || i, '', '',
  (ARRAY['IT', '製造', '金融', '小売'])[1 + i %% 4], (i * 37) %% 500, '', '{}'::jsonb, 'web',
  CASE WHEN i %% 10 < 7 THEN 'lead' WHEN i %% 10 < 8 THEN 'recycled' ELSE 'mql' END, 0,
  %(now)s - interval '60 days', %(now)s, %(now)s
FROM generate_series(1, %(leads)s) AS i
"""

_ACTIVITIES_SQL = """
INSERT INTO pipeline_activity (tenant_id, source_system, lead_id, type, occurred_at,
  call_outcome, email_delivered, email_opened, email_clicked, received_at)
SELECT %(tenant)s, %(source)s, l.id,
  CASE WHEN k = 2 THEN 'call' ELSE 'email' END,
  %(now)s - make_interval(days => ((l.n * 7 + k * 13) %% 40)::int, hours => k),
  CASE WHEN k = 2 THEN (CASE WHEN l.n %% 5 = 0 THEN 'connected' ELSE 'no_answer' END) ELSE '' END,
  k <> 2, k <> 2, k <> 2 AND (l.n + k) %% 3 = 0, %(now)s
FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM pipeline_lead
      WHERE tenant_id = %(tenant)s AND source_system = %(source)s) l
CROSS JOIN generate_series(0, 3) AS k
"""


def _setup() -> None:
    from bench import snapshots

    snapshots._setup()


def _tenant() -> Any:
    """The bench tenant with its leads and activities, seeded again when of another size."""
    from django.db import connection, connections, transaction

    from pipeline.models import Lead
    from tenants.context import tenant_context
    from tenants.models import Tenant
    from tenants.services import tenant_create

    tenant = Tenant.objects.filter(slug=SLUG).first()
    if tenant is None:
        tenant = tenant_create(slug=SLUG, name="Bench handoff")
    with tenant_context(tenant):
        if Lead.objects.filter(source_system=SOURCE).count() == LEADS:
            return tenant
    began = time.perf_counter()
    params = {"tenant": tenant.pk, "source": SOURCE, "now": NOW, "leads": LEADS}
    with tenant_context(tenant), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM pipeline_activity WHERE tenant_id = %s AND source_system = %s",
            [tenant.pk, SOURCE],
        )
        cursor.execute(
            "DELETE FROM pipeline_lead WHERE tenant_id = %s AND source_system = %s",
            [tenant.pk, SOURCE],
        )
        cursor.execute(_LEADS_SQL, params)
        cursor.execute(_ACTIVITIES_SQL, params)
    with connections["owner"].cursor() as cursor:
        cursor.execute("ANALYZE pipeline_lead, pipeline_activity")
    print(
        f"  seeded {LEADS:,} leads, {4 * LEADS:,} activities in {time.perf_counter() - began:.1f} s"
    )
    return tenant


def _ours(tenant: Any) -> tuple[float, list[int]]:
    from handoff.conditions import parse_conditions
    from handoff.evaluation import qualifying_leads
    from tenants.context import tenant_context

    began = time.perf_counter()
    with tenant_context(tenant):
        verdicts = qualifying_leads(parse_conditions(RULE), now=NOW)
    return time.perf_counter() - began, [v.lead_id for v in verdicts]


def _floor(tenant: Any) -> tuple[float, list[int]]:
    from django.db import connection

    from tenants.context import tenant_context

    params = {
        "tenant": tenant.pk,
        "now": NOW,
        "d14": NOW - dt.timedelta(days=14),
        "d30": NOW - dt.timedelta(days=30),
    }
    began = time.perf_counter()
    with tenant_context(tenant), connection.cursor() as cursor:
        cursor.execute(FLOOR_SQL, params)
        ids = [row[0] for row in cursor.fetchall()]
    return time.perf_counter() - began, ids


def main() -> None:
    _setup()
    tenant = _tenant()
    _, expected = _floor(tenant)  # warm both plans and caches (untimed)
    _, got = _ours(tenant)
    assert got == expected, (len(got), len(expected))
    ours, floor = [], []
    for _ in range(RUNS):
        floor.append(_floor(tenant)[0])
        ours.append(_ours(tenant)[0])
    print(f"  {LEADS:,} leads, {len(expected):,} qualify (same ids from both)")
    o, f = statistics.median(ours), statistics.median(floor)
    print(
        f"bench handoff: ours {o * 1000:.0f} ms, floor {f * 1000:.0f} ms (one hand-written "
        f"query), ratio {o / f:.2f} (goal <= {GOAL})"
    )


if __name__ == "__main__":
    main()
