"""Creating a payment: what paymux sends to AliKassa, and what it refuses to send.

Every test here talks to the sandbox over real loopback HTTP; the sandbox records the exact bytes
and headers it received.
"""

from __future__ import annotations

import base64
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

import paymux
from paymux.providers.alikassa import AliKassaProvider
from paymux.providers.alikassa.sandbox import Merchant, Sandbox
from support import payment_request

DOCUMENTED_ORDER = [
    "amount",
    "order_id",
    "service",
    "desc",
    "lifetime",
    "customer_ip",
    "customer_account",
    "customer_email",
    "customer_first_name",
    "customer_last_name",
    "customer_address",
    "customer_phone",
    "customer_post_code",
    "customer_state",
    "customer_city",
    "customer_browser_user_agent",
    "customer_birth_date",
    "success_redirect_id",
    "fail_redirect_id",
    "notification_endpoint_id",
    "success_redirect_url",
    "fail_redirect_url",
    "notification_endpoint_url",
    "project_url",
]
"""The create fields in the order AliKassa's Create Payment page lists them."""

IP = "18.191.80.10"
USER_AGENT = "Mozilla/5.0 (X11; Linux)"
URL_PREFIX = "https://shop.example/"


def customer(**fields: Any) -> paymux.Customer:
    """A valid customer; keyword arguments add or replace its fields."""
    values: dict[str, Any] = {"ip": IP, "user_agent": USER_AGENT}
    values.update(fields)
    return paymux.Customer(**values)


def options(**extra: Any) -> dict[str, Any]:
    """The AliKassa options of a valid request, plus `extra`."""
    return {"service": "payment_card_rub_hpp", **extra}


def url_of_length(length: int) -> str:
    return URL_PREFIX + "a" * (length - len(URL_PREFIX))


def email_of_length(length: int) -> str:
    domain = "@example.com"
    return "a" * (length - len(domain)) + domain


def full_request() -> paymux.PaymentRequest:
    """A request with every field AliKassa documents, including characters PHP escapes."""
    return paymux.PaymentRequest(
        order_id="order/2024-0001",
        amount=Decimal("1234.50"),
        currency="RUB",
        description="Café order 42 / 💳",
        lifetime=1800,
        success_url="https://shop.example/paid?order=1",
        fail_url="https://shop.example/failed",
        notification_url="https://shop.example/hooks/alikassa",
        customer=paymux.Customer(
            ip="2001:db8::1",
            user_agent="Mozilla/5.0 (X11; Linux x86_64)",
            account="cust-17",
            email="anna@example.com",
            phone="+79001234567",
            first_name="Анна",
            last_name="O'Brien",
            address="1 Main St & Co <HQ>",
            city="Berlin",
            state="BE",
            post_code="01067",
            birth_date=date(1992, 8, 10),
        ),
        options={
            "service": "payment_card_rub_hpp",
            "success_redirect_id": 1,
            "fail_redirect_id": 2,
            "notification_endpoint_id": 5,
            "project_url": "https://aggregator.example/",
        },
    )


FULL_WIRE_FIELDS: dict[str, Any] = {
    "amount": "1234.50",
    "order_id": "order/2024-0001",
    "service": "payment_card_rub_hpp",
    "desc": "Café order 42 / 💳",
    "lifetime": 1800,
    "customer_ip": "2001:db8::1",
    "customer_account": "cust-17",
    "customer_email": "anna@example.com",
    "customer_first_name": "Анна",
    "customer_last_name": "O'Brien",
    "customer_address": "1 Main St & Co <HQ>",
    "customer_phone": "+79001234567",
    "customer_post_code": "01067",
    "customer_state": "BE",
    "customer_city": "Berlin",
    "customer_browser_user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
    "customer_birth_date": "1992-08-10",
    "success_redirect_id": 1,
    "fail_redirect_id": 2,
    "notification_endpoint_id": 5,
    "success_redirect_url": "https://shop.example/paid?order=1",
    "fail_redirect_url": "https://shop.example/failed",
    "notification_endpoint_url": "https://shop.example/hooks/alikassa",
    "project_url": "https://aggregator.example/",
}
"""What `full_request()` must become on the wire."""

