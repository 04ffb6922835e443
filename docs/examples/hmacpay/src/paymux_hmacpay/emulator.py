"""A local HmacPay: the merchant API of `protocol` on loopback, for tests and demos.

    with Emulator() as emulator:
        provider = paymux.connect(emulator.settings)
        payment = provider.create(...)
        notification = emulator.settle(payment.id, "succeeded")   # also sent to notify_url
        provider.parse_notification(notification)

Amounts from 1.00 to 10000.00 are accepted; others are refused with `amount_out_of_range`.
"""

from __future__ import annotations

import itertools
import json
import secrets
import threading
import urllib.request
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

from paymux_hmacpay import protocol

MINIMUM = Decimal("1.00")
MAXIMUM = Decimal("10000.00")
FINAL = ("succeeded", "declined", "expired")


@dataclass
class StoredPayment:
    id: str
    merchant: str
    order_id: str
    amount: str
    currency: str
    notify_url: str | None
    status: str = "new"

    def as_json(self, base_url: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "order_id": self.order_id,
            "status": self.status,
            "amount": self.amount,
            "currency": self.currency,
            "pay_url": f"{base_url}/pay/{self.id}",
        }


@dataclass
class Delivery:
    """One notification the emulator sent: where, and what the shop answered."""

    url: str
    http_status: int | None = None
    error: str | None = None


@dataclass
class _State:
    merchants: dict[str, str] = field(default_factory=dict)
    payments: dict[str, StoredPayment] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)


class Emulator:
    """HmacPay's merchant API on a free loopback port (a context manager). Thread-safe."""

    def __init__(self, *, merchant: str = "m-demo", secret: str | None = None) -> None:
        self.merchant = merchant
        self.secret = secret or secrets.token_hex(24)
        self._state = _State(merchants={merchant: self.secret})
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.emulator = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def settings(self) -> dict[str, str]:
        """The configuration to hand to `paymux.connect` for this emulator's merchant."""
        return {
            "provider": "hmacpay",
            "merchant": self.merchant,
            "secret": self.secret,
            "base_url": self.url,
        }

    @property
    def requests(self) -> list[tuple[str, str]]:
        """Every merchant API request received, as (method, path)."""
        with self._lock:
            return list(self._state.requests)

    @property
    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._state.deliveries)

    def start(self) -> Emulator:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="hmacpay-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what a test does -----------------------------------------------------------------

    def payment(self, reference: str) -> StoredPayment:
        """A payment by id or order_id."""
        with self._lock:
            for payment in self._state.payments.values():
                if reference in (payment.id, payment.order_id):
                    return payment
        raise KeyError(f"no HmacPay payment {reference!r}")

    def settle(self, reference: str, status: str) -> str:
        """End a payment as `status`, send its notification, and return it as a query string."""
        if status not in FINAL:
            raise ValueError(f"status must be one of {', '.join(FINAL)}, not {status!r}")
        payment = self.payment(reference)
        with self._lock:
            if payment.status != "new":
                raise ValueError(f"payment {payment.id} is {payment.status} already")
            payment.status = status
        query = self.notification(payment.id)
        if payment.notify_url:
            self._deliver(f"{payment.notify_url}?{query}")
        return query

    def notification(self, reference: str) -> str:
        """The signed notification query string for the payment's current state."""
        payment = self.payment(reference)
        params = {
            "event": "payment",
            "id": payment.id,
            "order_id": payment.order_id,
            "status": payment.status,
            "amount": payment.amount,
            "currency": payment.currency,
            "merchant": payment.merchant,
        }
        signature = protocol.sign(self.secret, protocol.notification_message(params))
        return urlencode({**params, protocol.SIGNATURE_FIELD: signature})

    def _deliver(self, url: str) -> None:
        delivery = Delivery(url)
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 - http(s) only
                delivery.http_status = answer.status
        except OSError as error:
            delivery.error = str(error)
        with self._lock:
            self._state.deliveries.append(delivery)

    # -- the merchant API -----------------------------------------------------------------

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        with self._lock:
            self._state.requests.append(("POST", path))
            secret = self._state.merchants.get(headers.get(protocol.MERCHANT_HEADER.lower(), ""))
        signature = headers.get(protocol.SIGNATURE_HEADER.lower(), "")
        if secret is None or not protocol.verify(secret, body, signature):
            return 401, _error("bad_signature", "Unknown merchant or wrong signature.")
        merchant = headers[protocol.MERCHANT_HEADER.lower()]
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            return 400, _error("invalid", "The body must be a JSON object.")
        if path == "/payments":
            return self._create(merchant, data)
        if path == "/payments/lookup":
            return self._lookup(merchant, data)
        return 404, _error("no_such_endpoint", "No such endpoint.")

    def _create(self, merchant: str, data: dict[str, Any]) -> tuple[int, Any]:
        try:
            amount = Decimal(str(data["amount"]))
            order_id, currency = str(data["order_id"]), str(data["currency"])
        except (KeyError, InvalidOperation):
            return 400, _error("invalid", "order_id, amount and currency are required.")
        if not amount.is_finite() or not MINIMUM <= amount <= MAXIMUM:
            return 400, _error("amount_out_of_range", f"Amount must be {MINIMUM} to {MAXIMUM}.")
        with self._lock:
            if any(
                p.merchant == merchant and p.order_id == order_id
                for p in self._state.payments.values()
            ):
                return 409, _error("duplicate_order", f"Order {order_id} exists already.")
            payment = StoredPayment(
                id=f"hp_{next(self._ids):06d}",
                merchant=merchant,
                order_id=order_id,
                amount=str(data["amount"]),
                currency=currency,
                notify_url=data.get("notify_url"),
            )
            self._state.payments[payment.id] = payment
        return 201, payment.as_json(self.url)

    def _lookup(self, merchant: str, data: dict[str, Any]) -> tuple[int, Any]:
        with self._lock:
            for payment in self._state.payments.values():
                if payment.merchant == merchant and (
                    payment.id == data.get("id") or payment.order_id == data.get("order_id")
                ):
                    return 200, payment.as_json(self.url)
        return 404, _error("not_found", "No such payment.")


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the emulator records requests instead of printing them."""

    def do_POST(self) -> None:
        emulator: Emulator = self.server.emulator  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        headers = {key.lower(): value for key, value in self.headers.items()}
        status, answer = emulator.handle(self.path, headers, body)
        payload = json.dumps(answer).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
