"""import_crm: each CRM preset on its sample export, dry run then real run then re-run, the
stored values (local times, stages, owners, stage history), bad lines and tenant isolation."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command

from pipeline.imports.models import ImportPreset
from pipeline.models import (
    Activity,
    Deal,
    DealStageChange,
    DirtyDay,
    IngestionRequest,
    Lead,
    StageTransition,
)
from tenants import members
from tenants.context import tenant_context
from tenants.scopes import Role
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

SAMPLES = Path(__file__).resolve().parents[2] / "pipeline" / "imports" / "samples"
TOKYO = ZoneInfo("Asia/Tokyo")


@pytest.fixture
def reps(tenant_a: Any) -> dict[str, Any]:
    """Tenant A's reps, as the exports name them (display names) and by e-mail."""
    found = {}
    for username, name in (("yamada", "山田 太郎"), ("sato", "佐藤 花子")):
        user = UserFactory(username=username, email=f"{username}@acme.example")
        membership = members.membership_add(tenant=tenant_a, user=user, role=Role.REP)
        with tenant_context(tenant_a):
            membership.display_name = name
            membership.save(update_fields=["display_name"])
        found[username] = membership
    return found


def run(preset: str, *extra: str, tenant: str = "acme", path: Path | None = None) -> str:
    out = io.StringIO()
    call_command(
        "import_crm", "--tenant", tenant, "--preset", preset,
        str(path or SAMPLES / f"{preset}.csv"), *extra,
        stdout=out, stderr=io.StringIO(),
    )  # fmt: skip
    return out.getvalue()


def local(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=TOKYO)


def leads_by_id(tenant: Any) -> dict[str, Lead]:
    with tenant_context(tenant):
        return {lead.external_id: lead for lead in Lead.objects.select_related("owner")}


def nothing_stored(tenant: Any) -> tuple[int, ...]:
    from kpis.models import KpiSnapshot

    with tenant_context(tenant):
        models = (Lead, Activity, Deal, StageTransition, DealStageChange, DirtyDay)
        rows = [model.objects.count() for model in models]
        return (*rows, IngestionRequest.objects.count(), KpiSnapshot.objects.count())


CONTACT_ERRORS = (
    "  line 6: Create Date: '2026/13/45 10:00' is not a date and time (e.g. 2026-11-02 09:30, "
    "2026/11/02 9:30 or 2026-11-02T00:30:00Z).\n"
    "  line 7: Contact owner: no member is named '木村 健'; map it to a member's e-mail in the "
    "preset's owners.\n"
)


def test_hubspot_contacts_dry_run_then_import_then_unchanged(tenant_a: Any, reps: Any) -> None:
    # when the contacts export is dry-run
    dry = run("hubspot-contacts", "--dry-run")
    # then it reports what would happen, and nothing was written (rows, dirty days, keys)
    assert dry == (
        "hubspot-contacts.csv (hubspot-contacts, dry run, nothing written): 6 lines.\n"
        "  lead: 4 would be created, 0 would be updated, 0 unchanged, 2 refused\n"
        "  lead_stage_change: 3 would be created, 0 would be updated, 0 unchanged, 0 refused\n"
        + CONTACT_ERRORS
    )
    assert nothing_stored(tenant_a) == (0, 0, 0, 0, 0, 0, 0, 0)
    # when it is imported, then imported again
    first = run("hubspot-contacts")
    again = run("hubspot-contacts")
    # then the import did what the dry run said, and the second changed nothing
    assert first == dry.replace("dry run, nothing written", "imported").replace("would be ", "")
    assert again == (
        "hubspot-contacts.csv (hubspot-contacts, imported): 6 lines.\n"
        "  lead: 0 created, 0 updated, 4 unchanged, 2 refused\n"
        "  lead_stage_change: 0 created, 0 updated, 3 unchanged, 0 refused\n"
        "  1 chunk(s) of this file were imported before with this preset: "
        "nothing written for them\n" + CONTACT_ERRORS
    )
    leads = leads_by_id(tenant_a)
    assert sorted(leads) == ["1001", "1002", "1003", "1004"]
    taro = leads["1001"]
    assert (taro.company, taro.contact_name, taro.email) == (
        "北斗工業株式会社",
        "鈴木 太郎",
        "suzuki@hokuto.example",
    )
    # the export's local time, read in the tenant's zone (Asia/Tokyo)
    assert taro.created_at == local("2026-11-02T09:30")
    assert taro.created_at == dt.datetime(2026, 11, 2, 0, 30, tzinfo=dt.UTC)
    assert (taro.owner_id, taro.source_system, taro.source) == (
        reps["yamada"].pk,
        "hubspot",
        "Organic Search",
    )
    assert (taro.industry, taro.employee_count, taro.title, taro.stage) == (
        "Manufacturing",
        120,
        "営業部長",
        "lead",
    )
    assert taro.attributes == {"lead_status": "New"}
    ichiro = leads["1003"]
    assert (ichiro.owner_id, ichiro.employee_count, ichiro.stage) == (
        reps["yamada"].pk,
        1200,
        "sql",
    )
    assert leads["1002"].owner_id == reps["sato"].pk and leads["1002"].stage == "mql"
    assert leads["1004"].company == "伊藤 次郎"  # no company: the person stands for it
    with tenant_context(tenant_a):
        history = list(
            StageTransition.objects.order_by("lead__external_id", "at").values_list(
                "lead__external_id", "from_stage", "to_stage", "at"
            )
        )
    assert history == [
        ("1002", "lead", "mql", local("2026-11-04T10:00")),
        ("1003", "lead", "mql", local("2026-11-04T10:00")),
        ("1003", "mql", "sql", local("2026-11-10T09:00")),
    ]


