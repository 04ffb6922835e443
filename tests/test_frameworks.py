"""The web-framework recipes of docs/frameworks.md, run in the real frameworks.

Each recipe (docs/examples/frameworks/*_app.py) is served on a real loopback HTTP server — Flask
by werkzeug's `make_server`, Django by `wsgiref` with Django's `WSGIHandler`, FastAPI by uvicorn —
each in a thread, and the sandbox delivers its notifications to it as real signed GETs, most of
them after a click on its payment page. One sandbox, provider and server per framework serve the
whole module (stopping a loopback server costs up to half a second); every test makes fresh
payments. A framework that is not installed skips its tests, with the reason; the docs page is
checked against the files in any case.
"""

from __future__ import annotations

import re
import socket
import threading
import time
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

import paymux
from paymux import Action, Decision, NotificationGuard, Payment, SQLiteStore
from paymux.providers.alikassa import AliKassaProvider, CertificateFolder
from paymux.providers.alikassa.sandbox import Delivery, Fault, Sandbox, button_form, read_forms
from support import payment_request, payout_notification

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "docs" / "examples" / "frameworks"
PAGE = ROOT / "docs" / "frameworks.md"
FRAMEWORKS = ("flask", "django", "fastapi")
PATH = "/alikassa/notify"
TOTAL = Decimal("500.00")


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

    def apply(self, decision: Decision) -> None:
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
            return [item.action for item in self.decisions if item.payment.order_id == order_id]

    def fulfilled(self) -> list[str | None]:
        with self.lock:
            return [item.payment.order_id for item in self.decisions if item.fulfil]


@dataclass(frozen=True)
class Shop:
    sandbox: Sandbox
    provider: AliKassaProvider
    account: str
    notification_certificate: CertificateFolder


@pytest.fixture(scope="module")
def shop(
    notification_certificate: CertificateFolder,
    payment_key: rsa.RSAPrivateKey,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Shop]:
    with Sandbox(
        notification_certificate=notification_certificate.path,
        notification_retry_delays=(0.05, 0.1, 0.2),
    ) as sandbox:
        merchant = sandbox.create_merchant(
            tmp_path_factory.mktemp("frameworks") / "payment", private_key=payment_key
        )
        provider = paymux.connect(merchant.settings)
        assert isinstance(provider, AliKassaProvider)
        with provider:
            yield Shop(sandbox, provider, merchant.account, notification_certificate)


# -- serving each recipe on loopback ---------------------------------------------------------

App = Callable[[paymux.Provider, NotificationGuard, Host], Any]


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


@contextmanager
def serve_uvicorn(app: Any) -> Iterator[str]:
    """uvicorn in a thread, on a socket bound beforehand (so its port is known)."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off", ws="none", http="h11")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive(), "uvicorn stopped before it started"
            assert time.monotonic() < deadline, "uvicorn did not start within 10 s"
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(5)
        sock.close()


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
    url: str
    host: Host


@pytest.fixture(scope="module", params=FRAMEWORKS)
def served(
    request: pytest.FixtureRequest, shop: Shop, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Endpoint]:
    framework: str = request.param
    require(framework)
    make_app, serve = recipe(framework)
    host = Host()
    store = SQLiteStore(tmp_path_factory.mktemp(framework) / "guard.sqlite3")
    app = make_app(shop.provider, NotificationGuard(store), host)
    with serve(app) as base:
        yield Endpoint(framework, base + PATH, host)


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
    assert endpoint.host.actions(payout_order.order_id) == [Action.IGNORE]


def test_a_notification_for_an_order_the_shop_does_not_have_is_rejected(
    shop: Shop, endpoint: Endpoint
) -> None:
    created = shop.provider.create(payment_request(notification_url=endpoint.url))

    click(created, "Pay")

    assert answers(deliveries_of(shop, created)) == [(200, None)]
    assert endpoint.host.actions(created.order_id) == [Action.REJECT]
    [rejected] = [item for item in endpoint.host.decisions if item.payment.id == created.id]
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
    assert requests.post(endpoint.url, timeout=5).status_code == 405


# -- the page shows the tested code ----------------------------------------------------------

_SHOWN = re.compile(
    r"^<!-- no-run: shown from docs/examples/frameworks/(?P<file>\w+\.py)\b[^>]*-->\n"
    r"```python\n(?P<code>.*?)^```$",
    flags=re.MULTILINE | re.DOTALL,
)


def test_the_page_shows_each_recipe_as_it_is_tested() -> None:
    shown = {match["file"]: match["code"] for match in _SHOWN.finditer(PAGE.read_text("utf-8"))}
    files = {path.name: path.read_text("utf-8") for path in EXAMPLES.glob("*.py")}
    assert sorted(shown) == sorted(files) == sorted(f"{name}_app.py" for name in FRAMEWORKS)
    for name, code in files.items():
        assert shown[name] == code, f"docs/frameworks.md shows an outdated {name}"
