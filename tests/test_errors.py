"""Every way a call can go wrong, and the typed error paymux raises for it.

A refusal (HTTP 400) proves nothing was created and raises a `ProviderError` subclass. A create
whose outcome the gateway leaves open (500, dropped connection, timeout, garbage) is reconciled
by order_id and returns the stored payment; with reconciliation off (or when every lookup fails)
it raises `OutcomeUnknown` instead: the payment may exist, and its order_id is the way to find it.
"""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

import paymux
from paymux import PaymentStatus
from paymux.providers.alikassa import AliKassaProvider, generate_certificate
from paymux.providers.alikassa.sandbox import Fault, Merchant, Sandbox
from support import payment_request


def assert_carries_exchange(
    error: paymux.PaymuxError, sandbox: Sandbox, http_status: int, body: dict[str, Any]
) -> None:
    """The error quotes the answer and the X-Request-Id of the request the sandbox received."""
    assert error.http_status == http_status
    assert error.body == body
    assert error.request_id is not None
    assert error.request_id == sandbox.requests[-1].headers["x-request-id"]


def connect(settings: dict[str, Any]) -> AliKassaProvider:
    provider = paymux.connect(settings)
    assert isinstance(provider, AliKassaProvider)
    return provider


# -- refusals: the gateway answered 400 (or 401/404) and created nothing ----------------------


def test_the_gateways_own_field_validation_raises_provider_validation_error_with_its_fields(
    provider: AliKassaProvider, sandbox: Sandbox
) -> None:
    """`payment_sbp_rub` needs customer_phone, which paymux cannot know; the gateway says so."""
    with pytest.raises(paymux.ProviderValidationError) as raised:
        provider.create(payment_request(options={"service": "payment_sbp_rub"}))

    expected_fields = {"customer_phone": ["The customer phone field is required."]}
    assert raised.value.fields == expected_fields
    assert_carries_exchange(
        raised.value,
        sandbox,
        400,
        {"message": "The given data was invalid.", "errors": expected_fields},
    )
    assert sandbox.payments() == []


def test_maintenance_raises_provider_unavailable_and_the_same_order_can_be_sent_later(
    provider: AliKassaProvider, sandbox: Sandbox
) -> None:
    request = payment_request()
    sandbox.maintenance = True

    with pytest.raises(paymux.ProviderUnavailable) as raised:
        provider.create(request)

    assert_carries_exchange(raised.value, sandbox, 400, {"message": "Technical works."})
    sandbox.maintenance = False
    assert provider.create(request).status is PaymentStatus.PENDING


def test_a_second_create_of_an_order_for_another_sum_raises_order_conflict(
    provider: AliKassaProvider, sandbox: Sandbox
) -> None:
    """The same order and sum again returns the payment it has (test_create.py)."""
    request = payment_request()
    provider.create(request)

    with pytest.raises(paymux.OrderConflict) as raised:
        provider.create(replace(request, amount=Decimal("600.00")))

    refused = sandbox.requests[-2]  # the create; the lookup of the order's payment came last
    assert raised.value.request_id == refused.headers["x-request-id"]
    assert (raised.value.http_status, raised.value.body) == (400, {"message": "order_id exists"})
    assert len(sandbox.payments()) == 1


def test_a_service_the_gateway_does_not_know_raises_unknown_service(
    provider: AliKassaProvider, sandbox: Sandbox
) -> None:
    with pytest.raises(paymux.UnknownService) as raised:
        provider.create(payment_request(options={"service": "payment_card_xyz_nope"}))

    assert_carries_exchange(
        raised.value, sandbox, 400, {"message": "Not exists service / No found service"}
    )


def test_an_account_not_allowed_to_accept_payments_raises_not_allowed(
    sandbox: Sandbox, tmp_path: Path, payment_key: rsa.RSAPrivateKey
) -> None:
    blocked = sandbox.create_merchant(tmp_path / "blocked", private_key=payment_key, allowed=False)

    with connect(blocked.settings) as provider, pytest.raises(paymux.NotAllowed) as raised:
        provider.create(payment_request())

    assert_carries_exchange(
        raised.value, sandbox, 400, {"message": "Project not allowed to accept payments"}
    )
    assert sandbox.payments() == []


