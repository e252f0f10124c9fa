"""The built-in CRM presets: which columns of a HubSpot or Salesforce export feed which of our
fields, and the default meaning of their stage names and values.

Column names are those of the exporters' own CSV files: HubSpot's export of a view (English
or Japanese UI labels), Salesforce's report export ("Details only", labels) and Data Loader
(API names). Headers are matched ignoring case and surrounding blanks; the first candidate
present in the file is used. A tenant's ImportPreset overrides any of this.

Times: HubSpot exports `2026-11-02 09:30` in the exporting user's time zone; a Salesforce
report `2026/11/02 9:30` in the user's zone; Data Loader ISO 8601 in UTC
(`2026-11-02T00:30:00.000Z`). Times without an offset are read in the preset's zone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.ingestion.results import IngestKind


@dataclass(frozen=True)
class Preset:
    """One kind of export: its columns (our field → their headers) and default mappings."""

    name: str
    source_system: str
    kind: IngestKind  # the record each line becomes (and is counted as when refused)
    columns: dict[str, tuple[str, ...]]
    required: tuple[str, ...]
    stages: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, str]] = field(default_factory=dict)


# HubSpot's lifecycle stages (English and Japanese UI labels, and internal values).
_HUBSPOT_LIFECYCLE = {
    "subscriber": "lead",
    "サブスクライバー": "lead",
    "lead": "lead",
    "リード": "lead",
    "marketing qualified lead": "mql",
    "marketingqualifiedlead": "mql",
    "マーケティングクオリファイドリード": "mql",
    "sales qualified lead": "sql",
    "salesqualifiedlead": "sql",
    "セールスクオリファイドリード": "sql",
    "opportunity": "opportunity",
    "商談": "opportunity",
    "customer": "won",
    "顧客": "won",
    "evangelist": "won",
    "エバンジェリスト": "won",
}
_HUBSPOT_DEAL_STAGES = {
    "appointment scheduled": "初回商談",
    "appointmentscheduled": "初回商談",
    "アポ設定済み": "初回商談",
    "qualified to buy": "ヒアリング",
    "qualifiedtobuy": "ヒアリング",
    "presentation scheduled": "提案",
    "presentationscheduled": "提案",
    "decision maker bought-in": "見積提示",
    "decisionmakerboughtin": "見積提示",
    "contract sent": "最終交渉",
    "contractsent": "最終交渉",
    "closed won": "受注",
    "closedwon": "受注",
    "成約": "受注",
    "closed lost": "失注",
    "closedlost": "失注",
    "不成立": "失注",
}
_SALESFORCE_LEAD_STATUS = {
    "open - not contacted": "lead",
    "未対応": "lead",
    "working - contacted": "mql",
    "対応中": "mql",
    "closed - converted": "sql",
    "取引開始済み": "sql",
    "closed - not converted": "recycled",
    "不成立": "recycled",
}
_SALESFORCE_OPPORTUNITY_STAGES = {
    "prospecting": "初回商談",
    "qualification": "ヒアリング",
    "needs analysis": "ヒアリング",
    "value proposition": "提案",
    "id. decision makers": "提案",
    "perception analysis": "提案",
    "proposal/price quote": "見積提示",
    "negotiation/review": "最終交渉",
    "closed won": "受注",
    "closed lost": "失注",
}
_ACTIVITY_TYPES = {
    "call": "call",
    "通話": "call",
    "電話": "call",
    "email": "email",
    "e-mail": "email",
    "listemail": "email",
    "メール": "email",
    "meeting": "meeting",
    "ミーティング": "meeting",
    "会議": "meeting",
    "task": "other",
    "タスク": "other",
    "note": "other",
    "other": "other",
    "その他": "other",
}
_CALL_OUTCOMES = {
    "connected": "connected",
    "接続済み": "connected",
    "接続": "connected",
    "通話": "connected",
    "busy": "busy",
    "話し中": "busy",
    "話中": "busy",
    "no answer": "no_answer",
    "応答なし": "no_answer",
    "不在": "no_answer",
    "left voicemail": "voicemail",
    "留守番電話を残した": "voicemail",
    "留守電": "voicemail",
    "wrong number": "wrong_number",
    "番号違い": "wrong_number",
    "left live message": "other",
    "伝言を残した": "other",
}

_HUBSPOT_CONTACT_COLUMNS = {
    "external_id": ("Record ID", "レコードID", "Contact ID"),
    "first_name": ("First Name", "名"),
    "last_name": ("Last Name", "姓"),
    "email": ("Email", "Eメール", "メール"),
    "company": ("Company Name", "会社名"),
    "lifecycle_stage": ("Lifecycle Stage", "ライフサイクルステージ"),
    "attributes.lead_status": ("Lead Status", "リードステータス"),
    "owner": ("Contact owner", "コンタクト担当者", "HubSpot Owner"),
    "created_at": ("Create Date", "作成日"),
    "source": ("Original Source", "オリジナルソース"),
    "industry": ("Industry", "業種"),
    "employee_count": ("Number of Employees", "従業員数"),
    "title": ("Job Title", "役職"),
    "mql_at": ("Became a Marketing Qualified Lead Date",),
    "sql_at": ("Became a Sales Qualified Lead Date",),
    "opportunity_at": ("Became an Opportunity Date",),
    "won_at": ("Became a Customer Date",),
}

PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            name="hubspot-contacts",
            source_system="hubspot",
            kind=IngestKind.LEAD,
            columns=_HUBSPOT_CONTACT_COLUMNS,
            required=("external_id", "created_at"),
            stages=_HUBSPOT_LIFECYCLE,
        ),
        Preset(
            name="hubspot-activities",
            source_system="hubspot",
            kind=IngestKind.ACTIVITY,
            columns={
                "external_id": ("Activity ID", "Record ID", "レコードID"),
                "type": ("Activity type", "Activity Type", "アクティビティータイプ"),
                "occurred_at": ("Activity date", "Activity Date", "アクティビティー日"),
                "call_outcome": ("Call outcome", "Call Outcome", "コールの結果"),
                "duration": ("Call duration (HH:mm:ss)", "Call duration", "通話時間"),
                "rep": ("Activity assigned to", "Assigned to", "担当者"),
                "lead_external_id": (
                    "Associated Contact IDs",
                    "Associated Contact ID",
                    "関連付けられたコンタクトID",
                ),
            },
            required=("external_id", "type", "occurred_at", "lead_external_id"),
            values={"type": _ACTIVITY_TYPES, "call_outcome": _CALL_OUTCOMES},
        ),
        Preset(
            name="hubspot-deals",
            source_system="hubspot",
            kind=IngestKind.DEAL,
            columns={
                "external_id": ("Record ID", "レコードID", "Deal ID"),
                "name": ("Deal Name", "取引名"),
                "amount": ("Amount", "金額"),
                "stage": ("Deal Stage", "取引ステージ"),
                "attributes.pipeline": ("Pipeline", "パイプライン"),
                "closed_at": ("Close Date", "クローズ日"),
                "created_at": ("Create Date", "作成日"),
                "owner": ("Deal owner", "取引担当者"),
                "currency": ("Currency", "通貨"),
                "lead_external_id": ("Associated Contact IDs", "関連付けられたコンタクトID"),
            },
            required=("external_id", "amount", "stage", "created_at", "lead_external_id"),
            stages=_HUBSPOT_DEAL_STAGES,
        ),
        Preset(
            name="salesforce-leads",
            source_system="salesforce",
            kind=IngestKind.LEAD,
            columns={
                "external_id": ("Lead ID", "リード ID", "Id"),
                "first_name": ("First Name", "名", "FirstName"),
                "last_name": ("Last Name", "姓", "LastName"),
                "company": ("Company", "会社名", "Company / Account"),
                "email": ("Email", "メール"),
                "source": ("Lead Source", "リードソース", "LeadSource"),
                "lifecycle_stage": ("Lead Status", "状況", "Status"),
                "owner": ("Lead Owner", "リード所有者", "OwnerId"),
                "created_at": ("Created Date", "作成日", "CreatedDate"),
                "industry": ("Industry", "業種"),
                "employee_count": ("No. of Employees", "従業員数", "NumberOfEmployees"),
                "title": ("Title", "役職"),
            },
            required=("external_id", "created_at"),
            stages=_SALESFORCE_LEAD_STATUS,
        ),
        Preset(
            name="salesforce-tasks",
            source_system="salesforce",
            kind=IngestKind.ACTIVITY,
            columns={
                "external_id": ("Activity ID", "活動 ID", "Id"),
                "type": ("Task Subtype", "Type", "種別", "TaskSubtype"),
                "call_outcome": (
                    "Call Result",
                    "Call Disposition",
                    "コール結果",
                    "CallDisposition",
                ),
                "duration": ("Call Duration", "通話時間", "CallDurationInSeconds"),
                "rep": ("Assigned", "Assigned To", "任命先", "OwnerId"),
                "occurred_at": ("Created Date", "作成日", "CreatedDate", "Due Date", "期日"),
                "lead_external_id": ("Lead ID", "Contact ID", "リード ID", "WhoId"),
                "attributes.subject": ("Subject", "件名"),
            },
            required=("external_id", "type", "occurred_at", "lead_external_id"),
            values={"type": _ACTIVITY_TYPES, "call_outcome": _CALL_OUTCOMES},
        ),
        Preset(
            name="salesforce-opportunities",
            source_system="salesforce",
            kind=IngestKind.DEAL,
            columns={
                "external_id": ("Opportunity ID", "商談 ID", "Id"),
                "name": ("Opportunity Name", "商談名", "Name"),
                "amount": ("Amount", "金額"),
                "stage": ("Stage", "フェーズ", "StageName"),
                "closed_at": ("Close Date", "完了予定日", "CloseDate"),
                "created_at": ("Created Date", "作成日", "CreatedDate"),
                "owner": ("Opportunity Owner", "商談 所有者", "OwnerId"),
                "currency": ("Opportunity Currency", "通貨", "CurrencyIsoCode"),
                "lead_external_id": ("Lead ID", "Contact ID", "リード ID"),
            },
            required=("external_id", "amount", "stage", "created_at", "lead_external_id"),
            stages=_SALESFORCE_OPPORTUNITY_STAGES,
        ),
        Preset(
            name="salesforce-opportunity-history",
            source_system="salesforce",
            kind=IngestKind.DEAL_STAGE_CHANGE,
            columns={
                "deal_external_id": ("Opportunity ID", "商談 ID", "OpportunityId"),
                "field": ("Field / Event", "Field/Event", "項目 / イベント", "Field"),
                "new_value": ("New Value", "新しい値", "NewValue"),
                "at": ("Edit Date", "編集日", "CreatedDate"),
            },
            required=("deal_external_id", "field", "new_value", "at"),
            stages=_SALESFORCE_OPPORTUNITY_STAGES,
            # Only the rows of this field are stage changes; the others are skipped.
            values={"field": {"stage": "stage", "フェーズ": "stage", "stagename": "stage"}},
        ),
    )
}
