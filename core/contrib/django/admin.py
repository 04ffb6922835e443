"""The admin: payments, notifications and the ledger, read-only.

What is recorded there is what the gateways said, so nobody edits it; the one thing an
operator does is resolve an open operation the sweeper could not settle, as
`paymux ops resolve` does, with who did it and why kept in the entry's history.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html_join

from paymux._cli_ledger import RESOLUTIONS
from paymux.contrib.django.ledger import DatabaseLedger
from paymux.contrib.django.models import LedgerEntry, Notification, Payment
from paymux.errors import LedgerError
from paymux.ledger import Entry, from_document
from paymux.models import show_money


class ReadOnly:
    """Shows rows; never adds, changes or deletes one."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# ModelAdmin and TabularInline are generic in django-stubs only, not at run time.
class NotificationsOfPayment(ReadOnly, admin.TabularInline):  # type: ignore[type-arg]
    model = Notification
    fields = ("received_at", "status", "verdict", "action", "reasons")
    readonly_fields = ("received_at",)  # shown although not editable: set on arrival
    extra = 0


@admin.register(Payment)
class PaymentAdmin(ReadOnly, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("order_id", "instance", "payment_id", "total", "status", "action", "created")
    list_filter = ("instance", "status", "action")
    search_fields = ("order_id", "payment_id")
    exclude = ("return_token",)
    readonly_fields = ("created", "updated")
    inlines = (NotificationsOfPayment,)

    @admin.display(description="amount", ordering="amount")
    def total(self, payment: Payment) -> str:
        return f"{show_money(payment.amount)} {payment.currency}".strip()


@admin.register(Notification)
class NotificationAdmin(ReadOnly, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = (
        "received_at",
        "instance",
        "kind",
        "subject_id",
        "order_id",
        "status",
        "verdict",
        "action",
    )
    list_filter = ("instance", "kind", "verdict", "action")
    search_fields = ("order_id", "subject_id")
    readonly_fields = ("received_at",)


class ResolveForm(ActionForm):
    """The action bar's fields for "resolve": what the operation ended as, and why."""

    outcome = forms.ChoiceField(
        choices=[("", "ended as…"), *((name, name) for name in sorted(RESOLUTIONS))],
        required=False,
    )
    note = forms.CharField(required=False, max_length=500, label="why")


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnly, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("id", "state", "operation", "instance", "order_id", "reason", "opened_at")
    list_filter = ("state", "instance", "operation")
    search_fields = ("id", "order_id", "subject_id")
    exclude = ("document",)
    readonly_fields = ("history",)
    action_form = ResolveForm
    actions = ("resolve",)

    @admin.display(description="history")
    def history(self, entry: LedgerEntry) -> str:
        events = from_document(entry.document).history
        when = "%Y-%m-%d %H:%M:%S"
        rows = ((time.strftime(when, time.gmtime(e.at)), e.state, e.by, e.note) for e in events)
        return format_html_join("\n", "<div>{} UTC {}: {} &mdash; {}</div>", rows)

    @admin.action(description="Resolve the selected operations", permissions=["resolve"])
    def resolve(self, request: HttpRequest, queryset: QuerySet[LedgerEntry]) -> None:
        outcome, note = request.POST.get("outcome", ""), request.POST.get("note", "").strip()
        if outcome not in RESOLUTIONS or not note:
            self.message_user(request, "Choose what it ended as, and say why.", messages.ERROR)
            return
        ledger = DatabaseLedger()
        change = resolution(outcome, note, by=request.user.get_username())
        for entry_id in queryset.values_list("id", flat=True):
            try:
                entry = ledger.update(entry_id, change)
            except LedgerError as error:
                self.message_user(request, error.message, messages.ERROR)
            else:
                self.message_user(request, f"{entry.id} is {entry.state} ({entry.reason})")

    def has_resolve_permission(self, request: HttpRequest) -> bool:
        # The admin's users have permissions (django-stubs types `request.user` more widely).
        return request.user.has_perm("paymux.resolve_ledgerentry")  # type: ignore[union-attr]


def resolution(outcome: str, note: str, *, by: str) -> Callable[[Entry], Entry]:
    """How an operator's resolution changes an entry: `paymux ops resolve`'s semantics."""

    def resolved(entry: Entry) -> Entry:
        if entry.state.is_closed:
            raise LedgerError(f"entry {entry.id} is {entry.state} already")
        why = f"resolved as {outcome}: {note}"
        return entry.moved(RESOLUTIONS[outcome], why, at=time.time(), by=by)

    return resolved