def test_a_re_import_without_its_keys_is_unchanged_row_by_row(tenant_a: Any, reps: Any) -> None:
    # given the contacts imported, and the idempotency records gone (e.g. expired)
    run("hubspot-contacts")
    with tenant_context(tenant_a):
        IngestionRequest.objects.all().delete()
    # when the same file is imported again
    out = run("hubspot-contacts")
    # then the ingestion itself finds every row unchanged
    assert "  lead: 0 created, 0 updated, 4 unchanged, 2 refused\n" in out
    assert "  lead_stage_change: 0 created, 0 updated, 3 unchanged, 0 refused\n" in out
    assert "imported before" not in out


def test_hubspot_activities_and_deals(tenant_a: Any, reps: Any) -> None:
    # given the contacts
    run("hubspot-contacts")
    # when activities and deals are dry-run, imported, re-imported
    outs = {
        preset: (run(preset, "--dry-run"), run(preset), run(preset))
        for preset in ("hubspot-activities", "hubspot-deals")
    }
    # then
    dry, first, again = outs["hubspot-activities"]
    errors = (
        "  line 6: activity Associated Contact IDs: No lead has this externalId.\n"
        "  line 7: activity Activity type: Expected one of: call, email, meeting, other.\n"
    )
    assert dry == (
        "hubspot-activities.csv (hubspot-activities, dry run, nothing written): 6 lines.\n"
        "  activity: 4 would be created, 0 would be updated, 0 unchanged, 2 refused\n" + errors
    )
    assert first.endswith("  activity: 4 created, 0 updated, 0 unchanged, 2 refused\n" + errors)
    assert "  activity: 0 created, 0 updated, 4 unchanged, 2 refused\n" in again
    with tenant_context(tenant_a):
        activities = {
            a.external_id: (
                a.lead.external_id, a.type, a.call_outcome, a.duration_seconds, a.rep_id,
                a.occurred_at,
            )
            for a in Activity.objects.select_related("lead")
        }  # fmt: skip
    yamada, sato = reps["yamada"].pk, reps["sato"].pk
    assert activities == {
        "50001": ("1001", "call", "no_answer", 30, yamada, local("2026-11-02T10:15")),
        "50002": ("1001", "call", "connected", 312, yamada, local("2026-11-02T15:40")),
        "50003": ("1002", "email", "", None, sato, local("2026-11-03T14:30")),
        "50004": ("1003", "other", "", None, yamada, local("2026-11-04T11:00")),
    }
    dry, first, again = outs["hubspot-deals"]
    assert dry.endswith(
        "  deal: 2 would be created, 0 would be updated, 0 unchanged, 1 refused\n"
        "  line 4: deal Deal Stage: No deal stage has this name.\n"
    )
    assert "  deal: 2 created, 0 updated, 0 unchanged, 1 refused\n" in first
    assert "  deal: 0 created, 0 updated, 2 unchanged, 1 refused\n" in again
    with tenant_context(tenant_a):
        deals = {
            d.external_id: (d.lead.external_id, d.name, d.amount, d.stage.name, d.closed_at)
            for d in Deal.objects.select_related("lead", "stage")
        }
    assert deals == {
        # an open deal's close date is only expected: not a closing
        "7001": ("1001", "北斗工業 生産管理システム", Decimal("1200000.00"), "初回商談", None),
        "7002": (
            "1003",
            "光データ 保守契約",
            Decimal("3600000.00"),
            "受注",
            local("2026-11-28T00:00"),
        ),
    }


