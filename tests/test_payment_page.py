"""The sandbox's payment page, as a customer without a browser uses it: plain HTTP and HTML forms.

The page at the `url` create answers shows the payment and offers Pay, Pay partially, Cancel
and Fail. A click is a form POST: it settles the payment, notifies the shop (repeating until the
shop answers 200) and sends the customer back to the shop with a signed form. A payment whose
lifetime has run out can no longer be paid. Time here is a clock the tests move by hand.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

import paymux
from paymux import Payment, PaymentStatus
from paymux.providers.alikassa import AliKassaProvider, CertificateFolder, phpjson
from paymux.providers.alikassa.keys import Verifier
from paymux.providers.alikassa.sandbox import (
    DEFAULT_RETRY_DELAYS,
    Form,
    PaymentClosed,
    Sandbox,
    button_form,
    read_forms,
)
from paymux.providers.base.loopback import LoopbackServer, context_of
from support import Receiver, payment_request

FAST_RETRIES = (0.01, 0.02, 0.04)
"""Four attempts, as by default, with pauses short enough for a test."""

BUTTONS = ["Pay", "Pay partially", "Cancel", "Fail"]


class Clock:
    """The sandbox's time, moved forward by the test instead of by sleeping."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sandbox(notification_certificate: CertificateFolder, clock: Clock) -> Iterator[Sandbox]:
    """This module's sandbox runs on the test's clock and repeats notifications quickly."""
    with Sandbox(
        notification_certificate=notification_certificate.path,
        clock=clock,
        notification_retry_delays=FAST_RETRIES,
    ) as running:
        yield running


# -- the customer's side: open the page, click a button, follow the form back -----------------


def create(provider: AliKassaProvider, shop: Receiver | FlakyShop, **fields: Any) -> Payment:
    """A payment whose notifications and customer go to `shop`."""
    values: dict[str, Any] = {"notification_url": shop.url}
    if isinstance(shop, Receiver):
        values.update(success_url=shop.success_url, fail_url=shop.fail_url)
    values.update(fields)
    return provider.create(payment_request(**values))


def open_page(payment: Payment) -> requests.Response:
    assert payment.redirect_url is not None
    return requests.get(payment.redirect_url, timeout=5)


def forms_of(answer: requests.Response) -> list[Form]:
    return read_forms(answer.text, answer.url)


def buttons_of(answer: requests.Response) -> list[str]:
    return [button.text for form in forms_of(answer) for button in form.buttons]


def click(page: requests.Response, button: str, **typed: str) -> requests.Response:
    """Submit the form holding `button` on `page`, as a browser does."""
    form = button_form(forms_of(page), button)
    assert form.method == "POST"
    return requests.post(form.action, data=form.submission(button, **typed), timeout=5)


def return_form(answer: requests.Response) -> Form:
    """The form that takes the customer back to the shop."""
    [form] = [form for form in forms_of(answer) if form.id == "return"]
    return form


# -- the page ---------------------------------------------------------------------------------


def test_the_page_shows_what_the_customer_pays_for_and_the_four_choices(
    provider: AliKassaProvider, receiver: Receiver
) -> None:
    created = create(provider, receiver, description="Two books", order_id="order-page-1")

    page = open_page(created)

    assert page.status_code == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    for shown in (
        "500.00 RUB",
        "Two books",
        "order-page-1",
        "payment_card_rub_hpp",
        "<dt>Currency</dt><dd>RUB</dd>",
        "waiting for payment",
        '<dt>Time left</dt><dd id="time-left">60 min 00 s</dd>',
    ):
        assert shown in page.text
    assert buttons_of(page) == BUTTONS


def test_the_time_left_counts_down_from_the_requested_lifetime(
    provider: AliKassaProvider, receiver: Receiver, clock: Clock
) -> None:
    created = create(provider, receiver, lifetime=900)
    assert "15 min 00 s" in open_page(created).text

    clock.advance(65)

    assert "13 min 55 s" in open_page(created).text


