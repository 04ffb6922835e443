"""Log hygiene: no value can forge a log line, and no run or error shows a secret.

test_logging.py checks one plain checkout and the redaction helpers. This module goes after
what an attacker or a careless gateway controls: CR/LF and other control characters in any
value at any depth (a notification's `desc`, a gateway's answer), card numbers written with
spaces or dashes, every personal field of a request, and every error a real flow raises.

One sandbox, shop endpoint and provider serve the module; every payment is fresh.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import structlog
from cryptography.hazmat.primitives.asymmetric import rsa

import paymux
from paymux._events import emit
from paymux._redaction import escape, escape_control, loggable, redact
from paymux.providers.alikassa import AliKassaProvider, CertificateFolder, generate_certificate
from paymux.providers.alikassa.sandbox import Fault, Merchant, Sandbox
from support import Receiver, payment_request

FORGED_LINE = "\r\nevent=forged level=critical"
"""What an attacker puts in a notification's `desc` to make a log line of their own."""

# -- the escaping itself ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("a\r\nb", "a\\r\\nb"),
        ("tab\there", "tab\\there"),
        ("nul\x00 esc\x1b[31m bell\x07", "nul\\x00 esc\\x1b[31m bell\\x07"),
        ("del\x7f c1\x85", "del\\x7f c1\\x85"),
        ("line\u2028para\u2029", "line\\u2028para\\u2029"),
        ("bidi\u202eevil\u2066", "bidi\\u202eevil\\u2066"),
        ("lone\udcff", "lone\\udcff"),
    ],
    ids=["CR LF", "tab", "C0 controls", "DEL and C1", "separators", "bidi overrides", "surrogate"],
)
def test_every_character_that_breaks_or_disguises_a_line_is_escaped(
    text: str, escaped: str
) -> None:
    assert escape_control(text) == escaped


def test_printable_text_in_any_script_is_left_alone() -> None:
    text = 'Заказ №7/8 💳 "q" \\ <b>&\'+%=#? 注文 ١٢٣'

    assert escape_control(text) == text


def test_escaping_reaches_every_string_and_key_at_any_depth() -> None:
    class Shown:
        def __str__(self) -> str:
            return "custom\nobject"

    value = {
        "a\nkey": ["x\ry", ("t\tu", {"deep\x00": {"z\u2028"}})],
        "bytes": b"raw\r\n\xff",
        "object": Shown(),
        "kept": [1, 2.5, Decimal("3.10"), True, None],
    }

    assert escape(value) == {
        "a\\nkey": ["x\\ry", ["t\\tu", {"deep\\x00": ["z\\u2028"]}]],
        "bytes": "raw\\r\\n\\xff",
        "object": "custom\\nobject",
        "kept": [1, 2.5, Decimal("3.10"), True, None],
    }


def test_loggable_redacts_first_then_escapes() -> None:
    fields = {
        "sign": "c2ln\r\nbmF0dXJl",
        "desc": f"paid by 4111 1111 1111 1111{FORGED_LINE}",
        "response": {"card_holder_name": "IVAN\nPETROV"},
    }

    assert loggable(fields) == {
        "sign": "[redacted]",
        "desc": "paid by 411111******1111\\r\\nevent=forged level=critical",
        "response": {"card_holder_name": "I*********V"},
    }


# -- emitted events: one event is one line, whatever renders it ------------------------------

HOSTILE_FIELDS: dict[str, Any] = {
    "order_id": f"order-1{FORGED_LINE}",
    "desc": "a\nb\rc\x1b[2Kd\u2028e\x85f",
    "nested": {f"key{FORGED_LINE}": [f"item{FORGED_LINE}", {"deep": f"x{FORGED_LINE}"}]},
    "tried": (f"create #1: HTTP 500{FORGED_LINE}",),
}


@pytest.fixture
def stdlib_lines() -> Iterator[io.StringIO]:
    """The host has not configured structlog and logs paymux to a stream, one record a line."""
    structlog.reset_defaults()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    logger = logging.getLogger("paymux")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def assert_one_line_per_event(text: str, events: int) -> None:
    lines = text.splitlines()
    assert len(lines) == events, lines
    assert not [line for line in lines if "paymux" not in line]


def test_hostile_values_stay_on_the_events_line_through_the_standard_library(
    stdlib_lines: io.StringIO,
) -> None:
    emit("info", "paymux.test", **HOSTILE_FIELDS)
    emit("warning", f"paymux.test{FORGED_LINE}", desc=FORGED_LINE)

    text = stdlib_lines.getvalue()
    assert_one_line_per_event(text, 2)
    assert text.startswith("INFO paymux event='paymux.test'")


