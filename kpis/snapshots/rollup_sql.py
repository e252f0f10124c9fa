"""The SQL of the snapshot passes (PostgreSQL): the snapshot table's columns, the rebuild's
roll-up of periods from day rows, the refresh's in-place sync of changed days and their
periods, and the staged rebuild's apply of only the rows that differ."""

from __future__ import annotations

from kpis.catalogue import ADDITIVE_MEASURES, DISTINCT_MEASURES

SUMMED_COLUMNS: tuple[str, ...] = (*ADDITIVE_MEASURES, "weighted_pipeline_change")


DISTINCT_COLUMNS: tuple[str, ...] = DISTINCT_MEASURES


MEASURE_COLUMNS: tuple[str, ...] = (*SUMMED_COLUMNS, *DISTINCT_COLUMNS)


KEY_COLUMNS: tuple[str, ...] = (
    "grain", "period_start", "period_end", "scope_type", "scope_key",
)  # fmt: skip


SNAPSHOTS = "kpis_kpisnapshot"


# A PostgreSQL rebuild computes every row into this temporary table of its connection, then
# writes to the snapshot table only the difference (see `rebuild._stage_apply`).
STAGE = "kpi_rebuild_rows"


INSERT_INTO = "INSERT INTO {table} (tenant_id, computed_at, {columns})"


INSERT = INSERT_INTO.replace("{table}", SNAPSHOTS)


# The periods a statement writes, and their distinct counts (computed before it).
PERIODS = """
WITH per AS (
    SELECT * FROM unnest(%(grains)s::text[], %(starts)s::date[], %(ends)s::date[])
        AS p(grain, period_start, period_end)
),
dist AS (
    SELECT * FROM unnest(%(d_grains)s::text[], %(d_starts)s::date[], %(d_types)s::text[],
                         %(d_keys)s::text[], %(d_leads)s::bigint[], %(d_reps)s::bigint[])
        AS d(grain, period_start, scope_type, scope_key, leads_touched, active_reps)
),"""


# TRICKY: a coarse row exists when any of its measures is non-zero, as a day row does: the
# day sums of a scope can all be zero (a weighted pipeline change undone within the period)
# while its distinct counts are not (a meeting makes a rep active), and the other way round.
ROLLUP = (
    PERIODS
    + """
sums AS (
    SELECT grain, period_start, scope_type, scope_key, {sums}
    FROM ({sources}) x
    GROUP BY 1, 2, 3, 4
),
merged AS (
    SELECT grain, period_start, scope_type, scope_key, {merged}
    FROM sums FULL JOIN dist USING (grain, period_start, scope_type, scope_key)
)
{insert}
SELECT %(tenant)s, %(at)s, m.grain, m.period_start, p.period_end, m.scope_type, m.scope_key,
       {columns}
FROM merged m JOIN per p USING (grain, period_start)
WHERE NOT ({all_zero})
"""
)


# Every day row of the periods (a rebuild).
FROM_DAYS = """
    SELECT p.grain, p.period_start, s.scope_type, s.scope_key, {summed}
    FROM per p
    JOIN kpis_kpisnapshot s
        ON s.tenant_id = %(tenant)s AND s.grain = 'day'
        AND s.period_start >= p.period_start AND s.period_start < p.period_end"""