def test_everything_the_shop_sent_is_escaped(
    provider: AliKassaProvider, receiver: Receiver
) -> None:
    created = create(
        provider,
        receiver,
        description='<script>alert("desc")</script> & co',
        order_id="<b>order</b>'1",
    )

    page = open_page(created).text

    assert "<script>" not in page
    assert "<b>" not in page
    assert "&lt;script&gt;alert(&quot;desc&quot;)&lt;/script&gt; &amp; co" in page
    assert "&lt;b&gt;order&lt;/b&gt;&#x27;1" in page


def test_the_page_loads_nothing_from_anywhere(
    provider: AliKassaProvider, receiver: Receiver
) -> None:
    page = open_page(create(provider, receiver))

    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    for external in ("http://", "https://", "src=", "<link", "@import"):
        assert external not in page.text
    assert "<style>" in page.text


def test_an_unknown_payment_has_no_page(sandbox: Sandbox) -> None:
    page = requests.get(f"{sandbox.url}/pay/no-such-payment", timeout=5)

    assert page.status_code == 404
    assert "Payment not found" in page.text


# -- the four buttons -------------------------------------------------------------------------


def test_pay_settles_notifies_and_sends_the_customer_back_with_a_signed_form(
    provider: AliKassaProvider, sandbox: Sandbox, receiver: Receiver
) -> None:
    created = create(provider, receiver)

    answer = click(open_page(created), "Pay")

    assert answer.status_code == 200
    back = return_form(answer)
    assert (back.method, back.action) == ("POST", receiver.success_url)
    assert [button.text for button in back.buttons] == ["Return to the shop"], "works without JS"
    assert 'document.getElementById("return").submit()' in answer.text
    redirect = provider.verify_redirect(back.submission())
    assert (redirect.order_id, redirect.payment_uuid) == (created.order_id, created.raw["uuid"])

    notification = provider.parse_notification(receiver.wait_for(1)[0])
    assert notification.payment.status is PaymentStatus.PAID
    assert notification.payment.paid_amount == Decimal("500.00")
    status = provider.status(payment_id=created.id)
    assert (status.status, status.paid_amount, status.is_partial) == (
        PaymentStatus.PAID,
        Decimal("500.00"),
        False,
    )
    assert [delivery.http_status for delivery in sandbox.wait_for_deliveries(1)] == [200]


@pytest.mark.parametrize("typed", ["123.45", "123,45", " 123.45 "])
def test_pay_partially_pays_the_amount_typed(
    provider: AliKassaProvider, receiver: Receiver, typed: str
) -> None:
    created = create(provider, receiver)

    answer = click(open_page(created), "Pay partially", amount=typed)

    assert return_form(answer).action == receiver.success_url
    assert "123.45 of 500.00 RUB were paid" in answer.text
    notification = provider.parse_notification(receiver.wait_for(1)[0])
    assert notification.payment.is_partial
    assert notification.payment.paid_amount == Decimal("123.45")
    status = provider.status(payment_id=created.id)
    assert (status.status, status.paid_amount, status.is_partial) == (
        PaymentStatus.PAID,
        Decimal("123.45"),
        True,
    )


@pytest.mark.parametrize(
    ("button", "expected"), [("Cancel", PaymentStatus.CANCELED), ("Fail", PaymentStatus.FAILED)]
)
def test_cancel_and_fail_send_the_customer_to_the_fail_url(
    provider: AliKassaProvider, receiver: Receiver, button: str, expected: PaymentStatus
) -> None:
    created = create(provider, receiver)

    answer = click(open_page(created), button)

    assert answer.status_code == 200
    back = return_form(answer)
    assert back.action == receiver.fail_url
    assert provider.verify_redirect(back.submission()).order_id == created.order_id
    assert provider.parse_notification(receiver.wait_for(1)[0]).payment.status is expected
    assert provider.status(payment_id=created.id).status is expected