FULL_BODY = (
    rb'{"amount":"1234.50","order_id":"order\/2024-0001","service":"payment_card_rub_hpp",'
    rb'"desc":"Caf\u00e9 order 42 \/ \ud83d\udcb3","lifetime":1800,"customer_ip":"2001:db8::1",'
    rb'"customer_account":"cust-17","customer_email":"anna@example.com",'
    rb'"customer_first_name":"\u0410\u043d\u043d\u0430","customer_last_name":"O'
    + b"'"
    + rb'Brien","customer_address":"1 Main St & Co <HQ>","customer_phone":"+79001234567",'
    rb'"customer_post_code":"01067","customer_state":"BE","customer_city":"Berlin",'
    rb'"customer_browser_user_agent":"Mozilla\/5.0 (X11; Linux x86_64)",'
    rb'"customer_birth_date":"1992-08-10","success_redirect_id":1,"fail_redirect_id":2,'
    rb'"notification_endpoint_id":5,"success_redirect_url":"https:\/\/shop.example\/paid?order=1",'
    rb'"fail_redirect_url":"https:\/\/shop.example\/failed",'
    rb'"notification_endpoint_url":"https:\/\/shop.example\/hooks\/alikassa",'
    rb'"project_url":"https:\/\/aggregator.example\/"}'
)
"""`full_request()` as PHP's `json_encode` writes it: no spaces, `\\/`, lowercase `\\uXXXX`,
surrogate pairs above U+FFFF, `' < > &` raw."""


def public_key_of(merchant: Merchant) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(merchant.payment_certificate.public_key.read_bytes())
    assert isinstance(key, rsa.RSAPublicKey)
    return key


# -- a successful create --------------------------------------------------------------------


def test_every_optional_field_reaches_the_gateway_as_the_documented_wire_field(
    provider: AliKassaProvider, sandbox: Sandbox
) -> None:
    provider.create(full_request())

    stored = sandbox.payment("order/2024-0001").request
    assert stored == FULL_WIRE_FIELDS
    assert list(stored) == DOCUMENTED_ORDER


def test_the_body_is_php_json_encode_form_in_the_documented_order(
    provider: AliKassaProvider, sandbox: Sandbox
) -> None:
    provider.create(full_request())

    (received,) = sandbox.requests
    assert received.method == "POST"
    assert received.path == "/v1/payment"
    assert received.body == FULL_BODY


def test_the_sign_header_verifies_the_exact_body_bytes_with_the_merchant_public_key(
    provider: AliKassaProvider, sandbox: Sandbox, merchant: Merchant
) -> None:
    provider.create(full_request())

    (received,) = sandbox.requests
    assert received.headers["account"] == merchant.account
    assert received.headers["content-type"] == "application/json"
    signature = base64.b64decode(received.headers["sign"], validate=True)
    sha1 = hashes.SHA1()  # noqa: S303 - the protocol's default digest (PHP openssl_sign)
    public_key_of(merchant).verify(signature, received.body, padding.PKCS1v15(), sha1)


def test_create_returns_a_pending_payment_with_the_gateway_id_and_payment_page(
    provider: AliKassaProvider, sandbox: Sandbox
) -> None:
    payment = provider.create(full_request())

    stored = sandbox.payment("order/2024-0001")
    assert payment.provider == "alikassa"
    assert payment.status is paymux.PaymentStatus.PENDING
    assert payment.id == str(stored.id)
    assert payment.order_id == "order/2024-0001"
    assert payment.redirect_url == stored.url
    assert isinstance(payment.amount, Decimal)
    assert payment.amount == Decimal("1234.50")
    assert payment.currency == "RUB"
    assert payment.paid_amount is None
    assert payment.is_partial is False


def test_unset_optional_fields_are_left_out_of_the_body_not_sent_as_null(
    provider: AliKassaProvider, sandbox: Sandbox
) -> None:
    provider.create(payment_request(order_id="minimal-1"))

    (received,) = sandbox.requests
    assert received.body == (
        b'{"amount":"500.00","order_id":"minimal-1","service":"payment_card_rub_hpp",'
        b'"customer_ip":"18.191.80.10","customer_browser_user_agent":"Mozilla\\/5.0 (X11; Linux)"}'
    )