def test_salesforce_leads_tasks_opportunities_and_stage_history(tenant_a: Any, reps: Any) -> None:
    # when each Salesforce export is dry-run, imported and re-imported, in order
    outs = {
        preset: (run(preset, "--dry-run"), run(preset), run(preset))
        for preset in (
            "salesforce-leads",
            "salesforce-tasks",
            "salesforce-opportunities",
            "salesforce-opportunity-history",
        )
    }
    # then the counts are exact at each step
    expected = {
        "salesforce-leads": ({"lead": (4, 2), "lead_stage_change": (4, 0)}),
        "salesforce-tasks": {"activity": (4, 1)},
        "salesforce-opportunities": {"deal": (2, 1)},
        "salesforce-opportunity-history": {"deal_stage_change": (3, 1)},
    }
    for preset, kinds in expected.items():
        dry, first, again = outs[preset]
        for kind, (stored, refused) in kinds.items():
            assert (
                f"  {kind}: {stored} would be created, 0 would be updated, 0 unchanged, "
                f"{refused} refused\n"
            ) in dry, preset
            assert f"  {kind}: {stored} created, 0 updated, 0 unchanged, {refused} refused\n" in (
                first
            ), preset
            assert f"  {kind}: 0 created, 0 updated, {stored} unchanged, {refused} refused\n" in (
                again
            ), preset
    assert (
        "  line 6: Lead Status: 'Nurturing' is not mapped to a lifecycle stage"
        in (outs["salesforce-leads"][0])
    )
    assert "  line 7: lead No. of Employees: Expected an integer.\n" in outs["salesforce-leads"][1]
    assert "  line 6: Created Date: '2026/11/05 25:00' is not a date" in outs["salesforce-tasks"][1]
    assert (
        "  line 4: deal Lead ID: No lead has this externalId.\n"
        in (outs["salesforce-opportunities"][1])
    )
    history_out = outs["salesforce-opportunity-history"][1]
    assert "  2 lines skipped (not a stage change)\n" in history_out
    assert "  line 7: dealStageChange OpportunityId: No deal has this externalId.\n" in history_out
    # and the stored values follow the mappings
    leads = leads_by_id(tenant_a)
    assert leads["00Q5j00000AbCdE1"].created_at == local("2026-11-02T09:30")  # "2026/11/02 9:30"
    assert {key: lead.stage for key, lead in leads.items()} == {
        "00Q5j00000AbCdE1": "lead",
        "00Q5j00000AbCdE2": "mql",
        "00Q5j00000AbCdE3": "sql",
        "00Q5j00000AbCdE4": "recycled",
    }
    assert leads["00Q5j00000AbCdE3"].employee_count == 3000
    assert leads["00Q5j00000AbCdE2"].owner_id == reps["sato"].pk
    with tenant_context(tenant_a):
        outcomes = dict(Activity.objects.values_list("external_id", "call_outcome"))
        durations = dict(Activity.objects.values_list("external_id", "duration_seconds"))
        deal = Deal.objects.select_related("stage").get(external_id="0065j00000XyZ001")
        changes = list(DealStageChange.objects.filter(deal=deal).values_list("stage__name", "at"))
        won = Deal.objects.select_related("stage").get(external_id="0065j00000XyZ002")
    assert outcomes == {
        "00T5j000001AAA1": "no_answer",
        "00T5j000001AAA2": "connected",
        "00T5j000001AAA3": "",
        "00T5j000001AAA4": "other",  # free text no mapping names
    }
    assert durations["00T5j000001AAA2"] == 420
    assert (deal.amount, deal.owner_id, deal.stage.name) == (
        Decimal("2500000.00"),
        reps["yamada"].pk,
        "見積提示",
    )
    utc = dt.UTC
    assert changes == [
        ("初回商談", local("2026-11-10T10:00")),
        ("ヒアリング", dt.datetime(2026, 11, 12, 1, 0, tzinfo=utc)),
        ("見積提示", dt.datetime(2026, 11, 20, 6, 30, tzinfo=utc)),
    ]
    assert (won.stage.name, won.closed_at) == ("受注", dt.datetime(2026, 11, 30, tzinfo=utc))