@pytest.mark.parametrize(
    "typed", ["", "0", "0.00", "-5", "500", "500.00", "750", "12.345", "abc", "NaN", "Infinity"]
)
def test_a_partial_amount_must_be_above_zero_and_below_the_amount(
    provider: AliKassaProvider, sandbox: Sandbox, receiver: Receiver, typed: str
) -> None:
    created = create(provider, receiver)

    answer = click(open_page(created), "Pay partially", amount=typed)

    assert answer.status_code == 400
    assert "Enter an amount above 0 and below 500.00 RUB, with at most two decimals." in answer.text
    assert buttons_of(answer) == BUTTONS, "the customer can try again"
    assert provider.status(payment_id=created.id).status is PaymentStatus.PENDING
    assert sandbox.deliveries == []


def test_what_the_customer_typed_is_shown_again_escaped(
    provider: AliKassaProvider, receiver: Receiver
) -> None:
    created = create(provider, receiver)

    answer = click(open_page(created), "Pay partially", amount='"><script>alert(1)</script>')

    assert answer.status_code == 400
    assert "<script>alert(1)" not in answer.text
    assert 'value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in answer.text


def test_a_post_without_a_known_button_changes_nothing(
    provider: AliKassaProvider, receiver: Receiver
) -> None:
    created = create(provider, receiver)
    page = open_page(created)

    answer = requests.post(page.url, data={"action": "refund"}, timeout=5)

    assert answer.status_code == 400
    assert provider.status(payment_id=created.id).status is PaymentStatus.PENDING


def test_without_return_urls_the_page_shows_the_outcome_itself(
    provider: AliKassaProvider, receiver: Receiver
) -> None:
    created = create(provider, receiver, success_url=None, fail_url=None)

    answer = click(open_page(created), "Pay")

    assert answer.status_code == 200
    assert "Payment received" in answer.text
    assert "500.00 RUB were paid" in answer.text
    assert forms_of(answer) == []
    assert provider.parse_notification(receiver.wait_for(1)[0]).payment.status is (
        PaymentStatus.PAID
    )


def test_a_payment_is_settled_once(
    provider: AliKassaProvider, sandbox: Sandbox, receiver: Receiver
) -> None:
    created = create(provider, receiver)
    page = open_page(created)
    click(page, "Pay")

    second = click(page, "Cancel")

    assert second.status_code == 409
    assert "This payment can no longer be changed: it is paid." in second.text
    assert return_form(second).action == receiver.success_url, "a button back, not automatic"
    assert "submit()" not in second.text
    assert provider.status(payment_id=created.id).status is PaymentStatus.PAID
    assert sandbox.wait_idle()
    assert len(sandbox.deliveries) == 1


def test_a_settled_payment_shows_its_outcome_instead_of_the_buttons(
    provider: AliKassaProvider, receiver: Receiver
) -> None:
    created = create(provider, receiver)
    click(open_page(created), "Fail")

    page = open_page(created)

    assert page.status_code == 200
    assert "Payment failed" in page.text
    assert buttons_of(page) == ["Return to the shop"]


# -- the return form ---------------------------------------------------------------------------


def test_the_return_form_is_signed_over_php_json_of_order_id_and_uuid_with_the_notification_key(
    provider: AliKassaProvider,
    sandbox: Sandbox,
    receiver: Receiver,
    notification_certificate: CertificateFolder,
) -> None:
    created = create(provider, receiver, order_id="order/№1")

    fields = return_form(click(open_page(created), "Pay")).submission()

    assert list(fields) == ["order_id", "uuid", "sign"]
    signed = phpjson.dumps_bytes({"order_id": "order/№1", "uuid": created.raw["uuid"]})
    Verifier.from_file(notification_certificate.public_key).verify(signed, fields["sign"])
    assert fields == sandbox.redirect_form(created.id)
    with pytest.raises(paymux.SignatureError):
        provider.verify_redirect({**fields, "order_id": "order/№2"})


