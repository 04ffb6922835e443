"""The web-framework recipes of docs/frameworks.md, run in the real frameworks, for two gateways.

Each recipe (docs/examples/frameworks/*_app.py: paymux's packaged endpoint mounted in the
framework, `paymux.contrib.fastapi` async end to end; the shop's checkout in host.py) is served on
a real loopback HTTP server — Flask by werkzeug's `make_server`, Django by `wsgiref` with
Django's `WSGIHandler`, FastAPI by uvicorn — each in a thread, with two instances behind it: the
AliKassa sandbox delivers its notifications as real signed GETs to `/notify/alikassa`, the
YooKassa emulator POSTs its JSON webhooks from its own loopback address to `/notify/yookassa`,
most of them after a click on the gateway's payment page. The same host code drives both. One
sandbox, one emulator and one server per framework serve the whole module (stopping a loopback
server costs up to half a second); every test makes fresh payments. A framework that is not
installed skips its tests, with the reason; the docs page is checked against the files in any
case.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import urlencode
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer
from wsgiref.simple_server import make_server as make_wsgiref_server

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

import host
import paymux
from paymux import Action, Customer, Decision, NotificationGuard, Payment, SQLiteStore
from paymux.providers.alikassa import AliKassaProvider, CertificateFolder
from paymux.providers.alikassa.sandbox import Delivery, Fault, Sandbox, button_form, read_forms
from paymux_yookassa.emulator import Emulator
from paymux_yookassa.emulator import Fault as EmulatorFault
from support import payment_request, payout_notification, serve_uvicorn, unique_order_id

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "docs" / "examples" / "frameworks"
PAGE = ROOT / "docs" / "frameworks.md"
FRAMEWORKS = ("flask", "django", "fastapi")
PATH = "/notify/alikassa"
TOTAL = Decimal("500.00")
GATEWAYS = ("alikassa", "yookassa")
CUSTOMER = Customer(ip="203.0.113.7", user_agent="Mozilla/5.0 (X11; Linux x86_64)")
RETURN_URL = "https://shop.example/orders/return"


# -- the host: its orders and what it did with each decision, told to fail or wait -----------


@dataclass
class Host:
    """The recipes' `shop`: knows each order's total, keeps every decision it is given.

    `failures` makes that many `apply` calls raise; `pause()` makes the next `apply` wait,
    with `entered` set, until `resume()`.
    """

    orders: dict[str, Decimal] = field(default_factory=dict)
    decisions: list[Decision] = field(default_factory=list)
    failures: int = 0
    entered: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.released.set()

    def amount_due(self, order_id: str) -> Decimal | None:
        with self.lock:
            return self.orders.get(order_id)

    def apply(self, decision: Decision, notification: paymux.Notification) -> None:
        if decision.verdict is not None and not decision.verdict.act:
            return  # a DUPLICATE or STALE: handled before
        self.entered.set()
        assert self.released.wait(10), "the test never resumed the shop"
        with self.lock:
            if self.failures:
                self.failures -= 1
                raise RuntimeError("the shop's database is down")
            self.decisions.append(decision)

    def pause(self) -> None:
        self.entered.clear()
        self.released.clear()

    def resume(self) -> None:
        self.released.set()

    def actions(self, order_id: str | None) -> list[Action]:
        with self.lock:
            return [item.action for item in self.decisions if _order_of(item) == order_id]

    def fulfilled(self) -> list[str | None]:
        with self.lock:
            return [_order_of(item) for item in self.decisions if item.fulfil]

    def not_about_payments(self) -> list[Decision]:
        with self.lock:
            return [item for item in self.decisions if item.payment is None]


@dataclass(frozen=True)
class AsyncHost:
    """The same host for the async FastAPI recipe: its blocking methods run in a thread."""

    host: Host

    async def amount_due(self, order_id: str) -> Decimal | None:
        return await asyncio.to_thread(self.host.amount_due, order_id)

    async def apply(self, decision: Decision, notification: paymux.Notification) -> None:
        await asyncio.to_thread(self.host.apply, decision, notification)


def _order_of(decision: Decision) -> str | None:
    return decision.payment.order_id if decision.payment is not None else None


@dataclass(frozen=True)
class Shop:
    """The two gateways the host is configured with, and their emulators."""

    sandbox: Sandbox
    provider: AliKassaProvider
    account: str
    notification_certificate: CertificateFolder
    emulator: Emulator
    yookassa: paymux.Provider

    def providers(self) -> dict[str, paymux.Provider]:
        """The host's configured instances, by name: what the recipes route by."""
        return {"alikassa": self.provider, "yookassa": self.yookassa}


