"""Deterministic demo data: Japanese B2B leads, reps, activities, stage history and deals.

`seed_demo(tenant=..., leads=N, months=M, seed=S)` fills a tenant with realistic inside-sales
data whose rates match the reference values of the source article on average:

- 34 calls per rep per working day (インサイドセールス白書2025),
- 5.1 follow-ups (call + email activities) per lead touched,
- meeting rate 20 % (transitions into `meeting` ÷ leads), opportunity rate 50 %
  (opportunity ÷ meeting), win rate 25 % (won ÷ opportunity),
- email delivery 96 %, open 20 % of delivered, click 25 % of opened.

Choosing the number of reps (the two activity references conflict otherwise): a rep
making 34 calls a day cannot also keep 5.1 follow-ups per lead at the rule of thumb of one
rep per 60 leads a month (that would be ~11 calls per lead). The rep count therefore
follows from the calls: about 85 % of the leads are touched, each with 5.1 call/email
follow-ups on average, a quarter of them emails, so

    calls = 0.75 x 5.1 x 0.85 x N   and   reps = max(3, round(calls ÷ (34 x working days))).

Then the share of leads touched is re-derived from the (integer) rep count so that
calls = 34 x reps x working days holds exactly on average and activities ÷ touched leads
stays 5.1. When even the minimum of 3 reps would need more follow-ups than the leads can
take (tiny N), every lead is touched and calls per rep-day fall below 34 (a warning says so).
Reps work in teams of about 5.

Calendar: events happen only on working days (Monday to Friday, minus the tenant's public
holidays from the `holidays` package for `tenant.holiday_country`, minus its closures),
between 09:00 and 19:00 in the tenant's time zone. The window is the M months that end
today; only complete working days before today are filled, so nothing lies in the future
and the same arguments on the same date give identical data (pass `today` to pin it).

Rates: the meeting, opportunity and win rates and the email flags are drawn with small
feedback controllers instead of independent coin flips, so the realised rates stay within a
fraction of a percent of the reference on any size (leads are processed in a shuffled order
so truncation at the end of the window is compensated everywhere, not only late).

Lifecycle: lead → mql → sql → meeting → opportunity → won | lost, only along
`ALLOWED_TRANSITIONS`; some leads are recycled (戻し) from any open stage or after a loss and
re-enter at mql or sql weeks later, sometimes with a new owner. Every StageTransition carries
the owner (and team) at that time. Each transition into `opportunity` opens a Deal (JPY,
Decimal) whose stage history follows the tenant's DealStage rows; won/lost deals get
closed_at.

Speed: ids of leads and deals are allocated up front (one nextval query on PostgreSQL), rows
are built as tuples, and written with PostgreSQL COPY (other databases: bulk_create in
batches). No per-row query. When the schema owner's connection is a superuser (local set-up,
CI, benchmarks), rows are copied straight into the tables and the per-row foreign-key
triggers are replaced: the reps, teams and stages referenced are locked once (FOR KEY SHARE,
as the triggers would lock them) and every row's keys are checked in Python against those and
the ids allocated here as the rows stream out. Otherwise the app role copies into staging
tables and every row is checked by the policies and triggers.

Re-running replaces: every row the seeder created earlier for the tenant (leads with
source_system "demo-seed" and everything hanging off them) is deleted first, then the new
data is written, in one transaction. Demo rep users and teams are reused by name.
"""

from __future__ import annotations

import calendar
import math
import random
import time as time_module
import zoneinfo
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, TextIO

from django.contrib.auth import get_user_model
from django.db import IntegrityError, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import JSONField, Model
from django.db.models.functions import TruncDate
from django.utils import timezone
from psycopg.types.json import Jsonb

from pipeline.defaults import deal_stages_seed_defaults
from pipeline.lifecycle import ALLOWED_TRANSITIONS, Stage
from pipeline.models import (
    Activity,
    Deal,
    DealStage,
    DealStageChange,
    DirtyDay,
    Lead,
    StageTransition,
)
from tenants import members, services
from tenants.calendars import working_days
from tenants.context import tenant_context
from tenants.models import Membership, Team, Tenant
from tenants.scopes import Role

SOURCE_SYSTEM = "demo-seed"
ACTOR_LABEL = "seed_demo"

# Reference values (source article) the generated data matches on average.
CALLS_PER_REP_DAY = 34
FOLLOW_UPS_PER_LEAD = 5.1
MEETING_RATE = 0.20
OPPORTUNITY_RATE = 0.50
WIN_RATE = 0.25
EMAIL_DELIVERY_RATE = 0.96
EMAIL_OPEN_RATE = 0.20
EMAIL_CLICK_RATE = 0.25

EMAIL_SHARE = 0.25  # of call + email follow-ups
TOUCHED_SHARE = 0.85  # planned share of leads that get follow-ups
MIN_REPS = 3
TEAM_SIZE = 5

OPEN_HOUR = 9
DAY = 10 * 3600  # business seconds in a working day (09:00-19:00)
BATCH_SIZE = 5000

