"""Reading YooKassa's payment and refund objects: what each field must be, all problems named."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from paymux import PaymentStatus, RefundStatus
from paymux_yookassa.wire import WireError, payment_of, refund_of


def payment(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "2c8e1a5f-000f-5000-9000-1b4a1b7f8a39",
        "status": "succeeded",
        "paid": True,
        "amount": {"value": "1500.00", "currency": "RUB"},
        "income_amount": {"value": "1447.50", "currency": "RUB"},
        "refunded_amount": {"value": "0.00", "currency": "RUB"},
        "confirmation": {"type": "redirect", "confirmation_url": "https://pay.example/1"},
        "metadata": {"order_id": "order-1"},
        "recipient": {"account_id": "100500", "gateway_id": "1"},
        "created_at": "2026-12-02T00:00:00.000Z",
    }
    base.update(changes)
    return {name: value for name, value in base.items() if value is not ...}


def test_a_paid_payment_reads_into_the_model_with_its_fee() -> None:
    read = payment_of(payment())

    assert read.id == "2c8e1a5f-000f-5000-9000-1b4a1b7f8a39"
    assert read.order_id == "order-1"
    assert read.status is PaymentStatus.PAID
    assert (read.amount, read.paid_amount, read.currency) == (
        Decimal("1500.00"),
        Decimal("1500.00"),
        "RUB",
    )
    assert read.fee == Decimal("52.50")
    assert read.refunded_amount == Decimal("0.00")
    assert read.redirect_url == "https://pay.example/1"
    assert read.raw["created_at"] == "2026-12-02T00:00:00.000Z"


def test_a_held_payment_carries_its_hold() -> None:
    read = payment_of(payment(status="waiting_for_capture", expires_at="2026-12-09T00:00:00Z"))

    assert read.status is PaymentStatus.AUTHORIZED
    assert read.paid_amount is None
    assert (read.hold_amount, read.hold_until) == (Decimal("1500.00"), "2026-12-09T00:00:00Z")


@pytest.mark.parametrize(
    ("reason", "status"),
    [
        ("expired_on_confirmation", PaymentStatus.CANCELED),
        ("canceled_by_merchant", PaymentStatus.CANCELED),
        ("insufficient_funds", PaymentStatus.FAILED),
        (None, PaymentStatus.CANCELED),
    ],
)
def test_a_canceled_payment_is_failed_only_when_someone_tried_to_pay(
    reason: str | None, status: PaymentStatus
) -> None:
    details = {"party": "payment_network", "reason": reason} if reason else ...
    assert payment_of(payment(status="canceled", cancellation_details=details)).status is status


def test_optional_parts_may_be_absent_or_null() -> None:
    read = payment_of(
        payment(
            status="pending",
            income_amount=...,
            refunded_amount=...,
            confirmation=...,
            metadata=None,
            recipient=...,
        )
    )

    assert (read.order_id, read.fee, read.refunded_amount, read.redirect_url) == (
        None,
        None,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"id": ...}, "'id': ['Missing data"),
        ({"id": ""}, "'id': ['Length"),
        ({"id": 7}, "'id': ['Not a valid string"),
        ({"status": "lost"}, "'status': ['Must be one of"),
        ({"amount": ...}, "'amount': ['Missing data"),
        ({"amount": "1500.00"}, "'amount': ['Invalid input type"),
        ({"amount": {"value": "-1.00", "currency": "RUB"}}, "'amount.value'"),
        ({"amount": {"value": "NaN", "currency": "RUB"}}, "'amount.value'"),
        ({"amount": {"value": True, "currency": "RUB"}}, "'amount.value'"),
        ({"amount": {"value": "1.00", "currency": "rub"}}, "'amount.currency'"),
        ({"income_amount": {"value": "x", "currency": "RUB"}}, "'income_amount.value'"),
        ({"confirmation": {"confirmation_url": 5}}, "'confirmation'"),
        ({"metadata": ["order-1"]}, "'metadata'"),
    ],
)
def test_a_malformed_payment_names_the_field(changes: dict[str, Any], named: str) -> None:
    with pytest.raises(WireError, match="payment object is not as documented") as raised:
        payment_of(payment(**changes))

    assert named in str(raised.value)


def test_every_problem_is_named_at_once() -> None:
    with pytest.raises(WireError) as raised:
        payment_of(payment(id=..., status="lost", amount=...))

    assert all(key in str(raised.value) for key in ("'id'", "'status'", "'amount'"))


def test_what_is_not_an_object_is_said_so() -> None:
    with pytest.raises(WireError, match="the payment is not a JSON object"):
        payment_of(["a list"])


def test_a_refund_reads_and_its_malformed_fields_are_named() -> None:
    refund = {
        "id": "2c8e2a1b-0015-5000-8000-1e4a1b7f8a39",
        "payment_id": "2c8e1a5f-000f-5000-9000-1b4a1b7f8a39",
        "status": "succeeded",
        "amount": {"value": "500.00", "currency": "RUB"},
    }
    read = refund_of(refund)
    assert (read.status, read.amount, read.currency) == (
        RefundStatus.SUCCEEDED,
        Decimal("500.00"),
        "RUB",
    )

    with pytest.raises(WireError) as raised:
        refund_of({**refund, "payment_id": None, "status": "done"})
    assert "'payment_id'" in str(raised.value)
    assert "'status'" in str(raised.value)
