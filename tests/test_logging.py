"""What paymux logs and shows: full detail at DEBUG, and never a secret or a whole card number.

A whole checkout runs against the sandbox with debug events on, once through the standard
library's "paymux" logger (structlog not configured) and once through a host's structlog
pipeline; the captured text is then searched for every secret the run handled.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import structlog
from cryptography.hazmat.primitives.asymmetric import rsa
from structlog.testing import LogCapture

import paymux
from paymux._redaction import REDACTED, mask_card, mask_email, mask_text, redact
from paymux.providers.alikassa import AliKassaProvider, CertificateFolder, generate_certificate
from paymux.providers.alikassa.sandbox import Merchant, Sandbox
from support import Receiver, payment_request

CARD_DETAILS = {
    "card_number": "4111111111111111",
    "customer_card_number": "5500000000000004",
    "card_holder_name": "IVAN PETROV",
}
CUSTOMER = paymux.Customer(
    ip="18.191.80.10",
    user_agent="Mozilla/5.0 (X11; Linux)",
    email="ivan.petrov@example.com",
    phone="79161234567",
    first_name="Ivan",
    last_name="Petrov",
    address="Tverskaya 7",
    birth_date=date(1992, 8, 10),
)
PERSONAL = [
    "4111111111111111",
    "5500000000000004",
    "IVAN PETROV",
    "ivan.petrov@example.com",
    "79161234567",
    "Ivan",
    "Petrov",
    "Tverskaya 7",
]
"""Every personal value the checkout carries, none of which may appear unmasked."""


@dataclass(frozen=True)
class Checkout:
    created: paymux.Payment
    notification: paymux.Notification
    status: paymux.Payment


def checkout(provider: AliKassaProvider, sandbox: Sandbox, receiver: Receiver) -> Checkout:
    """Create, settle with card details, verify the notification, ask the status."""
    created = provider.create(
        payment_request(customer=CUSTOMER, description="Order 42", notification_url=receiver.url)
    )
    sandbox.settle(created.id, "paid", details=CARD_DETAILS)
    assert receiver.wait_for(1)
    notification = provider.parse_notification(receiver.received[0])
    status = provider.status(payment_id=created.id)
    assert status.raw["card_number"] == CARD_DETAILS["card_number"], "raw keeps the full payload"
    return Checkout(created, notification, status)


def secrets_of(sandbox: Sandbox, merchant: Merchant) -> list[str]:
    """Everything the run handled that must never be logged or shown."""
    passwords = [
        merchant.payment_certificate.password_file.read_text().strip(),
        sandbox.notification_certificate.password_file.read_text().strip(),
    ]
    signs = [request.headers["sign"] for request in sandbox.requests]
    signs += [delivery.params["sign"] for delivery in sandbox.deliveries]
    assert len(signs) == 3, "create, status and one notification were signed"
    return [*passwords, *signs, "PRIVATE KEY", *PERSONAL]


def assert_nothing_leaks(text: str, secrets: list[str]) -> None:
    leaked = [secret for secret in secrets if secret.lower() in text.lower()]
    assert leaked == []


EVENTS = ["paymux.http", "paymux.payment", "paymux.notification"]


@pytest.fixture
def stdlib_logging(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """The host has not configured structlog; paymux's logger is at DEBUG."""
    structlog.reset_defaults()
    caplog.set_level(logging.DEBUG, logger="paymux")
    return caplog


@pytest.fixture
def structlog_events() -> Iterator[LogCapture]:
    """The host has configured structlog; every event dict paymux emits is captured."""
    capture = LogCapture()
    structlog.configure(processors=[capture])
    try:
        yield capture
    finally:
        structlog.reset_defaults()


def test_debug_logs_through_the_standard_library_hold_no_secrets(
    stdlib_logging: pytest.LogCaptureFixture,
    provider: AliKassaProvider,
    sandbox: Sandbox,
    merchant: Merchant,
    receiver: Receiver,
) -> None:
    checkout(provider, sandbox, receiver)
    text = stdlib_logging.text

    assert all(event in text for event in EVENTS)
    assert "411111******1111" in text
    assert "550000******0004" in text
    assert_nothing_leaks(text, secrets_of(sandbox, merchant))


