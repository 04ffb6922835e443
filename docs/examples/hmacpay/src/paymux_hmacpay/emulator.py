"""A local HmacPay: the merchant API of `protocol` on loopback, for tests and demos.

    with Emulator() as emulator:
        provider = paymux.connect(emulator.settings)
        payment = provider.create(...)
        notification = emulator.settle(payment.id, "succeeded")   # also sent to notify_url
        provider.parse_notification(notification)

Amounts from 1.00 to 10000.00 are accepted; others are refused with `amount_out_of_range`.
`lose_answers("create", 1)` makes the next create act but close the connection instead of
answering, as a network failure after the gateway acted would.
"""

from __future__ import annotations

import itertools
import json
import secrets
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

from paymux.providers.base.loopback import LoopbackHandler, LoopbackServer, context_of
from paymux_hmacpay import protocol

MINIMUM = Decimal("1.00")
MAXIMUM = Decimal("10000.00")
FINAL = ("succeeded", "declined", "expired")
OPERATIONS = {
    "/payments": "create",
    "/payments/lookup": "status",
    "/refunds": "refund",
    "/refunds/lookup": "refund_status",
}
"""Each endpoint, by the name of the paymux operation that calls it."""

Outcome = tuple[int, dict[str, Any]]


@dataclass
class StoredPayment:
    id: str
    merchant: str
    order_id: str
    amount: Decimal
    currency: str
    notify_url: str | None
    status: str = "new"
    refunded: Decimal = Decimal("0.00")

    def as_json(self, base_url: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "order_id": self.order_id,
            "status": self.status,
            "amount": f"{self.amount:.2f}",
            "refunded": f"{self.refunded:.2f}",
            "currency": self.currency,
            "pay_url": f"{base_url}/pay/{self.id}",
        }


@dataclass
class StoredRefund:
    id: str
    payment: StoredPayment
    amount: Decimal

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "payment_id": self.payment.id,
            "status": "succeeded",
            "amount": f"{self.amount:.2f}",
            "currency": self.payment.currency,
        }


@dataclass(frozen=True)
class Received:
    """One merchant API request as it arrived."""

    path: str
    idempotency_key: str | None
    body: bytes


@dataclass
class Delivery:
    """One notification the emulator sent: where, and what the shop answered."""

    url: str
    http_status: int | None = None
    error: str | None = None


@dataclass
class _State:
    payments: dict[str, StoredPayment] = field(default_factory=dict)
    refunds: dict[str, StoredRefund] = field(default_factory=dict)
    keys: dict[tuple[str, str], tuple[float, bytes, Outcome]] = field(default_factory=dict)
    """(merchant, key) -> (forgotten at, the first body, the first answer)."""
    lost: dict[str, int] = field(default_factory=dict)
    requests: list[Received] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)


