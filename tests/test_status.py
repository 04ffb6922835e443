"""Asking for a payment's status by AliKassa's id or the shop's order_id, in paymux terms."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from decimal import Decimal

import pytest

import paymux
from paymux import PaymentStatus
from paymux.providers.alikassa import AliKassaProvider
from paymux.providers.alikassa.sandbox import Merchant, Sandbox
from proxy import STATUS, Canned, Proxy
from support import payment_request


def test_status_by_payment_id_and_by_order_id_describe_the_same_payment(
    provider: AliKassaProvider, sandbox: Sandbox
) -> None:
    created = provider.create(payment_request(order_id="order-77"))

    by_id = provider.status(payment_id=created.id)
    by_order = provider.status(order_id="order-77")

    assert by_id == by_order
    assert by_id.id == created.id
    assert by_id.order_id == "order-77"
    assert [json.loads(request.body) for request in sandbox.requests[1:]] == [
        {"id": created.id},
        {"order_id": "order-77"},
    ]
    assert all(request.path == "/v1/payment/status" for request in sandbox.requests[1:])


@pytest.mark.parametrize(
    ("payment_id", "order_id"),
    [
        pytest.param("100000001", "order-1", id="both"),
        pytest.param(None, None, id="neither"),
    ],
)
def test_status_needs_exactly_one_reference_and_checks_before_sending(
    provider: AliKassaProvider, sandbox: Sandbox, payment_id: str | None, order_id: str | None
) -> None:
    with pytest.raises(paymux.ValidationError) as raised:
        provider.status(payment_id=payment_id, order_id=order_id)

    assert set(raised.value.fields) == {"payment_id"}
    assert sandbox.requests == []


@pytest.mark.parametrize(
    ("reference", "field"),
    [
        pytest.param({"payment_id": ""}, "payment_id", id="empty-payment-id"),
        pytest.param({"order_id": ""}, "order_id", id="empty-order-id"),
        pytest.param({"order_id": "o" * 129}, "order_id", id="order-id-129"),
    ],
)
def test_an_invalid_reference_is_refused_before_sending(
    provider: AliKassaProvider, sandbox: Sandbox, reference: dict[str, str], field: str
) -> None:
    """The error names the argument the caller passed."""
    with pytest.raises(paymux.ValidationError) as raised:
        provider.status(**reference)

    assert set(raised.value.fields) == {field}
    assert sandbox.requests == []


def test_a_new_payment_is_pending_with_nothing_paid_yet(
    provider: AliKassaProvider, sandbox: Sandbox
) -> None:
    created = provider.create(payment_request(amount=Decimal("500.00")))

    payment = provider.status(payment_id=created.id)

    assert payment.status is PaymentStatus.PENDING
    assert payment.amount == Decimal("500.00")
    assert payment.paid_amount is None
    assert payment.fee is None
    assert payment.is_partial is False
    assert payment.hold_amount is None
    assert payment.redirect_url == sandbox.payment(created.id).url


def test_a_fully_paid_payment_is_paid_with_the_paid_amount_and_commission(
    provider: AliKassaProvider, sandbox: Sandbox
) -> None:
    created = provider.create(payment_request(amount=Decimal("500.00")))
    sandbox.settle(created.id, "paid")

    payment = provider.status(payment_id=created.id)

    assert payment.status is PaymentStatus.PAID
    assert payment.is_partial is False
    assert payment.amount == Decimal("500.00")
    assert payment.paid_amount == Decimal("500.00")
    assert payment.fee == Decimal("15.00")


def test_a_partial_payment_is_paid_and_marked_partial_with_the_smaller_paid_amount(
    provider: AliKassaProvider, sandbox: Sandbox
) -> None:
    created = provider.create(payment_request(amount=Decimal("500.00")))
    sandbox.settle(created.id, "paid", paid_amount=Decimal("123.45"))

    payment = provider.status(order_id=created.order_id)

    assert payment.status is PaymentStatus.PAID
    assert payment.is_partial is True
    assert payment.paid_amount == Decimal("123.45")
    assert payment.amount == Decimal("500.00")
    assert payment.paid_amount < payment.amount
    assert payment.fee == Decimal("3.70")


@pytest.mark.parametrize(
    ("gateway_status", "expected"),
    [
        pytest.param("cancel", PaymentStatus.CANCELED, id="cancel"),
        pytest.param("fail", PaymentStatus.FAILED, id="fail"),
    ],
)
def test_a_canceled_or_failed_payment_maps_to_its_status_with_nothing_paid(
    provider: AliKassaProvider, sandbox: Sandbox, gateway_status: str, expected: PaymentStatus
) -> None:
    created = provider.create(payment_request())
    sandbox.settle(created.id, gateway_status)

    payment = provider.status(payment_id=created.id)

    assert payment.status is expected
    assert payment.paid_amount is None
    assert payment.is_partial is False


def test_amounts_are_exact_decimals_not_floats(
    provider: AliKassaProvider, sandbox: Sandbox
) -> None:
    """The gateway writes amounts with nine places ("10.010000000"); no binary rounding."""
    created = provider.create(
        payment_request(amount=Decimal("10.01"), options={"service": "payment_card_eur_card"})
    )
    sandbox.settle(created.id, "paid", paid_amount=Decimal("3.33"))

    payment = provider.status(payment_id=created.id)

    assert payment.raw["amount"] == "10.010000000"
    for amount, exact in [
        (payment.amount, Decimal("10.01")),
        (payment.paid_amount, Decimal("3.33")),
        (payment.fee, Decimal("0.10")),
    ]:
        assert isinstance(amount, Decimal)
        assert amount == exact


@pytest.mark.parametrize(
    ("service", "currency"),
    [
        ("payment_card_rub_hpp", "RUB"),
        ("payment_card_eur_card", "EUR"),
        ("payment_card_usd_card", "USD"),
    ],
)
def test_the_currency_comes_from_the_service_even_when_the_request_named_none(
    provider: AliKassaProvider, service: str, currency: str
) -> None:
    created = provider.create(payment_request(options={"service": service}))
    assert created.currency is None

    assert provider.status(payment_id=created.id).currency == currency


@pytest.mark.parametrize(
    ("status", "final"),
    [
        (PaymentStatus.PENDING, False),
        (PaymentStatus.UNKNOWN, False),
        (PaymentStatus.PAID, True),
        (PaymentStatus.CANCELED, True),
        (PaymentStatus.FAILED, True),
    ],
)
def test_only_paid_canceled_and_failed_are_final(status: PaymentStatus, final: bool) -> None:
    assert status.is_final is final


def test_the_final_statuses_are_exactly_the_settled_ones(
    provider: AliKassaProvider, sandbox: Sandbox
) -> None:
    """Every status the gateway can report maps to a final status once it is settled."""
    seen: dict[str, bool] = {}
    for gateway_status in ("paid", "cancel", "fail"):
        created = provider.create(payment_request())
        seen["wait"] = provider.status(payment_id=created.id).status.is_final
        sandbox.settle(created.id, gateway_status)
        seen[gateway_status] = provider.status(payment_id=created.id).status.is_final

    assert seen == {"wait": False, "paid": True, "cancel": True, "fail": True}


# -- an answer is checked against the question --------------------------------------------------


@pytest.fixture
def via_proxy(merchant: Merchant, sandbox: Sandbox) -> Iterator[tuple[AliKassaProvider, Proxy]]:
    """A provider talking to the sandbox through the scriptable proxy."""
    proxy = Proxy(sandbox.url)
    try:
        with paymux.connect({**merchant.settings, "base_url": proxy.url}) as provider:
            assert isinstance(provider, AliKassaProvider)
            yield provider, proxy
    finally:
        proxy.close()


@pytest.mark.parametrize("reference", ["payment_id", "order_id"])
def test_a_status_answer_about_another_payment_is_an_invalid_response(
    via_proxy: tuple[AliKassaProvider, Proxy], sandbox: Sandbox, reference: str
) -> None:
    provider, proxy = via_proxy
    ours = provider.create(payment_request())
    other = provider.create(payment_request())
    proxy.then(STATUS, Canned(200, json.dumps(sandbox.payment(other.id).status_body()).encode()))

    with pytest.raises(paymux.InvalidResponse, match="the answer is about") as raised:
        provider.status(**{reference: ours.id if reference == "payment_id" else ours.order_id})

    assert raised.value.http_status == 200
    assert raised.value.request_id == proxy.received[-1].headers["x-request-id"]


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="nested-too-deep"),
        pytest.param(b'{"id":1e999999999,"payment_status":"wait"}', id="id-with-a-huge-exponent"),
        pytest.param(b'{"id":1,"payment_status":"wait","amount":"1e999999999"}', id="huge-amount"),
    ],
)
def test_a_hostile_status_answer_is_an_invalid_response(
    via_proxy: tuple[AliKassaProvider, Proxy], answer: bytes
) -> None:
    provider, proxy = via_proxy
    proxy.then(STATUS, Canned(200, answer))

    with pytest.raises(paymux.InvalidResponse) as raised:
        provider.status(payment_id="1")

    assert raised.value.http_status == 200


@pytest.mark.parametrize(
    ("answer", "named"),
    [
        pytest.param({"payment_status": "wait"}, "'id': ['Missing data", id="no-id"),
        pytest.param({"id": 1}, "'payment_status': ['Missing data", id="no-status"),
        pytest.param(
            {"id": True, "payment_status": "wait"}, "'id': ['Not a valid integer", id="bool-id"
        ),
        pytest.param(
            {"id": "1x", "payment_status": "wait"}, "'id': ['Not a valid integer", id="text-id"
        ),
        pytest.param(
            {"id": 1, "payment_status": 7},
            "'payment_status': ['Not a valid string",
            id="number-status",
        ),
        pytest.param(
            {"id": 1, "payment_status": "wait", "amount": "five"},
            "'amount': ['Not a valid decimal amount",
            id="word-amount",
        ),
        pytest.param(
            {"id": 1, "payment_status": "wait", "is_partial_payment": "maybe"},
            "'is_partial_payment': ['Not a valid boolean",
            id="word-flag",
        ),
    ],
)
def test_a_status_answer_with_a_malformed_field_names_it(
    via_proxy: tuple[AliKassaProvider, Proxy], answer: dict[str, object], named: str
) -> None:
    provider, proxy = via_proxy
    proxy.then(STATUS, Canned(200, json.dumps(answer).encode()))

    with pytest.raises(paymux.InvalidResponse, match=re.escape(named)):
        provider.status(payment_id="1")


def test_a_status_answer_keeps_the_fields_paymux_does_not_read_in_raw(
    via_proxy: tuple[AliKassaProvider, Proxy],
) -> None:
    provider, proxy = via_proxy
    answer = {"id": 1, "payment_status": "paid", "amount": "500.00", "new_field": {"x": [1]}}
    proxy.then(STATUS, Canned(200, json.dumps(answer).encode()))

    payment = provider.status(payment_id="1")

    assert payment.status is PaymentStatus.PAID
    assert payment.amount == Decimal("500.00")
    assert payment.is_partial is False
    assert payment.raw["new_field"] == {"x": [1]}