# TRICKY: a refresh sets the changed days' rows and moves each enclosing period by the
# difference, in one statement: the period's old row plus the days' new rows minus their
# old rows (sums of stored values, so exact). Reading every day row of a fiscal year would
# cost more than the rest of the refresh. Only what changed is given: the day rows whose
# values differ from the stored ones (at zero when a row must go) and the distinct counts
# that differ (`dist`); every other (day or period, scope) keeps its row, so the statement
# reads and joins the scopes the change touched, not every rep and source of the tenant.
# A period row keeps its stored distinct counts unless `dist` gives new ones. The rows are
# rewritten in place: a key already stored is updated (no index entry or foreign-key check
# when the update stays on its page, which the table's fillfactor leaves room for), a new
# one inserted, and one whose measures all became zero deleted; the sub-statements touch
# disjoint rows.
SYNC = (
    PERIODS
    + """
new_days AS MATERIALIZED (
    {rows}
),
old_days AS MATERIALIZED (
    SELECT s.id, s.grain, s.period_start, s.scope_type, s.scope_key, {summed}
    FROM kpis_kpisnapshot s
    WHERE s.tenant_id = %(tenant)s AND s.grain = 'day' AND s.period_start = ANY(%(days)s::date[])
      -- NOTE: bounds the index range; the planner filters the array over every day row.
      AND s.period_start BETWEEN %(first_day)s AND %(last_day)s
      AND EXISTS (
          SELECT FROM new_days n
          WHERE n.period_start = s.period_start AND n.scope_type = s.scope_type
            AND n.scope_key = s.scope_key
      )
),
touched AS MATERIALIZED (
    SELECT scope_type, scope_key FROM new_days
    UNION
    SELECT scope_type, scope_key FROM dist
),
old_periods AS MATERIALIZED (
    -- NOTE: a probe of the unique key per period and touched scope, not a read of every
    -- scope's row of the periods.
    -- TRICKY: LATERAL with LIMIT 1 (the key is unique), so the probe cannot be turned into
    -- a join: with fresh statistics of a small table the planner hashed a scan of all of
    -- the tenant's snapshot rows (15,800 at 1,000,000 activities, 4 ms) to find 88.
    SELECT s.*
    FROM per p
    CROSS JOIN touched t
    CROSS JOIN LATERAL (
        SELECT s.id, s.grain, s.period_start, s.scope_type, s.scope_key, {summed}, {distinct}
        FROM kpis_kpisnapshot s
        WHERE s.tenant_id = %(tenant)s AND s.grain = p.grain AND s.scope_type = t.scope_type
          AND s.scope_key = t.scope_key AND s.period_start = p.period_start
        LIMIT 1
    ) s
),
sums AS (
    -- The period rows' stored distinct counts ride along as kept_*, for the scopes whose
    -- counts `dist` does not change.
    SELECT grain, period_start, scope_type, scope_key, {sums}, {kept_sums}
    FROM (
        SELECT grain, period_start, scope_type, scope_key, {plain}, {kept} FROM old_periods
        UNION ALL
        SELECT p.grain, p.period_start, n.scope_type, n.scope_key, {new}, {no_kept}
        FROM new_days n
        JOIN per p ON n.period_start >= p.period_start AND n.period_start < p.period_end
        UNION ALL
        SELECT p.grain, p.period_start, o.scope_type, o.scope_key, {negated}, {no_kept}
        FROM old_days o
        JOIN per p ON o.period_start >= p.period_start AND o.period_start < p.period_end
    ) x
    GROUP BY 1, 2, 3, 4
),
merged AS (
    SELECT grain, period_start, scope_type, scope_key, {kept_merged}
    FROM sums FULL JOIN dist d USING (grain, period_start, scope_type, scope_key)
),
target AS (
    SELECT grain, period_start, period_end, scope_type, scope_key, {columns} FROM new_days
    UNION ALL
    SELECT m.grain, m.period_start, p.period_end, m.scope_type, m.scope_key, {m_columns}
    FROM merged m JOIN per p USING (grain, period_start)
),
changes AS MATERIALIZED (
    SELECT o.id, t.*, t.grain IS NULL OR ({all_zero}) AS gone
    FROM (SELECT id, grain, period_start, scope_type, scope_key FROM old_days
          UNION ALL
          SELECT id, grain, period_start, scope_type, scope_key FROM old_periods) o
    FULL JOIN target t USING (grain, period_start, scope_type, scope_key)
),
updated AS (
    -- NOTE: a period row whose values did not change (a rep or team the days did not
    -- touch) is left as it is, computed_at included: the writes follow the change, not the
    -- tenant's number of scopes.
    UPDATE kpis_kpisnapshot s SET computed_at = %(at)s, {assign}
    FROM changes c
    WHERE s.id = c.id AND NOT c.gone AND ({s_values}) IS DISTINCT FROM ({c_values})
      -- TRICKY: the ids again, as an array: the tenant's rows come through row-level
      -- security's qual, which the planner cannot estimate, and it hashed every snapshot
      -- row of the tenant to join a few hundred (16,000 rows, 10 ms at 1M activities).
      AND s.id = ANY(ARRAY(SELECT id FROM changes WHERE id IS NOT NULL AND NOT gone))
    RETURNING 1
),
deleted AS (
    DELETE FROM kpis_kpisnapshot s USING changes c
    WHERE s.id = c.id AND c.gone AND s.id = ANY(ARRAY(SELECT id FROM changes WHERE gone))
),
inserted AS (
    {insert}
    SELECT %(tenant)s, %(at)s, {key_columns}, {columns}
    FROM changes c
    WHERE c.id IS NULL AND NOT c.gone
    RETURNING 1
)
SELECT (SELECT count(*) FROM updated) + (SELECT count(*) FROM inserted)
"""
)


def rollup_sql(*, sources: str, table: str = SNAPSHOTS) -> str:
    columns = ", ".join((*KEY_COLUMNS, *MEASURE_COLUMNS))
    return ROLLUP.format(
        sources=sources,
        sums=", ".join(f"sum({name}) AS {name}" for name in SUMMED_COLUMNS),
        merged=", ".join(f"coalesce({name}, 0) AS {name}" for name in MEASURE_COLUMNS),
        insert=INSERT_INTO.format(table=table, columns=columns),
        columns=", ".join(MEASURE_COLUMNS),
        all_zero=" AND ".join(f"{name} = 0" for name in MEASURE_COLUMNS),
    )