@pytest.mark.parametrize(
    ("amount", "bound", "limit", "message"),
    [
        pytest.param(Decimal("99.99"), "minimum", Decimal("100"), "Minimum amount 100", id="min"),
        pytest.param(
            Decimal("5000.01"), "maximum", Decimal("5000"), "Maximum amount 5000", id="max"
        ),
    ],
)
def test_an_amount_outside_the_services_range_raises_amount_out_of_range_with_the_bound(
    provider: AliKassaProvider,
    sandbox: Sandbox,
    amount: Decimal,
    bound: str,
    limit: Decimal,
    message: str,
) -> None:
    with pytest.raises(paymux.AmountOutOfRange) as raised:
        provider.create(payment_request(amount=amount))

    assert raised.value.bound == bound
    assert isinstance(raised.value.limit, Decimal)
    assert raised.value.limit == limit
    assert_carries_exchange(raised.value, sandbox, 400, {"message": message})


@pytest.mark.parametrize(
    "reference",
    [
        pytest.param({"payment_id": "999999999"}, id="by-payment-id"),
        pytest.param({"order_id": "never-created"}, id="by-order-id"),
    ],
)
def test_status_of_a_payment_that_does_not_exist_raises_payment_not_found(
    provider: AliKassaProvider, sandbox: Sandbox, reference: dict[str, str]
) -> None:
    with pytest.raises(paymux.PaymentNotFound) as raised:
        provider.status(**reference)

    assert_carries_exchange(raised.value, sandbox, 404, {"message": "Payment not found"})


def test_another_accounts_payment_is_not_found(
    provider: AliKassaProvider, sandbox: Sandbox, tmp_path: Path, payment_key: rsa.RSAPrivateKey
) -> None:
    created = provider.create(payment_request())
    other = sandbox.create_merchant(tmp_path / "other", private_key=payment_key)

    with connect(other.settings) as stranger, pytest.raises(paymux.PaymentNotFound):
        stranger.status(payment_id=created.id)


def test_an_unregistered_account_raises_authentication_error(
    merchant: Merchant, sandbox: Sandbox
) -> None:
    settings = {**merchant.settings, "account": str(uuid.uuid4())}

    with connect(settings) as provider, pytest.raises(paymux.AuthenticationError) as raised:
        provider.create(payment_request())

    assert_carries_exchange(raised.value, sandbox, 401, {"message": "Account not found"})
    assert sandbox.payments() == []


def test_a_key_the_gateway_does_not_know_raises_authentication_error(
    merchant: Merchant, sandbox: Sandbox, tmp_path: Path
) -> None:
    """The right account, but requests signed with a key whose public.pem was never uploaded."""
    foreign = generate_certificate(tmp_path / "foreign")
    settings = {**merchant.settings, "certificate_dir": str(foreign.path)}

    with connect(settings) as provider, pytest.raises(paymux.AuthenticationError) as raised:
        provider.status(order_id="anything")

    assert_carries_exchange(raised.value, sandbox, 401, {"message": "Wrong sign"})


# -- the outcome of a create is unknown: the gateway stored the payment -----------------------
# By default create reconciles (see test_reconcile.py); these show the raw outcome, with
# reconciliation switched off.


def test_a_500_on_create_is_reconciled_into_the_stored_payment(
    provider: AliKassaProvider, sandbox: Sandbox
) -> None:
    request = payment_request()
    sandbox.inject(Fault.INTERNAL_ERROR)

    payment = provider.create(request)

    assert payment.id == str(sandbox.payment(request.order_id).id)
    assert len(sandbox.payments()) == 1


