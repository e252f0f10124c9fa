"""KPI snapshots, tenant-defined KPIs, targets and KGI → KSF → KPI trees."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import models
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _

from kpis.catalogue import Category, Direction, Layer, Unit
from kpis.periods import Grain
from kpis.scopes import ScopeType
from tenants.models import Membership, Tenant, TenantOwnedModel


def _count(verbose_name: Any) -> models.BigIntegerField:
    return models.BigIntegerField(verbose_name, default=0)


def _money(verbose_name: Any) -> models.DecimalField:
    return models.DecimalField(verbose_name, max_digits=24, decimal_places=6, default=0)


class KpiSnapshot(TenantOwnedModel):
    """Every stored measure of one (grain, period, scope), precomputed from raw rows.

    A KPI's numerator and denominator are columns of this row, so each KPI of the catalogue
    (and every tenant-defined KPI built from the same measures) is one division on read.
    Day rows are computed from raw rows; coarser rows sum their days, except the distinct
    counts, computed per period from raw rows. `weighted_pipeline_change` holds the change of
    the weighted pipeline during the period (a stock): its level at a period's end is the sum
    of the changes of all days before that end.
    """

    grain = models.CharField(max_length=8, choices=Grain.choices, verbose_name=_("grain"))
    period_start = models.DateField(verbose_name=_("period start"))
    period_end = models.DateField(verbose_name=_("period end"))
    scope_type = models.CharField(
        max_length=8, choices=ScopeType.choices, verbose_name=_("scope type")
    )
    scope_key = models.CharField(max_length=50, blank=True, verbose_name=_("scope"))
    computed_at = models.DateTimeField(default=now, verbose_name=_("computed at"))

    calls = _count(_("calls"))
    connects = _count(_("connects"))
    outreach = _count(_("outreach"))
    emails_sent = _count(_("e-mails sent"))
    emails_delivered = _count(_("e-mails delivered"))
    emails_opened = _count(_("e-mails opened"))
    emails_clicked = _count(_("e-mails clicked"))
    leads_touched = _count(_("leads touched"))
    active_reps = _count(_("active reps"))
    leads_created = _count(_("leads created"))
    mqls = _count(_("MQLs"))
    sqls = _count(_("SQLs"))
    meetings = _count(_("meetings"))
    opportunities = _count(_("opportunities"))
    wins = _count(_("wins"))
    losses = _count(_("losses"))
    recycles = _count(_("recycles"))
    deals_created = _count(_("deals created"))
    pipeline_created = _money(_("pipeline created"))
    won_deals = _count(_("won deals"))
    revenue = _money(_("revenue"))
    weighted_pipeline_change = _money(_("weighted pipeline change"))

    class Meta:
        verbose_name = _("KPI snapshot")
        verbose_name_plural = _("KPI snapshots")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "grain", "scope_type", "scope_key", "period_start"],
                name="kpisnapshot_unique",
            )
        ]
        indexes = [
            models.Index(
                fields=["tenant", "grain", "period_start"], name="kpisnapshot_tenant_period"
            )
        ]

    def __str__(self) -> str:
        return f"{self.grain} {self.period_start} {self.scope_type}:{self.scope_key}"


class KpiMeasureValue(TenantOwnedModel):
    """A registered (another app's) measure for one (grain, period, scope); see kpis.measures.

    Built-in measures are columns of KpiSnapshot; a registered one gets a row here instead,
    so an app adds a measure without a migration of kpis. A read fetches the rows of the
    registered measures its KPIs need in one more indexed query. Only non-zero values are
    stored; a missing row reads as zero.
    """

    grain = models.CharField(max_length=8, choices=Grain.choices, verbose_name=_("grain"))
    period_start = models.DateField(verbose_name=_("period start"))
    scope_type = models.CharField(
        max_length=8, choices=ScopeType.choices, verbose_name=_("scope type")
    )
    scope_key = models.CharField(max_length=50, blank=True, verbose_name=_("scope"))
    measure = models.CharField(max_length=40, verbose_name=_("measure"))
    value = models.DecimalField(max_digits=24, decimal_places=6, verbose_name=_("value"))
    computed_at = models.DateTimeField(default=now, verbose_name=_("computed at"))

    class Meta:
        verbose_name = _("KPI measure value")
        verbose_name_plural = _("KPI measure values")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "grain", "period_start", "scope_type", "scope_key", "measure"],
                name="kpimeasurevalue_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.measure} {self.grain} {self.period_start} {self.scope_type}:{self.scope_key}"


class KpiMeasureBuild(TenantOwnedModel):
    """A registered measure whose KpiMeasureValue rows the tenant has complete.

    TRICKY: a refresh moves a period by the change of its dirty days, which is right only
    when the period held every other day already; a measure registered on a tenant with
    data (a deploy adding it) is built whole by its first refresh, then marked here.
    """

    measure = models.CharField(max_length=40, verbose_name=_("measure"))
    built_at = models.DateTimeField(default=now, verbose_name=_("built at"))

    class Meta:
        verbose_name = _("KPI measure build")
        verbose_name_plural = _("KPI measure builds")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "measure"], name="kpimeasurebuild_unique")
        ]

    def __str__(self) -> str:
        return self.measure


class KpiDataGeneration(TenantOwnedModel):
    """A token every snapshot refresh and rebuild of the tenant draws anew in its transaction.

    Raw writes mark days dirty and only a refresh or rebuild clears the marks, in the
    transaction that draws this: the token, while no mark is left, names one state of the
    tenant's counted data (kpis.data_generations), which caches of derived results key on. Random,
    not a counter: a database restored from a backup, or a test database rolled back, never
    meets a token it had before, so a cache never serves a result of other data.
    """

    token = models.UUIDField(default=uuid.uuid4, verbose_name=_("generation"))

    class Meta:
        verbose_name = _("KPI data generation")
        verbose_name_plural = _("KPI data generations")
        constraints = [
            models.UniqueConstraint(fields=["tenant"], name="kpidatageneration_unique_tenant")
        ]

    def __str__(self) -> str:
        return str(self.token)


class KpiCustomDefinition(TenantOwnedModel):
    """A tenant-defined KPI built from the catalogue's measures."""

    key = models.SlugField(max_length=50, verbose_name=_("key"))
    name_ja = models.CharField(max_length=100, verbose_name=_("name (Japanese)"))
    name_en = models.CharField(max_length=100, blank=True, verbose_name=_("name (English)"))
    category = models.CharField(
        max_length=12, choices=[(c, c) for c in Category], verbose_name=_("category")
    )
    layer = models.CharField(max_length=8, choices=[(v, v) for v in Layer], verbose_name=_("layer"))
    numerator = models.CharField(max_length=40, verbose_name=_("numerator"))
    denominator = models.CharField(max_length=40, blank=True, verbose_name=_("denominator"))
    unit = models.CharField(
        max_length=8, choices=[(u, u) for u in Unit], default=Unit.COUNT, verbose_name=_("unit")
    )
    direction = models.CharField(
        max_length=20,
        choices=[(d, d) for d in Direction],
        default=Direction.HIGHER_IS_BETTER,
        verbose_name=_("direction"),
    )
    reference_value = models.DecimalField(
        max_digits=20, decimal_places=4, null=True, blank=True, verbose_name=_("reference value")
    )
    reference_source = models.CharField(
        max_length=200, blank=True, verbose_name=_("reference source")
    )
    description = models.CharField(max_length=500, blank=True, verbose_name=_("description"))

    class Meta:
        verbose_name = _("custom KPI")
        verbose_name_plural = _("custom KPIs")
        ordering = ["key"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "key"], name="kpicustom_unique_key")
        ]

    def __str__(self) -> str:
        return self.key


