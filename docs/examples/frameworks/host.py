"""A shop's payment code, the same for every gateway and every web framework.

The notification endpoint is paymux's (`paymux.contrib`); the framework recipes
(`flask_app.py`, `django_app.py`, `fastapi_app.py`) only mount it. Which gateway stands behind
`provider` is configuration.
"""

from __future__ import annotations

from decimal import Decimal

from paymux import Customer, Operation, Payment, PaymentRequest, Provider, Refund, RefundRequest


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


def refund(provider: Provider, payment: Payment, amount: Decimal) -> Refund | None:
    """Give `amount` back, where the gateway takes refunds (None where it does not)."""
    if not provider.capabilities.offers(Operation.REFUND):
        return None
    return provider.refund(RefundRequest(payment_id=payment.id, amount=amount))