class Emulator:
    """HmacPay's merchant API on a free loopback port (a context manager). Thread-safe."""

    def __init__(
        self,
        *,
        merchant: str = "m-demo",
        secret: str | None = None,
        key_lifetime: float = protocol.KEY_LIFETIME,
    ) -> None:
        self.merchant = merchant
        self.secret = secret or secrets.token_hex(24)
        self.key_lifetime = key_lifetime
        self._state = _State()
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._server = LoopbackServer(_Handler, "127.0.0.1", 0, self)

    @property
    def url(self) -> str:
        return self._server.origin

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
    def requests(self) -> list[Received]:
        """Every merchant API request received."""
        with self._lock:
            return list(self._state.requests)

    @property
    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._state.deliveries)

    def start(self) -> Emulator:
        self._server.start("hmacpay-emulator")
        return self

    def stop(self) -> None:
        self._server.stop()

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

    def payment(self, payment_id: str) -> StoredPayment:
        with self._lock:
            if payment_id in self._state.payments:
                return self._state.payments[payment_id]
        raise KeyError(f"no HmacPay payment {payment_id!r}")

    def count_payments(self, order_id: str) -> int:
        """How many payments the shop's `order_id` has (HmacPay does not keep it unique)."""
        with self._lock:
            return sum(p.order_id == order_id for p in self._state.payments.values())

    def lose_answers(self, operation: str, count: int) -> None:
        """Act on the next `count` calls of `operation` (see `OPERATIONS`) but answer none."""
        if operation not in OPERATIONS.values():
            raise ValueError(f"HmacPay has no {operation!r} endpoint")
        with self._lock:
            self._state.lost[operation] = self._state.lost.get(operation, 0) + count

    def settle(self, payment_id: str, status: str) -> str:
        """End a payment as `status`, send its notification, and return it as a query string."""
        if status not in FINAL:
            raise ValueError(f"status must be one of {', '.join(FINAL)}, not {status!r}")
        payment = self.payment(payment_id)
        with self._lock:
            if payment.status != "new":
                raise ValueError(f"payment {payment.id} is {payment.status} already")
            payment.status = status
        query = self.notification(payment.id)
        if payment.notify_url:
            self._deliver(f"{payment.notify_url}?{query}")
        return query

    def notification(self, payment_id: str) -> str:
        """The signed notification query string for the payment's current state."""
        payment = self.payment(payment_id)
        params = {
            "event": "payment",
            "id": payment.id,
            "order_id": payment.order_id,
            "status": payment.status,
            "amount": f"{payment.amount:.2f}",
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

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[Outcome, bool]:
        """The answer to one request, and whether to lose it (act, but answer nothing)."""
        key = headers.get(protocol.IDEMPOTENCY_HEADER.lower())
        with self._lock:
            self._state.requests.append(Received(path, key, body))
            outcome = self._outcome(path, headers, body, key)
            operation = OPERATIONS.get(path, "")
            lose = self._state.lost.get(operation, 0) > 0
            if lose:
                self._state.lost[operation] -= 1
        return outcome, lose

    def _outcome(self, path: str, headers: dict[str, str], body: bytes, key: str | None) -> Outcome:
        merchant = headers.get(protocol.MERCHANT_HEADER.lower(), "")
        signature = headers.get(protocol.SIGNATURE_HEADER.lower(), "")
        if merchant != self.merchant or not protocol.verify(self.secret, body, signature):
            return 401, _error("bad_signature", "Unknown merchant or wrong signature.")
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            return 400, _error("invalid", "The body must be a JSON object.")
        if path == "/payments/lookup":
            found = self._state.payments.get(str(data.get("id")))
            return (200, found.as_json(self.url)) if found else (404, _not_found("payment"))
        if path == "/refunds/lookup":
            refund = self._state.refunds.get(str(data.get("id")))
            return (200, refund.as_json()) if refund else (404, _not_found("refund"))
        if path not in ("/payments", "/refunds"):
            return 404, _error("no_such_endpoint", "No such endpoint.")
        if not key:
            return 400, _error("invalid", f"{protocol.IDEMPOTENCY_HEADER} is required.")
        forgotten_at, first_body, first = self._state.keys.get((merchant, key), (0, b"", (0, {})))
        if time.monotonic() < forgotten_at:
            if first_body != body:
                return 422, _error("idempotency_key_reused", "That key came with another body.")
            return first
        outcome = self._create(merchant, data) if path == "/payments" else self._refund(data)
        self._state.keys[(merchant, key)] = (time.monotonic() + self.key_lifetime, body, outcome)
        return outcome

    def _create(self, merchant: str, data: dict[str, Any]) -> Outcome:
        try:
            amount = Decimal(str(data["amount"]))
            order_id, currency = str(data["order_id"]), str(data["currency"])
        except (KeyError, InvalidOperation):
            return 400, _error("invalid", "order_id, amount and currency are required.")
        if not amount.is_finite() or not MINIMUM <= amount <= MAXIMUM:
            return 400, _error("amount_out_of_range", f"Amount must be {MINIMUM} to {MAXIMUM}.")
        payment = StoredPayment(
            id=f"hp_{next(self._ids):06d}",
            merchant=merchant,
            order_id=order_id,
            amount=amount,
            currency=currency,
            notify_url=data.get("notify_url"),
        )
        self._state.payments[payment.id] = payment
        return 201, payment.as_json(self.url)

    def _refund(self, data: dict[str, Any]) -> Outcome:
        payment = self._state.payments.get(str(data.get("payment_id")))
        if payment is None:
            return 404, _not_found("payment")
        left = payment.amount - payment.refunded
        try:
            amount = Decimal(str(data.get("amount", left)))
        except InvalidOperation:
            return 400, _error("invalid", "amount must be a decimal string.")
        if payment.status != "succeeded" or not amount.is_finite() or not 0 < amount <= left:
            return 422, _error("not_refundable", f"At most {left:.2f} of a paid payment.")
        payment.refunded += amount
        refund = StoredRefund(f"hr_{next(self._ids):06d}", payment, amount)
        self._state.refunds[refund.id] = refund
        return 201, refund.as_json()


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _not_found(what: str) -> dict[str, Any]:
    return _error("not_found", f"No such {what}.")


class _Handler(LoopbackHandler):
    def do_POST(self) -> None:
        body = self.read_body()
        if body is None:
            return
        headers = {key.lower(): value for key, value in self.headers.items()}
        emulator: Emulator = context_of(self)
        (status, answer), lose = emulator.handle(self.path, headers, body)
        if lose:
            self.close_connection = True  # acted, and the answer is lost on the way
            return
        self.write(status, "application/json", json.dumps(answer).encode("utf-8"))
