"""YooKassa's notifications carry no signature: one is trusted when it comes from an address in
the shop's `allowed_senders` and the API, asked again, confirms what it says.

The emulator POSTs each from 127.0.0.2 to a WSGI endpoint on loopback, which hands paymux the
request as a host's view would: `paymux.Incoming.from_wsgi(environ)`.
"""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from yookassa_support import Webhooks, inject, paid, payment_request

import paymux
from paymux import Authentication, NotificationKind, PaymentStatus, Provider, RefundStatus

if TYPE_CHECKING:
    from paymux_yookassa.emulator import Emulator

GENUINE_SENDER = "127.0.0.2"


def last(webhooks: Webhooks, object_id: str, event: str) -> paymux.Incoming:
    arrived = webhooks.about(object_id, event)
    assert arrived, f"no {event} notification for {object_id}"
    return arrived[-1]


def test_a_genuine_payment_notification_is_confirmed_by_the_api(
    yookassa: Provider, emulator: Emulator, webhooks: Webhooks
) -> None:
    request = payment_request(amount=Decimal("2500.00"))
    created = yookassa.create(request)
    emulator.settle(created.id, "succeeded")
    incoming = last(webhooks, created.id, "payment.succeeded")
    before = len(emulator.requests)

    notification = yookassa.parse_notification(incoming)

    assert incoming.sender == GENUINE_SENDER
    assert (incoming.method, incoming.path) == ("POST", "/yookassa/notifications")
    assert notification.kind is NotificationKind.PAYMENT
    assert notification.verified_by == (Authentication.SENDER, Authentication.REFETCH)
    assert (notification.provider, notification.instance, notification.account) == (
        "yookassa", "default", emulator.shop.shop_id,
    )  # fmt: skip
    assert notification.fields == json.loads(incoming.body)
    payment = notification.payment
    assert (payment.id, payment.order_id, payment.status) == (
        created.id, request.order_id, PaymentStatus.PAID,
    )  # fmt: skip
    assert payment.instance == "default"
    assert [(r.method, r.path) for r in emulator.requests[before:]] == [
        ("GET", f"/v3/payments/{created.id}")
    ]
    decision = paymux.decide(notification, order_id=request.order_id, amount=request.amount)
    assert decision.fulfil


def test_a_hold_notification_asks_for_a_capture_and_the_capture_is_notified_paid(
    yookassa: Provider, emulator: Emulator, webhooks: Webhooks
) -> None:
    request = payment_request(capture=False, amount=Decimal("700.00"))
    created = yookassa.create(request)
    emulator.settle(created.id, "waiting_for_capture")

    held = yookassa.parse_notification(last(webhooks, created.id, "payment.waiting_for_capture"))
    decision = paymux.decide(held, order_id=request.order_id, amount=request.amount)
    yookassa.capture(created.id)
    emulator.wait_idle()
    captured = yookassa.parse_notification(last(webhooks, created.id, "payment.succeeded"))

    assert held.payment.status is PaymentStatus.AUTHORIZED
    assert held.payment.hold_amount == Decimal("700.00")
    assert decision.action is paymux.Action.CAPTURE
    assert captured.payment.status is PaymentStatus.PAID


def test_a_declined_payment_is_notified_as_failed(
    yookassa: Provider, emulator: Emulator, webhooks: Webhooks
) -> None:
    created = yookassa.create(payment_request())
    emulator.settle(created.id, "canceled", "card_expired")

    notification = yookassa.parse_notification(last(webhooks, created.id, "payment.canceled"))

    assert notification.payment.status is PaymentStatus.FAILED


def test_a_refund_notification_is_a_refund_and_never_a_payment(
    yookassa: Provider, emulator: Emulator, webhooks: Webhooks
) -> None:
    payment = paid(yookassa, emulator, amount=Decimal("300.00"))
    refund = yookassa.refund(paymux.RefundRequest(payment.id, Decimal("100.00")))
    emulator.wait_idle()

    notification = yookassa.parse_notification(last(webhooks, refund.id, "refund.succeeded"))

    assert notification.kind is NotificationKind.REFUND
    assert notification.refund.id == refund.id
    assert notification.refund.payment_id == payment.id
    assert notification.refund.status is RefundStatus.SUCCEEDED
    assert notification.refund.amount == Decimal("100.00")
    with pytest.raises(TypeError):
        _ = notification.payment
    decision = paymux.decide(notification, order_id=str(payment.order_id), amount=Decimal(300))
    assert decision.action is paymux.Action.IGNORE
    assert emulator.requests[-1].path == f"/v3/refunds/{refund.id}"


def test_forged_notifications_are_refused_and_the_genuine_one_accepted(
    yookassa: Provider, emulator: Emulator
) -> None:
    created = yookassa.create(payment_request())
    inject(emulator, "forged_notification", on="notification")
    emulator.settle(created.id, "waiting_for_capture")
    emulator.wait_idle()
    deliveries = {delivery.fault: delivery for delivery in emulator.deliveries}

    def incoming(fault: str | None) -> paymux.Incoming:
        delivery = deliveries[fault]
        body = json.dumps(delivery.body).encode()
        return paymux.Incoming(method="POST", body=body, sender=delivery.sender)

    sent = len(emulator.requests)
    with pytest.raises(paymux.SignatureError, match="outside"):
        yookassa.parse_notification(incoming("forged_sender"))
    assert len(emulator.requests) == sent  # refused before anything was asked
    with pytest.raises(paymux.SignatureError, match="the API says"):
        yookassa.parse_notification(incoming("forged_status"))  # claims succeeded
    assert yookassa.parse_notification(incoming(None)).payment.status is PaymentStatus.AUTHORIZED


