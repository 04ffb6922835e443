"""The shop's side of the notification endpoint (`paymux.contrib.Shop`), kept in the database."""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction

from paymux import Action, Decision, NotificationKind
from paymux import Notification as Received
from paymux.contrib.django.models import Notification, Payment
from paymux.contrib.django.signals import payment_decided


class DatabaseShop:
    """What one instance's notifications are checked against and recorded in."""

    def __init__(self, instance: str) -> None:
        self.instance = instance

    def amount_due(self, order_id: str) -> Decimal | None:
        """The amount recorded at checkout for the order (its latest payment)."""
        payment = Payment.objects.filter(instance=self.instance, order_id=order_id).first()
        return None if payment is None else payment.amount

    def apply(self, decision: Decision, notification: Received) -> None:
        """Record the notification; when the guard admitted it, update its payment and send
        `payment_decided`. All in one transaction: if anything raises, nothing is kept and the
        gateway repeats the notification."""
        with transaction.atomic():
            payment = self._payment(notification)
            Notification.objects.create(
                instance=self.instance,
                provider=notification.provider,
                kind=notification.kind.value,
                subject_id=notification.subject.id,
                order_id=notification.order_id or "",
                status=notification.subject.status.value,
                verdict="" if decision.verdict is None else decision.verdict.value,
                action=decision.action.value,
                reasons=list(decision.reasons),
                payment=payment,
            )
            if decision.verdict is not None and not decision.verdict.act:
                return  # a DUPLICATE or STALE: acted on before
            if payment is not None and decision.payment is not None:
                payment.status = decision.payment.status.value
                payment.paid_amount = decision.payment.paid_amount
                if decision.action is not Action.IGNORE:
                    payment.action = decision.action.value
                payment.save(update_fields=["status", "paid_amount", "action", "updated"])
            payment_decided.send(
                sender=Payment, decision=decision, notification=notification, payment=payment
            )

    def _payment(self, notification: Received) -> Payment | None:
        """The payment a notification is about (a refund's too), locked until the commit."""
        if notification.kind is NotificationKind.PAYMENT:
            payment_id = notification.subject.id
        elif notification.kind is NotificationKind.REFUND:
            payment_id = notification.refund.payment_id
        else:
            return None
        payments = Payment.objects.select_for_update()
        return payments.filter(instance=self.instance, payment_id=payment_id).first()