# --- Japanese B2B vocabulary -----------------------------------------------------------
_COMPANY_PREFIXES = (
    ("東京", "tokyo"), ("日本", "nihon"), ("大和", "yamato"), ("未来", "mirai"),
    ("関西", "kansai"), ("中央", "chuo"), ("北斗", "hokuto"), ("光", "hikari"),
    ("青葉", "aoba"), ("みらい", "mirai"), ("富士", "fuji"), ("さくら", "sakura"),
    ("アクシス", "axis"), ("ネクスト", "next"), ("グローバル", "global"), ("丸の内", "marunouchi"),
    ("横浜", "yokohama"), ("名古屋", "nagoya"), ("九州", "kyushu"), ("北海道", "hokkaido"),
    ("アオイ", "aoi"), ("ミナト", "minato"), ("新星", "shinsei"), ("共栄", "kyoei"),
)  # fmt: skip
_COMPANY_CORES = (
    ("テクノロジー", "tech"), ("システムズ", "systems"), ("商事", "shoji"), ("工業", "kogyo"),
    ("ソリューションズ", "solutions"), ("データ", "data"), ("ロジスティクス", "logistics"),
    ("製作所", "seisakusho"), ("不動産", "fudosan"), ("建設", "kensetsu"), ("物産", "bussan"),
    ("メディカル", "medical"), ("フーズ", "foods"), ("エンジニアリング", "engineering"),
    ("コンサルティング", "consulting"), ("ネットワークス", "networks"), ("電機", "denki"),
    ("化学", "kagaku"), ("ホールディングス", "hd"), ("ラボ", "lab"),
)  # fmt: skip
_SURNAMES = (
    ("佐藤", "sato"), ("鈴木", "suzuki"), ("高橋", "takahashi"), ("田中", "tanaka"),
    ("伊藤", "ito"), ("渡辺", "watanabe"), ("山本", "yamamoto"), ("中村", "nakamura"),
    ("小林", "kobayashi"), ("加藤", "kato"), ("吉田", "yoshida"), ("山田", "yamada"),
    ("佐々木", "sasaki"), ("山口", "yamaguchi"), ("松本", "matsumoto"), ("井上", "inoue"),
    ("木村", "kimura"), ("林", "hayashi"), ("斎藤", "saito"), ("清水", "shimizu"),
)  # fmt: skip
_GIVEN_NAMES = (
    ("健太", "kenta"), ("翔太", "shota"), ("大輔", "daisuke"), ("拓也", "takuya"),
    ("直樹", "naoki"), ("誠", "makoto"), ("浩", "hiroshi"), ("陽介", "yosuke"),
    ("美咲", "misaki"), ("陽子", "yoko"), ("恵", "megumi"), ("由美", "yumi"),
    ("さくら", "sakura"), ("愛", "ai"), ("真由美", "mayumi"), ("彩", "aya"),
)  # fmt: skip
_INDUSTRIES = (
    "製造業", "IT・通信", "金融・保険", "小売・流通", "不動産", "建設", "医療・福祉",
    "人材サービス", "広告・メディア", "物流", "コンサルティング", "教育",
)  # fmt: skip
_TITLES = (
    "代表取締役", "取締役", "営業部長", "営業部 課長", "マーケティング部 部長",
    "マーケティング部 主任", "情報システム部 部長", "情報システム部 担当",
    "経営企画室 室長", "総務部 課長", "人事部 担当", "事業開発部 マネージャー",
)  # fmt: skip
_PREFECTURES = ("東京都", "大阪府", "神奈川県", "愛知県", "福岡県", "北海道", "埼玉県", "京都府")
_SOURCES = ("web", "event", "referral", "outbound", "partner")
_SOURCE_WEIGHTS = (40, 20, 10, 20, 10)
# Employee-count bands (min, max) and their weights: most B2B leads are SMEs.
_EMPLOYEE_BANDS = ((5, 49), (50, 299), (300, 999), (1000, 4999), (5000, 30000))
_EMPLOYEE_WEIGHTS = (30, 35, 20, 10, 5)
_CALL_OUTCOMES = ("connected", "no_answer", "voicemail", "busy", "wrong_number", "other")
_CALL_OUTCOME_WEIGHTS = (22, 45, 18, 8, 3, 4)
_DEAL_PRODUCTS = ("導入案件", "年間契約", "追加ライセンス", "PoC", "全社展開")
# Follow-ups per touched lead: 1 + Poisson(4.1), capped at 16 (mean ≈ 5.1).
_FOLLOW_UP_VALUES = tuple(range(1, 17))
_FOLLOW_UP_CUM: tuple[float, ...] = tuple(
    sum(math.exp(-4.1) * 4.1**j / math.factorial(j) for j in range(k)) for k in range(1, 17)
)


@dataclass
class SeedResult:
    tenant: Tenant
    counts: dict[str, int]
    rates: dict[str, float | None]
    reps: int
    teams: int
    working_days: int
    start: date
    end: date
    replaced: dict[str, int]
    elapsed: float
    warnings: list[str] = field(default_factory=list)


class _Ratio:
    """Draws yes/no so that yes-count ≈ ratio x exposure, with randomness in which ones."""

    def __init__(self, rng: random.Random, ratio: float, base: float) -> None:
        self.rng, self.ratio, self.base = rng, ratio, base
        self.exposure = 0.0
        self.count = 0

    def decide(self) -> bool:
        deficit = self.ratio * self.exposure - self.count
        p = min(1.0, max(0.0, self.base + 0.25 * deficit))
        if self.rng.random() < p:
            self.count += 1
            return True
        return False


class _Quota:
    """Yes with probability p, with the running count held within ±1 of p x draws."""

    def __init__(self, rng: random.Random, p: float) -> None:
        self.random, self.p, self.acc = rng.random, p, 0.0

    def take(self) -> bool:
        self.acc += self.p
        if self.random() < self.acc:
            self.acc -= 1.0
            return True
        return False


