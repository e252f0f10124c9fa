"""A tenant's settings for one kind of CRM export: its columns, stage names, owners, zone."""

from __future__ import annotations

from django.db import models
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _

from tenants.models import TenantOwnedModel, validate_timezone


class ImportPreset(TenantOwnedModel):
    """Overrides of a built-in preset (pipeline.imports.presets) for one tenant.

    Each mapping is merged over the built-in one: a tenant names only what differs in its
    own CRM (a renamed column, a custom stage, an owner whose login is another e-mail).
    """

    name = models.SlugField(
        max_length=50,
        verbose_name=_("name"),
        help_text=_("What --preset names, e.g. hubspot-contacts or hubspot-contacts-tokyo."),
    )
    kind = models.CharField(
        max_length=40,
        verbose_name=_("kind of export"),
        help_text=_("The built-in preset this one starts from, e.g. hubspot-contacts."),
    )
    source_system = models.CharField(
        max_length=50,
        blank=True,
        verbose_name=_("source system"),
        help_text=_("The system the external ids belong to; empty: hubspot or salesforce."),
    )
    time_zone = models.CharField(
        max_length=64,
        blank=True,
        validators=[validate_timezone],
        verbose_name=_("time zone of the export"),
        help_text=_("Exports carry local times without an offset; empty: the workspace's."),
    )
    columns = models.JSONField(
        default=dict,
        blank=True,
        verbose_name=_("columns"),
        help_text=_('Their column → our field, e.g. {"Mobile Phone": "attributes.phone"}.'),
    )
    stages = models.JSONField(
        default=dict,
        blank=True,
        verbose_name=_("stages"),
        help_text=_(
            "Their stage → ours: a lifecycle stage (lead, mql, sql, meeting, opportunity, "
            "won, lost, recycled) for contacts and leads, a deal stage's name for deals."
        ),
    )
    owners = models.JSONField(
        default=dict,
        blank=True,
        verbose_name=_("owners"),
        help_text=_('Their owner name → a member\'s e-mail, e.g. {"山田 太郎": "yamada@acme.jp"}.'),
    )
    values = models.JSONField(
        default=dict,
        blank=True,
        verbose_name=_("other values"),
        help_text=_('Per field, their value → ours, e.g. {"call_outcome": {"話中": "busy"}}.'),
    )
    updated_at = models.DateTimeField(default=now, verbose_name=_("updated at"))

    class Meta:
        app_label = "pipeline"
        verbose_name = _("CRM import preset")
        verbose_name_plural = _("CRM import presets")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="importpreset_unique_name")
        ]

    def __str__(self) -> str:
        return self.name