class KpiTarget(TenantOwnedModel):
    """A manager's target for a KPI in one period and scope."""

    kpi_key = models.CharField(max_length=50, verbose_name=_("KPI"))
    grain = models.CharField(max_length=8, choices=Grain.choices, verbose_name=_("grain"))
    period_start = models.DateField(verbose_name=_("period start"))
    scope_type = models.CharField(
        max_length=8, choices=ScopeType.choices, verbose_name=_("scope type")
    )
    scope_key = models.CharField(max_length=50, blank=True, verbose_name=_("scope"))
    value = models.DecimalField(max_digits=24, decimal_places=4, verbose_name=_("value"))
    set_by = models.ForeignKey(
        Membership,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("set by"),
    )
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("KPI target")
        verbose_name_plural = _("KPI targets")
        ordering = ["kpi_key", "period_start"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "kpi_key", "grain", "period_start", "scope_type", "scope_key"],
                name="kpitarget_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kpi_key} {self.grain} {self.period_start} = {self.value}"


class KpiTree(TenantOwnedModel):
    """A tenant's KGI → KSF → KPI tree."""

    name = models.CharField(max_length=100, verbose_name=_("name"))
    is_default = models.BooleanField(default=False, verbose_name=_("default"))
    created_at = models.DateTimeField(default=now, editable=False, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("KPI tree")
        verbose_name_plural = _("KPI trees")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="kpitree_unique_name"),
            models.UniqueConstraint(
                fields=["tenant"],
                condition=models.Q(is_default=True),
                name="kpitree_one_default",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class KpiTreeNode(TenantOwnedModel):
    """A node of a KPI tree: the KGI, a KSF grouping, or a KPI."""

    class Kind(models.TextChoices):
        KGI = "kgi", "KGI"
        KSF = "ksf", "KSF"
        KPI = "kpi", "KPI"

    tree = models.ForeignKey(
        KpiTree, on_delete=models.CASCADE, related_name="nodes", verbose_name=_("tree")
    )
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="children",
        verbose_name=_("parent"),
    )
    kind = models.CharField(max_length=3, choices=Kind.choices, verbose_name=_("kind"))
    kpi_key = models.CharField(max_length=50, blank=True, verbose_name=_("KPI"))
    label = models.CharField(max_length=100, blank=True, verbose_name=_("label"))
    order = models.PositiveSmallIntegerField(default=0, verbose_name=_("order"))

    class Meta:
        verbose_name = _("KPI tree node")
        verbose_name_plural = _("KPI tree nodes")
        ordering = ["tree", "order", "id"]
        indexes = [models.Index(fields=["tenant", "tree"], name="kpitreenode_tenant_tree")]

    def __str__(self) -> str:
        return self.label or self.kpi_key