HOST_RENDERERS: dict[str, Callable[[], Any]] = {
    "console (as paymux's CLI)": lambda: structlog.dev.ConsoleRenderer(colors=False),
    "key=value, strings unquoted": lambda: structlog.processors.KeyValueRenderer(
        repr_native_str=False
    ),
    "logfmt": structlog.processors.LogfmtRenderer,
    "JSON": structlog.processors.JSONRenderer,
}


@pytest.mark.parametrize("renderer", HOST_RENDERERS.values(), ids=HOST_RENDERERS.keys())
def test_hostile_values_stay_on_the_events_line_through_a_hosts_structlog(
    renderer: Callable[[], Any],
) -> None:
    """Some host renderers print strings as they are (key=value unquoted, logfmt): paymux must
    hand every renderer escaped values."""
    stream = io.StringIO()
    structlog.configure(
        processors=[structlog.processors.add_log_level, renderer()],
        logger_factory=structlog.PrintLoggerFactory(stream),
    )
    try:
        emit("info", "paymux.test", **HOSTILE_FIELDS)
        emit("debug", "paymux.test", desc=FORGED_LINE)
    finally:
        structlog.reset_defaults()

    assert_one_line_per_event(stream.getvalue(), 2)


# -- a whole checkout with personal data and a hostile description ---------------------------

CARDS = {
    "card_number": "4111 1111 1111 1111",
    "customer_card_number": "5500-0000-0000-0004",
    "card_holder_name": "IVAN PETROV",
    "payment_error_message": "retried with 4012888888881881",
    "bank": "Card 3530-1113-3330-0000 of the issuer",
}
MASKED_CARDS = ["411111******1111", "550000******0004", "401288******1881", "353011******0000"]
CUSTOMER = paymux.Customer(
    ip="18.191.80.10",
    user_agent="Mozilla/5.0 (X11; Linux)",
    account="customer-7781",
    email="ivan.petrov@example.com",
    phone="79161234567",
    first_name="Ivan",
    last_name="Petrov",
    address="Tverskaya 7",
    city="Tula",
    state="Tulskaya",
    post_code="300041",
    birth_date=date(1992, 8, 10),
)
PERSONAL = [
    "4111 1111 1111 1111",
    "4111111111111111",
    "5500-0000-0000-0004",
    "5500000000000004",
    "4012888888881881",
    "3530-1113-3330-0000",
    "3530111333300000",
    "IVAN PETROV",
    "ivan.petrov@example.com",
    "79161234567",
    "Ivan",
    "Petrov",
    "Tverskaya 7",
    "Tulskaya",
    "300041",
    "1992-08-10",
]
"""Every personal value the run carries; none may appear unmasked (in any letter case)."""


@dataclass(frozen=True)
class Shop:
    sandbox: Sandbox
    merchant: Merchant
    receiver: Receiver
    provider: AliKassaProvider


@pytest.fixture(scope="module")
def shop(
    notification_certificate: CertificateFolder,
    payment_key: rsa.RSAPrivateKey,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Shop]:
    with Sandbox(notification_certificate=notification_certificate.path) as sandbox:
        merchant = sandbox.create_merchant(
            tmp_path_factory.mktemp("hygiene") / "payment", private_key=payment_key
        )
        receiver = Receiver()
        try:
            provider = paymux.connect(merchant.settings)
            assert isinstance(provider, AliKassaProvider)
            with provider:
                yield Shop(sandbox, merchant, receiver, provider)
        finally:
            receiver.close()


def run_checkout(shop: Shop) -> None:
    """Create with every customer field, settle with card details, verify, ask the status."""
    created = shop.provider.create(
        payment_request(
            customer=CUSTOMER,
            description=f"Order 42{FORGED_LINE}",
            notification_url=shop.receiver.url,
        )
    )
    before = len(shop.receiver.received)
    delivery = shop.sandbox.settle(created.id, "paid", details=CARDS)
    assert delivery is not None
    assert delivery.http_status == 200
    notification = shop.provider.parse_notification(shop.receiver.received[before])
    assert notification.fields["desc"] == f"Order 42{FORGED_LINE}"
    status = shop.provider.status(payment_id=created.id)
    assert status.raw["card_number"] == CARDS["card_number"], "raw keeps the full payload"