def test_an_integer_amount_travels_as_a_json_integer_and_comes_back_as_decimal(
    provider: AliKassaProvider, sandbox: Sandbox
) -> None:
    """The gateway's own samples send `'amount' => 500`; money in paymux is always Decimal."""
    payment = provider.create(payment_request(order_id="int-amount", amount=500))

    assert sandbox.requests[-1].body.startswith(b'{"amount":500,"order_id":"int-amount",')
    assert isinstance(payment.amount, Decimal)
    assert payment.amount == Decimal("500")


def test_the_service_setting_is_used_when_the_request_names_no_service(
    merchant: Merchant, sandbox: Sandbox
) -> None:
    with paymux.connect({**merchant.settings, "service": "payment_card_eur_card"}) as provider:
        payment = provider.create(payment_request(currency="EUR", options={}))

    assert sandbox.payment(payment.id).request["service"] == "payment_card_eur_card"
    assert payment.currency == "EUR"


def test_values_exactly_at_every_documented_limit_are_accepted(
    provider: AliKassaProvider, sandbox: Sandbox
) -> None:
    request = payment_request(
        order_id="o" * 128,
        amount=Decimal("5000.00"),
        description="d" * 128,
        lifetime=3600,
        success_url=url_of_length(255),
        fail_url=url_of_length(255),
        notification_url=url_of_length(255),
        customer=customer(
            user_agent="u" * 2000,
            account="a" * 50,
            email=email_of_length(50),
            phone="1" * 12,
            first_name="f" * 50,
            last_name="l" * 50,
            address="a" * 50,
            state="s" * 50,
            city="c" * 20,
            post_code="9" * 12,
        ),
        options=options(success_redirect_id=1, fail_redirect_id=1, notification_endpoint_id=1),
    )

    payment = provider.create(request)

    stored = sandbox.payment(payment.id).request
    assert stored["order_id"] == "o" * 128
    assert stored["customer_browser_user_agent"] == "u" * 2000
    assert stored["notification_endpoint_url"] == url_of_length(255)


@pytest.mark.parametrize("lifetime", [900, 3600])
def test_both_ends_of_the_lifetime_range_are_accepted(
    provider: AliKassaProvider, sandbox: Sandbox, lifetime: int
) -> None:
    payment = provider.create(payment_request(lifetime=lifetime))

    assert sandbox.payment(payment.id).request["lifetime"] == lifetime


def test_the_largest_decimal_11_2_amount_passes_local_validation(
    provider: AliKassaProvider, sandbox: Sandbox
) -> None:
    """999999999.99 fits decimal(11.2); only the service's own maximum refuses it."""
    with pytest.raises(paymux.AmountOutOfRange):
        provider.create(payment_request(amount=Decimal("999999999.99")))

    assert len(sandbox.requests) == 1


# -- refused before any request is sent -------------------------------------------------------


def test_a_currency_the_service_does_not_take_is_refused_before_sending(
    provider: AliKassaProvider, sandbox: Sandbox
) -> None:
    with pytest.raises(paymux.ValidationError) as raised:
        provider.create(payment_request(currency="EUR"))

    assert set(raised.value.fields) == {"currency"}
    assert sandbox.requests == []


def test_an_unknown_option_is_refused_before_sending(
    provider: AliKassaProvider, sandbox: Sandbox
) -> None:
    with pytest.raises(paymux.ValidationError) as raised:
        provider.create(payment_request(options=options(sucess_redirect_id=1)))

    assert set(raised.value.fields) == {"options.sucess_redirect_id"}
    assert sandbox.requests == []


def test_a_float_amount_is_refused_before_sending(
    provider: AliKassaProvider, sandbox: Sandbox
) -> None:
    with pytest.raises(paymux.ValidationError) as raised:
        provider.create(payment_request(amount=500.0))

    assert set(raised.value.fields) == {"amount"}
    assert sandbox.requests == []