@pytest.fixture(scope="module")
def shop(
    notification_certificate: CertificateFolder,
    payment_key: rsa.RSAPrivateKey,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Shop]:
    with (
        Sandbox(
            notification_certificate=notification_certificate.path,
            notification_retry_delays=(0.05, 0.1, 0.2),
        ) as sandbox,
        Emulator(retry_delays=(0.05, 0.1, 0.2)) as emulator,
    ):
        merchant = sandbox.create_merchant(
            tmp_path_factory.mktemp("frameworks") / "payment",
            private_key=payment_key,
        )
        alikassa = paymux.connect({**merchant.settings, "service": "payment_card_rub_hpp"})
        assert isinstance(alikassa, AliKassaProvider)
        with alikassa, paymux.connect({**emulator.settings(), "name": "yookassa"}) as yookassa:
            yield Shop(
                sandbox, alikassa, merchant.account, notification_certificate, emulator, yookassa
            )


# -- serving each recipe on loopback ---------------------------------------------------------

App = Callable[[dict[str, paymux.Provider], NotificationGuard, Any], Any]


def require(framework: str) -> None:
    """Skip, loudly, when `framework` (or what its recipe needs) cannot be imported."""
    modules = {"flask": ["flask"], "django": ["django"], "fastapi": ["fastapi", "uvicorn"]}
    for module in modules[framework]:
        pytest.importorskip(
            module,
            reason=f"the {framework} recipe is NOT TESTED: {module} is not importable; "
            "pip install 'paymux[frameworks]' to test it",
            exc_type=ImportError,  # a broken install skips too, and says why
        )


@contextmanager
def serve_flask(app: Any) -> Iterator[str]:
    """werkzeug's threaded development server, as `flask run` uses it."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    """A request per thread, as a production WSGI server has several workers."""

    daemon_threads = True


@contextmanager
def serve_wsgiref(app: Any) -> Iterator[str]:
    """The standard library's WSGI server, running Django's `WSGIHandler`."""
    server: WSGIServer = make_wsgiref_server(
        "127.0.0.1", 0, app, server_class=ThreadingWSGIServer, handler_class=QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def recipe(framework: str) -> tuple[App, Callable[[Any], Any]]:
    """The recipe's `make_app` and the server that runs what it returns."""
    if framework == "flask":
        from flask_app import make_app as make_flask_app

        return make_flask_app, serve_flask
    if framework == "django":
        from django_app import make_app as make_django_app

        return make_django_app, serve_wsgiref
    from fastapi_app import make_app as make_fastapi_app

    return make_fastapi_app, serve_uvicorn


@dataclass(frozen=True)
class Endpoint:
    framework: str
    base: str
    host: Host

    @property
    def url(self) -> str:
        """Where AliKassa notifications go."""
        return self.base + PATH

    def notify_url(self, gateway: str) -> str:
        return f"{self.base}/notify/{gateway}"


@pytest.fixture(scope="module", params=FRAMEWORKS)
def served(
    request: pytest.FixtureRequest, shop: Shop, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Endpoint]:
    framework: str = request.param
    require(framework)
    make_app, serve = recipe(framework)
    host = Host()
    store = SQLiteStore(tmp_path_factory.mktemp(framework) / "guard.sqlite3")
    side = AsyncHost(host) if framework == "fastapi" else host
    app = make_app(shop.providers(), NotificationGuard(store), side)
    with serve(app) as base:
        shop.emulator.webhook_url = f"{base}/notify/yookassa"  # configured in YooKassa's cabinet
        yield Endpoint(framework, base, host)


@pytest.fixture
def endpoint(served: Endpoint) -> Endpoint:
    served.host.failures = 0
    served.host.resume()
    return served


def order(shop: Shop, endpoint: Endpoint) -> Payment:
    """A new order of 500.00 in the host, and its payment, notified to `endpoint`."""
    created = shop.provider.create(payment_request(notification_url=endpoint.url, amount=TOTAL))
    assert created.order_id is not None
    with endpoint.host.lock:
        endpoint.host.orders[created.order_id] = TOTAL
    return created


