"""The whole journey once: create, status, settle, notification, status again."""

from __future__ import annotations

from paymux import PaymentStatus
from paymux.providers.alikassa import AliKassaProvider
from paymux.providers.alikassa.sandbox import Sandbox
from support import Receiver, payment_request


def test_a_payment_goes_from_pending_to_paid_with_a_verified_notification(
    provider: AliKassaProvider, sandbox: Sandbox, receiver: Receiver
) -> None:
    created = provider.create(payment_request(notification_url=receiver.url))
    assert created.status is PaymentStatus.PENDING

    sandbox.settle(created.id, "paid")
    assert receiver.wait_for(1)
    notification = provider.parse_notification(receiver.received[0])

    assert notification.payment.id == created.id
    assert notification.payment.status is PaymentStatus.PAID
    assert provider.status(payment_id=created.id).status is PaymentStatus.PAID