def test_a_tenants_preset_maps_owners_zone_and_stages(tenant_a: Any, reps: Any) -> None:
    # given tenant A's own preset: an owner mapped by name, exports in UTC, a custom stage
    with tenant_context(tenant_a):
        ImportPreset.objects.create(
            tenant=tenant_a,
            name="hubspot-contacts",
            kind="hubspot-contacts",
            time_zone="UTC",
            owners={"木村 健": "sato@acme.example"},
            stages={"Opportunity": "meeting"},
        )
    # when the contacts are imported with it
    out = run("hubspot-contacts")
    # then the unknown owner is now known, times are read as UTC, the stage is remapped
    assert "  lead: 5 created, 0 updated, 0 unchanged, 1 refused\n" in out
    leads = leads_by_id(tenant_a)
    assert leads["1006"].owner_id == reps["sato"].pk
    assert leads["1006"].stage == "meeting"
    assert leads["1001"].created_at == dt.datetime(2026, 11, 2, 9, 30, tzinfo=dt.UTC)
    # and --time-zone overrides the preset's zone
    # (same file: the mapping differs with the zone, so nothing is replayed)
    out = run("hubspot-contacts", "--time-zone", "Asia/Tokyo")
    assert "  lead: 0 created, 5 updated, 0 unchanged, 1 refused\n" in out
    assert leads_by_id(tenant_a)["1001"].created_at == local("2026-11-02T09:30")


def test_another_tenants_preset_is_never_used(tenant_a: Any, tenant_b: Any, reps: Any) -> None:
    # given tenant B's presets: its own name, and one named like a built-in
    with tenant_context(tenant_b):
        for name in ("globex-contacts", "hubspot-contacts"):
            ImportPreset.objects.create(
                tenant=tenant_b,
                name=name,
                kind="hubspot-contacts",
                owners={"木村 健": "sato@acme.example"},
            )
    # when tenant A imports with them
    with pytest.raises(CommandError, match="No preset 'globex-contacts'"):
        run("globex-contacts", path=SAMPLES / "hubspot-contacts.csv")
    out = run("hubspot-contacts")
    # then A gets the built-in mapping (B's owner mapping is not applied) and B nothing
    assert "  line 7: Contact owner: no member is named '木村 健'" in out
    assert nothing_stored(tenant_b)[:6] == (0, 0, 0, 0, 0, 0)
    assert len(leads_by_id(tenant_a)) == 4


def test_bad_files_are_refused_without_a_traceback(
    tmp_path: Path, tenant_a: Any, reps: Any
) -> None:
    # given a file missing a required column, and a cp932 file (Excel on Japanese Windows)
    missing = tmp_path / "missing.csv"
    missing.write_text("Record ID,First Name\n1,太郎\n", encoding="utf-8")
    cp932 = tmp_path / "cp932.csv"
    cp932.write_bytes((SAMPLES / "hubspot-contacts.csv").read_text("utf-8").encode("cp932"))
    # when they are imported
    with pytest.raises(CommandError, match=r"Missing columns for hubspot-contacts: created_at"):
        run("hubspot-contacts", path=missing)
    undecodable = run("hubspot-contacts", path=cp932)
    with pytest.raises(CommandError, match="No preset 'pipedrive'"):
        run("pipedrive", path=missing)
    with pytest.raises(CommandError, match="Unknown time zone 'Mars/Base'"):
        run("hubspot-contacts", "--time-zone", "Mars/Base", path=missing)
    out = run("hubspot-contacts", "--encoding", "cp932", path=cp932)
    # then nothing was stored from the refused files; every line of the cp932 file read as
    # UTF-8 was refused with the hint, and with --encoding cp932 it imports
    assert "  lead: 0 created, 0 updated, 0 unchanged, 6 refused\n" in undecodable
    assert undecodable.count("pass --encoding (e.g. --encoding cp932)") == 6
    assert "  lead: 4 created, 0 updated, 0 unchanged, 2 refused\n" in out
    assert leads_by_id(tenant_a)["1001"].company == "北斗工業株式会社"