def summed(alias: str, sign: str = "") -> str:
    return ", ".join(f"{sign}{alias}.{name} AS {name}" for name in SUMMED_COLUMNS)


REBUILD_ROLLUP = rollup_sql(sources=FROM_DAYS.format(summed=summed("s")))


# The same, from the day rows of the rebuild's stage into the stage.
STAGED_ROLLUP = rollup_sql(
    sources=FROM_DAYS.format(summed=summed("s")).replace(f"JOIN {SNAPSHOTS} s", f"JOIN {STAGE} s"),
    table=STAGE,
)


assert STAGED_ROLLUP.count(STAGE) == 2


def refresh_sync(rows: str) -> str:
    columns = ", ".join(MEASURE_COLUMNS)
    return SYNC.format(
        rows=rows,
        summed=summed("s"),
        plain=", ".join(SUMMED_COLUMNS),
        new=summed("n"),
        negated=summed("o", "-"),
        sums=", ".join(f"sum({name}) AS {name}" for name in SUMMED_COLUMNS),
        columns=columns,
        m_columns=", ".join(f"m.{name}" for name in MEASURE_COLUMNS),
        distinct=", ".join(f"s.{name}" for name in DISTINCT_COLUMNS),
        kept=", ".join(f"{name} AS kept_{name}" for name in DISTINCT_COLUMNS),
        no_kept=", ".join(f"NULL::bigint AS kept_{name}" for name in DISTINCT_COLUMNS),
        kept_sums=", ".join(f"max(kept_{name}) AS kept_{name}" for name in DISTINCT_COLUMNS),
        kept_merged=", ".join(
            [f"coalesce(sums.{name}, 0) AS {name}" for name in SUMMED_COLUMNS]
            + [f"coalesce(d.{name}, sums.kept_{name}, 0) AS {name}" for name in DISTINCT_COLUMNS]
        ),
        all_zero=" AND ".join(f"t.{name} = 0" for name in MEASURE_COLUMNS),
        assign=", ".join(f"{name} = c.{name}" for name in MEASURE_COLUMNS),
        s_values=", ".join(f"s.{name}" for name in MEASURE_COLUMNS),
        c_values=", ".join(f"c.{name}" for name in MEASURE_COLUMNS),
        insert=INSERT.format(columns=", ".join((*KEY_COLUMNS, *MEASURE_COLUMNS))),
        key_columns=", ".join(f"c.{name}" for name in KEY_COLUMNS),
    )


# TRICKY: the three sub-statements see the table as it was before the statement and touch
# disjoint rows (keys in both and changed; stored only; staged only), so the snapshot table
# ends equal to the stage, row for row. A row whose values did not change is not written at
# all: it keeps its computed_at, its place and its index entries (no dead tuple).
STAGE_APPLY = """
WITH updated AS (
    UPDATE {snapshots} s SET computed_at = t.computed_at, period_end = t.period_end, {assign}
    FROM {stage} t
    WHERE s.tenant_id = %(tenant)s AND {same_key}
      AND (s.period_end, {s_values}) IS DISTINCT FROM (t.period_end, {t_values})
    RETURNING 1
),
deleted AS (
    DELETE FROM {snapshots} s
    WHERE s.tenant_id = %(tenant)s AND NOT EXISTS (SELECT 1 FROM {stage} t WHERE {same_key})
    RETURNING 1
),
inserted AS (
    {insert}
    SELECT %(tenant)s, t.computed_at, {t_columns}
    FROM {stage} t
    WHERE NOT EXISTS (
        SELECT 1 FROM {snapshots} s WHERE s.tenant_id = %(tenant)s AND {same_key}
    )
    RETURNING 1
)
SELECT (SELECT count(*) FROM updated), (SELECT count(*) FROM deleted),
       (SELECT count(*) FROM inserted)
""".format(
    snapshots=SNAPSHOTS,
    stage=STAGE,
    assign=", ".join(f"{name} = t.{name}" for name in MEASURE_COLUMNS),
    same_key=" AND ".join(f"s.{name} = t.{name}" for name in KEY_COLUMNS if name != "period_end"),
    s_values=", ".join(f"s.{name}" for name in MEASURE_COLUMNS),
    t_values=", ".join(f"t.{name}" for name in MEASURE_COLUMNS),
    insert=INSERT.format(columns=", ".join((*KEY_COLUMNS, *MEASURE_COLUMNS))),
    t_columns=", ".join(f"t.{name}" for name in (*KEY_COLUMNS, *MEASURE_COLUMNS)),
)