class _Clock:
    """Business seconds (working-day index x DAY + seconds since 09:00) to real times."""

    def __init__(self, days: Sequence[date], zone: zoneinfo.ZoneInfo) -> None:
        self.days = list(days)
        self.bases = [datetime.combine(d, time(OPEN_HOUR), tzinfo=zone) for d in self.days]
        self.prefixes = [f"{d.isoformat()} " for d in self.days]
        self.offsets = [_format_offset(b.utcoffset()) for b in self.bases]

    def dt(self, t: int) -> datetime:
        d, s = divmod(t, DAY)
        return self.bases[d] + timedelta(seconds=s)

    def text(self, t: int) -> str:
        d, s = divmod(t, DAY)
        h, rest = divmod(s, 3600)
        m, sec = divmod(rest, 60)
        return f"{self.prefixes[d]}{OPEN_HOUR + h:02d}:{m:02d}:{sec:02d}{self.offsets[d]}"

    def date(self, t: int) -> date:
        return self.days[t // DAY]


def _format_offset(offset: timedelta | None) -> str:
    minutes = int((offset or timedelta()).total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{mins:02d}"


def months_back(day: date, months: int) -> date:
    """The same day of month `months` earlier (clamped to the month's last day)."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def plan_reps(*, leads: int, working_day_count: int) -> tuple[int, float, list[str]]:
    """(reps, share of leads touched, warnings) so that both activity references hold."""
    warnings: list[str] = []
    calls_wanted = (1 - EMAIL_SHARE) * FOLLOW_UP_VALUES_MEAN * TOUCHED_SHARE * leads
    reps = max(MIN_REPS, round(calls_wanted / (CALLS_PER_REP_DAY * working_day_count)))
    calls = CALLS_PER_REP_DAY * reps * working_day_count
    touched = calls / (1 - EMAIL_SHARE) / FOLLOW_UP_VALUES_MEAN
    share = touched / leads
    if share > 1:
        share = 1.0
        warnings.append(
            f"{leads} leads cannot take the calls of {reps} reps at {CALLS_PER_REP_DAY} a day "
            f"with {FOLLOW_UP_LABEL} follow-ups per lead; every lead is touched and calls per "
            "rep-day fall below the reference."
        )
    return reps, share, warnings


FOLLOW_UP_VALUES_MEAN = (
    sum(
        v * (c - p)
        for v, c, p in zip(
            _FOLLOW_UP_VALUES, _FOLLOW_UP_CUM, (0.0, *_FOLLOW_UP_CUM[:-1]), strict=True
        )
    )
    / _FOLLOW_UP_CUM[-1]
)
FOLLOW_UP_LABEL = f"{FOLLOW_UP_VALUES_MEAN:.2f}"


# --- writing ---------------------------------------------------------------------------


def seed_alias() -> str:
    """The database alias to seed through.

    The schema owner's connection when it is a PostgreSQL superuser (local set-up, CI,
    benchmarks): it may COPY straight into the tables and skip the per-row foreign-key
    triggers, whose ids the seeder allocated itself. Otherwise the app's own connection,
    with row-level security and every constraint checked as for any write.
    """
    if "owner" not in connections.databases or connections["owner"].vendor != "postgresql":
        return "default"
    with connections["owner"].cursor() as cursor:
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        row = cursor.fetchone()
    return "owner" if row and row[0] else "default"


class _Writer:
    """Bulk writes of tuples: COPY on PostgreSQL, bulk_create elsewhere. Never per row."""

    def __init__(self, clock: _Clock, now: datetime, using: str) -> None:
        self.clock = clock
        self.now = now
        self.using = using
        self.connection: BaseDatabaseWrapper = connections[using]
        self.pg = self.connection.vendor == "postgresql"
        # A superuser bypasses row-level security, so COPY may target the table itself.
        self.direct = self.pg and using != "default"
        self.now_text = now.isoformat()
        self.references: dict[type[Model], set[int]] = {}

    def skip_foreign_key_triggers(self, references: dict[type[Model], set[int]]) -> None:
        """Until the transaction ends, check foreign keys here instead of by the per-row
        triggers (direct mode only; elsewhere the database checks them as usual).

        `references` are the ids that rows may point at, per referenced model: rows of other
        tables are locked FOR KEY SHARE here, as each trigger would lock its row, so none can
        be deleted before commit; every row written is then checked against these sets as it
        streams out (`register` adds the ids the seeder allocates itself).
        """
        self.references = {model: set(ids) for model, ids in references.items()}
        if not self.direct:
            return
        with self.connection.cursor() as cursor:
            for model, ids in self.references.items():
                cursor.execute(
                    f'SELECT count(*) FROM (SELECT 1 FROM "{model._meta.db_table}" '
                    "WHERE id = ANY(%s) FOR KEY SHARE) locked",
                    [sorted(ids)],
                )
                if cursor.fetchone()[0] != len(ids):
                    raise IntegrityError(f"A referenced {model._meta.verbose_name} is gone.")
            cursor.execute("SET LOCAL session_replication_role = replica")

    def register(self, model: type[Model], ids: Iterable[int]) -> None:
        """Ids of rows written in this transaction, which later rows may point at."""
        self.references.setdefault(model, set()).update(ids)

    def restore_foreign_key_triggers(self) -> None:
        if self.direct:
            with self.connection.cursor() as cursor:
                cursor.execute("SET LOCAL session_replication_role = DEFAULT")

    def _reference_checks(self, model_fields: Sequence[Any]) -> list[tuple[int, set[int]]]:
        """(position, allowed ids) of every foreign key among the written fields."""
        checks = []
        for i, f in enumerate(model_fields):
            if f.is_relation and getattr(f, "db_constraint", False):
                allowed = self.references.get(f.related_model)
                if allowed is None:
                    raise ValueError(f"No known ids for {f.related_model.__name__} ({f.name}).")
                checks.append((i, allowed))
        return checks

    def allocate_ids(self, model: type[Model], count: int) -> list[int]:
        if count == 0:
            return []
        table = model._meta.db_table
        with self.connection.cursor() as cursor:
            if self.pg:
                cursor.execute(
                    "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                    [table, count],
                )
                return sorted(row[0] for row in cursor.fetchall())
            # NOTE: SQLite (tests, local demo) is single-writer; max + 1 is safe there.
            cursor.execute(f'SELECT COALESCE(MAX(id), 0) FROM "{table}"')
            first = cursor.fetchone()[0] + 1
        return list(range(first, first + count))

    def write(
        self,
        model: type[Model],
        fields: Sequence[str],
        rows: Iterable[tuple[Any, ...]],
        *,
        times: Iterable[str] = (),
        stamps: Iterable[str] = (),
    ) -> int:
        """Insert rows (tuples in `fields` order); `times` hold business seconds, `stamps`
        are filled with the current time (auto_now fields, which COPY does not fill)."""
        time_fields, stamp_fields = set(times), list(stamps)
        if self.pg:
            return self._copy(model, fields, rows, time_fields, stamp_fields)
        return self._bulk_create(model, fields, rows, time_fields)

    def _copy(
        self,
        model: type[Model],
        fields: Sequence[str],
        rows: Iterable[tuple[Any, ...]],
        time_fields: set[str],
        stamp_fields: list[str],
    ) -> int:
        times = [i for i, name in enumerate(fields) if name in time_fields]
        model_fields = [model._meta.get_field(_field_name(name)) for name in fields]
        json_fields = [i for i, f in enumerate(model_fields) if isinstance(f, JSONField)]
        columns = [f.column for f in model_fields]  # type: ignore[union-attr]
        columns += [model._meta.get_field(name).column for name in stamp_fields]
        stamps = tuple(self.now_text for _ in stamp_fields)
        text = self.clock.text
        # TRICKY: PostgreSQL refuses COPY FROM into a table with row-level security for a
        # role subject to it, so the app role copies into a temporary staging table (same
        # column types, no policies) and moves the rows with one INSERT ... SELECT, which
        # the policies check as usual. A superuser owner copies into the table directly.
        table = model._meta.db_table
        target = table if self.direct else f"seed_staging_{table}"
        column_list = ", ".join(f'"{c}"' for c in columns)
        count = 0
        with self.connection.cursor() as cursor:
            if not self.direct:
                cursor.execute(f'DROP TABLE IF EXISTS "{target}"')
                cursor.execute(
                    f'CREATE TEMPORARY TABLE "{target}" ON COMMIT DROP AS '
                    f'SELECT {column_list} FROM "{table}" WITH NO DATA'
                )
            # NOTE: psycopg formats each row in C (escaping included); only business seconds
            # become text here, and JSON objects are wrapped for it.
            checks = self._reference_checks(model_fields) if self.direct else []
            dangling = None
            with cursor.cursor.copy(f'COPY "{target}" ({column_list}) FROM STDIN') as copy:
                write = copy.write_row
                for row in rows:
                    values = list(row)
                    for i, allowed in checks:
                        if values[i] is not None and values[i] not in allowed:
                            dangling = f"{model.__name__}.{model_fields[i].name} = {values[i]}"
                    if dangling:
                        # NOTE: end the COPY cleanly and raise after it, so the transaction
                        # rolls back as for any error instead of being left aborted.
                        break
                    for i in times:
                        if values[i] is not None:
                            values[i] = text(values[i])
                    for i in json_fields:
                        values[i] = Jsonb(values[i])
                    write((*values, *stamps))
                    count += 1
            if dangling:
                raise IntegrityError(f"seed_demo generated a dangling reference: {dangling}.")
            if not self.direct:
                cursor.execute(
                    f'INSERT INTO "{table}" ({column_list}) SELECT {column_list} FROM "{target}"'
                )
                cursor.execute(f'DROP TABLE "{target}"')
        return count

    def _bulk_create(
        self,
        model: type[Model],
        fields: Sequence[str],
        rows: Iterable[tuple[Any, ...]],
        time_fields: set[str],
    ) -> int:
        dt = self.clock.dt
        flags = [name in time_fields for name in fields]
        batch: list[Model] = []
        count = 0
        for row in rows:
            values = {
                name: (dt(v) if is_time and v is not None else v)
                for name, v, is_time in zip(fields, row, flags, strict=True)
            }
            batch.append(model(**values))
            count += 1
            if len(batch) >= BATCH_SIZE:
                model.objects.using(self.using).bulk_create(batch, batch_size=BATCH_SIZE)
                batch = []
        if batch:
            model.objects.using(self.using).bulk_create(batch, batch_size=BATCH_SIZE)
        return count


def _field_name(attname: str) -> str:
    return attname[:-3] if attname.endswith("_id") and attname != "external_id" else attname


# --- the generator ---------------------------------------------------------------------


@dataclass
class _Rep:
    membership_id: int
    team_id: int | None


class _Generator:
    """Builds all rows in memory (tuples), deterministically from the seed."""

    def __init__(
        self,
        *,
        rng: random.Random,
        leads: int,
        reps: list[_Rep],
        touched_share: float,
        end: int,
        stages: list[DealStage],
        currency: str,
    ) -> None:
        self.rng = rng
        self.n = leads
        self.reps = reps
        self.touched_share = touched_share
        self.end = end
        self.currency = currency
        self.open_stages = [s for s in stages if not s.is_closed]
        self.won_stage = next(s for s in stages if s.is_won)
        self.lost_stage = next(s for s in stages if s.is_lost)
        self.meetings = _Ratio(rng, MEETING_RATE, 0.5)
        self.opportunities = _Ratio(rng, OPPORTUNITY_RATE, OPPORTUNITY_RATE)
        self.wins = _Ratio(rng, WIN_RATE, WIN_RATE)
        # Outputs.
        self.lead_created: list[int] = []
        self.lead_owner: list[int] = []
        self.lead_touched: list[bool] = []
        self.lead_stage: list[str] = []
        self.first_owner: list[int] = []
        self.transitions: list[tuple[int, str, str, int, int]] = []  # lead, from, to, t, rep
        self.deals: list[list[Any]] = []  # lead, rep, t_open, amount, name, closed_t, stages
        self.meeting_activities: list[tuple[int, int, int]] = []  # lead, rep, t

    def gap(self, low_days: float, high_days: float) -> int:
        return max(60, int(self.rng.uniform(low_days, high_days) * DAY))

    def build_leads(self) -> None:
        rng = self.rng
        latest = max(1, self.end - 1800)
        created = sorted(rng.randrange(latest) for _ in range(self.n))
        touched = _Quota(rng, self.touched_share)
        rep_count = len(self.reps)
        self.lead_created = created
        self.lead_owner = [rng.randrange(rep_count) for _ in range(self.n)]
        self.lead_touched = [touched.take() for _ in range(self.n)]
        self.lead_stage = [Stage.LEAD] * self.n
        self.first_owner = list(self.lead_owner)

    def build_journeys(self) -> None:
        order = list(range(self.n))
        self.rng.shuffle(order)
        for index in order:
            self.meetings.exposure += 1
            self._journey(index)
        self.transitions.sort(key=lambda row: (row[0], row[3]))

    def _journey(self, i: int) -> None:
        rng, end = self.rng, self.end
        t = self.lead_created[i]
        stage: str = Stage.LEAD
        owner = self.lead_owner[i]
        touched = self.lead_touched[i]
        cycles = 0
        deal: list[Any] | None = None

        def move(to: str, at: int) -> bool:
            nonlocal stage, t
            if at >= end:
                return False
            assert to in ALLOWED_TRANSITIONS[stage], (stage, to)
            self.transitions.append((i, stage, to, at, owner))
            stage, t = to, at
            return True

        while True:
            if stage == Stage.LEAD:
                if rng.random() < (0.75 if touched else 0.3):
                    if not move(Stage.MQL, t + self.gap(0.02, 2)):
                        break
                elif rng.random() < 0.3:
                    if not move(Stage.RECYCLED, t + self.gap(3, 15)):
                        break
                else:
                    break
            elif stage == Stage.MQL:
                if touched and rng.random() < 0.65:
                    if not move(Stage.SQL, t + self.gap(0.1, 3)):
                        break
                elif rng.random() < 0.35:
                    if not move(Stage.RECYCLED, t + self.gap(5, 20)):
                        break
                else:
                    break
            elif stage == Stage.SQL:
                at = t + self.gap(0.2, 6)
                if at < end and self.meetings.decide():
                    move(Stage.MEETING, at)
                    self.opportunities.exposure += 1
                    meet_at = t + self.gap(1, 8)
                    if meet_at < end:
                        self.meeting_activities.append((i, owner, meet_at))
                elif rng.random() < 0.4:
                    if not move(Stage.RECYCLED, t + self.gap(5, 25)):
                        break
                else:
                    break
            elif stage == Stage.MEETING:
                at = t + self.gap(2, 12)
                if at < end and self.opportunities.decide():
                    move(Stage.OPPORTUNITY, at)
                    self.wins.exposure += 1
                    deal = [i, owner, at, self._amount(), self._deal_name(i), None, None]
                    self.deals.append(deal)
                elif rng.random() < 0.5:
                    if not move(Stage.RECYCLED, t + self.gap(3, 20)):
                        break
                else:
                    break
            elif stage == Stage.OPPORTUNITY:
                at = t + self.gap(5, 40)
                if at >= end:
                    break  # still open
                assert deal is not None
                if self.wins.decide():
                    move(Stage.WON, at)
                    deal[5], deal[6] = at, self.won_stage
                    break
                if rng.random() < 0.7:
                    move(Stage.LOST, at)
                    deal[5], deal[6] = at, self.lost_stage
                elif rng.random() < 0.5:
                    move(Stage.RECYCLED, at)
                    deal[5], deal[6] = at, self.lost_stage
                else:
                    break  # still open
            elif stage == Stage.LOST:
                if rng.random() < 0.3:
                    if not move(Stage.RECYCLED, t + self.gap(10, 40)):
                        break
                else:
                    break
            elif stage == Stage.RECYCLED:
                if cycles < 2 and rng.random() < 0.35:
                    cycles += 1
                    at = t + self.gap(15, 45)
                    if at >= end:
                        break
                    if rng.random() < 0.3:
                        owner = rng.randrange(len(self.reps))
                    move(Stage.SQL if rng.random() < 0.4 else Stage.MQL, at)
                else:
                    break
            else:  # won
                break
        self.lead_stage[i] = stage
        self.lead_owner[i] = owner

    def _amount(self) -> Decimal:
        yen = self.rng.lognormvariate(math.log(1_500_000), 0.8)
        return Decimal(max(100_000, round(yen / 10_000) * 10_000))

    def _deal_name(self, i: int) -> str:
        return self.rng.choice(_DEAL_PRODUCTS)

    def deal_stage_changes(self) -> list[tuple[int, int, int]]:
        """(deal index, stage id, t) rows; also fills each deal's current stage."""
        rng, opens = self.rng, self.open_stages
        rows: list[tuple[int, int, int]] = []
        for index, deal in enumerate(self.deals):
            opened, closed, final = deal[2], deal[5], deal[6]
            horizon = closed if closed is not None else self.end
            if final is self.won_stage:
                middle = sorted(rng.sample(range(1, len(opens)), rng.randint(1, len(opens) - 1)))
            else:
                top = rng.randint(0, min(3, len(opens) - 1))
                middle = list(range(1, top + 1))
            span = horizon - opened
            points = sorted(rng.sample(range(1, span), min(len(middle), max(0, span - 1))))
            rows.append((index, opens[0].pk, opened))
            current = opens[0]
            for stage_index, at in zip(middle, points, strict=False):
                rows.append((index, opens[stage_index].pk, opened + at))
                current = opens[stage_index]
            if final is not None:
                rows.append((index, final.pk, closed))
                current = final
            deal.append(current)
        return rows

    def activities(self, lead_ids: list[int], rep_ids: list[int]) -> Iterable[tuple[Any, ...]]:
        """Call/email follow-ups of touched leads, then meeting activities; as tuples."""
        rng = self.rng
        rand, end = rng.random, self.end
        choices = rng.choices
        emails = _Quota(rng, EMAIL_SHARE)
        delivered = _Quota(rng, EMAIL_DELIVERY_RATE)
        opened = _Quota(rng, EMAIL_OPEN_RATE)
        clicked = _Quota(rng, EMAIL_CLICK_RATE)
        window = 25 * DAY
        for i in range(self.n):
            if not self.lead_touched[i]:
                continue
            created = self.lead_created[i]
            lead_id = lead_ids[i]
            rep_id = rep_ids[self.first_owner[i]]
            k = choices(_FOLLOW_UP_VALUES, cum_weights=_FOLLOW_UP_CUM)[0]
            span = min(window, end - created) - 61
            for _ in range(k):
                at = created + 60 + int(rand() ** 1.6 * span)
                if emails.take():
                    is_delivered = delivered.take()
                    is_opened = is_delivered and opened.take()
                    is_clicked = is_opened and clicked.take()
                    yield (
                        lead_id,
                        rep_id,
                        "email",
                        at,
                        "",
                        is_delivered,
                        is_opened,
                        is_clicked,
                        None,
                    )
                else:
                    outcome = choices(_CALL_OUTCOMES, cum_weights=_CALL_OUTCOME_CUM)[0]
                    if outcome == "connected":
                        duration = 60 + int(rand() * 840)
                    else:
                        duration = 5 + int(rand() * 40)
                    yield (lead_id, rep_id, "call", at, outcome, False, False, False, duration)
        for i, rep, at in self.meeting_activities:
            yield (lead_ids[i], rep_ids[rep], "meeting", at, "", False, False, False, 3600)


_CALL_OUTCOME_CUM = tuple(
    sum(_CALL_OUTCOME_WEIGHTS[: k + 1]) for k in range(len(_CALL_OUTCOME_WEIGHTS))
)


def _lead_rows(
    gen: _Generator, rng: random.Random, tenant_id: int, lead_ids: list[int], reps: list[_Rep]
) -> Iterable[tuple[Any, ...]]:
    choice, randint, random_ = rng.choice, rng.randint, rng.random
    sources = rng.choices(_SOURCES, weights=_SOURCE_WEIGHTS, k=gen.n)
    bands = rng.choices(_EMPLOYEE_BANDS, weights=_EMPLOYEE_WEIGHTS, k=gen.n)
    for i in range(gen.n):
        prefix, prefix_roman = choice(_COMPANY_PREFIXES)
        core, core_roman = choice(_COMPANY_CORES)
        company = f"株式会社{prefix}{core}" if random_() < 0.7 else f"{prefix}{core}株式会社"
        surname, surname_roman = choice(_SURNAMES)
        given, given_roman = choice(_GIVEN_NAMES)
        low, high = bands[i]
        rep = reps[gen.lead_owner[i]]
        yield (
            lead_ids[i],
            tenant_id,
            SOURCE_SYSTEM,
            f"demo-L{i + 1:07d}",
            company,
            f"{surname} {given}",
            f"{given_roman}.{surname_roman}@{prefix_roman}-{core_roman}.example.jp",
            choice(_INDUSTRIES),
            randint(low, high),
            choice(_TITLES),
            {"prefecture": choice(_PREFECTURES)},
            sources[i],
            rep.membership_id,
            reps[gen.first_owner[i]].membership_id,
            rep.team_id,
            gen.lead_stage[i],
            randint(0, 100),
            gen.lead_created[i],
        )


_LEAD_FIELDS = (
    "id", "tenant_id", "source_system", "external_id", "company", "contact_name", "email",
    "industry", "employee_count", "title", "attributes", "source", "owner_id",
    "created_owner_id", "team_id", "stage", "score", "created_at",
)  # fmt: skip
_TRANSITION_FIELDS = (
    "tenant_id", "lead_id", "from_stage", "to_stage", "at", "actor_id", "actor_label",
    "reason", "owner_id", "team_id",
)  # fmt: skip
_DEAL_FIELDS = (
    "id", "tenant_id", "source_system", "external_id", "lead_id", "name", "amount",
    "currency", "stage_id", "owner_id", "sourced_by_is", "created_at", "closed_at",
)  # fmt: skip
_DEAL_CHANGE_FIELDS = ("tenant_id", "deal_id", "stage_id", "at")
_ACTIVITY_FIELDS = (
    "tenant_id", "source_system", "external_id", "lead_id", "rep_id", "type", "occurred_at",
    "call_outcome", "email_delivered", "email_opened", "email_clicked", "duration_seconds",
)  # fmt: skip


def _ensure_reps(tenant: Tenant, count: int) -> list[_Rep]:
    """Demo rep users (reused by username) with rep memberships in teams of about 5."""
    team_count = max(1, round(count / TEAM_SIZE))
    team_names = [f"IS第{k + 1}チーム" for k in range(team_count)]
    with tenant_context(tenant):
        teams = {t.name: t for t in Team.objects.filter(name__in=team_names)}
    for name in team_names:
        if name not in teams:
            teams[name] = members.team_create(tenant=tenant, name=name)
    user_model = get_user_model()
    usernames = [f"{tenant.slug}-rep-{n + 1:03d}" for n in range(count)]
    users = {u.get_username(): u for u in user_model.objects.filter(username__in=usernames)}
    missing = []
    for n, username in enumerate(usernames):
        if username not in users:
            surname, _ = _SURNAMES[n % len(_SURNAMES)]
            given, _ = _GIVEN_NAMES[(n * 7) % len(_GIVEN_NAMES)]
            user = user_model(
                username=username,
                email=f"{username}@example.com",
                first_name=given,
                last_name=surname,
            )
            user.set_unusable_password()  # demo reps do not log in; hashing would be slow
            missing.append(user)
    if missing:
        user_model.objects.bulk_create(missing, batch_size=BATCH_SIZE)
        users = {u.get_username(): u for u in user_model.objects.filter(username__in=usernames)}
    reps = []
    for n, username in enumerate(usernames):
        team = teams[team_names[n % team_count]]
        membership = members.membership_add(
            tenant=tenant, user=users[username], role=Role.REP, team=team
        )
        reps.append(_Rep(membership_id=membership.pk, team_id=team.pk))
    with tenant_context(tenant):
        memberships = list(Membership.objects.filter(pk__in=[r.membership_id for r in reps]))
        for membership in memberships:
            user = users[next(u for u in usernames if users[u].pk == membership.user_id)]
            membership.display_name = f"{user.last_name} {user.first_name}"
        Membership.objects.bulk_update(memberships, ["display_name"], batch_size=BATCH_SIZE)
    return reps


def _delete_previous(
    tenant: Tenant, zone: zoneinfo.ZoneInfo, using: str
) -> tuple[dict[str, int], set[date]]:
    """Delete what an earlier run seeded for the tenant; returns counts and affected days."""
    demo_leads = Lead.objects.using(using).filter(source_system=SOURCE_SYSTEM)
    days: set[date] = set()
    for queryset, field_name in (
        (demo_leads, "created_at"),
        (Activity.objects.using(using).filter(lead__source_system=SOURCE_SYSTEM), "occurred_at"),
        (StageTransition.objects.using(using).filter(lead__source_system=SOURCE_SYSTEM), "at"),
    ):
        # NOTE: order_by() drops the model's default ordering, which DISTINCT would otherwise
        # include (one row per stored time, not per day).
        days.update(
            queryset.annotate(day=TruncDate(field_name, tzinfo=zone))
            .order_by()
            .values_list("day", flat=True)
            .distinct()
        )
    lead = Lead._meta.db_table
    deal = Deal._meta.db_table
    lead_ids = f'SELECT id FROM "{lead}" WHERE tenant_id = %s AND source_system = %s'
    args = [tenant.pk, tenant.pk, SOURCE_SYSTEM]
    statements = (
        (
            "deal stage changes",
            f'DELETE FROM "{DealStageChange._meta.db_table}" WHERE tenant_id = %s AND deal_id IN '
            f'(SELECT id FROM "{deal}" WHERE tenant_id = %s AND lead_id IN ({lead_ids}))',
            [tenant.pk, *args],
        ),
        ("deals", f'DELETE FROM "{deal}" WHERE tenant_id = %s AND lead_id IN ({lead_ids})', args),
        (
            "activities",
            f'DELETE FROM "{Activity._meta.db_table}" WHERE tenant_id = %s '
            f"AND lead_id IN ({lead_ids})",
            args,
        ),
        (
            "transitions",
            f'DELETE FROM "{StageTransition._meta.db_table}" WHERE tenant_id = %s '
            f"AND lead_id IN ({lead_ids})",
            args,
        ),
        ("leads", f'DELETE FROM "{lead}" WHERE tenant_id = %s AND source_system = %s', args[1:]),
    )
    counts = {}
    with connections[using].cursor() as cursor:
        for label, sql, params in statements:
            cursor.execute(sql, params)
            counts[label] = cursor.rowcount
    return counts, days


def seed_demo(
    *,
    tenant_slug: str,
    leads: int,
    months: int,
    seed: int,
    today: date | None = None,
    tenant_name: str | None = None,
    log: TextIO | None = None,
) -> SeedResult:
    """Replace the tenant's demo data with `leads` leads over `months` months (see module)."""
    if leads < 1 or months < 1:
        raise ValueError("seed_demo needs at least one lead and one month.")
    started = time_module.monotonic()

    def say(message: str) -> None:
        if log is not None:
            log.write(f"[{time_module.monotonic() - started:6.1f}s] {message}\n")
            log.flush()

    tenant = Tenant.objects.filter(slug=tenant_slug).first() or services.tenant_create(
        slug=tenant_slug, name=tenant_name or f"{tenant_slug} 株式会社 (demo)"
    )
    zone = zoneinfo.ZoneInfo(tenant.timezone)
    today = today or timezone.now().astimezone(zone).date()
    start = months_back(today, months)
    with tenant_context(tenant):
        days = working_days(tenant, start, today)
    if not days:
        raise ValueError(f"No working day between {start} and {today}.")
    rep_count, touched_share, warnings = plan_reps(leads=leads, working_day_count=len(days))
    reps = _ensure_reps(tenant, rep_count)
    say(f"{rep_count} reps in {max(1, round(rep_count / TEAM_SIZE))} teams, {len(days)} days")

    rng = random.Random(seed)
    clock = _Clock(days, zone)
    with tenant_context(tenant):
        deal_stages_seed_defaults(tenant)  # tenants created before the pipeline app had none
    using = seed_alias()
    writer = _Writer(clock, timezone.now(), using)
    counts: Counter[str] = Counter()
    with tenant_context(tenant, using=using):
        replaced, dirty = _delete_previous(tenant, zone, using)
        if any(replaced.values()):
            say(
                "deleted the previous demo data: "
                + ", ".join(f"{v} {k}" for k, v in replaced.items())
            )
        stages = list(DealStage.objects.using(using).order_by("order"))
        writer.skip_foreign_key_triggers(
            {
                Tenant: {tenant.pk},
                Membership: {r.membership_id for r in reps},
                Team: {r.team_id for r in reps},
                DealStage: {stage.pk for stage in stages},
            }
        )
        gen = _Generator(
            rng=rng,
            leads=leads,
            reps=reps,
            touched_share=touched_share,
            end=len(days) * DAY,
            stages=stages,
            currency=tenant.currency,
        )
        gen.build_leads()
        gen.build_journeys()
        say(f"planned {leads} leads, {len(gen.transitions)} transitions, {len(gen.deals)} deals")

        lead_ids = writer.allocate_ids(Lead, leads)
        writer.register(Lead, lead_ids)
        counts["leads"] = writer.write(
            Lead,
            _LEAD_FIELDS,
            _lead_rows(gen, rng, tenant.pk, lead_ids, reps),
            times=["created_at"],
            stamps=["received_at", "updated_at"],
        )
        say(f"wrote {counts['leads']} leads")
        counts["transitions"] = writer.write(
            StageTransition,
            _TRANSITION_FIELDS,
            (
                (
                    tenant.pk,
                    lead_ids[i],
                    from_stage,
                    to_stage,
                    at,
                    None,  # actor: the seeder itself (actor_label); saves a foreign-key check a row
                    ACTOR_LABEL,
                    "ナーチャリングへ戻し" if to_stage == Stage.RECYCLED else "",
                    reps[rep].membership_id,
                    reps[rep].team_id,
                )
                for i, from_stage, to_stage, at, rep in gen.transitions
            ),
            times=["at"],
            stamps=["created"],
        )
        say(f"wrote {counts['transitions']} stage transitions")
        changes = gen.deal_stage_changes()
        deal_ids = writer.allocate_ids(Deal, len(gen.deals))
        writer.register(Deal, deal_ids)
        counts["deals"] = writer.write(
            Deal,
            _DEAL_FIELDS,
            (
                (
                    deal_ids[n],
                    tenant.pk,
                    SOURCE_SYSTEM,
                    f"demo-D{n + 1:07d}",
                    lead_ids[d[0]],
                    d[4],
                    d[3],
                    tenant.currency,
                    d[7].pk,
                    reps[d[1]].membership_id,
                    True,
                    d[2],
                    d[5],
                )
                for n, d in enumerate(gen.deals)
            ),
            times=["created_at", "closed_at"],
            stamps=["received_at"],
        )
        counts["deal_stage_changes"] = writer.write(
            DealStageChange,
            _DEAL_CHANGE_FIELDS,
            ((tenant.pk, deal_ids[n], stage_id, at) for n, stage_id, at in changes),
            times=["at"],
        )
        say(f"wrote {counts['deals']} deals, {counts['deal_stage_changes']} deal stage changes")
        rep_ids = [r.membership_id for r in reps]
        stats: Counter[str] = Counter()
        activity_days: set[int] = set()

        def activity_rows() -> Iterable[tuple[Any, ...]]:
            add_day = activity_days.add
            for row in gen.activities(lead_ids, rep_ids):
                stats[row[2]] += 1
                if row[5]:
                    stats["delivered"] += 1
                    if row[6]:
                        stats["opened"] += 1
                        if row[7]:
                            stats["clicked"] += 1
                add_day(row[3] // DAY)
                yield (tenant.pk, SOURCE_SYSTEM, None, *row)

        counts["activities"] = writer.write(
            Activity,
            _ACTIVITY_FIELDS,
            activity_rows(),
            times=["occurred_at"],
            stamps=["received_at"],
        )
        say(f"wrote {counts['activities']} activities")
        for kind in ("call", "email", "meeting"):
            counts[f"activities.{kind}"] = stats[kind]

        day_indexes = activity_days | {t // DAY for t in gen.lead_created}
        day_indexes |= {row[3] // DAY for row in gen.transitions}
        day_indexes |= {at // DAY for _, _, at in changes}
        dirty |= {days[d] for d in day_indexes}
        writer.restore_foreign_key_triggers()
        DirtyDay.objects.using(using).bulk_create(
            [DirtyDay(tenant=tenant, day=day) for day in sorted(dirty)],
            ignore_conflicts=True,
            batch_size=BATCH_SIZE,
        )
        counts["dirty_days"] = len(dirty)
        say(f"marked {len(dirty)} dirty days; committing")

    to_counts = Counter(row[2] for row in gen.transitions)
    for stage in Stage.values:
        counts[f"transitions.{stage}"] = to_counts[stage]
    counts["deals.won"] = sum(1 for d in gen.deals if d[6] is gen.won_stage)
    counts["deals.lost"] = sum(1 for d in gen.deals if d[6] is gen.lost_stage)
    counts["deals.open"] = counts["deals"] - counts["deals.won"] - counts["deals.lost"]
    touched = sum(gen.lead_touched)
    follow_ups = stats["call"] + stats["email"]
    rates = {
        "calls_per_rep_day": _ratio(stats["call"], rep_count * len(days)),
        "follow_ups_per_lead": _ratio(follow_ups, touched),
        "meeting_rate": _ratio(to_counts[Stage.MEETING], leads),
        "opportunity_rate": _ratio(to_counts[Stage.OPPORTUNITY], to_counts[Stage.MEETING]),
        "win_rate": _ratio(to_counts[Stage.WON], to_counts[Stage.OPPORTUNITY]),
        "email_delivery_rate": _ratio(stats["delivered"], stats["email"]),
        "email_open_rate": _ratio(stats["opened"], stats["delivered"]),
        "email_click_rate": _ratio(stats["clicked"], stats["opened"]),
    }
    return SeedResult(
        tenant=tenant,
        counts=dict(counts),
        rates=rates,
        reps=rep_count,
        teams=max(1, round(rep_count / TEAM_SIZE)),
        working_days=len(days),
        start=days[0],
        end=days[-1],
        replaced=replaced,
        elapsed=time_module.monotonic() - started,
        warnings=warnings,
    )


def _ratio(numerator: float, denominator: float) -> float | None:
    return None if not denominator else numerator / denominator