LIMITS = [
    pytest.param({"amount": Decimal("0")}, "amount", id="amount-zero"),
    pytest.param({"amount": Decimal("0.00")}, "amount", id="amount-zero-with-places"),
    pytest.param({"amount": Decimal("-1.00")}, "amount", id="amount-negative"),
    pytest.param({"amount": Decimal("1.001")}, "amount", id="amount-3-decimals"),
    pytest.param({"amount": Decimal("1234567890")}, "amount", id="amount-10-integer-digits"),
    pytest.param({"order_id": "o" * 129}, "order_id", id="order_id-129"),
    pytest.param({"order_id": ""}, "order_id", id="order_id-empty"),
    pytest.param({"options": {"service": "s" * 101}}, "options.service", id="service-101"),
    pytest.param({"options": {}}, "options.service", id="service-missing"),
    pytest.param({"description": "d" * 129}, "description", id="desc-129"),
    pytest.param({"lifetime": 899}, "lifetime", id="lifetime-899"),
    pytest.param({"lifetime": 3601}, "lifetime", id="lifetime-3601"),
    pytest.param({"customer": customer(ip="256.1.1.1")}, "customer.ip", id="ip-out-of-range"),
    pytest.param({"customer": customer(ip="localhost")}, "customer.ip", id="ip-a-name"),
    pytest.param(
        {"customer": customer(user_agent="u" * 2001)}, "customer.user_agent", id="user-agent-2001"
    ),
    pytest.param(
        {"customer": customer(user_agent="")}, "customer.user_agent", id="user-agent-empty"
    ),
    pytest.param(
        {"customer": customer(account="a" * 51)}, "customer.account", id="customer-account-51"
    ),
    pytest.param(
        {"customer": customer(email="anna.example.com")}, "customer.email", id="email-invalid"
    ),
    pytest.param(
        {"customer": customer(email=email_of_length(51))}, "customer.email", id="email-51"
    ),
    pytest.param({"customer": customer(phone="1" * 13)}, "customer.phone", id="phone-13"),
    pytest.param({"customer": customer(city="c" * 21)}, "customer.city", id="city-21"),
    pytest.param(
        {"customer": customer(first_name="f" * 51)}, "customer.first_name", id="first-name-51"
    ),
    pytest.param(
        {"customer": customer(last_name="l" * 51)}, "customer.last_name", id="last-name-51"
    ),
    pytest.param({"customer": customer(address="a" * 51)}, "customer.address", id="address-51"),
    pytest.param({"customer": customer(state="s" * 51)}, "customer.state", id="state-51"),
    pytest.param(
        {"customer": customer(post_code="10115AB")}, "customer.post_code", id="post-code-letters"
    ),
    pytest.param(
        {"customer": customer(post_code="1" * 13)}, "customer.post_code", id="post-code-13-digits"
    ),
    pytest.param({"success_url": url_of_length(256)}, "success_url", id="success-url-256"),
    pytest.param({"fail_url": url_of_length(256)}, "fail_url", id="fail-url-256"),
    pytest.param(
        {"notification_url": url_of_length(256)}, "notification_url", id="notification-url-256"
    ),
    pytest.param({"success_url": "not a url"}, "success_url", id="success-url-not-a-url"),
    pytest.param({"fail_url": "shop.example/failed"}, "fail_url", id="fail-url-no-scheme"),
    pytest.param(
        {"notification_url": "ftp://shop.example/hook"},
        "notification_url",
        id="notification-url-not-http",
    ),
    pytest.param(
        {"options": options(project_url="not a url")},
        "options.project_url",
        id="project-url-not-a-url",
    ),
    pytest.param(
        {"options": options(success_redirect_id=0)},
        "options.success_redirect_id",
        id="success-redirect-id-0",
    ),
    pytest.param(
        {"options": options(fail_redirect_id=0)},
        "options.fail_redirect_id",
        id="fail-redirect-id-0",
    ),
    pytest.param(
        {"options": options(notification_endpoint_id=0)},
        "options.notification_endpoint_id",
        id="notification-endpoint-id-0",
    ),
    pytest.param(
        {"options": options(success_redirect_id="1")},
        "options.success_redirect_id",
        id="redirect-id-as-text",
    ),
]


@pytest.mark.parametrize(("overrides", "field"), LIMITS)
def test_a_value_beyond_a_documented_limit_is_refused_before_any_request(
    provider: AliKassaProvider, sandbox: Sandbox, overrides: dict[str, Any], field: str
) -> None:
    """The error names the field as the caller knows it, not by AliKassa's wire name."""
    with pytest.raises(paymux.ValidationError) as raised:
        provider.create(payment_request(**overrides))

    assert set(raised.value.fields) == {field}
    assert raised.value.fields[field]
    assert sandbox.requests == []


def test_every_invalid_field_is_reported_at_once(
    provider: AliKassaProvider, sandbox: Sandbox
) -> None:
    with pytest.raises(paymux.ValidationError) as raised:
        provider.create(
            payment_request(
                amount=Decimal("0"),
                description="d" * 129,
                customer=customer(email="nope", city="c" * 21),
            )
        )

    assert set(raised.value.fields) == {
        "amount",
        "description",
        "customer.email",
        "customer.city",
    }
    assert sandbox.requests == []