def test_a_500_on_create_is_outcome_unknown_not_a_refusal(
    merchant: Merchant, sandbox: Sandbox
) -> None:
    """AliKassa: a 500 "does not guarantee that the payment was not created"."""
    request = payment_request()
    sandbox.inject(Fault.INTERNAL_ERROR)

    with (
        connect({**merchant.settings, "reconcile": False}) as provider,
        pytest.raises(paymux.OutcomeUnknown) as raised,
    ):
        provider.create(request)

    assert not isinstance(raised.value, paymux.ProviderError)
    assert raised.value.order_id == request.order_id
    assert_carries_exchange(raised.value, sandbox, 500, {"message": "Internal server error"})
    stored = sandbox.payment(request.order_id)
    with connect(merchant.settings) as provider:
        reconciled = provider.status(order_id=raised.value.order_id)
    assert reconciled.id == str(stored.id)
    assert reconciled.status is PaymentStatus.PENDING


def test_a_connection_dropped_after_the_request_is_outcome_unknown(
    merchant: Merchant, sandbox: Sandbox
) -> None:
    request = payment_request()
    sandbox.inject(Fault.DROP_CONNECTION)

    with (
        connect({**merchant.settings, "reconcile": False}) as provider,
        pytest.raises(paymux.OutcomeUnknown) as raised,
    ):
        provider.create(request)

    assert raised.value.order_id == request.order_id
    assert raised.value.http_status is None
    assert raised.value.request_id == sandbox.requests[-1].headers["x-request-id"]
    assert sandbox.payment(request.order_id).order_id == request.order_id


def test_no_answer_within_the_read_timeout_is_outcome_unknown(
    merchant: Merchant, sandbox: Sandbox
) -> None:
    request = payment_request()
    sandbox.gateway.stall_seconds = 1.0
    sandbox.inject(Fault.STALL)

    with (
        connect({**merchant.settings, "read_timeout": "0.2", "reconcile": "false"}) as provider,
        pytest.raises(paymux.OutcomeUnknown) as raised,
    ):
        provider.create(request)

    assert raised.value.order_id == request.order_id
    assert raised.value.request_id == sandbox.requests[-1].headers["x-request-id"]
    assert sandbox.payment(request.order_id).order_id == request.order_id


# -- the request never arrived ----------------------------------------------------------------