# -- notifications: in the background, repeated until the shop answers 200 ----------------------


class FlakyShop:
    """A notification endpoint that answers `failures` in turn, then 200 to everything."""

    def __init__(self, *failures: int) -> None:
        self.failures = list(failures)
        self.answered: list[int] = []
        self.lock = threading.Lock()
        self._server = LoopbackServer(_FlakyHandler, "127.0.0.1", 0, context=self)
        self.url = f"{self._server.origin}/notify"
        self._server.start("flaky-shop")

    def next_status(self) -> int:
        with self.lock:
            status = self.failures.pop(0) if self.failures else 200
            self.answered.append(status)
            return status

    def close(self) -> None:
        self._server.stop()


class _FlakyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        shop: FlakyShop = context_of(self)
        self.send_response(shop.next_status())
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def flaky_shop(request: pytest.FixtureRequest) -> Iterator[FlakyShop]:
    """Answers the statuses given by `@pytest.mark.parametrize("flaky_shop", [...])` first."""
    shop = FlakyShop(*getattr(request, "param", ()))
    yield shop
    shop.close()


@pytest.mark.parametrize("flaky_shop", [(500, 503)], indirect=True)
def test_an_unanswered_notification_is_sent_again_until_the_shop_answers_200(
    provider: AliKassaProvider, sandbox: Sandbox, flaky_shop: FlakyShop
) -> None:
    created = create(provider, flaky_shop)

    click(open_page(created), "Pay")

    attempts = sandbox.wait_for_deliveries(3)
    assert [(d.attempt, d.http_status, d.delivered) for d in attempts] == [
        (1, 500, False),
        (2, 503, False),
        (3, 200, True),
    ]
    assert len({delivery.params["sign"] for delivery in attempts}) == 1, "the same notification"
    assert sandbox.wait_idle()
    assert flaky_shop.answered == [500, 503, 200], "nothing is sent after a 200"


@pytest.mark.parametrize("flaky_shop", [(500,) * 10], indirect=True)
def test_the_sandbox_gives_up_after_four_attempts(
    provider: AliKassaProvider, sandbox: Sandbox, flaky_shop: FlakyShop
) -> None:
    created = create(provider, flaky_shop)

    click(open_page(created), "Pay")

    assert sandbox.wait_idle()
    assert [(d.attempt, d.http_status) for d in sandbox.deliveries] == [
        (1, 500),
        (2, 500),
        (3, 500),
        (4, 500),
    ]
    assert sandbox.payment(created.id).status == "paid", "the payment stays paid regardless"


def test_four_attempts_with_growing_pauses_is_the_default(
    notification_certificate: CertificateFolder,
) -> None:
    assert DEFAULT_RETRY_DELAYS == (0.1, 0.2, 0.4)
    with Sandbox(notification_certificate=notification_certificate.path) as default:
        assert default.gateway.retry_delays == DEFAULT_RETRY_DELAYS


@pytest.mark.parametrize("flaky_shop", [(500,)], indirect=True)
def test_the_page_answers_without_waiting_for_repeats(
    flaky_shop: FlakyShop,
    notification_certificate: CertificateFolder,
    payment_key: rsa.RSAPrivateKey,
    tmp_path: Path,
) -> None:
    """A repeat a minute away does not hold up the customer, nor stopping the sandbox."""
    with Sandbox(
        notification_certificate=notification_certificate.path, notification_retry_delays=(60,)
    ) as patient:
        merchant = patient.create_merchant(tmp_path / "payment", private_key=payment_key)
        with paymux.connect(merchant.settings) as shop_provider:
            assert isinstance(shop_provider, AliKassaProvider)
            created = create(shop_provider, flaky_shop)

            answer = click(open_page(created), "Pay")

            assert answer.status_code == 200
            assert [d.http_status for d in patient.wait_for_deliveries(1)] == [500]
            assert not patient.wait_idle(timeout=0.05), "the repeat is still to come"
    assert flaky_shop.answered == [500], "stopping the sandbox dropped the pending repeat"


