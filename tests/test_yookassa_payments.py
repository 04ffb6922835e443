"""YooKassa payments on one shop: what is sent, what comes back, what is refused before
anything is sent, and credentials that never show."""

from __future__ import annotations

import base64
import logging
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from yookassa_support import RETURN_URL, inject, pay, payment_request, settings_of

import paymux
from paymux import PaymentStatus, Provider

if TYPE_CHECKING:
    from paymux_yookassa.emulator import Emulator

# -- one-phase payments --------------------------------------------------------------------------


def test_a_payment_is_created_as_yookassa_documents_it(
    yookassa: Provider, emulator: Emulator
) -> None:
    request = payment_request(amount=Decimal("1234.5"), customer=paymux.Customer(ip="10.1.2.3"))

    created = yookassa.create(request)

    assert created.status is PaymentStatus.PENDING
    assert (created.provider, created.instance, created.order_id) == (
        "yookassa", "default", request.order_id,
    )  # fmt: skip
    assert (created.amount, created.currency) == (Decimal("1234.50"), "RUB")
    assert created.redirect_url == emulator.payment(created.id).confirmation_url
    sent = emulator.requests[-1]
    assert (sent.method, sent.path) == ("POST", "/v3/payments")
    assert sent.json() == {
        "amount": {"value": "1234.50", "currency": "RUB"},
        "capture": True,
        "confirmation": {"type": "redirect", "return_url": RETURN_URL},
        "description": "Order for a test",
        "metadata": {"order_id": request.order_id},
        "client_ip": "10.1.2.3",
    }


def test_the_shop_authenticates_with_basic_auth_and_a_fresh_key_per_create(
    yookassa: Provider, emulator: Emulator
) -> None:
    yookassa.create(payment_request())
    yookassa.create(payment_request())

    first, second = emulator.requests
    assert first.shop_id == second.shop_id == emulator.shop.shop_id
    assert first.headers["idempotence-key"] != second.headers["idempotence-key"]
    assert len(first.headers["idempotence-key"]) <= 64


def test_the_hosts_own_idempotency_key_is_sent_and_a_repeat_returns_the_same_payment(
    yookassa: Provider, emulator: Emulator
) -> None:
    request = payment_request(idempotency_key="checkout-42-attempt-1")

    first = yookassa.create(request)
    again = yookassa.create(request)

    assert again.id == first.id
    assert len(emulator.payments) == 1
    assert {r.headers["idempotence-key"] for r in emulator.requests} == {"checkout-42-attempt-1"}


def test_a_paid_payment_shows_what_was_paid_and_yookassas_fee(
    yookassa: Provider, emulator: Emulator
) -> None:
    created = yookassa.create(payment_request(amount=Decimal("1000.00")))

    pay(created)
    found = yookassa.status(payment_id=created.id)

    assert found.status is PaymentStatus.PAID
    assert found.paid_amount == Decimal("1000.00")
    assert found.fee == Decimal("35.00")  # the emulator's 3.5 %: amount less income_amount
    assert found.redirect_url is None
    assert found.raw["paid"] is True


def test_the_settings_return_url_serves_requests_without_a_success_url(
    emulator: Emulator,
) -> None:
    with paymux.connect(settings_of(emulator, return_url="https://shop.example/thanks")) as shop:
        shop.create(payment_request(success_url=None))

    assert emulator.requests[-1].json()["confirmation"]["return_url"] == (
        "https://shop.example/thanks"
    )