def secrets_of(shop: Shop) -> list[str]:
    """Every key, password and Sign value the sandbox has seen so far, and the key's PEM."""
    certificates = (shop.merchant.payment_certificate, shop.sandbox.notification_certificate)
    passwords = [certificate.password_file.read_text().strip() for certificate in certificates]
    pem_lines = [
        certificate.private_key.read_text().splitlines()[-2] for certificate in certificates
    ]
    signs = [request.headers["sign"] for request in shop.sandbox.requests]
    signs += [delivery.params["sign"] for delivery in shop.sandbox.deliveries]
    assert signs, "the run signed something"
    return [*passwords, *pem_lines, *signs, "-----BEGIN"]


def leaks(text: str, secrets: list[str]) -> list[str]:
    return [secret for secret in secrets if secret.lower() in text.lower()]


def test_a_debug_run_through_the_standard_library_masks_everything_and_forges_no_line(
    stdlib_lines: io.StringIO, shop: Shop
) -> None:
    run_checkout(shop)
    text = stdlib_lines.getvalue()

    assert leaks(text, [*PERSONAL, *secrets_of(shop)]) == []
    assert all(masked in text for masked in MASKED_CARDS)
    lines = text.splitlines()
    assert [line for line in lines if not line.startswith(("DEBUG paymux ", "INFO paymux "))] == []
    assert any("event=forged level=critical" in line for line in lines), "desc was logged"


def test_a_debug_run_through_a_hosts_console_renderer_masks_everything_and_forges_no_line(
    shop: Shop,
) -> None:
    """The pipeline paymux's own CLI sets up (`paymux -vv`), as a host might."""
    stream = io.StringIO()
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        logger_factory=structlog.PrintLoggerFactory(stream),
    )
    try:
        run_checkout(shop)
    finally:
        structlog.reset_defaults()
    text = stream.getvalue()

    assert leaks(text, [*PERSONAL, *secrets_of(shop)]) == []
    assert all(masked in text for masked in MASKED_CARDS)
    lines = text.splitlines()
    assert [line for line in lines if "paymux." not in line] == []
    assert [line for line in lines if line.lstrip().startswith("event=forged")] == []


# -- free text: whatever a person or a gateway wrote in it -------------------------------------


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("declined: 4111.1111.1111.1111.", "declined: 411111******1111."),
        ("card 4111 1111 1111 1111 ok", "card 411111******1111 ok"),
        ("card 5500-0000-0000-0004", "card 550000******0004"),
        ("write to ivan.petrov@example.com", "write to i***@example.com"),
        ("call +7 (916) 123-45-67 today", "call +****************7 today"),
        ("call 79161234567", "call 7*********7"),
        ("call +441234567890123", "call +**************3"),
        ("Order 42 of 2024-05-01, 500.00 RUB", "Order 42 of 2024-05-01, 500.00 RUB"),
    ],
    ids=[
        "card split by dots",
        "card split by spaces",
        "card split by dashes",
        "e-mail",
        "phone with + and parentheses",
        "bare phone",
        "phone of card length after +",
        "ordinary text",
    ],
)
@pytest.mark.parametrize("field", ["desc", "bank", "payment_error_message", "description"])
def test_free_text_fields_mask_cards_emails_and_phones_inside_the_text(
    field: str, text: str, masked: str
) -> None:
    assert loggable({field: text}) == {field: masked}


def test_fields_named_in_camel_case_are_masked_like_their_snake_case_names() -> None:
    """Host-to-host answers name the payer's card in camelCase."""
    answer = {"cardNumber": "4111111111111111", "cardHolderName": "IVAN PETROV", "Bank": "x@y.io"}

    assert loggable({"response": answer}) == {
        "response": {
            "cardNumber": "411111******1111",
            "cardHolderName": "I*********V",
            "Bank": "x***@y.io",
        }
    }


def test_amounts_and_ids_outside_free_text_are_left_alone() -> None:
    fields = {"amount": "10000.000000000", "id": "1234567890", "hold_at": "2024-05-01 12:00:00"}

    assert loggable(fields) == fields


FREE_TEXT_PERSONAL = [
    "ivan.petrov@example.com",
    "4111.1111.1111.1111",
    "4111111111111111",
    "916 123-45-67",
    "support@bank.example",
    "88005553535",
]


def test_a_checkout_with_personal_data_in_free_text_logs_and_shows_it_masked(
    stdlib_lines: io.StringIO, shop: Shop
) -> None:
    created = shop.provider.create(
        payment_request(
            description="Order 42 for ivan.petrov@example.com, +7 916 123-45-67",
            notification_url=shop.receiver.url,
        )
    )
    details = {
        "payment_error_message": "card 4111.1111.1111.1111 declined once",
        "bank": "Bank, support@bank.example, 88005553535",
    }
    shop.sandbox.settle(created.id, "paid", details=details)
    status = shop.provider.status(payment_id=created.id)
    shown = repr(redact(status.raw))  # what `paymux status --json` prints
    text = stdlib_lines.getvalue()

    assert status.raw["bank"] == details["bank"], "raw keeps the full payload"
    assert leaks(text + shown, FREE_TEXT_PERSONAL) == []
    assert "411111******1111" in text
    assert "411111******1111" in shown
    assert "s***@bank.example" in shown