@pytest.mark.parametrize("flaky_shop", [(500,)], indirect=True)
def test_settle_makes_the_first_attempt_at_once_and_repeats_in_the_background(
    provider: AliKassaProvider, sandbox: Sandbox, flaky_shop: FlakyShop
) -> None:
    created = create(provider, flaky_shop)

    first = sandbox.settle(created.id, "paid")

    assert first is not None
    assert (first.attempt, first.http_status) == (1, 500)
    second = sandbox.wait_for_deliveries(2)[1]
    assert (second.attempt, second.http_status) == (2, 200)


@pytest.mark.parametrize("flaky_shop", [(500,)], indirect=True)
def test_the_notifications_endpoint_lists_every_attempt(
    provider: AliKassaProvider, sandbox: Sandbox, flaky_shop: FlakyShop
) -> None:
    created = create(provider, flaky_shop)
    click(open_page(created), "Pay")
    sandbox.wait_for_deliveries(2)

    listed = requests.get(f"{sandbox.url}/sandbox/notifications", timeout=5).json()

    rows = [
        (row["payment_id"], row["attempt"], row["http_status"], row["delivered"])
        for row in listed["notifications"]
    ]
    assert rows == [(int(created.id), 1, 500, False), (int(created.id), 2, 200, True)]
    first = listed["notifications"][0]
    assert first["params"]["payment_status"] == "paid"
    assert first["url"].startswith(flaky_shop.url + "?")
    assert provider.parse_notification(first["params"]).payment.status is PaymentStatus.PAID


# -- expiry ------------------------------------------------------------------------------------


def test_an_expired_payment_cannot_be_paid_and_ends_canceled(
    provider: AliKassaProvider, sandbox: Sandbox, receiver: Receiver, clock: Clock
) -> None:
    created = create(provider, receiver)
    page_before = open_page(created)

    clock.advance(3600)
    page = open_page(created)

    assert page.status_code == 200
    assert "Payment expired" in page.text
    assert "Pay" not in buttons_of(page)
    assert return_form(page).action == receiver.fail_url
    notification = provider.parse_notification(receiver.wait_for(1)[0])
    assert notification.payment.status is PaymentStatus.CANCELED
    assert provider.status(payment_id=created.id).status is PaymentStatus.CANCELED

    late_click = click(page_before, "Pay")

    assert late_click.status_code == 409
    assert "This payment expired and can no longer be paid." in late_click.text
    assert provider.status(payment_id=created.id).status is PaymentStatus.CANCELED
    assert sandbox.wait_idle()
    assert len(receiver.received) == 1, "one notification: the cancel"


def test_a_payment_can_be_paid_until_the_last_second_of_its_lifetime(
    provider: AliKassaProvider, receiver: Receiver, clock: Clock
) -> None:
    created = create(provider, receiver, lifetime=900)
    page = open_page(created)

    clock.advance(899)

    assert click(page, "Pay").status_code == 200
    assert provider.status(payment_id=created.id).status is PaymentStatus.PAID


def test_expiry_is_seen_by_a_status_call_without_anyone_opening_the_page(
    provider: AliKassaProvider, sandbox: Sandbox, receiver: Receiver, clock: Clock
) -> None:
    created = create(provider, receiver, lifetime=900)

    clock.advance(900)

    assert provider.status(order_id=created.order_id).status is PaymentStatus.CANCELED
    assert provider.parse_notification(receiver.wait_for(1)[0]).payment.status is (
        PaymentStatus.CANCELED
    )
    with pytest.raises(PaymentClosed, match="lifetime ran out"):
        sandbox.settle(created.id, "paid")