def test_debug_events_through_a_hosts_structlog_hold_no_secrets(
    structlog_events: LogCapture,
    provider: AliKassaProvider,
    sandbox: Sandbox,
    merchant: Merchant,
    receiver: Receiver,
) -> None:
    checkout(provider, sandbox, receiver)
    text = repr(structlog_events.entries)

    assert {entry["event"] for entry in structlog_events.entries} >= set(EVENTS)
    assert "411111******1111" in text
    assert_nothing_leaks(text, secrets_of(sandbox, merchant))


def test_nothing_is_logged_while_the_host_has_not_asked_for_it(
    caplog: pytest.LogCaptureFixture,
    provider: AliKassaProvider,
    sandbox: Sandbox,
    receiver: Receiver,
) -> None:
    """paymux never configures logging: without a level set, its debug events stay silent."""
    structlog.reset_defaults()
    caplog.set_level(logging.WARNING)

    checkout(provider, sandbox, receiver)

    assert [record for record in caplog.records if record.name == "paymux"] == []


WARN_ONCE = (
    "from paymux._events import emit\n"
    "emit('warning', 'paymux.guard.reopened', provider='alikassa', payment_id='7')\n"
)


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    """`code` in a fresh interpreter: no test harness has touched its logging."""
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def test_a_warning_event_prints_nothing_while_the_host_has_no_handler() -> None:
    """Without the `paymux` logger's NullHandler, the standard library's last-resort handler
    would print warnings to stderr."""
    result = run_python(WARN_ONCE)

    assert result.returncode == 0, result.stderr
    assert (result.stdout, result.stderr) == ("", "")


def test_a_warning_event_reaches_a_handler_the_host_configures() -> None:
    result = run_python("import logging\nlogging.basicConfig()\n" + WARN_ONCE)

    assert result.returncode == 0, result.stderr
    assert "event='paymux.guard.reopened'" in result.stderr
    assert "payment_id='7'" in result.stderr


# -- what repr and str show ------------------------------------------------------------------


def test_customer_repr_masks_personal_data() -> None:
    shown = repr(CUSTOMER) + str(CUSTOMER)

    assert_nothing_leaks(shown, PERSONAL)
    assert "i***@example.com" in shown
    assert "18.191.80.10" in shown


def test_payment_request_repr_masks_its_customer() -> None:
    request = payment_request(customer=CUSTOMER)

    assert_nothing_leaks(repr(request) + str(request), PERSONAL)
    assert request.order_id in repr(request)


def test_payment_and_notification_reprs_leave_out_the_raw_payload(
    provider: AliKassaProvider, sandbox: Sandbox, merchant: Merchant, receiver: Receiver
) -> None:
    done = checkout(provider, sandbox, receiver)
    shown = "".join(
        repr(item) + str(item) for item in (done.created, done.notification, done.status)
    )

    assert done.status.id in shown
    assert_nothing_leaks(shown, secrets_of(sandbox, merchant))


@pytest.fixture
def key_with_password(tmp_path: Path, payment_key: rsa.RSAPrivateKey) -> tuple[Path, str]:
    """A `private.pem` outside a certificate folder, and its password."""
    certificate = generate_certificate(tmp_path / "cert", private_key=payment_key)
    return certificate.private_key, certificate.password_file.read_text().strip()


def test_provider_repr_shows_no_key_or_password(
    key_with_password: tuple[Path, str], notification_certificate: CertificateFolder
) -> None:
    private_key, password = key_with_password
    settings = {
        "provider": "alikassa",
        "account": "93d5df06-996c-48c3-9847-348d6b580b80",
        "private_key": str(private_key),
        "password": password,
        "notification_public_key": str(notification_certificate.public_key),
    }
    with paymux.connect(settings) as provider:
        shown = repr(provider) + str(provider) + repr(vars(provider))

    assert "93d5df06-996c-48c3-9847-348d6b580b80" in shown
    assert password not in shown
    assert "PRIVATE KEY" not in shown


def test_a_wrong_password_error_never_shows_the_password(
    key_with_password: tuple[Path, str],
) -> None:
    private_key, password = key_with_password
    wrong = password[::-1]
    settings = {
        "provider": "alikassa",
        "account": "93d5df06-996c-48c3-9847-348d6b580b80",
        "private_key": str(private_key),
        "password": wrong,
    }

    with pytest.raises(paymux.CertificateError) as caught:
        paymux.connect(settings)

    shown = "".join(traceback.format_exception(caught.value)) + repr(caught.value)
    assert "wrong password" in shown
    assert wrong not in shown
    assert password not in shown


