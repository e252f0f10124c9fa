"""A partner corrects the stage history it sent: moves or withdraws a lead's or a deal's stage
change by its key (externalId, stage, at); a deal whose closedAt moves takes its closing change
along. Each correction marks the days of the old and the new time, and snapshots refreshed
from them equal a full rebuild."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from typing import Any

import pytest

from kpis.models import KpiSnapshot
from kpis.periods import parse_period
from kpis.scopes import KpiScope
from kpis.selectors import kpi_definition, kpi_values
from kpis.snapshots import kpi_snapshots_rebuild, kpi_snapshots_refresh_dirty
from pipeline.ingestion import IngestKind, RowErrorCode, records_ingest
from pipeline.lifecycle import Stage
from pipeline.models import Deal, DealStageChange, DirtyDay, Lead, StageTransition
from tenants.context import tenant_context

pytestmark = pytest.mark.django_db
LEAD_KIND, DEAL_KIND = IngestKind.LEAD_STAGE_CHANGE, IngestKind.DEAL_STAGE_CHANGE


def at(month: int, day: int, hour: int = 9) -> str:
    return f"2026-{month:02d}-{day:02d}T{hour:02d}:00:00+09:00"


def jst(month: int, day: int, hour: int = 9) -> dt.datetime:
    return dt.datetime.fromisoformat(at(month, day, hour))


def send(tenant: Any, **rows: Any) -> Any:
    with tenant_context(tenant):
        return records_ingest(
            tenant=tenant, batch={"source_system": "sfa", **rows}, actor_label="partner"
        )


def lead_change(stage: str, when: str, **extra: Any) -> dict[str, Any]:
    return {"lead_external_id": "L1", "to_stage": stage, "at": when, **extra}


def deal_change(stage: str, when: str, **extra: Any) -> dict[str, Any]:
    return {"deal_external_id": "D1", "stage_name": stage, "at": when, **extra}


def history(tenant: Any) -> list[tuple[str, str, dt.datetime]]:
    with tenant_context(tenant):
        return list(
            StageTransition.objects.order_by("at").values_list("from_stage", "to_stage", "at")
        )


def dirty_days(tenant: Any) -> set[dt.date]:
    with tenant_context(tenant):
        return set(DirtyDay.objects.values_list("day", flat=True))


def clear_dirty(tenant: Any) -> None:
    with tenant_context(tenant):
        kpi_snapshots_refresh_dirty(tenant=tenant)
        assert not DirtyDay.objects.exists()


def errors(result: Any) -> list[tuple[str, int, str | None, str]]:
    return [(e.kind, e.index, e.field, e.code) for e in result.row_errors]


_COLUMNS = [
    f.name for f in KpiSnapshot._meta.concrete_fields if f.name not in {"id", "computed_at"}
]


def assert_refresh_equals_rebuild(tenant: Any) -> None:
    """Refresh the dirty days, then a full rebuild must leave every snapshot row as it was."""
    with tenant_context(tenant):
        kpi_snapshots_refresh_dirty(tenant=tenant)
        refreshed = _rows()
        kpi_snapshots_rebuild(tenant=tenant)
        rebuilt = _rows()
    differing = {
        key: {
            c: (x, y)
            for c, x, y in zip(_COLUMNS, refreshed.get(key, ()), rebuilt.get(key, ()), strict=False)
            if x != y
        }
        for key in set(refreshed) | set(rebuilt)
        if refreshed.get(key) != rebuilt.get(key)
    }
    assert differing == {}


def _rows() -> dict[tuple, tuple]:
    return {(r[1], r[2], r[4], r[5]): r for r in KpiSnapshot.objects.values_list(*_COLUMNS)}


def value(tenant: Any, kpi: str, label: str) -> Decimal | None:
    with tenant_context(tenant):
        definition = kpi_definition(tenant=tenant, key=kpi)
        period = parse_period(label, tenant.fiscal_year_start_month)
        found = kpi_values(tenant=tenant, kpis=[definition], periods=[period], scopes=[KpiScope()])
    return found[(kpi, period, KpiScope())].value


@pytest.fixture
def lead_a(tenant_a: Any) -> None:
    """L1, created 5 Jan, mql 10 Jan, sql 20 Feb, snapshots up to date."""
    result = send(
        tenant_a,
        leads=[{"external_id": "L1", "company": "Acme", "created_at": at(1, 5)}],
        lead_stage_changes=[lead_change("mql", at(1, 10)), lead_change("sql", at(2, 20))],
    )
    assert result.row_errors == []
    clear_dirty(tenant_a)


# --- lead stage changes ------------------------------------------------------------------


def test_a_lead_stage_change_moves_with_both_days_dirty(tenant_a: Any, lead_a: None) -> None:
    # when the partner moves the mql from 10 January to 3 February
    result = send(tenant_a, lead_stage_changes=[lead_change("mql", at(1, 10), moved_to=at(2, 3))])
    # then it is moved, the next change's from-stage still follows, both days are dirty
    assert result.row_errors == []
    assert result.counts[LEAD_KIND].updated == 1
    assert history(tenant_a) == [
        ("lead", "mql", jst(2, 3)), ("mql", "sql", jst(2, 20)),
    ]  # fmt: skip
    assert dirty_days(tenant_a) == {dt.date(2026, 1, 10), dt.date(2026, 2, 3)}
    # and the refreshed snapshots equal a rebuild: January lost its mql, February has it
    assert_refresh_equals_rebuild(tenant_a)
    assert (value(tenant_a, "mqls", "2026-01"), value(tenant_a, "mqls", "2026-02")) == (0, 1)
    # and the same move sent again changes nothing
    result = send(tenant_a, lead_stage_changes=[lead_change("mql", at(1, 10), moved_to=at(2, 3))])
    assert (result.row_errors, result.counts[LEAD_KIND].unchanged) == ([], 1)


def test_a_withdrawn_lead_stage_change_is_removed_and_the_stage_follows(
    tenant_a: Any, lead_a: None
) -> None:
    # when the partner withdraws the sql
    result = send(tenant_a, lead_stage_changes=[lead_change("sql", at(2, 20), withdrawn=True)])
    # then the lead is back at mql and February's day is dirty
    assert result.row_errors == []
    assert result.counts[LEAD_KIND].withdrawn == 1
    assert history(tenant_a) == [("lead", "mql", jst(1, 10))]
    with tenant_context(tenant_a):
        assert Lead.objects.get().stage == Stage.MQL
    assert dirty_days(tenant_a) == {dt.date(2026, 2, 20)}
    assert_refresh_equals_rebuild(tenant_a)
    assert value(tenant_a, "sqls_created", "2026-02") == 0


def test_a_move_past_the_next_change_reorders_the_history(tenant_a: Any, lead_a: None) -> None:
    # a recycle sent, then moved after the sql: lead → mql → sql → recycled
    send(tenant_a, lead_stage_changes=[lead_change("recycled", at(2, 1))])
    assert history(tenant_a)[1:] == [
        ("mql", "recycled", jst(2, 1)), ("recycled", "sql", jst(2, 20)),
    ]  # fmt: skip
    result = send(
        tenant_a, lead_stage_changes=[lead_change("recycled", at(2, 1), moved_to=at(3, 1))]
    )
    assert result.row_errors == []
    assert history(tenant_a) == [
        ("lead", "mql", jst(1, 10)), ("mql", "sql", jst(2, 20)), ("sql", "recycled", jst(3, 1)),
    ]  # fmt: skip
    with tenant_context(tenant_a):
        assert Lead.objects.get().stage == Stage.RECYCLED
    assert_refresh_equals_rebuild(tenant_a)


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        # no stored change of L1 to sql at that time
        (lead_change("sql", at(2, 21), withdrawn=True),
         ("movedTo", "at", RowErrorCode.UNKNOWN_REFERENCE)),
        # mql withdrawn or moved after the sql would leave lead → sql
        (lead_change("mql", at(1, 10), withdrawn=True),
         ("withdrawn", "withdrawn", RowErrorCode.INVALID_TRANSITION)),
        (lead_change("mql", at(1, 10), moved_to=at(3, 1)),
         ("movedTo", "movedTo", RowErrorCode.INVALID_TRANSITION)),
        (lead_change("mql", at(1, 10), moved_to=at(2, 1), withdrawn=True),
         ("both", "movedTo", RowErrorCode.INVALID)),
        (lead_change("mql", at(1, 10), moved_to="yesterday"),
         ("bad time", "movedTo", RowErrorCode.INVALID_DATETIME)),
        ({**lead_change("mql", at(1, 10), withdrawn=True), "lead_external_id": "nope"},
         ("unknown lead", "leadExternalId", RowErrorCode.UNKNOWN_REFERENCE)),
    ],
)  # fmt: skip
def test_bad_lead_corrections_are_row_errors_and_change_nothing(
    tenant_a: Any, lead_a: None, row: dict[str, Any], expected: tuple[str, str, str]
) -> None:
    before = history(tenant_a)
    result = send(tenant_a, lead_stage_changes=[row])
    assert errors(result) == [(LEAD_KIND, 0, expected[1], expected[2])]
    assert history(tenant_a) == before
    assert dirty_days(tenant_a) == set()


# --- deal stage changes and closings -----------------------------------------------------


@pytest.fixture
def deal_a(tenant_a: Any) -> None:
    """D1 of 1,000 created 10 Jan at 提案 (40 %), won (受注) 10 Feb."""
    result = send(
        tenant_a,
        leads=[{"external_id": "L1", "company": "Acme", "created_at": at(1, 5)}],
        deals=[{"external_id": "D1", "lead_external_id": "L1", "amount": "1000",
                "stage_name": "提案", "created_at": at(1, 10)}],
    )  # fmt: skip
    assert result.row_errors == []
    result = send(tenant_a, deal_stage_changes=[deal_change("受注", at(2, 10))])
    assert result.row_errors == []
    clear_dirty(tenant_a)


def deal_state(tenant: Any) -> tuple[str, dt.datetime | None, list[tuple[str, dt.datetime]]]:
    with tenant_context(tenant):
        deal = Deal.objects.select_related("stage").get()
        changes = DealStageChange.objects.order_by("at").values_list("stage__name", "at")
        return deal.stage.name, deal.closed_at, list(changes)


def test_a_deal_stage_change_moves_and_the_closing_follows(tenant_a: Any, deal_a: None) -> None:
    # when the win moves from 10 February to 10 April
    result = send(tenant_a, deal_stage_changes=[deal_change("受注", at(2, 10), moved_to=at(4, 10))])
    # then the deal closed on 10 April; it was open at the ends of February and March
    assert result.row_errors == []
    assert deal_state(tenant_a) == (
        "受注",
        jst(4, 10),
        [("提案", jst(1, 10)), ("受注", jst(4, 10))],
    )
    assert {dt.date(2026, 2, 10), dt.date(2026, 4, 10)} <= dirty_days(tenant_a)
    assert_refresh_equals_rebuild(tenant_a)
    assert value(tenant_a, "weighted_pipeline", "2026-03") == Decimal(400)
    assert (value(tenant_a, "won_deals", "2026-02"), value(tenant_a, "won_deals", "2026-04")) == (
        0, 1
    )  # fmt: skip


def test_a_withdrawn_win_reopens_the_deal(tenant_a: Any, deal_a: None) -> None:
    result = send(tenant_a, deal_stage_changes=[deal_change("受注", at(2, 10), withdrawn=True)])
    assert result.row_errors == []
    assert result.counts[DEAL_KIND].withdrawn == 1
    assert deal_state(tenant_a) == ("提案", None, [("提案", jst(1, 10))])
    assert_refresh_equals_rebuild(tenant_a)
    assert value(tenant_a, "won_deals", "2026-02") == 0
    # and the last change of a deal cannot be withdrawn
    result = send(tenant_a, deal_stage_changes=[deal_change("提案", at(1, 10), withdrawn=True)])
    assert errors(result) == [(DEAL_KIND, 0, "withdrawn", RowErrorCode.INVALID)]


def test_a_deal_row_whose_closed_at_moves_later_moves_its_closing_change(
    tenant_a: Any, tenant_b: Any
) -> None:
    # given a deal row won on 10 February (its closing change implied by the row)
    deal = {"external_id": "D1", "lead_external_id": "L1", "amount": "1000",
            "stage_name": "提案", "created_at": at(1, 10)}  # fmt: skip
    send(tenant_a, leads=[{"external_id": "L1", "company": "Acme", "created_at": at(1, 5)}],
         deals=[deal])  # fmt: skip
    send(tenant_a, deals=[{**deal, "stage_name": "受注", "closed_at": at(2, 10)}])
    clear_dirty(tenant_a)
    # when the partner sends it again closed on 10 April
    result = send(tenant_a, deals=[{**deal, "stage_name": "受注", "closed_at": at(4, 10)}])
    # then the closing change moved with it: the deal was open until April
    assert result.row_errors == []
    assert deal_state(tenant_a) == (
        "受注",
        jst(4, 10),
        [("提案", jst(1, 10)), ("受注", jst(4, 10))],
    )
    assert {dt.date(2026, 2, 10), dt.date(2026, 4, 10)} <= dirty_days(tenant_a)
    assert_refresh_equals_rebuild(tenant_a)
    assert value(tenant_a, "weighted_pipeline", "2026-02") == Decimal(400)
    assert value(tenant_a, "won_deals", "2026-02") == 0


@pytest.mark.parametrize(
    ("row", "field", "code"),
    [
        (deal_change("受注", at(2, 11), withdrawn=True), "at", RowErrorCode.UNKNOWN_REFERENCE),
        (deal_change("受注", at(2, 10), moved_to=at(1, 10), withdrawn=True), "movedTo",
         RowErrorCode.INVALID),
        ({**deal_change("受注", at(2, 10), withdrawn=True), "deal_external_id": "nope"},
         "dealExternalId", RowErrorCode.UNKNOWN_REFERENCE),
        (deal_change("受注", at(2, 10), moved_to="soon"), "movedTo", RowErrorCode.INVALID_DATETIME),
    ],
)  # fmt: skip
def test_bad_deal_corrections_are_row_errors_and_change_nothing(
    tenant_a: Any, deal_a: None, row: dict[str, Any], field: str, code: str
) -> None:
    before = deal_state(tenant_a)
    result = send(tenant_a, deal_stage_changes=[row])
    assert errors(result) == [(DEAL_KIND, 0, field, code)]
    assert deal_state(tenant_a) == before
    assert dirty_days(tenant_a) == set()


def test_tenant_b_cannot_correct_tenant_a_history(
    tenant_a: Any, tenant_b: Any, lead_a: None
) -> None:
    # when B sends corrections naming A's lead (the same source system and key)
    result = send(
        tenant_b,
        lead_stage_changes=[
            lead_change("mql", at(1, 10), withdrawn=True),
            lead_change("sql", at(2, 20), moved_to=at(3, 1)),
        ],
    )
    # then A's lead is unknown to B and A's history is untouched
    assert [e[2:] for e in errors(result)] == [
        ("leadExternalId", RowErrorCode.UNKNOWN_REFERENCE),
    ] * 2
    assert history(tenant_a) == [("lead", "mql", jst(1, 10)), ("mql", "sql", jst(2, 20))]
    assert dirty_days(tenant_a) == set()


# --- incremental refresh equals a rebuild --------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_random_corrections_refreshed_incrementally_match_a_rebuild(
    tenant_a: Any, seed: int
) -> None:
    rng = random.Random(seed)
    leads = [{"external_id": f"L{i}", "company": f"C{i}", "source": ["web", ""][i % 2],
              "created_at": at(1, 2 + i)} for i in range(6)]  # fmt: skip
    deals = [{"external_id": f"D{i}", "lead_external_id": f"L{i}", "amount": str(1000 * (i + 1)),
              "stage_name": "提案", "created_at": at(1, 10 + i)} for i in range(4)]  # fmt: skip
    send(tenant_a, leads=leads, deals=deals)
    sent_leads = {f"L{i}": [("mql", at(1, 20 + i))] for i in range(6)}
    sent_deals = {f"D{i}": [("提案", at(1, 10 + i))] for i in range(4)}
    send(
        tenant_a,
        lead_stage_changes=[
            {"lead_external_id": key, "to_stage": stage, "at": when}
            for key, changes in sent_leads.items() for stage, when in changes
        ],
    )  # fmt: skip
    kpi_snapshots_refresh_dirty_in(tenant_a)

    def moment(months: tuple[int, ...] = (1, 2, 3)) -> str:
        # Corrections may name a time before the creation (refused); additions come after it.
        return at(rng.choice(months), rng.randrange(1, 28), rng.choice([3, 9, 23]))

    for _ in range(8):
        lead_rows, deal_rows = [], []
        for _ in range(rng.randrange(1, 4)):
            key = rng.choice(list(sent_leads))
            stage, when = sent_leads[key][-1]
            roll = rng.random()
            if roll < 0.4:
                new = moment()
                lead_rows.append({"lead_external_id": key, "to_stage": stage, "at": when,
                                  "moved_to": new})  # fmt: skip
            elif roll < 0.6 and len(sent_leads[key]) > 1:
                lead_rows.append({"lead_external_id": key, "to_stage": stage, "at": when,
                                  "withdrawn": True})  # fmt: skip
            else:
                lead_rows.append({"lead_external_id": key, "to_stage": "sql", "at": moment((2, 3))})
        for _ in range(rng.randrange(0, 3)):
            key = rng.choice(list(sent_deals))
            stage, when = sent_deals[key][-1]
            if rng.random() < 0.5 and stage == "受注":
                deal_rows.append({"deal_external_id": key, "stage_name": stage, "at": when,
                                  "moved_to": moment()})  # fmt: skip
            else:
                deal_rows.append(
                    {"deal_external_id": key, "stage_name": "受注", "at": moment((2, 3))}
                )
        # rows of one key in one batch are sent in separate batches (their order matters)
        for row in lead_rows:
            send(tenant_a, lead_stage_changes=[row])
        for row in deal_rows:
            send(tenant_a, deal_stage_changes=[row])
        # what is stored now decides what the next round corrects
        with tenant_context(tenant_a):
            for key in sent_leads:
                rows = StageTransition.objects.filter(lead__external_id=key).order_by("at")
                sent_leads[key] = [(t.to_stage, t.at.isoformat()) for t in rows]
            for key in sent_deals:
                rows = DealStageChange.objects.filter(deal__external_id=key).order_by("at")
                sent_deals[key] = [(c.stage.name, c.at.isoformat()) for c in rows]
        kpi_snapshots_refresh_dirty_in(tenant_a)
    assert_refresh_equals_rebuild(tenant_a)


def kpi_snapshots_refresh_dirty_in(tenant: Any) -> None:
    with tenant_context(tenant):
        kpi_snapshots_refresh_dirty(tenant=tenant)


def test_a_backdated_deal_change_marks_the_next_stored_change_too(tenant_a: Any) -> None:
    # given D1 at 提案 from 10 January, won on 5 March, refreshed
    send(tenant_a, leads=[{"external_id": "L1", "company": "c", "created_at": at(1, 2)}],
         deals=[{"external_id": "D1", "lead_external_id": "L1", "amount": "1000",
                 "stage_name": "提案", "created_at": at(1, 10)}])  # fmt: skip
    send(tenant_a, deal_stage_changes=[deal_change("受注", at(3, 5))])
    clear_dirty(tenant_a)
    # when a win on 23 February arrives late: 5 March's change no longer leaves 提案
    send(tenant_a, deal_stage_changes=[deal_change("受注", at(2, 23))])
    # then both days are refreshed, and the result equals a rebuild
    assert dirty_days(tenant_a) >= {dt.date(2026, 2, 23), dt.date(2026, 3, 5)}
    assert_refresh_equals_rebuild(tenant_a)


CORRECT = """mutation($input: IngestRecordsInput!) {
  ingestRecords(input: $input) {
    leadStageChanges { created updated unchanged rejected withdrawn }
    dealStageChanges { created updated unchanged rejected withdrawn }
    rowErrors { kind index field code }
  }
}"""
CORRECT_JSON = """mutation($input: IngestRecordsJsonInput!) {
  ingestRecordsJson(input: $input) {
    leadStageChanges { updated withdrawn rejected }
    rowErrors { kind index field code }
  }
}"""


def test_corrections_over_graphql_stay_in_their_tenant(
    graphql: Any, tenant_a: Any, token_a: str, token_b: str, lead_a: None
) -> None:
    rows = [
        {"leadExternalId": "L1", "toStage": "sql", "at": at(2, 20), "movedTo": at(2, 25)},
        {"leadExternalId": "L1", "toStage": "mql", "at": at(1, 10), "movedTo": at(1, 12)},
    ]
    # when B's token sends them, they name no lead of B: nothing changes for A
    _, body = graphql(CORRECT, {"input": {"sourceSystem": "sfa", "leadStageChanges": rows}},
                      token=token_b)  # fmt: skip
    assert [e["code"] for e in body["data"]["ingestRecords"]["rowErrors"]] == [
        "UNKNOWN_REFERENCE"
    ] * 2
    assert history(tenant_a) == [("lead", "mql", jst(1, 10)), ("mql", "sql", jst(2, 20))]
    # when A's token sends them (typed input), both move
    _, body = graphql(CORRECT, {"input": {"sourceSystem": "sfa", "leadStageChanges": rows}},
                      token=token_a)  # fmt: skip
    payload = body["data"]["ingestRecords"]
    assert payload["rowErrors"] == []
    assert payload["leadStageChanges"] == {
        "created": 0, "updated": 2, "unchanged": 0, "rejected": 0, "withdrawn": 0
    }  # fmt: skip
    assert history(tenant_a) == [("lead", "mql", jst(1, 12)), ("mql", "sql", jst(2, 25))]
    # and the JSON input withdraws; a wrong type is a row error
    withdraw = [
        {"leadExternalId": "L1", "toStage": "sql", "at": at(2, 25), "withdrawn": True},
        {"leadExternalId": "L1", "toStage": "mql", "at": at(1, 12), "withdrawn": "yes"},
    ]
    batch = {"sourceSystem": "sfa", "leadStageChanges": withdraw}
    _, body = graphql(CORRECT_JSON, {"input": batch}, token=token_a)
    payload = body["data"]["ingestRecordsJson"]
    assert payload["leadStageChanges"] == {"updated": 0, "withdrawn": 1, "rejected": 1}
    assert payload["rowErrors"] == [
        {"kind": "LEAD_STAGE_CHANGE", "index": 1, "field": "withdrawn", "code": "INVALID"}
    ]
    assert history(tenant_a) == [("lead", "mql", jst(1, 12))]
