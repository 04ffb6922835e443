"""A shop's payment code, the same for every gateway and every web framework.

The framework recipes (`flask_app.py`, `django_app.py`, `fastapi_app.py`) only turn their
request into a `paymux.Incoming` and `notification_answer`'s result into a response; which
gateway stands behind `provider` is configuration.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Protocol

from paymux import (
    Customer,
    Decision,
    Incoming,
    NotificationGuard,
    Operation,
    Payment,
    PaymentRequest,
    PaymuxError,
    Provider,
    Refund,
    RefundRequest,
    SignatureError,
    decide,
)

log = logging.getLogger(__name__)


class Shop(Protocol):
    """The two things the payment code needs from your shop."""

    def amount_due(self, order_id: str) -> Decimal | None:
        """The order's total; None when the shop has no such order."""

    def apply(self, decision: Decision) -> None:
        """Ship on FULFIL, capture on CAPTURE, flag HOLD, REVIEW and REJECT; raise to have the
        gateway repeat the notification."""


def checkout(
    provider: Provider,
    order_id: str,
    total: Decimal,
    *,
    customer: Customer,
    return_url: str,
    notification_url: str,
) -> Payment:
    """Create the order's payment; send the customer to `payment.redirect_url`.

    Safe to call again for the same order after an `OutcomeUnknown`: creates are exactly once.
    """
    return provider.create(
        PaymentRequest(
            order_id=order_id,
            amount=total,
            customer=customer,
            description=f"Order {order_id}",
            success_url=return_url,
            fail_url=return_url,
            notification_url=notification_url,
        )
    )


def notification_answer(
    provider: Provider, guard: NotificationGuard, shop: Shop, incoming: Incoming
) -> tuple[int, str]:
    """Authenticate, de-duplicate, decide: the HTTP status and text to answer the gateway with.

    400 for a forgery (never acted on); 503 while another worker handles the same notification
    or the gateway could not be asked to confirm it, 500 when the shop failed to record it: the
    gateway repeats both; 200 once handled, and at once for a repeat.
    """
    try:
        notification = provider.parse_notification(incoming)
    except SignatureError:
        return 400, "Bad notification"
    except PaymuxError:  # e.g. the re-fetch of the payment failed: nothing was decided
        log.warning("notification not verified yet", exc_info=True)
        return 503, "Try again"
    try:
        with guard.admitted(notification) as verdict:  # released again if the block raises
            if verdict.retry:  # BUSY: another worker is handling it right now
                return 503, "Busy"
            if verdict.act:  # NEW or REOPENED
                order_id = notification.order_id or ""
                due = shop.amount_due(order_id)  # None: no such order, a REJECT
                shop.apply(decide(notification, order_id=order_id, amount=due, verdict=verdict))
    except Exception:
        log.exception("notification %s not handled", notification.subject.id)
        return 500, "Not handled"
    return 200, "OK"


def refund(provider: Provider, payment: Payment, amount: Decimal) -> Refund | None:
    """Give `amount` back, where the gateway takes refunds (None where it does not)."""
    if not provider.capabilities.offers(Operation.REFUND):
        return None
    return provider.refund(RefundRequest(payment_id=payment.id, amount=amount))