def test_an_error_after_an_exchange_carries_no_request_signature(
    provider: AliKassaProvider, sandbox: Sandbox
) -> None:
    request = payment_request()
    provider.create(request)

    with pytest.raises(paymux.OrderConflict) as caught:
        provider.create(payment_request(order_id=request.order_id, amount=Decimal("600.00")))

    error = caught.value
    shown = str(error) + repr(error) + repr(error.body) + repr(vars(error))
    assert error.request_id is not None
    assert error.request_id in str(error)
    assert [r.headers["sign"] for r in sandbox.requests if r.headers["sign"] in shown] == []


# -- paymux._redaction ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("4111111111111111", "411111******1111"),
        ("4222222222222", "422222***2222"),
        ("6011000990139424123", "601100*********4123"),
        ("paid with 4111111111111111 today", "paid with 411111******1111 today"),
        ("card4111111111111111/5500000000000004", "card411111******1111/550000******0004"),
    ],
    ids=["16 digits", "13 digits", "19 digits", "inside text", "two in one string"],
)
def test_mask_card_keeps_the_first_six_and_last_four_digits(text: str, masked: str) -> None:
    assert mask_card(text) == masked


@pytest.mark.parametrize(
    "text",
    ["411111111111", "41111111111111111111", "order 100000001", "no digits"],
    ids=["12 digits", "20 digits", "a short id", "no digits"],
)
def test_mask_card_leaves_runs_that_are_not_card_length_alone(text: str) -> None:
    assert mask_card(text) == text


def test_personal_text_and_email_keep_only_a_hint() -> None:
    assert mask_text("Petrov") == "P****v"
    assert mask_text("Al") == "**"
    assert mask_email("ivan.petrov@example.com") == "i***@example.com"
    assert mask_email("not-an-email") == "n**********l"


def test_redact_masks_by_key_at_any_depth_and_leaves_other_values_alone() -> None:
    data: dict[str, Any] = {
        "Sign": "c2lnbmF0dXJl",
        "headers": {"Authorization": "Bearer abc", "Account": "93d5df06"},
        "password": {"nested": "the whole subtree goes"},
        "request": {
            "customer_email": "ivan.petrov@example.com",
            "customer_phone": "79161234567",
            "customer_first_name": "Ivan",
            "desc": "Order 42 paid by 4111111111111111",
        },
        "response": {
            "card_number": "4111111111111111",
            "card_mask": "411111XXXXXX1111",
            "card_holder_name": "IVAN PETROV",
            "hold_amount": "",
            "bik_bank": None,
            "antiFraud": False,
            "id": 100000001,
            "payments": ({"pan": "5500000000000004"}, "5500000000000004"),
        },
    }

    assert redact(data) == {
        "Sign": REDACTED,
        "headers": {"Authorization": REDACTED, "Account": "93d5df06"},
        "password": REDACTED,
        "request": {
            "customer_email": "i***@example.com",
            "customer_phone": "7*********7",
            "customer_first_name": "I**n",
            "desc": "Order 42 paid by 411111******1111",
        },
        "response": {
            "card_number": "411111******1111",
            "card_mask": "4**************1",
            "card_holder_name": "I*********V",
            "hold_amount": "",
            "bik_bank": None,
            "antiFraud": False,
            "id": 100000001,
            "payments": [{"pan": "550000******0004"}, "550000******0004"],
        },
    }


def test_redact_returns_a_copy_and_leaves_the_input_untouched() -> None:
    data = {"sign": "abc", "nested": {"card_number": "4111111111111111"}}

    redact(data)

    assert data == {"sign": "abc", "nested": {"card_number": "4111111111111111"}}


def test_redact_masks_card_numbers_and_phones_sent_as_json_numbers() -> None:
    """A gateway may send a number where the documentation shows a string."""
    redacted = redact({"card_number": 4111111111111111, "customer_phone": 79161234567})

    assert redacted == {"card_number": "411111******1111", "customer_phone": "7*********7"}