@pytest.fixture
def closed_port_url() -> str:
    """A loopback URL on which nothing listens: connecting is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_a_refused_connection_on_create_is_a_transport_error_known_not_to_have_been_sent(
    merchant: Merchant, closed_port_url: str
) -> None:
    """Nothing reached the gateway, so this is safe to repeat: not OutcomeUnknown."""
    with (
        connect({**merchant.settings, "base_url": closed_port_url}) as provider,
        pytest.raises(paymux.TransportError) as raised,
    ):
        provider.create(payment_request())

    assert not isinstance(raised.value, paymux.OutcomeUnknown)
    assert raised.value.request_sent is False
    assert raised.value.request_id is not None


def test_a_refused_connection_on_status_is_a_transport_error_known_not_to_have_been_sent(
    merchant: Merchant, closed_port_url: str
) -> None:
    with (
        connect({**merchant.settings, "base_url": closed_port_url}) as provider,
        pytest.raises(paymux.TransportError) as raised,
    ):
        provider.status(order_id="order-1")

    assert raised.value.request_sent is False


# -- answers no sandbox fault produces: a stand-in gateway with one canned answer -------------


class CannedGateway:
    """A stand-in for AliKassa that answers every POST with the same status and body."""

    def __init__(self, status: int, content_type: str, body: bytes) -> None:
        self.request_ids: list[str] = []
        received = self.request_ids

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.append(self.headers.get("X-Request-Id", ""))
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        host, port = self._server.server_address[:2]
        self.url = f"http://{host!s}:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


CannedFactory = Callable[[int, str, bytes], AliKassaProvider]


@pytest.fixture
def canned(merchant: Merchant) -> Iterator[tuple[CannedFactory, list[CannedGateway]]]:
    """Start a canned gateway and return a provider pointed at it (the merchant's own keys)."""
    gateways: list[CannedGateway] = []
    providers: list[AliKassaProvider] = []

    def start(status: int, content_type: str, body: bytes) -> AliKassaProvider:
        gateway = CannedGateway(status, content_type, body)
        gateways.append(gateway)
        provider = connect({**merchant.settings, "base_url": gateway.url})
        providers.append(provider)
        return provider

    yield start, gateways
    for provider in providers:
        provider.close()
    for gateway in gateways:
        gateway.close()


HTML = "text/html; charset=utf-8"
HTML_PAGE = b"<!doctype html><title>502 Bad Gateway</title><h1>502 Bad Gateway</h1>"


def test_a_500_on_status_is_a_provider_server_error_safe_to_repeat(
    canned: tuple[CannedFactory, list[CannedGateway]],
) -> None:
    """Repeated under the retry policy (test_retry.py); when every attempt fails, this."""
    start, gateways = canned
    provider = start(500, "application/json", b'{"message":"Internal server error"}')
    provider.retry_policy = replace(provider.retry_policy, sleep=lambda seconds: None)

    with pytest.raises(paymux.ProviderServerError) as raised:
        provider.status(order_id="order-1")

    assert raised.value.http_status == 500
    assert raised.value.body == {"message": "Internal server error"}
    assert raised.value.request_id == gateways[0].request_ids[-1]


def test_an_html_error_page_on_status_is_a_provider_server_error(
    canned: tuple[CannedFactory, list[CannedGateway]],
) -> None:
    start, gateways = canned
    provider = start(502, HTML, HTML_PAGE)
    provider.retry_policy = replace(provider.retry_policy, sleep=lambda seconds: None)

    with pytest.raises(paymux.ProviderServerError) as raised:
        provider.status(payment_id="100000001")

    assert raised.value.http_status == 502
    assert isinstance(raised.value.body, str)
    assert "502 Bad Gateway" in raised.value.body
    assert raised.value.request_id == gateways[0].request_ids[-1]


def test_an_html_body_with_200_on_status_is_an_invalid_response(
    canned: tuple[CannedFactory, list[CannedGateway]],
) -> None:
    start, _ = canned
    provider = start(200, HTML, b"<html><body>Welcome</body></html>")

    with pytest.raises(paymux.InvalidResponse) as raised:
        provider.status(order_id="order-1")

    assert raised.value.http_status == 200


@pytest.mark.parametrize(
    ("status", "content_type", "body"),
    [
        pytest.param(200, HTML, b"<html><body>Welcome</body></html>", id="html-200"),
        pytest.param(200, "application/json", b'{"ok":true}', id="json-200-without-id"),
        pytest.param(502, HTML, HTML_PAGE, id="html-502"),
    ],
)
def test_an_answer_to_create_that_cannot_be_read_is_outcome_unknown(
    canned: tuple[CannedFactory, list[CannedGateway]], status: int, content_type: str, body: bytes
) -> None:
    """The request arrived and something answered: the payment may exist.

    The status lookups get the same garbage, so reconciliation cannot settle it either; the
    error quotes the create's exchange.
    """
    start, gateways = canned
    provider = start(status, content_type, body)
    provider.retry_policy = replace(provider.retry_policy, sleep=lambda seconds: None)
    request = payment_request()

    with pytest.raises(paymux.OutcomeUnknown) as raised:
        provider.create(request)

    assert raised.value.order_id == request.order_id
    assert raised.value.http_status == status
    assert raised.value.request_id == gateways[0].request_ids[0]
    assert "lookup" in raised.value.message


def test_an_undocumented_refusal_is_a_plain_provider_error_with_the_exchange(
    canned: tuple[CannedFactory, list[CannedGateway]],
) -> None:
    start, gateways = canned
    provider = start(400, "application/json", b'{"message":"Something new"}')

    with pytest.raises(paymux.ProviderError) as raised:
        provider.create(payment_request())

    assert type(raised.value) is paymux.ProviderError
    assert raised.value.http_status == 400
    assert raised.value.body == {"message": "Something new"}
    assert raised.value.request_id == gateways[0].request_ids[-1]
