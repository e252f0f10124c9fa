"""Published events, the in-app inbox, webhook endpoints and their deliveries and attempts."""

from __future__ import annotations

from django.db import models
from django.utils.timezone import now

from tenants.models import Membership, TenantOwnedModel


class Event(TenantOwnedModel):
    """One published event, rendered once in the tenant's language; unique per dedup key."""

    event_type = models.CharField(max_length=50)
    dedup_key = models.CharField(max_length=200)
    payload = models.JSONField(default=dict)
    title = models.CharField(max_length=300)
    text = models.TextField(max_length=10_000, blank=True)
    language = models.CharField(max_length=2)
    channels = models.JSONField(default=list)
    recipient_ids = models.JSONField(default=list, help_text="Membership ids.")
    emailed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=now, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # TRICKY: publishing is idempotent through this constraint: the same event
            # published twice (a retried task, two evaluations) is stored and sent once.
            models.UniqueConstraint(fields=["tenant", "dedup_key"], name="event_unique_dedup")
        ]
        indexes = [models.Index(fields=["tenant", "created_at"], name="event_tenant_created")]

    def __str__(self) -> str:
        return f"{self.event_type} {self.dedup_key}"


class Notification(TenantOwnedModel):
    """An event in one member's in-app inbox."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="notifications")
    recipient = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="+")
    event_type = models.CharField(max_length=50)
    title = models.CharField(max_length=300)
    body = models.TextField(max_length=10_000, blank=True)
    created_at = models.DateTimeField(default=now, editable=False)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "event", "recipient"], name="notification_unique_recipient"
            )
        ]
        indexes = [
            models.Index(
                fields=["tenant", "recipient", "read_at", "created_at"],
                name="notification_inbox",
            )
        ]

    def __str__(self) -> str:
        return self.title


class WebhookEndpoint(TenantOwnedModel):
    """A URL of the tenant's that receives the event types it subscribes to, signed."""

    class Format(models.TextChoices):
        JSON = "json", "JSON"
        SLACK = "slack", "Slack-compatible"

    name = models.CharField(max_length=100)
    url = models.CharField(max_length=2000, help_text="http(s); checked by the service.")
    event_types = models.JSONField(default=list)
    format = models.CharField(max_length=8, choices=Format.choices, default=Format.JSON)
    is_active = models.BooleanField(default=True)
    secret_sealed = models.TextField(
        editable=False, help_text="The signing secret, encrypted; shown once, never again."
    )
    secret_hint = models.CharField(max_length=12, editable=False, blank=True)
    secret_rotated_at = models.DateTimeField(default=now, editable=False)
    created_at = models.DateTimeField(default=now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="webhookendpoint_unique_name")
        ]

    def __str__(self) -> str:
        return self.name


class WebhookDelivery(TenantOwnedModel):
    """One event sent to one endpoint: pending until it succeeds or its retries run out."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed (will retry)"
        DEAD = "dead", "Dead letter"

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    last_response_ms = models.PositiveIntegerField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=now, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "event", "endpoint"], name="webhookdelivery_unique"
            )
        ]
        indexes = [
            models.Index(fields=["tenant", "state", "next_attempt_at"], name="webhookdelivery_due"),
            models.Index(fields=["tenant", "endpoint", "created_at"], name="webhookdelivery_ep"),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} → {self.endpoint_id} ({self.state})"


class WebhookAttempt(TenantOwnedModel):
    """One HTTP request of a delivery and what came back."""

    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_rows"
    )
    number = models.PositiveIntegerField()
    at = models.DateTimeField(default=now)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    response_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["number", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "delivery", "number"], name="webhookattempt_unique"
            )
        ]

    def __str__(self) -> str:
        return f"#{self.number} {self.status_code or self.error[:40]}"