def click(payment: Payment, button: str, **typed: str) -> None:
    """The customer opens the payment page and clicks `button`, as a browser posts the form."""
    assert payment.redirect_url is not None
    page = requests.get(payment.redirect_url, timeout=5)
    form = button_form(read_forms(page.text, page.url), button)
    answer = requests.post(form.action, data=form.submission(button, **typed), timeout=5)
    assert answer.status_code == 200, answer.text


def deliveries_of(shop: Shop, payment: Payment) -> list[Delivery]:
    assert shop.sandbox.wait_idle(), "the sandbox is still repeating a notification"
    return [item for item in shop.sandbox.deliveries if item.payment_id == int(payment.id)]


def pay(shop: Shop, endpoint: Endpoint) -> tuple[Payment, list[Delivery]]:
    """A new order, paid in full on the payment page; its payment and every delivery."""
    created = order(shop, endpoint)
    click(created, "Pay")
    return created, deliveries_of(shop, created)


def answers(deliveries: list[Delivery]) -> list[tuple[int | None, str | None]]:
    return [(item.http_status, item.fault) for item in deliveries]


def assert_fulfilled_once(endpoint: Endpoint, payment: Payment) -> None:
    assert endpoint.host.actions(payment.order_id) == [Action.FULFIL]


# -- the recipes ---------------------------------------------------------------------------


def test_of_pay_pay_partially_cancel_fail_and_a_payout_only_the_paid_order_is_fulfilled(
    shop: Shop, endpoint: Endpoint
) -> None:
    paid, partial, canceled, failed = (order(shop, endpoint) for _ in range(4))
    payout_order = order(shop, endpoint)  # pending; a payout names its order id and total
    payout = payout_notification(
        shop.notification_certificate,
        account=shop.account,
        order_id=str(payout_order.order_id),
        amount=TOTAL,
    )

    before = len(endpoint.host.not_about_payments())

    click(paid, "Pay")
    click(partial, "Pay partially", amount="1.00")
    click(canceled, "Cancel")
    click(failed, "Fail")
    payout_answer = requests.get(f"{endpoint.url}?{urlencode(payout)}", timeout=5)

    assert payout_answer.status_code == 200
    for payment in (paid, partial, canceled, failed):
        assert answers(deliveries_of(shop, payment)) == [(200, None)]
    assert endpoint.host.fulfilled() == [paid.order_id]
    assert endpoint.host.actions(paid.order_id) == [Action.FULFIL]
    assert endpoint.host.actions(partial.order_id) == [Action.HOLD]
    assert endpoint.host.actions(canceled.order_id) == [Action.IGNORE]
    assert endpoint.host.actions(failed.order_id) == [Action.IGNORE]
    [about_the_payout] = endpoint.host.not_about_payments()[before:]
    assert about_the_payout.action is Action.IGNORE
    assert about_the_payout.reasons == ("a payout notification, not a payment",)
    assert endpoint.host.actions(payout_order.order_id) == [], "never taken for its order"


def test_a_notification_for_an_order_the_shop_does_not_have_is_rejected(
    shop: Shop, endpoint: Endpoint
) -> None:
    created = shop.provider.create(payment_request(notification_url=endpoint.url))

    click(created, "Pay")

    assert answers(deliveries_of(shop, created)) == [(200, None)]
    assert endpoint.host.actions(created.order_id) == [Action.REJECT]
    [rejected] = [item for item in endpoint.host.decisions if _order_of(item) == created.order_id]
    assert rejected.reasons == (f"no order {created.order_id!r}",)


def test_a_duplicate_is_answered_ok_and_not_applied_again(shop: Shop, endpoint: Endpoint) -> None:
    shop.sandbox.inject(Fault.DUPLICATE_NOTIFICATION)
    payment, deliveries = pay(shop, endpoint)
    assert answers(deliveries) == [(200, None), (200, "duplicate")]
    assert_fulfilled_once(endpoint, payment)


def test_a_forged_notification_is_refused_with_400(shop: Shop, endpoint: Endpoint) -> None:
    shop.sandbox.inject(Fault.FORGED_NOTIFICATION)
    payment, deliveries = pay(shop, endpoint)
    assert answers(deliveries) == [(400, "forged"), (200, None)]
    assert_fulfilled_once(endpoint, payment)