def test_a_debug_run_logs_what_each_exchange_sent_masked(
    stdlib_lines: io.StringIO, shop: Shop
) -> None:
    shop.provider.create(
        payment_request(customer=CUSTOMER, description="Order 42 for ivan.petrov@example.com")
    )
    text = stdlib_lines.getvalue()

    assert leaks(text, [*PERSONAL, *secrets_of(shop)]) == []
    assert "i***@example.com" in text


# -- errors raised in real flows show no secret ------------------------------------------------


Flow = Callable[[Shop, Path], paymux.PaymuxError]
"""Drives the module's shop into one error and returns it (tmp_path for throw-away files)."""


def error_from(call: Callable[[], object]) -> paymux.PaymuxError:
    with pytest.raises(paymux.PaymuxError) as raised:
        call()
    return raised.value


def shown(error: BaseException) -> str:
    """Everything a host might print or log about an error."""
    return "".join([str(error), repr(error), repr(vars(error)), *traceback.format_exception(error)])


def connect(shop: Shop, **settings: Any) -> AliKassaProvider:
    provider = paymux.connect({**shop.merchant.settings, **settings})
    assert isinstance(provider, AliKassaProvider)
    return provider


def key_settings(shop: Shop) -> dict[str, str]:
    """The merchant's private.pem named on its own, outside its certificate folder."""
    pem = shop.merchant.payment_certificate.private_key
    return {"provider": "alikassa", "account": shop.merchant.account, "private_key": str(pem)}


def wrong_password(shop: Shop, tmp_path: Path) -> paymux.PaymuxError:
    password = shop.merchant.payment_certificate.password_file.read_text().strip()
    settings = {**key_settings(shop), "password": password[::-1] + "x"}
    return error_from(lambda: paymux.connect(settings))


def missing_password(shop: Shop, tmp_path: Path) -> paymux.PaymuxError:
    return error_from(lambda: paymux.connect(key_settings(shop)))


def forged_notification(shop: Shop, tmp_path: Path) -> paymux.PaymuxError:
    created = shop.provider.create(payment_request())
    shop.sandbox.settle(created.id, "paid")
    params = shop.sandbox.gateway.notification_params(shop.sandbox.payment(created.id))
    return error_from(lambda: shop.provider.parse_notification({**params, "amount": "1.00"}))


def notification_signed_by_another_key(shop: Shop, tmp_path: Path) -> paymux.PaymuxError:
    created = shop.provider.create(payment_request())
    params = shop.sandbox.gateway.notification_params(shop.sandbox.payment(created.id))
    other = generate_certificate(tmp_path / "other")
    settings = {"notification_public_key": str(other.public_key)}
    with connect(shop, **settings) as provider:
        return error_from(lambda: provider.parse_notification(params))


def duplicate_order(shop: Shop, tmp_path: Path) -> paymux.PaymuxError:
    request = payment_request()
    shop.provider.create(request)
    other_sum = payment_request(order_id=request.order_id, amount=Decimal("600.00"))
    return error_from(lambda: shop.provider.create(other_sum))


def provider_validation(shop: Shop, tmp_path: Path) -> paymux.PaymuxError:
    return error_from(
        lambda: shop.provider.create(payment_request(options={"service": "payment_sbp_rub"}))
    )


def unknown_service(shop: Shop, tmp_path: Path) -> paymux.PaymuxError:
    return error_from(
        lambda: shop.provider.create(payment_request(options={"service": "payment_nope"}))
    )


def amount_out_of_range(shop: Shop, tmp_path: Path) -> paymux.PaymuxError:
    return error_from(lambda: shop.provider.create(payment_request(amount=Decimal("1.00"))))


def maintenance(shop: Shop, tmp_path: Path) -> paymux.PaymuxError:
    shop.sandbox.maintenance = True
    try:
        return error_from(lambda: shop.provider.create(payment_request()))
    finally:
        shop.sandbox.maintenance = False


def not_allowed(shop: Shop, tmp_path: Path) -> paymux.PaymuxError:
    blocked = shop.sandbox.create_merchant(tmp_path / "blocked", allowed=False)
    with paymux.connect(blocked.settings) as provider:
        return error_from(lambda: provider.create(payment_request()))


