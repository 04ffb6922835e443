"""The web-framework recipes of docs/frameworks.md, run in the real frameworks.

Each recipe (docs/examples/frameworks/*_app.py) is served on a real loopback HTTP server — Flask
by werkzeug's `make_server`, Django by `wsgiref` with Django's `WSGIHandler`, FastAPI by uvicorn —
each in a thread, and the sandbox delivers its notifications to it as real signed GETs. One
sandbox, provider and server per framework serve the whole module (stopping a loopback server
costs up to half a second); every test makes a fresh payment. A framework that is not installed
skips its tests, with the reason; the docs page is checked against the files in any case.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer
from wsgiref.simple_server import make_server as make_wsgiref_server

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

import paymux
from paymux import Notification, NotificationGuard, PaymentStatus, SQLiteStore
from paymux.providers.alikassa import AliKassaProvider, CertificateFolder
from paymux.providers.alikassa.sandbox import Delivery, Fault, Sandbox
from support import payment_request

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "docs" / "examples" / "frameworks"
PAGE = ROOT / "docs" / "frameworks.md"
FRAMEWORKS = ("flask", "django", "fastapi")
PATH = "/alikassa/notify"


# -- the host: its own storage, which can be told to fail ------------------------------------


@dataclass
class Host:
    """The shop's `record` callback: keeps what it is given, or raises while told to."""

    recorded: list[Notification] = field(default_factory=list)
    failures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, notification: Notification) -> None:
        with self.lock:
            if self.failures:
                self.failures -= 1
                raise RuntimeError("the shop's database is down")
            self.recorded.append(notification)

    def of(self, payment_id: str) -> list[Notification]:
        with self.lock:
            return [item for item in self.recorded if item.payment.id == payment_id]


@dataclass(frozen=True)
class Shop:
    sandbox: Sandbox
    provider: AliKassaProvider


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
            yield Shop(sandbox, provider)


# -- serving each recipe on loopback ---------------------------------------------------------

App = Callable[[paymux.Provider, NotificationGuard, Callable[[Notification], None]], Any]


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


@contextmanager
def serve_wsgiref(app: Any) -> Iterator[str]:
    """The standard library's WSGI server, running Django's `WSGIHandler`."""
    server: WSGIServer = make_wsgiref_server("127.0.0.1", 0, app, handler_class=QuietHandler)
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
    app = make_app(shop.provider, NotificationGuard(store), host.record)
    with serve(app) as base:
        yield Endpoint(framework, base + PATH, host)


@pytest.fixture
def endpoint(served: Endpoint) -> Endpoint:
    served.host.failures = 0
    return served


def pay(shop: Shop, endpoint: Endpoint) -> tuple[str, list[Delivery]]:
    """Create a payment notified to `endpoint`, settle it paid; its id and every delivery."""
    created = shop.provider.create(payment_request(notification_url=endpoint.url))
    shop.sandbox.settle(created.id, "paid")
    assert shop.sandbox.wait_idle(), "the sandbox is still repeating a notification"
    deliveries = [item for item in shop.sandbox.deliveries if item.payment_id == int(created.id)]
    return created.id, deliveries


def answers(deliveries: list[Delivery]) -> list[tuple[int | None, str | None]]:
    return [(item.http_status, item.fault) for item in deliveries]


def assert_recorded_once(endpoint: Endpoint, payment_id: str) -> None:
    recorded = endpoint.host.of(payment_id)
    assert len(recorded) == 1, recorded
    assert recorded[0].payment.status is PaymentStatus.PAID
    assert recorded[0].provider == "alikassa"


# -- the recipes ---------------------------------------------------------------------------


def test_a_paid_notification_is_recorded_and_answered_ok(shop: Shop, endpoint: Endpoint) -> None:
    payment_id, deliveries = pay(shop, endpoint)
    assert answers(deliveries) == [(200, None)]
    assert_recorded_once(endpoint, payment_id)


def test_a_duplicate_is_answered_ok_and_not_recorded_again(shop: Shop, endpoint: Endpoint) -> None:
    shop.sandbox.inject(Fault.DUPLICATE_NOTIFICATION)
    payment_id, deliveries = pay(shop, endpoint)
    assert answers(deliveries) == [(200, None), (200, "duplicate")]
    assert_recorded_once(endpoint, payment_id)


def test_a_forged_notification_is_refused_with_400(shop: Shop, endpoint: Endpoint) -> None:
    shop.sandbox.inject(Fault.FORGED_NOTIFICATION)
    payment_id, deliveries = pay(shop, endpoint)
    assert answers(deliveries) == [(400, "forged"), (200, None)]
    assert_recorded_once(endpoint, payment_id)


def test_a_stale_notification_is_answered_ok_and_not_recorded(
    shop: Shop, endpoint: Endpoint
) -> None:
    shop.sandbox.inject(Fault.STALE_NOTIFICATION)
    payment_id, deliveries = pay(shop, endpoint)
    assert answers(deliveries) == [(200, None), (200, "stale")]
    assert_recorded_once(endpoint, payment_id)


def test_a_failed_record_answers_500_and_the_repeat_is_recorded(
    shop: Shop, endpoint: Endpoint
) -> None:
    endpoint.host.failures = 1
    payment_id, deliveries = pay(shop, endpoint)
    assert [(item.http_status, item.attempt) for item in deliveries] == [(500, 1), (200, 2)]
    assert endpoint.host.failures == 0
    assert_recorded_once(endpoint, payment_id)


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