def test_the_validation_error_is_not_a_provider_error(provider: AliKassaProvider) -> None:
    """Input errors are the caller's to fix; they must not be mistaken for a gateway refusal."""
    with pytest.raises(paymux.ValidationError) as raised:
        provider.create(payment_request(amount=Decimal("0")))

    assert not isinstance(raised.value, paymux.ProviderError)
    assert raised.value.http_status is None
    assert raised.value.request_id is None


def test_an_exact_amount_written_with_extra_zeros_is_sent_with_two_places(
    provider: AliKassaProvider, sandbox: Sandbox
) -> None:
    """`Decimal("100.000")` is exactly 100.00: sent as such, never rounded or refused."""
    provider.create(payment_request(amount=Decimal("100.000")))

    assert json.loads(sandbox.requests[-1].body)["amount"] == "100.00"


def test_an_amount_with_a_third_significant_decimal_is_refused_before_sending(
    provider: AliKassaProvider, sandbox: Sandbox
) -> None:
    with pytest.raises(paymux.ValidationError) as raised:
        provider.create(payment_request(amount=Decimal("100.005")))

    assert "amount" in raised.value.fields
    assert sandbox.requests == []


@pytest.mark.parametrize("amount", ["1e999999999999999999", "1e-999999999", "NaN", "Infinity"])
def test_an_amount_no_gateway_could_take_is_refused_without_writing_it_out(
    provider: AliKassaProvider, sandbox: Sandbox, amount: str
) -> None:
    with pytest.raises(paymux.ValidationError) as raised:
        provider.create(payment_request(amount=Decimal(amount)))

    assert "amount" in raised.value.fields
    assert sandbox.requests == []


# -- create is idempotent per order -----------------------------------------------------------


def test_two_threads_creating_one_order_at_once_get_the_same_payment(
    provider: AliKassaProvider, sandbox: Sandbox
) -> None:
    """A double click on "Pay": both calls reach the gateway; one meets "order_id exists"."""
    request = payment_request()
    start = threading.Barrier(2)

    def create() -> paymux.Payment:
        start.wait()
        return provider.create(request)

    with ThreadPoolExecutor(max_workers=2) as pool:
        first, second = (future.result() for future in [pool.submit(create) for _ in range(2)])

    stored = sandbox.payment(request.order_id)
    assert [p.order_id for p in sandbox.payments()] == [request.order_id]
    assert first.id == second.id == str(stored.id)
    assert first.redirect_url == second.redirect_url == stored.url
    assert first.amount == second.amount == request.amount


def test_a_create_after_one_killed_mid_way_returns_the_payment_it_left(
    merchant: Merchant, sandbox: Sandbox
) -> None:
    """The first process created the payment and died before storing it; its retry adopts it."""
    request = payment_request()
    with paymux.connect(merchant.settings) as killed:
        killed.create(request)

    with paymux.connect(merchant.settings) as restarted:
        payment = restarted.create(request)

    stored = sandbox.payment(request.order_id)
    assert len(sandbox.payments()) == 1
    assert payment.id == str(stored.id)
    assert payment.order_id == request.order_id
    assert payment.redirect_url == stored.url
    assert payment.status is paymux.PaymentStatus.PENDING


def test_a_second_create_of_an_order_with_another_amount_raises_order_conflict(
    provider: AliKassaProvider, sandbox: Sandbox
) -> None:
    """It quotes the refused create's exchange, and the payment the order_id already holds."""
    earlier = provider.create(payment_request(amount=Decimal("500.00")))

    with pytest.raises(paymux.OrderConflict) as raised:
        provider.create(payment_request(order_id=earlier.order_id, amount=Decimal("600.00")))

    refused = [r for r in sandbox.requests if r.path == "/v1/payment"][-1]
    assert raised.value.payment.id == earlier.id
    assert raised.value.order_id == earlier.order_id
    assert "amount 500" in raised.value.message
    assert raised.value.http_status == 400
    assert raised.value.body == {"message": "order_id exists"}
    assert raised.value.request_id == refused.headers["x-request-id"]
    assert len(sandbox.payments()) == 1
