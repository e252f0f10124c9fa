"""import_csv: good rows stored in bulk, bad rows reported with their line numbers."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from pipeline.models import Activity, Lead
from tenants.context import tenant_context

pytestmark = pytest.mark.django_db(transaction=True)

LEADS = """externalId,company,contact_name,email,employee_count,created_at,source,attributes
L1,株式会社テスト,山田 太郎,taro@example.com,120,2026-03-02T10:00:00+09:00,web,"{""x"": 1}"
L2,,佐藤 花子,hanako@example.com,30,2026-03-02T11:00:00+09:00,event,
L3,北斗工業株式会社,鈴木 一郎,ichiro@example.com,many,2026-03-03T09:30:00+09:00,referral,
L4,未来商事株式会社,田中 次郎,jiro@example.com,,2026-03-03T09:30:00,web,

L5,光データ株式会社,伊藤 三郎,saburo@example.com,5000,2026-03-04T15:00:00+09:00,partner,
"""

ACTIVITIES = """external_id,lead_external_id,type,occurred_at,call_outcome,email_delivered
A1,L1,call,2026-03-03T10:00:00+09:00,connected,
A2,L1,email,2026-03-03T11:00:00+09:00,,true
A3,L9,call,2026-03-03T12:00:00+09:00,no_answer,
A4,L5,fax,2026-03-04T16:00:00+09:00,,
"""


def _run(tmp_path: Path, kind: str, text: str, *extra: str) -> str:
    path = tmp_path / f"{kind}.csv"
    path.write_text(text, encoding="utf-8")
    out = io.StringIO()
    call_command(
        "import_csv", "--tenant", "acme", "--kind", kind, str(path), *extra,
        stdout=out, stderr=io.StringIO(),
    )  # fmt: skip
    return out.getvalue()


def test_leads_and_activities(tmp_path: Path, tenant_a: Any) -> None:
    out = _run(tmp_path, "leads", LEADS, "--chunk-size", "2")
    assert "5 rows, 2 created, 0 updated, 0 unchanged, 3 rejected" in out
    assert "line 3: company:" in out
    assert "line 4: employee_count:" in out
    assert "line 5: created_at:" in out
    with tenant_context(tenant_a):
        leads = {lead.external_id: lead for lead in Lead.objects.all()}
    assert sorted(leads) == ["L1", "L5"]
    assert leads["L1"].source_system == "csv"
    assert leads["L5"].company == "光データ株式会社"  # line 7, after a blank line
    assert leads["L1"].employee_count == 120 and leads["L1"].attributes == {"x": 1}

    out = _run(tmp_path, "activities", ACTIVITIES)
    assert "4 rows, 2 created" in out and "2 rejected" in out
    assert "line 4: lead_external_id:" in out
    assert "line 5: type:" in out
    with tenant_context(tenant_a):
        stored = dict(Activity.objects.values_list("external_id", "type"))
    assert stored == {"A1": "call", "A2": "email"}

    # Importing the same file again updates by external id instead of duplicating.
    out = _run(tmp_path, "leads", LEADS)
    with tenant_context(tenant_a):
        assert Lead.objects.count() == 2


def test_bad_header_is_refused(tmp_path: Path, tenant_a: Any) -> None:
    with pytest.raises(CommandError, match="missing required columns: created_at"):
        _run(tmp_path, "leads", "external_id,company,colour\nL1,A社,red\n")