def test_a_stale_notification_is_answered_ok_and_not_applied(
    shop: Shop, endpoint: Endpoint
) -> None:
    shop.sandbox.inject(Fault.STALE_NOTIFICATION)
    payment, deliveries = pay(shop, endpoint)
    assert answers(deliveries) == [(200, None), (200, "stale")]
    assert_fulfilled_once(endpoint, payment)


def test_a_failed_apply_answers_500_and_the_repeat_is_applied(
    shop: Shop, endpoint: Endpoint
) -> None:
    endpoint.host.failures = 1
    payment, deliveries = pay(shop, endpoint)
    assert [(item.http_status, item.attempt) for item in deliveries] == [(500, 1), (200, 2)]
    assert endpoint.host.failures == 0
    assert_fulfilled_once(endpoint, payment)


def test_a_copy_arriving_while_another_worker_handles_it_is_answered_503(
    shop: Shop, endpoint: Endpoint
) -> None:
    created = order(shop, endpoint)
    endpoint.host.pause()
    click(created, "Pay")  # the sandbox delivers in the background; the shop waits in apply
    assert endpoint.host.entered.wait(5), "the notification never reached the shop"
    same = shop.sandbox.gateway.notification_params(shop.sandbox.payment(created.id))

    busy = requests.get(f"{endpoint.url}?{urlencode(same)}", timeout=5)
    endpoint.host.resume()

    assert busy.status_code == 503, "answered while the first copy may still fail"
    assert answers(deliveries_of(shop, created)) == [(200, None)]
    assert requests.get(f"{endpoint.url}?{urlencode(same)}", timeout=5).status_code == 200
    assert_fulfilled_once(endpoint, created)


def test_a_request_that_is_no_notification_is_refused_with_400(endpoint: Endpoint) -> None:
    for query in ("", "?id=1&id=2", "?type=payment"):
        assert requests.get(endpoint.url + query, timeout=5).status_code == 400
    assert requests.post(endpoint.url, data=b"{}", timeout=5).status_code == 400
    assert requests.post(endpoint.notify_url("yookassa"), data=b"{}", timeout=5).status_code == 400
    assert requests.get(endpoint.notify_url("paypal"), timeout=5).status_code == 404


# -- one host, two gateways: the same host code, chosen by configuration ---------------------


def checkout(shop: Shop, endpoint: Endpoint, gateway: str) -> Payment:
    """A new order of 500.00 in the host, checked out through `gateway` by host.py's code."""
    order_id = unique_order_id()
    with endpoint.host.lock:
        endpoint.host.orders[order_id] = TOTAL
    return host.checkout(
        shop.providers()[gateway],
        order_id,
        TOTAL,
        customer=CUSTOMER,
        return_url=RETURN_URL,
        notification_url=endpoint.notify_url(gateway),
    )


def press(payment: Payment, button: str) -> None:
    """The customer presses `button` on the gateway's payment page (a redirect back is fine)."""
    assert payment.redirect_url is not None
    page = requests.get(payment.redirect_url, timeout=5)
    form = button_form(read_forms(page.text, page.url), button)
    answer = requests.post(
        form.action, data=form.submission(button), timeout=5, allow_redirects=False
    )
    assert answer.status_code in (200, 303), answer.text


def settled(shop: Shop, gateway: str) -> None:
    """Every notification the gateway had to send is answered (or given up on)."""
    idle = shop.sandbox.wait_idle() if gateway == "alikassa" else shop.emulator.wait_idle()
    assert idle, f"{gateway} is still repeating a notification"


def webhook_answers(shop: Shop, object_id: str) -> list[tuple[str, int | None, str | None]]:
    return [
        (item.event, item.status_code, item.fault)
        for item in shop.emulator.deliveries
        if item.object_id == object_id
    ]


@pytest.mark.parametrize("gateway", GATEWAYS)
def test_the_same_host_code_takes_a_payment_through_either_gateway(
    shop: Shop, endpoint: Endpoint, gateway: str
) -> None:
    provider = shop.providers()[gateway]
    created = checkout(shop, endpoint, gateway)
    assert created.status is paymux.PaymentStatus.PENDING

    press(created, "Pay")
    settled(shop, gateway)

    assert endpoint.host.actions(created.order_id) == [Action.FULFIL]
    paid = provider.status(payment_id=created.id)
    assert (paid.status, paid.amount) == (paymux.PaymentStatus.PAID, TOTAL)


