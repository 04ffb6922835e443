"""YooKassa's money after the payment: two-phase holds (capture in full or in part, cancel),
refunds (partial, repeated, never more than was paid), and every refusal typed."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

import pytest
from yookassa_support import inject, paid, payment_request

import paymux
from paymux import PaymentStatus, Provider, RefundStatus

if TYPE_CHECKING:
    from paymux_yookassa.emulator import Emulator

UNKNOWN_ID = "2419a771-000f-5000-9000-1edaf29243f2"

# -- two-phase payments ------------------------------------------------------------------------


def test_a_two_phase_payment_is_held_until_the_shop_captures_it(
    yookassa: Provider, emulator: Emulator
) -> None:
    held = paid(yookassa, emulator, capture=False, amount=Decimal("800.00"))

    assert emulator.requests[0].json()["capture"] is False
    assert held.status is PaymentStatus.AUTHORIZED
    assert held.hold_amount == Decimal("800.00")
    assert held.hold_until == held.raw["expires_at"]
    assert held.paid_amount is None
    assert paymux.decide(held, order_id=str(held.order_id), amount=Decimal("800.00")).action is (
        paymux.Action.CAPTURE
    )


def test_capturing_all_that_is_held_makes_it_paid(yookassa: Provider, emulator: Emulator) -> None:
    held = paid(yookassa, emulator, capture=False, amount=Decimal("800.00"))

    captured = yookassa.capture(held.id)

    assert captured.status is PaymentStatus.PAID
    assert (captured.amount, captured.paid_amount) == (Decimal("800.00"), Decimal("800.00"))
    assert captured.hold_amount is None
    sent = emulator.requests[-1]
    assert (sent.method, sent.path, sent.json()) == (
        "POST", f"/v3/payments/{held.id}/capture", {},
    )  # fmt: skip
    assert sent.headers["idempotence-key"]


def test_capturing_less_than_is_held_takes_only_that(
    yookassa: Provider, emulator: Emulator
) -> None:
    held = paid(yookassa, emulator, capture=False, amount=Decimal("800.00"))

    captured = yookassa.capture(held.id, Decimal("650.5"), idempotency_key="capture-1")

    assert captured.status is PaymentStatus.PAID
    assert captured.amount == Decimal("650.50")
    assert emulator.requests[-1].json() == {"amount": {"value": "650.50", "currency": "RUB"}}
    assert emulator.requests[-1].headers["idempotence-key"] == "capture-1"


def test_capturing_more_than_is_held_is_refused_by_yookassa(
    yookassa: Provider, emulator: Emulator
) -> None:
    held = paid(yookassa, emulator, capture=False, amount=Decimal("800.00"))

    with pytest.raises(paymux.ProviderValidationError) as raised:
        yookassa.capture(held.id, Decimal("800.01"))

    assert raised.value.fields == {"amount.value": ["Capture amount exceeds the amount held"]}
    assert yookassa.status(payment_id=held.id).status is PaymentStatus.AUTHORIZED


def test_canceling_a_hold_releases_it(yookassa: Provider, emulator: Emulator) -> None:
    held = paid(yookassa, emulator, capture=False)

    canceled = yookassa.cancel(held.id)

    assert canceled.status is PaymentStatus.CANCELED
    assert canceled.raw["cancellation_details"] == {
        "party": "merchant",
        "reason": "canceled_by_merchant",
    }
    assert emulator.requests[-1].path == f"/v3/payments/{held.id}/cancel"


def test_a_payment_that_is_not_held_can_be_neither_captured_nor_canceled(
    yookassa: Provider, emulator: Emulator
) -> None:
    pending = yookassa.create(payment_request(capture=False))

    with pytest.raises(paymux.ProviderValidationError) as captured:
        yookassa.capture(pending.id)
    with pytest.raises(paymux.ProviderValidationError):
        yookassa.cancel(pending.id)

    assert captured.value.http_status == 400
    assert "waiting_for_capture" in str(captured.value)


# -- how a canceled payment is read --------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "status"),
    [
        ("expired_on_confirmation", PaymentStatus.CANCELED),
        ("canceled_by_merchant", PaymentStatus.CANCELED),
        ("general_decline", PaymentStatus.FAILED),
        ("insufficient_funds", PaymentStatus.FAILED),
        ("3d_secure_failed", PaymentStatus.FAILED),
        ("fraud_suspected", PaymentStatus.FAILED),
    ],
)
def test_canceled_is_failed_when_the_payer_tried_and_the_payment_was_declined(
    yookassa: Provider, emulator: Emulator, reason: str, status: PaymentStatus
) -> None:
    created = yookassa.create(payment_request())

    emulator.settle(created.id, "canceled", reason)

    assert yookassa.status(payment_id=created.id).status is status


def test_a_hold_that_runs_out_is_canceled() -> None:
    from paymux_yookassa.emulator import Emulator

    now = [1_750_000_000.0]
    with Emulator(clock=lambda: now[0]) as running, paymux.connect(running.settings()) as shop:
        held = paid(shop, running, capture=False)
        now[0] += 7 * 24 * 3600
        found = shop.status(payment_id=held.id)

    assert found.status is PaymentStatus.CANCELED
    assert found.raw["cancellation_details"]["reason"] == "expired_on_capture"


# -- refunds -------------------------------------------------------------------------------------


def test_a_paid_payment_is_refunded_in_parts_up_to_what_was_paid(
    yookassa: Provider, emulator: Emulator
) -> None:
    payment = paid(yookassa, emulator, amount=Decimal("1000.00"))

    first = yookassa.refund(paymux.RefundRequest(payment.id, Decimal("300.00")))
    second = yookassa.refund(paymux.RefundRequest(payment.id, Decimal("700"), description="rest"))
    after = yookassa.status(payment_id=payment.id)

    assert (first.status, first.amount, first.payment_id) == (
        RefundStatus.SUCCEEDED, Decimal("300.00"), payment.id,
    )  # fmt: skip
    assert (second.amount, second.currency) == (Decimal("700.00"), "RUB")
    assert first.id != second.id
    assert after.refunded_amount == Decimal("1000.00")
    assert emulator.requests[-2].json() == {
        "payment_id": payment.id,
        "amount": {"value": "700.00", "currency": "RUB"},
        "description": "rest",
    }


def test_refunding_more_than_is_left_is_refused(yookassa: Provider, emulator: Emulator) -> None:
    payment = paid(yookassa, emulator, amount=Decimal("100.00"))
    yookassa.refund(paymux.RefundRequest(payment.id, Decimal("60.00")))

    with pytest.raises(paymux.ProviderValidationError) as raised:
        yookassa.refund(paymux.RefundRequest(payment.id, Decimal("40.01")))

    assert list(raised.value.fields) == ["amount.value"]
    assert len(emulator.refunds) == 1


def test_a_refund_names_its_amount(yookassa: Provider, emulator: Emulator) -> None:
    with pytest.raises(paymux.ValidationError) as raised:
        yookassa.refund(paymux.RefundRequest(UNKNOWN_ID))

    assert "refunded_amount" in raised.value.fields["amount"][0]
    assert emulator.requests == []


def test_a_pending_refund_is_followed_by_its_status() -> None:
    from paymux_yookassa.emulator import Emulator

    with Emulator(pending_refunds=True) as slow, paymux.connect(slow.settings()) as shop:
        payment = paid(shop, slow)
        refund = shop.refund(paymux.RefundRequest(payment.id, Decimal("10.00")))
        before = shop.refund_status(refund.id)
        slow.settle_refund(refund.id)
        after = shop.refund_status(refund.id)

    assert (refund.status, before.status) == (RefundStatus.PENDING, RefundStatus.PENDING)
    assert after.status is RefundStatus.SUCCEEDED
    assert slow.requests[-1].path == f"/v3/refunds/{refund.id}"


# -- refusals, typed -----------------------------------------------------------------------------


def test_unknown_objects_are_not_found_of_their_own_kind(yookassa: Provider) -> None:
    with pytest.raises(paymux.PaymentNotFound) as payment:
        yookassa.status(payment_id=UNKNOWN_ID)
    with pytest.raises(paymux.PaymentNotFound):
        yookassa.capture(UNKNOWN_ID)
    with pytest.raises(paymux.PaymentNotFound):
        yookassa.refund(paymux.RefundRequest(UNKNOWN_ID, Decimal("1.00")))
    with pytest.raises(paymux.RefundNotFound) as refund:
        yookassa.refund_status(UNKNOWN_ID)

    for raised in (payment.value, refund.value):
        assert raised.http_status == 404
        assert raised.request_id
        assert f"YooKassa error id {raised.body['id']}" in raised.message


def test_throttling_of_a_status_is_retried_then_reported_as_unavailable(
    yookassa: Provider, emulator: Emulator
) -> None:
    created = yookassa.create(payment_request())
    inject(emulator, "too_many_requests", on="status", times=1)

    assert yookassa.status(payment_id=created.id).id == created.id

    inject(emulator, "too_many_requests", on="status", times=3)
    with pytest.raises(paymux.ProviderUnavailable) as raised:
        yookassa.status(payment_id=created.id)
    assert raised.value.http_status == 429


def test_a_yookassa_failure_on_a_status_is_a_server_error_after_repeats(
    yookassa: Provider, emulator: Emulator
) -> None:
    created = yookassa.create(payment_request())
    inject(emulator, "internal_error", on="status", times=3)

    with pytest.raises(paymux.ProviderServerError) as raised:
        yookassa.status(payment_id=created.id)

    assert raised.value.http_status == 500
    assert "internal_server_error" in str(raised.value)
