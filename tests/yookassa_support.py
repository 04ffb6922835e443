"""What the YooKassa tests share: the shop's webhook endpoint and request builders.

Their flows run over real HTTP on loopback against the YooKassa emulator that ships with the
distribution (the fixtures are in conftest.py).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable
from decimal import Decimal
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import requests

import paymux
from paymux import Provider

if TYPE_CHECKING:
    from paymux_yookassa.emulator import Emulator

RETURN_URL = "https://shop.example/orders/back"


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class Webhooks:
    """The shop's notification endpoint: a WSGI app on loopback that keeps each request as a
    host's view hands it to paymux, `paymux.Incoming.from_wsgi(environ)`, and answers 200."""

    def __init__(self) -> None:
        self.received: list[paymux.Incoming] = []
        self._arrived = threading.Condition()
        self._server = make_server(
            "127.0.0.1", 0, self._app, server_class=_Server, handler_class=_Quiet
        )
        self.url = f"http://127.0.0.1:{self._server.server_port}/yookassa/notifications"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        incoming = paymux.Incoming.from_wsgi(environ)
        with self._arrived:
            self.received.append(incoming)
            self._arrived.notify_all()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"OK"]

    def wait_for(self, count: int, timeout: float = 5.0) -> list[paymux.Incoming]:
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.received) >= count, timeout)
            return list(self.received)

    def about(self, object_id: str, event: str) -> list[paymux.Incoming]:
        """What arrived about one object with one event, in order."""
        return [
            incoming
            for incoming in self.received
            if incoming.json()["object"]["id"] == object_id and incoming.json()["event"] == event
        ]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def payment_request(**changes: Any) -> paymux.PaymentRequest:
    """A valid YooKassa payment request with a fresh order id; keywords replace fields."""
    values: dict[str, Any] = {
        "order_id": f"order-{uuid.uuid4().hex[:12]}",
        "amount": Decimal("1500.00"),
        "currency": "RUB",
        "description": "Order for a test",
        "success_url": RETURN_URL,
    }
    return paymux.PaymentRequest(**{**values, **changes})


def inject(emulator: Emulator, fault: str, *, on: str, times: int = 1) -> None:
    """Make the emulator misbehave (`fault` is a `paymux_yookassa.emulator.Fault` value)."""
    from paymux_yookassa.emulator import Fault

    emulator.inject(Fault(fault), on=on, times=times)


def settings_of(emulator: Emulator, **changes: Any) -> dict[str, Any]:
    """The emulator shop's settings, with short pauses between repeats."""
    return {**emulator.settings(), "backoff": 0.01, **changes}


def pay(payment: paymux.Payment) -> None:
    """The payer presses Pay on YooKassa's page and is sent back to the shop."""
    assert payment.redirect_url is not None
    answer = requests.post(
        payment.redirect_url, data={"action": "pay"}, allow_redirects=False, timeout=5
    )
    assert answer.status_code == 303
    assert answer.headers["Location"] == RETURN_URL


def paid(provider: Provider, emulator: Emulator, **changes: Any) -> paymux.Payment:
    """A payment its payer has paid (only held, with `capture=False`), as the API shows it."""
    request = payment_request(**changes)
    created = provider.create(request)
    emulator.settle(created.id, "succeeded" if request.capture else "waiting_for_capture")
    return provider.status(payment_id=created.id)
