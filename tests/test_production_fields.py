"""What production integrations send and receive, understood by the client and the sandbox.

The gateway validates like Laravel: fields it has no rule for are ignored, and which fields are
required depends on the service. Every test talks to the sandbox over real loopback HTTP.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

import paymux
from paymux.providers.alikassa import AliKassaProvider, Signer
from paymux.providers.alikassa.sandbox import Merchant, Sandbox
from proxy import CREATE, Canned, Proxy
from support import payment_request, unique_order_id

CARD_NUMBER_SERVICE = "payment_card_number_rub_card"
VIRTUAL_ACCOUNT_SERVICE = "virtual_account_rub_hpp"
BROWSER = "Mozilla/5.0 (X11; Linux)"


def signed_create(
    sandbox: Sandbox, merchant: Merchant, fields: dict[str, Any]
) -> requests.Response:
    """`POST v1/payment` as a client other than paymux sends it: `fields` as JSON, signed."""
    body = json.dumps(fields).encode()
    signer = Signer.from_certificate_dir(merchant.payment_certificate.path)
    headers = {
        "Content-Type": "application/json",
        "Account": merchant.account,
        "Sign": signer.sign(body),
    }
    return requests.post(f"{sandbox.url}/v1/payment", data=body, headers=headers, timeout=5)


def create_fields(**changes: Any) -> dict[str, Any]:
    """A valid create body for a card service; keyword arguments add or replace fields."""
    fields: dict[str, Any] = {
        "amount": "500.00",
        "order_id": unique_order_id(),
        "service": "payment_card_rub_hpp",
        "customer_ip": "18.191.80.10",
        "customer_browser_user_agent": BROWSER,
    }
    fields.update(changes)
    return {name: value for name, value in fields.items() if value is not None}


def sent_bodies(sandbox: Sandbox) -> list[dict[str, Any]]:
    return [json.loads(request.body) for request in sandbox.requests if request.path == CREATE]


@pytest.fixture
def proxy(sandbox: Sandbox) -> Iterator[Proxy]:
    running = Proxy(sandbox.url)
    yield running
    running.close()


# -- fields the gateway has no rule for -------------------------------------------------------


def test_create_fields_the_gateway_has_no_rule_for_are_accepted_and_kept(
    sandbox: Sandbox, merchant: Merchant
) -> None:
    fields = create_fields(customer_referrer="partner-7", extra={"campaign": 3})

    answer = signed_create(sandbox, merchant, fields)

    assert answer.status_code == 200, answer.text
    stored = sandbox.payment(answer.json()["id"])
    assert stored.request["customer_referrer"] == "partner-7"
    assert stored.request["extra"] == {"campaign": 3}
    listed = requests.get(f"{sandbox.url}/sandbox/payments", timeout=5).json()["payments"]
    shown = next(payment for payment in listed if payment["id"] == answer.json()["id"])
    assert shown["request"]["customer_referrer"] == "partner-7"
    assert shown["request"]["extra"] == {"campaign": 3}


def test_the_sandbox_still_refuses_a_known_field_that_breaks_its_rule_beside_unknown_ones(
    sandbox: Sandbox, merchant: Merchant
) -> None:
    answer = signed_create(sandbox, merchant, create_fields(lifetime=60, customer_referrer="x"))

    assert answer.status_code == 400
    assert list(answer.json()["errors"]) == ["lifetime"]


def test_an_integer_order_id_is_accepted_and_kept_as_its_decimal_text(
    sandbox: Sandbox, merchant: Merchant, provider: AliKassaProvider
) -> None:
    """AliKassa's Go sample sends `order_id` as a JSON number."""
    order_id = time.time_ns()

    answer = signed_create(sandbox, merchant, create_fields(order_id=order_id))

    assert answer.status_code == 200, answer.text
    assert sandbox.payment(answer.json()["id"]).order_id == str(order_id)
    assert provider.status(order_id=str(order_id)).id == str(answer.json()["id"])


# -- customer_code and customer_user_id -------------------------------------------------------


def test_customer_code_and_customer_user_id_options_are_sent_and_accepted(
    provider: AliKassaProvider, sandbox: Sandbox
) -> None:
    options = {
        "service": CARD_NUMBER_SERVICE,
        "customer_code": "100000000111",
        "customer_user_id": "user-17",
    }

    payment = provider.create(payment_request(options=options))

    (body,) = sent_bodies(sandbox)
    assert (body["customer_code"], body["customer_user_id"]) == ("100000000111", "user-17")
    stored = sandbox.payment(payment.id).request
    assert (stored["customer_code"], stored["customer_user_id"]) == ("100000000111", "user-17")


def test_a_whole_number_customer_user_id_travels_as_a_json_integer(
    provider: AliKassaProvider, sandbox: Sandbox
) -> None:
    provider.create(
        payment_request(options={"service": "payment_card_rub_hpp", "customer_user_id": 17})
    )

    (body,) = sent_bodies(sandbox)
    assert body["customer_user_id"] == 17