def test_yookassas_published_ranges_do_not_include_this_machine(
    emulator: Emulator, webhooks: Webhooks
) -> None:
    settings = {key: value for key, value in emulator.settings().items()}
    del settings["allowed_senders"]
    with paymux.connect(settings) as strict:
        created = strict.create(payment_request())
        emulator.settle(created.id, "succeeded")

        with pytest.raises(paymux.SignatureError):
            strict.parse_notification(last(webhooks, created.id, "payment.succeeded"))


def test_a_notification_whose_sender_is_unknown_is_refused(
    yookassa: Provider, emulator: Emulator, webhooks: Webhooks
) -> None:
    created = yookassa.create(payment_request())
    emulator.settle(created.id, "succeeded")
    genuine = last(webhooks, created.id, "payment.succeeded")

    with pytest.raises(paymux.SignatureError, match="unknown"):
        yookassa.parse_notification(dataclasses.replace(genuine, sender=None))
    with pytest.raises(paymux.SignatureError):
        yookassa.parse_notification(genuine.body)


def test_a_notification_about_an_object_the_api_does_not_know_is_refused(
    yookassa: Provider, emulator: Emulator, webhooks: Webhooks
) -> None:
    created = yookassa.create(payment_request())
    emulator.settle(created.id, "succeeded")
    body = json.loads(last(webhooks, created.id, "payment.succeeded").body)
    body["object"]["id"] = "2419a771-000f-5000-9000-1edaf29243f2"
    forged = paymux.Incoming(method="POST", body=json.dumps(body).encode(), sender=GENUINE_SENDER)

    with pytest.raises(paymux.SignatureError, match="the API does not know"):
        yookassa.parse_notification(forged)


def test_a_genuine_notification_overtaken_by_a_later_state_carries_the_apis_state(
    yookassa: Provider, emulator: Emulator, webhooks: Webhooks
) -> None:
    """An AUTHORIZED that arrives after the capture is genuine: it is read as the API's PAID."""
    created = yookassa.create(payment_request(capture=False))
    emulator.settle(created.id, "waiting_for_capture")
    held = last(webhooks, created.id, "payment.waiting_for_capture")
    yookassa.capture(created.id)

    late = yookassa.parse_notification(held)

    assert late.payment.status is paymux.PaymentStatus.PAID


def test_a_final_state_the_api_has_not_reached_is_refused(
    yookassa: Provider, emulator: Emulator, webhooks: Webhooks
) -> None:
    created = yookassa.create(payment_request(capture=False))
    emulator.settle(created.id, "waiting_for_capture")
    body = json.loads(last(webhooks, created.id, "payment.waiting_for_capture").body)
    body["event"], body["object"]["status"] = "payment.canceled", "canceled"
    claimed = paymux.Incoming(method="POST", body=json.dumps(body).encode(), sender=GENUINE_SENDER)

    with pytest.raises(paymux.SignatureError, match="the API says authorized"):
        yookassa.parse_notification(claimed)


def _changed(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    changed: dict[str, Any] = json.loads(json.dumps(body))
    *parents, name = path.split(".")
    target = changed
    for parent in parents:
        target = target[parent]
    if value is None:
        del target[name]
    else:
        target[name] = value
    return changed


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("type", "payment"),
        ("event", "payment.waiting_for_capture"),
        ("event", "payout.succeeded"),
        ("event", None),
        ("object", "not an object"),
        ("object.id", None),
        ("object.status", "paid"),
        ("object.amount.value", "a lot"),
        ("object.amount", None),
        ("object.recipient.account_id", "999999"),
    ],
)
def test_a_malformed_notification_is_refused_before_the_api_is_asked(
    yookassa: Provider, emulator: Emulator, webhooks: Webhooks, path: str, value: Any
) -> None:
    created = yookassa.create(payment_request())
    emulator.settle(created.id, "succeeded")
    genuine = json.loads(last(webhooks, created.id, "payment.succeeded").body)
    body = json.dumps(_changed(genuine, path, value)).encode()
    sent = len(emulator.requests)

    with pytest.raises(paymux.SignatureError):
        yookassa.parse_notification(
            paymux.Incoming(method="POST", body=body, sender=GENUINE_SENDER)
        )

    assert len(emulator.requests) == sent


@pytest.mark.parametrize(
    "incoming",
    [
        paymux.Incoming(method="POST", body=b"", sender=GENUINE_SENDER),
        paymux.Incoming(method="POST", body=b"<html>", sender=GENUINE_SENDER),
        paymux.Incoming(method="POST", body=b"[1, 2]", sender=GENUINE_SENDER),
        paymux.Incoming(method="GET", query="event=payment.succeeded", sender=GENUINE_SENDER),
    ],
    ids=["empty", "not JSON", "not an object", "a GET"],
)
def test_what_is_not_a_yookassa_notification_is_refused(
    yookassa: Provider, incoming: paymux.Incoming
) -> None:
    with pytest.raises(paymux.SignatureError):
        yookassa.parse_notification(incoming)