def test_options_reach_yookassa_and_order_id_stays_papmuxs(
    yookassa: Provider, emulator: Emulator
) -> None:
    options = {
        "metadata": {"cart": "c-17"},
        "receipt": {"customer": {"email": "payer@example.com"}, "items": []},
        "locale": "en_US",
        "merchant_customer_id": "customer-9",
    }

    yookassa.create(payment_request(order_id="o-1", options=options))

    sent = emulator.requests[-1].json()
    assert sent["metadata"] == {"cart": "c-17", "order_id": "o-1"}
    assert sent["receipt"] == options["receipt"]
    assert sent["confirmation"]["locale"] == "en_US"
    assert sent["merchant_customer_id"] == "customer-9"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"amount": 10.5}, "amount"),
        ({"amount": Decimal("10.555")}, "amount"),
        ({"amount": Decimal("0")}, "amount"),
        ({"amount": Decimal("NaN")}, "amount"),
        ({"amount": Decimal("1e12")}, "amount"),
        ({"order_id": ""}, "order_id"),
        ({"currency": "rubles"}, "currency"),
        ({"description": "x" * 129}, "description"),
        ({"success_url": None}, "success_url"),
        ({"success_url": "javascript:alert(1)"}, "success_url"),
        ({"customer": paymux.Customer(ip="not an ip")}, "customer.ip"),
        ({"idempotency_key": "k" * 65}, "idempotency_key"),
        ({"idempotency_key": "line\nbreak"}, "idempotency_key"),
        ({"options": {"colour": "red"}}, "options.colour"),
        ({"options": {"metadata": {"order_id": "other"}}}, "options.metadata"),
        ({"options": {"locale": "fr_FR"}}, "options.locale"),
    ],
)
def test_bad_input_is_refused_by_its_generic_name_before_anything_is_sent(
    yookassa: Provider, emulator: Emulator, changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(paymux.ValidationError) as raised:
        yookassa.create(payment_request(**changes))

    assert field in raised.value.fields
    assert emulator.requests == []


def test_status_by_order_id_is_unsupported_and_sends_nothing(
    yookassa: Provider, emulator: Emulator
) -> None:
    with pytest.raises(paymux.Unsupported) as raised:
        yookassa.status(order_id="order-1")

    assert raised.value.operation == "status"
    assert emulator.requests == []


def test_an_id_that_is_not_yookassas_never_reaches_a_url(
    yookassa: Provider, emulator: Emulator
) -> None:
    for call in (
        lambda: yookassa.status(payment_id="../refunds/x"),
        lambda: yookassa.refund_status("a/b"),
        lambda: yookassa.capture("x?y=1"),
        lambda: yookassa.cancel(""),
    ):
        with pytest.raises(paymux.ValidationError):
            call()

    assert emulator.requests == []


# -- credentials and secrets ---------------------------------------------------------------------


def test_a_wrong_secret_key_is_an_authentication_error(emulator: Emulator) -> None:
    settings = settings_of(emulator, secret_key="test_wrong-key")

    with paymux.connect(settings) as stranger, pytest.raises(paymux.AuthenticationError) as raised:
        stranger.create(payment_request())

    assert raised.value.http_status == 401
    assert "invalid_credentials" in str(raised.value)
    assert emulator.payments == []


def test_the_secret_key_never_reaches_logs_reprs_errors_or_described_calls(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    secret = emulator.shop.secret_key
    basic = base64.b64encode(f"{emulator.shop.shop_id}:{secret}".encode()).decode()
    shown: list[str] = []

    with (
        caplog.at_level(logging.DEBUG, logger="paymux"),
        paymux.connect(settings_of(emulator, reconcile=False)) as shop,
    ):
        shown += [repr(shop), str(shop), repr(vars(shop))]
        created = shop.create(payment_request())
        shown += [repr(created), repr(shop.status(payment_id=created.id))]
        inject(emulator, "internal_error", on="create")
        with pytest.raises(paymux.OutcomeUnknown) as unknown:
            shop.create(payment_request())
        shown += [str(unknown.value), repr(unknown.value), repr(unknown.value.call)]
        with pytest.raises(paymux.PaymentNotFound) as missing:
            shop.status(payment_id="2419a771-000f-5000-9000-1edaf29243f2")
        shown += [str(missing.value), repr(missing.value.body)]

    shown += [record.getMessage() for record in caplog.records]
    assert len(caplog.records) > 3
    assert not [text for text in shown if secret in text or basic in text]