@pytest.mark.parametrize("gateway", GATEWAYS)
def test_a_refund_where_the_gateway_takes_them_is_notified_and_never_taken_for_a_payment(
    shop: Shop, endpoint: Endpoint, gateway: str
) -> None:
    provider = shop.providers()[gateway]
    created = checkout(shop, endpoint, gateway)
    press(created, "Pay")
    settled(shop, gateway)
    before = len(endpoint.host.not_about_payments())

    refund = host.refund(provider, provider.status(payment_id=created.id), Decimal("100.00"))
    settled(shop, gateway)

    if gateway == "alikassa":  # AliKassa takes no refunds: host.py asks its capabilities
        assert refund is None
        assert endpoint.host.actions(created.order_id) == [Action.FULFIL]
        return
    assert refund is not None
    assert (refund.payment_id, refund.amount) == (created.id, Decimal("100.00"))
    assert webhook_answers(shop, refund.id) == [("refund.succeeded", 200, None)]
    [decision] = endpoint.host.not_about_payments()[before:]
    assert decision.action is Action.IGNORE
    assert decision.reasons == ("a refund notification, not a payment",)
    assert endpoint.host.actions(created.order_id) == [Action.FULFIL], "fulfilled once only"
    assert provider.status(payment_id=created.id).refunded_amount == Decimal("100.00")


@pytest.mark.parametrize("gateway", GATEWAYS)
def test_a_payment_given_up_on_the_page_is_never_fulfilled(
    shop: Shop, endpoint: Endpoint, gateway: str
) -> None:
    created = checkout(shop, endpoint, gateway)

    press(created, "Cancel")
    settled(shop, gateway)

    assert endpoint.host.actions(created.order_id) == [Action.IGNORE]
    assert endpoint.host.fulfilled().count(created.order_id) == 0


def test_a_webhook_from_outside_the_gateways_addresses_is_refused_and_the_real_one_counts(
    shop: Shop, endpoint: Endpoint
) -> None:
    shop.emulator.inject(EmulatorFault.FORGED_NOTIFICATION, on="notification")
    created = checkout(shop, endpoint, "yookassa")

    press(created, "Pay")
    settled(shop, "yookassa")

    answered = webhook_answers(shop, created.id)
    assert [code for _, code, fault in answered if fault] == [400] * len(
        [fault for _, _, fault in answered if fault]
    )
    assert ("payment.succeeded", 200, None) in answered
    assert endpoint.host.actions(created.order_id) == [Action.FULFIL]


def test_a_two_phase_payment_is_to_be_captured_then_fulfilled_once(
    shop: Shop, endpoint: Endpoint
) -> None:
    order_id = unique_order_id()
    with endpoint.host.lock:
        endpoint.host.orders[order_id] = TOTAL
    held = shop.yookassa.create(
        paymux.PaymentRequest(
            order_id=order_id,
            amount=TOTAL,
            customer=CUSTOMER,
            success_url=RETURN_URL,
            capture=False,
        )
    )
    press(held, "Pay")
    settled(shop, "yookassa")
    assert endpoint.host.actions(order_id) == [Action.CAPTURE]

    shop.yookassa.capture(held.id)
    settled(shop, "yookassa")

    assert endpoint.host.actions(order_id) == [Action.CAPTURE, Action.FULFIL]


# -- the page shows the tested code ----------------------------------------------------------

_SHOWN = re.compile(
    r"^<!-- no-run: shown from docs/examples/frameworks/(?P<file>\w+\.py)\b[^>]*-->\n"
    r"```python\n(?P<code>.*?)^```$",
    flags=re.MULTILINE | re.DOTALL,
)


def test_the_page_shows_each_recipe_as_it_is_tested() -> None:
    shown = {match["file"]: match["code"] for match in _SHOWN.finditer(PAGE.read_text("utf-8"))}
    files = {path.name: path.read_text("utf-8") for path in EXAMPLES.glob("*.py")}
    recipes = [f"{name}_app.py" for name in FRAMEWORKS]
    assert sorted(shown) == sorted(files) == sorted(["host.py", *recipes])
    for name, code in files.items():
        assert shown[name] == code, f"docs/frameworks.md shows an outdated {name}"
