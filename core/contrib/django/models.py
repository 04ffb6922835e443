"""The app's tables: payments made at checkout, the notifications received about them, the
ledger of money-moving calls, and the guard's records.

Statuses, verdicts and actions are kept as paymux's enum values (`"paid"`, `"duplicate"`,
`"fulfil"`), without Django choices, so a status paymux adds later needs no migration.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import models


class Payment(models.Model):
    """A payment created at checkout, and what its notifications said since."""

    instance: models.CharField[str, str] = models.CharField(max_length=64)
    provider: models.CharField[str, str] = models.CharField(max_length=64)
    payment_id: models.CharField[str, str] = models.CharField(max_length=128)
    order_id: models.CharField[str, str] = models.CharField(max_length=128, db_index=True)
    # Sums have room for every gateway's: some report nine decimals.
    amount: models.DecimalField[Decimal, Decimal] = models.DecimalField(
        max_digits=30, decimal_places=9, help_text="What the order expects: checked by decide."
    )
    currency: models.CharField[str, str] = models.CharField(max_length=8, blank=True)
    status: models.CharField[str, str] = models.CharField(max_length=16)
    paid_amount: models.DecimalField[Decimal | None, Decimal | None] = models.DecimalField(
        max_digits=30, decimal_places=9, null=True, blank=True
    )
    action: models.CharField[str, str] = models.CharField(
        max_length=16, blank=True, help_text="The last decision that asks for something."
    )
    redirect_url: models.CharField[str, str] = models.CharField(max_length=2000, blank=True)
    return_token: models.CharField[str, str] = models.CharField(
        max_length=64, db_index=True, editable=False
    )
    created: models.DateTimeField[datetime, datetime] = models.DateTimeField(auto_now_add=True)
    updated: models.DateTimeField[datetime, datetime] = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = (
            models.UniqueConstraint(
                fields=["instance", "payment_id"], name="paymux_payment_instance_payment_id"
            ),
        )
        ordering = ("-created",)

    def __str__(self) -> str:
        return f"{self.instance} {self.payment_id} (order {self.order_id})"


class Notification(models.Model):
    """One verified notification, with the guard's verdict and the decision taken on it."""

    instance: models.CharField[str, str] = models.CharField(max_length=64)
    provider: models.CharField[str, str] = models.CharField(max_length=64)
    kind: models.CharField[str, str] = models.CharField(max_length=16)
    subject_id: models.CharField[str, str] = models.CharField(max_length=128)
    order_id: models.CharField[str, str] = models.CharField(max_length=128, blank=True)
    status: models.CharField[str, str] = models.CharField(max_length=16)
    verdict: models.CharField[str, str] = models.CharField(max_length=16)
    action: models.CharField[str, str] = models.CharField(max_length=16)
    reasons: models.JSONField[list[str], list[str]] = models.JSONField(default=list)
    payment: models.ForeignKey[Payment | None, Payment | None] = models.ForeignKey(
        Payment,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="notifications",
    )
    received_at: models.DateTimeField[datetime, datetime] = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-received_at", "-id")

    def __str__(self) -> str:
        return f"{self.kind} {self.subject_id} {self.status} ({self.verdict})"


class LedgerEntry(models.Model):
    """One money-moving call in the ledger (a `paymux.Entry`): `document` is the entry, the
    other columns are copies of its fields to query and list by."""

    id: models.CharField[str, str] = models.CharField(max_length=64, primary_key=True)
    provider: models.CharField[str, str] = models.CharField(max_length=64)
    instance: models.CharField[str, str] = models.CharField(max_length=64)
    operation: models.CharField[str, str] = models.CharField(max_length=32)
    state: models.CharField[str, str] = models.CharField(max_length=16)
    order_id: models.CharField[str | None, str | None] = models.CharField(
        max_length=128, null=True, blank=True
    )
    subject_id: models.CharField[str | None, str | None] = models.CharField(
        max_length=128, null=True, blank=True
    )
    status: models.CharField[str | None, str | None] = models.CharField(
        max_length=16, null=True, blank=True
    )
    reason: models.TextField[str | None, str | None] = models.TextField(null=True, blank=True)
    attempts: models.PositiveIntegerField[int, int] = models.PositiveIntegerField(default=0)
    next_at: models.FloatField[float, float] = models.FloatField()
    opened_at: models.DateTimeField[datetime, datetime] = models.DateTimeField()
    document: models.TextField[str, str] = models.TextField()

    class Meta:
        indexes = (models.Index(fields=["instance", "state", "next_at"], name="paymux_ledger_due"),)
        ordering = ("opened_at",)
        permissions = (("resolve_ledgerentry", "Can resolve an open operation"),)
        verbose_name = "ledger entry"
        verbose_name_plural = "ledger entries"

    def __str__(self) -> str:
        return f"{self.operation} {self.id} ({self.state})"


class GuardRecord(models.Model):
    """What the notification guard admitted for one payment (see `paymux.guards`)."""

    key: models.CharField[str, str] = models.CharField(max_length=255, primary_key=True)
    value: models.TextField[str, str] = models.TextField()

    def __str__(self) -> str:
        return self.key