class KpiMember(TenantOwnedModel):
    """A rep active in a period and scope (for exact active-rep counts; see
    `kpis.snapshots.members_sql`).

    TRICKY: recounting distinct reps over a month or year of raw rows on every refresh would
    cost time proportional to the tenant's size; instead a refresh inserts the active reps of
    its dirty days (ON CONFLICT DO NOTHING) and adds the number actually inserted to the
    period's count. Kept only for periods listed in KpiMemberPeriod (PostgreSQL), and for
    refreshed days (grain "day"). Leads touched are counted from the leads' own histories;
    kind "l" is the label of those counts, no longer stored.
    """

    class Kind(models.TextChoices):
        LEAD = "l", "Lead touched"
        REP = "r", "Active rep"

    # NOTE: the natural key is the primary key: no id sequence and no second index to keep
    # up on the refresh's hot insert path.
    # The primary key starts with the tenant: no separate foreign-key index is needed.
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    pk = models.CompositePrimaryKey(
        "tenant", "grain", "period_start", "scope_type", "scope_key", "kind", "member"
    )
    grain = models.CharField(max_length=8, choices=Grain.choices)
    period_start = models.DateField()
    scope_type = models.CharField(max_length=8, choices=ScopeType.choices)
    scope_key = models.CharField(max_length=50, blank=True)
    kind = models.CharField(max_length=1, choices=Kind.choices)
    member = models.BigIntegerField()


class KpiMemberPeriod(TenantOwnedModel):
    """A coarse period whose KpiMember rows are complete."""

    grain = models.CharField(max_length=8, choices=Grain.choices)
    period_start = models.DateField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "grain", "period_start"], name="kpimemberperiod_unique"
            )
        ]