def test_large_files_go_in_chunks_of_the_batch_limit(
    tmp_path: Path, tenant_a: Any, reps: Any, settings: Any
) -> None:
    # given a batch limit of 4 records and 9 contacts at mql (2 records per line)
    settings.INGEST_MAX_BATCH_ROWS = 4
    lines = ["Record ID,Company Name,Lifecycle Stage,Create Date"]
    lines += [f"{n},会社{n},Marketing Qualified Lead,2026-11-0{n} 09:00" for n in range(1, 10)]
    path = tmp_path / "many.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    # when imported twice
    first = run("hubspot-contacts", path=path)
    again = run("hubspot-contacts", path=path)
    # then in 5 chunks of at most 4 records, each replayed the second time
    assert "  lead: 9 created, 0 updated, 0 unchanged, 0 refused\n" in first
    assert "  lead_stage_change: 9 created, 0 updated, 0 unchanged, 0 refused\n" in first
    assert "  5 chunk(s) of this file were imported before" in again
    with tenant_context(tenant_a):
        assert IngestionRequest.objects.count() == 5
        assert StageTransition.objects.count() == 9


def test_a_dry_run_leaves_snapshots_and_dirty_days_alone(tenant_a: Any, reps: Any) -> None:
    # given imported contacts whose KPI snapshots were refreshed (here, not by a worker)
    from kpis.models import KpiSnapshot
    from kpis.snapshots import kpi_snapshots_refresh_dirty

    run("hubspot-contacts")
    with tenant_context(tenant_a):
        kpi_snapshots_refresh_dirty(tenant=tenant_a)
        before = sorted(KpiSnapshot.objects.values_list("period_start", "scope_type", "calls"))
        dirty = DirtyDay.objects.count()
    # when the activities are dry-run
    run("hubspot-activities", "--dry-run")
    # then snapshots, dirty days and rows are as they were
    with tenant_context(tenant_a):
        after = sorted(KpiSnapshot.objects.values_list("period_start", "scope_type", "calls"))
        assert (DirtyDay.objects.count(), Activity.objects.count()) == (dirty, 0)
    assert before and after == before


def test_presets_are_managed_in_the_admin(client: Any, admin_a: Any, tenant_a: Any) -> None:
    # given tenant A's admin (staff)
    admin_a.is_staff = True
    admin_a.save(update_fields=["is_staff"])
    client.force_login(admin_a)
    data = {
        "name": "sfdc-tokyo",
        "kind": "salesforce-leads",
        "source_system": "salesforce",
        "time_zone": "Asia/Tokyo",
        "columns": '{"携帯電話": "phone"}',
        "stages": '{"Nurturing": "recycled"}',
        "owners": "{}",
        "values": "{}",
    }
    # when they save a preset naming an unknown field, then a valid one
    refused = client.post("/admin/pipeline/importpreset/add/", data)
    saved = client.post(
        "/admin/pipeline/importpreset/add/", {**data, "columns": '{"携帯電話": "attributes.phone"}'}
    )
    # then only the valid one is stored, in tenant A
    assert refused.status_code == 200 and "不明な項目 phone" in refused.content.decode()
    assert saved.status_code == 302
    with tenant_context(tenant_a):
        preset = ImportPreset.objects.get()
    assert (preset.name, preset.kind, preset.stages) == (
        "sfdc-tokyo",
        "salesforce-leads",
        {"Nurturing": "recycled"},
    )


def test_an_english_workspace_maps_crm_stages_to_its_english_stages(
    tenant_a: Any, reps: Any
) -> None:
    # given an English workspace, whose default stages are named in English
    from pipeline.defaults import DEFAULT_DEAL_STAGES, DEFAULT_DEAL_STAGES_EN
    from pipeline.models import DealStage
    from tenants.models import Tenant

    Tenant.objects.filter(pk=tenant_a.pk).update(language=Tenant.Language.EN)
    with tenant_context(tenant_a):
        for (japanese, *_), (english, *_) in zip(
            DEFAULT_DEAL_STAGES, DEFAULT_DEAL_STAGES_EN, strict=True
        ):
            DealStage.objects.filter(name=japanese).update(name=english)
    # when HubSpot deals are imported
    run("hubspot-contacts")
    out = run("hubspot-deals")
    # then "Appointment scheduled" and "Closed won" land in First meeting and Won, and
    # "Negotiation" (refused by a Japanese workspace) is a stage name as it is
    assert "  deal: 3 created, 0 updated, 0 unchanged, 0 refused\n" in out
    with tenant_context(tenant_a):
        stages = dict(Deal.objects.values_list("external_id", "stage__name"))
    assert stages == {"7001": "First meeting", "7002": "Won", "7003": "Negotiation"}