CODE_LENGTH = "Length must be between 1 and 50."
USER_ID_RULE = "Must be text of 1 to 50 characters or a whole number."


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("customer_code", "", CODE_LENGTH),
        ("customer_code", "1" * 51, CODE_LENGTH),
        ("customer_code", 100000000111, "Not a valid string."),
        ("customer_user_id", "", USER_ID_RULE),
        ("customer_user_id", "u" * 51, USER_ID_RULE),
        ("customer_user_id", True, USER_ID_RULE),
        ("customer_user_id", -1, USER_ID_RULE),
    ],
)
def test_a_malformed_customer_code_or_user_id_is_refused_before_sending(
    provider: AliKassaProvider, sandbox: Sandbox, option: str, value: object, message: str
) -> None:
    request = payment_request(options={"service": "payment_card_rub_hpp", option: value})

    with pytest.raises(paymux.ValidationError) as raised:
        provider.create(request)

    assert raised.value.fields == {f"options.{option}": [message]}
    assert sandbox.requests == []


# -- which fields a service requires ----------------------------------------------------------


def test_a_virtual_account_create_without_a_user_agent_succeeds(
    provider: AliKassaProvider, sandbox: Sandbox
) -> None:
    request = payment_request(
        customer=paymux.Customer(ip="18.191.80.10"),
        options={"service": VIRTUAL_ACCOUNT_SERVICE},
    )

    payment = provider.create(request)

    assert payment.status is paymux.PaymentStatus.PENDING
    (body,) = sent_bodies(sandbox)
    assert "customer_browser_user_agent" not in body


def test_a_card_create_without_a_user_agent_is_refused_before_sending(
    provider: AliKassaProvider, sandbox: Sandbox
) -> None:
    request = payment_request(customer=paymux.Customer(ip="18.191.80.10"))

    with pytest.raises(paymux.ValidationError) as raised:
        provider.create(request)

    assert raised.value.fields == {"customer.user_agent": ["Missing data for required field."]}
    assert sandbox.requests == []


def test_a_missing_user_agent_is_reported_with_every_other_invalid_field(
    provider: AliKassaProvider, sandbox: Sandbox
) -> None:
    request = payment_request(customer=paymux.Customer(ip="18.191.80.10", email="not-an-email"))

    with pytest.raises(paymux.ValidationError) as raised:
        provider.create(request)

    assert sorted(raised.value.fields) == ["customer.email", "customer.user_agent"]
    assert sandbox.requests == []


@pytest.mark.parametrize(
    ("service", "http_status"),
    [(VIRTUAL_ACCOUNT_SERVICE, 200), ("payment_card_rub_hpp", 400)],
)
def test_the_sandbox_requires_a_user_agent_by_service(
    sandbox: Sandbox, merchant: Merchant, service: str, http_status: int
) -> None:
    fields = create_fields(service=service, customer_browser_user_agent=None)

    answer = signed_create(sandbox, merchant, fields)

    assert answer.status_code == http_status, answer.text
    if http_status == 400:
        assert list(answer.json()["errors"]) == ["customer_browser_user_agent"]


# -- where the payer sends the money -----------------------------------------------------------


def test_a_card_number_service_answers_with_the_card_the_payer_transfers_to(
    provider: AliKassaProvider, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="paymux")

    payment = provider.create(payment_request(options={"service": CARD_NUMBER_SERVICE}))

    card = sandbox.payment(payment.id).transfer_to
    assert payment.redirect_url is None
    assert payment.destination == paymux.PaymentDestination(
        card_number=card["cardNumber"], holder_name="IVAN PETROV", bank="Sandbox Bank"
    )
    assert re.fullmatch("[0-9]{16}", card["cardNumber"])
    masked = card["cardNumber"][:6] + "******" + card["cardNumber"][-4:]
    assert masked in repr(payment)
    assert card["cardNumber"] not in repr(payment) + caplog.text
    assert "IVAN PETROV" not in repr(payment)


def test_the_payment_destination_repr_masks_the_card_and_its_holder() -> None:
    destination = paymux.PaymentDestination(
        card_number="2200123456781234", holder_name="IVAN PETROV", bank="Sandbox Bank"
    )

    assert repr(destination) == (
        "PaymentDestination(card_number='220012******1234', holder_name='I*********V', "
        "bank='Sandbox Bank')"
    )


def test_a_create_answer_with_neither_a_page_nor_a_card_is_an_unknown_outcome_reconciled(
    merchant: Merchant, sandbox: Sandbox, proxy: Proxy
) -> None:
    """The gateway stored a payment and gave nowhere to pay: paymux looks it up."""
    proxy.then(CREATE, Canned(200, b'{"payment_status": "wait", "id": 1}', forward=True))
    request = payment_request()

    with paymux.connect({**merchant.settings, "base_url": proxy.url}) as via_proxy:
        payment = via_proxy.create(request)

    assert payment.id == str(sandbox.payment(request.order_id).id)
    assert payment.redirect_url == sandbox.payment(request.order_id).url