def payment_not_found(shop: Shop, tmp_path: Path) -> paymux.PaymuxError:
    return error_from(lambda: shop.provider.status(order_id="no-such-order"))


def unknown_account(shop: Shop, tmp_path: Path) -> paymux.PaymuxError:
    with connect(shop, account=str(uuid.uuid4())) as provider:
        return error_from(lambda: provider.status(order_id="order-1"))


def outcome_unknown(shop: Shop, tmp_path: Path) -> paymux.PaymuxError:
    shop.sandbox.inject(Fault.INTERNAL_ERROR, on="create")
    with connect(shop, reconcile=False) as provider:
        return error_from(lambda: provider.create(payment_request()))


def server_error(shop: Shop, tmp_path: Path) -> paymux.PaymuxError:
    shop.sandbox.inject(Fault.INTERNAL_ERROR, on="status")
    with connect(shop, max_attempts=1) as provider:
        return error_from(lambda: provider.status(order_id="order-1"))


def invalid_response(shop: Shop, tmp_path: Path) -> paymux.PaymuxError:
    shop.sandbox.inject(Fault.HTML_ANSWER, on="status")
    with connect(shop, max_attempts=1) as provider:
        return error_from(lambda: provider.status(order_id="order-1"))


def connection_refused(shop: Shop, tmp_path: Path) -> paymux.PaymuxError:
    with connect(shop, base_url="http://127.0.0.1:9", max_attempts=1) as provider:
        return error_from(lambda: provider.status(order_id="order-1"))


FLOWS: dict[str, tuple[type[paymux.PaymuxError], Flow]] = {
    "wrong password": (paymux.CertificateError, wrong_password),
    "missing password": (paymux.CertificateError, missing_password),
    "forged notification": (paymux.SignatureError, forged_notification),
    "notification signed by another key": (
        paymux.SignatureError,
        notification_signed_by_another_key,
    ),
    "duplicate order": (paymux.OrderConflict, duplicate_order),
    "gateway validation": (paymux.ProviderValidationError, provider_validation),
    "unknown service": (paymux.UnknownService, unknown_service),
    "amount out of range": (paymux.AmountOutOfRange, amount_out_of_range),
    "maintenance": (paymux.ProviderUnavailable, maintenance),
    "not allowed": (paymux.NotAllowed, not_allowed),
    "payment not found": (paymux.PaymentNotFound, payment_not_found),
    "unknown account": (paymux.AuthenticationError, unknown_account),
    "500 on create": (paymux.OutcomeUnknown, outcome_unknown),
    "500 on status": (paymux.ProviderServerError, server_error),
    "HTML on status": (paymux.InvalidResponse, invalid_response),
    "connection refused": (paymux.TransportError, connection_refused),
}


@pytest.mark.parametrize(("expected", "flow"), FLOWS.values(), ids=FLOWS.keys())
def test_errors_raised_in_real_flows_show_no_key_password_or_signature(
    shop: Shop,
    tmp_path: Path,
    expected: type[paymux.PaymuxError],
    flow: Flow,
) -> None:
    error = flow(shop, tmp_path)

    assert type(error) is expected
    assert leaks(shown(error), secrets_of(shop)) == []


# -- untrusted text echoed in error messages -------------------------------------------------


class HostileGateway(BaseHTTPRequestHandler):
    """Refuses every call with a message and field errors carrying CR/LF."""

    BODY = json.dumps(
        {
            "message": f"The given data was invalid.{FORGED_LINE}",
            "errors": {f"desc{FORGED_LINE}": [f"bad{FORGED_LINE}"]},
        }
    ).encode()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.BODY)))
        self.end_headers()
        self.wfile.write(self.BODY)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent."""


@pytest.fixture
def hostile_gateway(shop: Shop) -> Iterator[AliKassaProvider]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), HostileGateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with connect(shop, base_url=f"http://127.0.0.1:{server.server_port}") as provider:
            yield provider
    finally:
        server.shutdown()
        server.server_close()


def test_a_gateways_message_with_line_breaks_does_not_break_the_errors_text(
    hostile_gateway: AliKassaProvider,
) -> None:
    """Hosts log `str(error)`, and paymux's CLI prints it: it must stay one line."""
    error = error_from(lambda: hostile_gateway.create(payment_request()))

    assert isinstance(error, paymux.ProviderValidationError)
    assert "\n" not in str(error) + repr(error)
    assert "\r" not in str(error) + repr(error)
