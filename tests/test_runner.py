"""Core's exchange runner: how a described call is sent, repeated, settled or given up on.

Toy, the provider below, is written with the author API only and runs against a small gateway
on loopback that a test scripts: an answer lost after the gateway acted, a connection closed
before it acted, a 5xx, a 429, a 202 "still processing", a refusal, a stall. Toy makes its
create exactly-once either way a gateway can: by a lookup under the order id (`ToyByOrder`) or
by an idempotency key (`ToyByKey`). Pauses go through an injected sleep and clock, so no test
waits for a backoff.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import logging
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import paymux
from paymux import (
    DuplicateOrder,
    OrderConflict,
    OutcomeUnknown,
    Payment,
    PaymentNotFound,
    PaymentRequest,
    PaymentStatus,
    ProviderError,
    ProviderServerError,
    TransportError,
)
from paymux.providers.base import (
    Answer,
    Call,
    Capabilities,
    Connection,
    ConnectionSettings,
    IdempotencyKey,
    Incoming,
    Lookup,
    Observers,
    Operation,
    OrderLookup,
    Processing,
    Provider,
    Request,
    RetryPolicy,
    Secret,
    SecretString,
    connection_from,
    validate_settings,
)
from paymux.providers.base.loopback import LoopbackHandler, LoopbackServer, context_of

# -- the toy gateway ------------------------------------------------------------------------


class Fault(enum.Enum):
    LOSE = "act, then close the connection without an answer"
    VANISH = "close the connection without acting or answering"
    FAIL = "answer 500 without acting"
    THROTTLE = "answer 429 with Retry-After: 2"
    PROCESSING = "answer 202 {retry_after: 3} without acting"
    REFUSE = "answer 422"
    STALL = "act and answer after 3 s"


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes


@dataclass
class Gateway:
    """What the toy gateway holds, and the faults queued for its next requests."""

    secret: str
    url: str = ""
    unique_orders: bool = True
    hide_amounts: bool = False
    payments: dict[str, dict[str, str]] = field(default_factory=dict)
    keys: dict[str, tuple[bytes, int, bytes]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    faults: dict[str, list[Fault]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, operation: str, *faults: Fault) -> None:
        with self.lock:
            self.faults.setdefault(operation, []).extend(faults)

    def add(self, order_id: str, amount: str) -> dict[str, str]:
        with self.lock:
            payment = {"id": f"p-{len(self.payments) + 1}", "order_id": order_id}
            payment.update(amount=amount, status="pending")
            self.payments[payment["id"]] = payment
            return payment

    def of_order(self, order_id: str) -> list[dict[str, str]]:
        with self.lock:
            return [p for p in self.payments.values() if p["order_id"] == order_id]

    def sent(self, operation: str) -> list[Received]:
        """The requests of one operation, as they arrived."""
        return [r for r in self.received if _operation(r.method, r.path) == operation]

    def next_fault(self, operation: str) -> Fault | None:
        with self.lock:
            queued = self.faults.get(operation, [])
            return queued.pop(0) if queued else None


def _operation(method: str, path: str) -> str:
    if path.endswith("/cancel"):
        return "cancel"
    if path.startswith("/orders/"):
        return "lookup"
    return "create" if method == "POST" else "status"


class GatewayHandler(LoopbackHandler):
    def do_GET(self) -> None:
        self._serve(b"")

    def do_POST(self) -> None:
        body = self.read_body()
        if body is not None:
            self._serve(body)

    def _serve(self, body: bytes) -> None:
        gateway: Gateway = context_of(self)
        headers = {name.lower(): value for name, value in self.headers.items()}
        gateway.received.append(Received(self.command, self.path, headers, body))
        if headers.get("authorization") != f"Bearer {gateway.secret}":
            self._json(401, {"code": "unauthorized"})
            return
        operation = _operation(self.command, self.path)
        fault = gateway.next_fault(operation)
        if fault is Fault.VANISH:
            self.close_connection = True
            return
        if fault in (Fault.FAIL, Fault.THROTTLE, Fault.PROCESSING, Fault.REFUSE):
            self._fault(fault)
            return
        status, answer = self._act(gateway, operation, headers, body)
        if fault is Fault.LOSE:
            self.close_connection = True
            return
        if fault is Fault.STALL:
            time.sleep(3)
        self.write(status, "application/json", answer)

    def _act(
        self, gateway: Gateway, operation: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, bytes]:
        key = headers.get("idempotency-key")
        if operation == "create" and key in gateway.keys:
            first_body, status, answer = gateway.keys[key]
            return (status, answer) if first_body == body else (422, b'{"code": "key_reused"}')
        status, payload = self._outcome(gateway, operation, json.loads(body) if body else {})
        answer = json.dumps(payload).encode()
        if operation == "create" and key is not None:
            gateway.keys[key] = (body, status, answer)
        return status, answer

    def _outcome(
        self, gateway: Gateway, operation: str, data: dict[str, str]
    ) -> tuple[int, dict[str, str]]:
        if operation == "create":
            if gateway.unique_orders and gateway.of_order(data["order_id"]):
                return 409, {"code": "duplicate_order"}
            return 201, self._shown(gateway, gateway.add(data["order_id"], data["amount"]))
        if operation == "cancel":
            payment_id = self.path.split("/")[2]
            if payment_id not in gateway.payments:
                return 404, {"code": "not_found"}
            gateway.payments[payment_id]["status"] = "canceled"
            return 200, self._shown(gateway, gateway.payments[payment_id])
        reference = self.path.rsplit("/", 1)[-1]
        if operation == "lookup":
            found = gateway.of_order(reference)
            payment = found[-1] if found else None
        else:
            payment = gateway.payments.get(reference)
        if payment is None:
            return 404, {"code": "not_found"}
        return 200, self._shown(gateway, payment)

    @staticmethod
    def _shown(gateway: Gateway, payment: dict[str, str]) -> dict[str, str]:
        hidden = {"amount"} if gateway.hide_amounts else set()
        return {name: value for name, value in payment.items() if name not in hidden}

    def _fault(self, fault: Fault) -> None:
        if fault is Fault.THROTTLE:
            self.write(429, "application/json", b'{"code": "slow_down"}', {"Retry-After": "2"})
        elif fault is Fault.PROCESSING:
            self.write(202, "application/json", b'{"retry_after": 3}')
        elif fault is Fault.FAIL:
            self._json(500, {"code": "internal"})
        else:
            self._json(422, {"code": "invalid", "message": "amount is too small"})

    def _json(self, status: int, payload: dict[str, str]) -> None:
        self.write(status, "application/json", json.dumps(payload).encode())


# -- the toy provider: the author API only ----------------------------------------------------


class ToySettings(ConnectionSettings):
    secret = SecretString(required=True)


class Toy(Provider):
    """A gateway that creates, finds and cancels payments, authenticated by a bearer token."""

    name = "toy"
    capabilities = Capabilities(
        operations={Operation.CANCEL}, status_by={Lookup.PAYMENT_ID, Lookup.ORDER_ID}
    )
    key_lifetime = 86400.0
    """Seconds the gateway remembers an idempotency key (a test may shorten it)."""

    def __init__(
        self,
        *,
        secret: Secret[str],
        instance: str,
        connection: Connection,
        observers: Observers | None = None,
    ) -> None:
        super().__init__(instance=instance, connection=connection, observers=observers)
        self._secret = secret

    @classmethod
    def from_settings(
        cls,
        settings: Mapping[str, Any],
        *,
        instance: str,
        base_dir: Path | None = None,
        observers: Observers | None = None,
    ) -> Toy:
        values = validate_settings(ToySettings(), settings, instance=instance)
        connection = connection_from(values, instance=instance)
        return cls(
            secret=values["secret"], instance=instance, connection=connection, observers=observers
        )

    def authenticate(self, request: Request) -> Mapping[str, str]:
        return {"Authorization": f"Bearer {self._secret.reveal()}"}

    def read_error(self, request: Request, answer: Answer) -> paymux.PaymuxError:
        code = str(answer.json_object().get("code"))
        kind: type[ProviderError] = {
            "duplicate_order": DuplicateOrder,
            "not_found": PaymentNotFound,
        }.get(code, ProviderServerError if answer.status >= 500 else ProviderError)
        return kind(f"{request.operation}: refused ({code})", http_status=answer.status)

    def describe_create(self, request: PaymentRequest) -> Call[Payment]:
        body = json.dumps({"order_id": request.order_id, "amount": str(request.amount)})
        return Call(
            Request("create", "POST", "payments", body.encode(), headers=self._headers(request)),
            read=self._payment,
            exactly_once=self._mechanism(request),
        )

    def _headers(self, request: PaymentRequest) -> dict[str, str]:
        return {"Content-Type": "application/json"}

    def _mechanism(self, request: PaymentRequest) -> OrderLookup[Payment] | IdempotencyKey:
        raise NotImplementedError

    def describe_status(
        self, *, payment_id: str | None = None, order_id: str | None = None
    ) -> Call[Payment]:
        path = f"payments/{payment_id}" if payment_id else f"orders/{order_id}"
        return Call(Request("status", "GET", path), read=self._payment)

    def describe_cancel(self, payment_id: str, idempotency_key: str) -> Call[Payment]:
        request = Request("cancel", "POST", f"payments/{payment_id}/cancel")
        return Call(request, read=self._payment)  # no mechanism: never sent twice

    def read_notification(self, incoming: Incoming) -> paymux.Notification:
        raise paymux.SignatureError("Toy sends no notifications")

    def _payment(self, answer: Answer) -> Payment:
        if answer.status == 202:
            raise Processing(float(answer.json_object()["retry_after"]))
        data = answer.json_object()
        return Payment(
            provider=self.name,
            id=data["id"],
            order_id=data["order_id"],
            status=PaymentStatus(data["status"]),
            amount=Decimal(data["amount"]) if "amount" in data else None,
            raw=data,
        )


class ToyByOrder(Toy):
    """A create is found by its order id after a lost answer; the gateway refuses a repeat."""

    def _mechanism(self, request: PaymentRequest) -> OrderLookup[Payment]:
        return OrderLookup(
            request.order_id,
            request.amount,
            lookup=lambda: self.describe_status(order_id=request.order_id),
        )


class ToyByKey(Toy):
    """A create carries an idempotency key; the gateway answers a repeat as it did the first."""

    def _headers(self, request: PaymentRequest) -> dict[str, str]:
        assert request.idempotency_key, "core gives every create a key"
        return {**super()._headers(request), "Idempotency-Key": request.idempotency_key}

    def _mechanism(self, request: PaymentRequest) -> IdempotencyKey:
        assert request.idempotency_key
        return IdempotencyKey(request.idempotency_key, lifetime=self.key_lifetime)


# -- fixtures -----------------------------------------------------------------------------------


class FakeTime:
    """A clock that moves only when the runner sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.pauses: list[float] = []
        self.on_sleep: Callable[[], None] = lambda: None

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds
        self.on_sleep()

    def policy(self, **changes: Any) -> RetryPolicy:
        pinned = RetryPolicy(jitter=lambda: 1.0, sleep=self.sleep, clock=lambda: self.now)
        return dataclasses.replace(pinned, **changes)


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    with serving(Gateway(secret=secrets.token_hex(16)), port=0) as running:
        yield running


@contextmanager
def serving(gateway: Gateway, port: int) -> Iterator[Gateway]:
    server = LoopbackServer(GatewayHandler, "127.0.0.1", port, gateway)
    server.start("toy-gateway")
    gateway.url = server.origin
    try:
        yield gateway
    finally:
        server.stop()


Connect = Callable[..., Toy]


@pytest.fixture
def connect(gateway: Gateway, fake: FakeTime) -> Iterator[Connect]:
    """`connect(ToyByOrder or ToyByKey, **settings)`: a Toy on the gateway, on fake time."""
    opened: list[Toy] = []

    def open_one(kind: type[Toy], **settings: Any) -> Toy:
        base = {"base_url": gateway.url, "secret": gateway.secret}
        provider = kind.from_settings({**base, **settings}, instance="test")
        provider.retry_policy = fake.policy()
        opened.append(provider)
        return provider

    yield open_one
    for provider in opened:
        provider.close()


def order(amount: str = "10.00") -> PaymentRequest:
    return PaymentRequest(order_id=f"o-{secrets.token_hex(4)}", amount=Decimal(amount))


BOTH = pytest.mark.parametrize("kind", [ToyByOrder, ToyByKey], ids=["by order", "by key"])


# -- exactly-once by the order id ------------------------------------------------------------


def test_a_lost_answer_is_settled_by_the_lookup_and_the_create_is_not_sent_again(
    connect: Connect, gateway: Gateway, fake: FakeTime
) -> None:
    gateway.fail("create", Fault.LOSE)
    request = order()

    payment = connect(ToyByOrder).create(request)

    assert [p["id"] for p in gateway.of_order(request.order_id)] == [payment.id]
    assert (len(gateway.sent("create")), len(gateway.sent("lookup"))) == (1, 1)
    assert fake.pauses == []


def test_when_the_lookup_finds_nothing_the_same_bytes_are_sent_again(
    connect: Connect, gateway: Gateway
) -> None:
    gateway.fail("create", Fault.VANISH)
    request = order()

    payment = connect(ToyByOrder).create(request)

    first, second = gateway.sent("create")
    assert first.body == second.body
    assert first.headers["authorization"] == second.headers["authorization"]
    assert [p["id"] for p in gateway.of_order(request.order_id)] == [payment.id]


def test_a_duplicate_order_refusal_adopts_the_payment_already_there(
    connect: Connect, gateway: Gateway
) -> None:
    request = order("10.00")
    existing = gateway.add(request.order_id, "10.00")

    payment = connect(ToyByOrder).create(request)

    assert payment.id == existing["id"]
    assert len(gateway.of_order(request.order_id)) == 1


def test_an_order_id_held_by_another_amount_is_an_order_conflict(
    connect: Connect, gateway: Gateway
) -> None:
    request = order("20.00")
    existing = gateway.add(request.order_id, "10.00")

    with pytest.raises(OrderConflict) as raised:
        connect(ToyByOrder).create(request)

    assert raised.value.order_id == request.order_id
    assert raised.value.payment.id == existing["id"]
    assert raised.value.payment.amount == Decimal("10.00")
    assert raised.value.http_status == 409


def test_a_payment_found_without_an_amount_leaves_the_outcome_unknown(
    connect: Connect, gateway: Gateway
) -> None:
    gateway.hide_amounts = True
    gateway.fail("create", Fault.LOSE)
    request = order()

    with pytest.raises(OutcomeUnknown, match="shows no amount"):
        connect(ToyByOrder).create(request)

    assert len(gateway.sent("create")) == 1
    assert len(gateway.of_order(request.order_id)) == 1


def test_reconcile_by_order_id_returns_the_payment_checked_against_the_amount(
    connect: Connect, gateway: Gateway
) -> None:
    provider = connect(ToyByOrder)
    request = order("10.00")
    created = provider.create(request)

    assert provider.reconcile(request.order_id, Decimal("10.00")).id == created.id
    with pytest.raises(OrderConflict):
        provider.reconcile(request.order_id, Decimal("10.01"))
    with pytest.raises(PaymentNotFound):
        provider.reconcile("never-created")


# -- exactly-once by an idempotency key ------------------------------------------------------


def test_a_lost_answer_is_sent_again_with_the_same_key_and_the_same_bytes(
    connect: Connect, gateway: Gateway
) -> None:
    gateway.fail("create", Fault.LOSE)
    request = order()

    payment = connect(ToyByKey).create(request)

    first, second = gateway.sent("create")
    assert first.body == second.body
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"]
    assert [p["id"] for p in gateway.of_order(request.order_id)] == [payment.id]
    assert gateway.sent("lookup") == []


def test_a_key_given_by_the_host_is_the_key_sent(connect: Connect, gateway: Gateway) -> None:
    connect(ToyByKey).create(dataclasses.replace(order(), idempotency_key="host-key-1"))

    assert gateway.sent("create")[0].headers["idempotency-key"] == "host-key-1"


def test_still_processing_is_asked_again_after_the_pause_the_gateway_names(
    connect: Connect, gateway: Gateway, fake: FakeTime
) -> None:
    gateway.fail("create", Fault.PROCESSING)
    request = order()

    payment = connect(ToyByKey).create(request)

    assert fake.pauses == [3.0]
    first, second = gateway.sent("create")
    assert (first.body, first.headers["idempotency-key"]) == (
        second.body,
        second.headers["idempotency-key"],
    )
    assert [p["id"] for p in gateway.of_order(request.order_id)] == [payment.id]


def test_a_duplicate_order_refusal_without_an_order_lookup_is_a_refusal(
    connect: Connect, gateway: Gateway, fake: FakeTime
) -> None:
    request = order()
    gateway.add(request.order_id, "10.00")

    with pytest.raises(DuplicateOrder) as raised:
        connect(ToyByKey).create(request)

    assert not isinstance(raised.value, OutcomeUnknown)
    assert len(gateway.sent("create")) == 1
    assert fake.pauses == []


def test_a_key_the_gateway_has_forgotten_is_never_sent_again(
    connect: Connect, gateway: Gateway
) -> None:
    provider = connect(ToyByKey)
    provider.key_lifetime = 0.0
    gateway.fail("create", Fault.LOSE)

    with pytest.raises(OutcomeUnknown) as raised:
        provider.create(order())
    with pytest.raises(OutcomeUnknown, match="forgotten"):
        provider.reconcile(raised.value)

    assert "forgotten" in raised.value.message
    assert len(gateway.sent("create")) == 1


def test_reconcile_refuses_to_send_again_once_the_key_has_expired(
    connect: Connect, gateway: Gateway, fake: FakeTime
) -> None:
    provider = connect(ToyByKey)
    provider.key_lifetime = 0.3
    provider.retry_policy = fake.policy(max_attempts=1)
    gateway.fail("create", Fault.LOSE)
    with pytest.raises(OutcomeUnknown) as raised:
        provider.create(order())
    assert raised.value.key_expires_at is not None

    time.sleep(max(0.0, raised.value.key_expires_at - time.time()) + 0.05)
    with pytest.raises(OutcomeUnknown, match="forgotten") as again:
        provider.reconcile(raised.value)

    assert again.value.idempotency_key == raised.value.idempotency_key
    assert len(gateway.sent("create")) == 1


# -- what either mechanism does ---------------------------------------------------------------


@BOTH
def test_a_refusal_is_never_sent_again(
    connect: Connect, gateway: Gateway, fake: FakeTime, kind: type[Toy]
) -> None:
    gateway.fail("create", Fault.REFUSE)

    with pytest.raises(ProviderError, match="invalid") as raised:
        connect(kind).create(order())

    assert type(raised.value) is ProviderError
    assert raised.value.http_status == 422
    assert len(gateway.sent("create")) == 1
    assert gateway.sent("lookup") == []
    assert fake.pauses == []


@BOTH
def test_a_429_waits_for_its_retry_after_then_sends_again(
    connect: Connect, gateway: Gateway, fake: FakeTime, kind: type[Toy]
) -> None:
    gateway.fail("create", Fault.THROTTLE)
    request = order()

    payment = connect(kind).create(request)

    assert fake.pauses == [2.0]
    assert len(gateway.sent("create")) == 2
    assert [p["id"] for p in gateway.of_order(request.order_id)] == [payment.id]


@BOTH
def test_a_request_that_never_left_is_sent_again(
    gateway: Gateway, fake: FakeTime, kind: type[Toy]
) -> None:
    """The gateway is down at the first attempt (connection refused) and up at the second."""
    port = free_port()
    exchanges: list[paymux.Exchange] = []
    settings = {"base_url": f"http://127.0.0.1:{port}", "secret": gateway.secret}
    provider = kind.from_settings(settings, instance="test", observers=Recorder(exchanges))
    provider.retry_policy = fake.policy()
    request = order()
    with ExitStack() as later, provider:

        def start_the_gateway() -> None:
            later.enter_context(serving(gateway, port))

        fake.on_sleep = start_the_gateway
        payment = provider.create(request)

    assert [e.outcome for e in exchanges] == ["not_sent", "answered"]
    assert [p["id"] for p in gateway.of_order(request.order_id)] == [payment.id]


@BOTH
def test_a_create_that_never_left_is_a_transport_error_not_an_unknown_outcome(
    connect: Connect, fake: FakeTime, kind: type[Toy]
) -> None:
    provider = connect(kind, base_url=f"http://127.0.0.1:{free_port()}")

    with pytest.raises(TransportError) as raised:
        provider.create(order())

    assert raised.value.request_sent is False
    assert not isinstance(raised.value, OutcomeUnknown)
    assert len(fake.pauses) == provider.retry_policy.max_attempts - 1


@BOTH
def test_the_deadline_bounds_every_attempt_and_every_pause(
    connect: Connect, gateway: Gateway, fake: FakeTime, kind: type[Toy]
) -> None:
    gateway.fail("create", *[Fault.FAIL] * 20)
    provider = connect(kind)
    provider.retry_policy = fake.policy(max_attempts=20, backoff=1.0, max_backoff=100.0, deadline=5)

    with pytest.raises(OutcomeUnknown, match="outcome unknown after"):
        provider.create(order())

    assert fake.pauses == [1.0, 2.0]
    assert len(gateway.sent("create")) == 3


@BOTH
def test_a_stalled_gateway_cannot_hold_a_create_past_its_deadline(
    connect: Connect, gateway: Gateway, kind: type[Toy]
) -> None:
    gateway.fail("create", Fault.STALL)
    provider = connect(kind)
    provider.retry_policy = RetryPolicy(deadline=1.0)
    started = time.monotonic()

    with pytest.raises(OutcomeUnknown):
        provider.create(order())

    assert time.monotonic() - started < 2.0


def test_with_reconcile_off_the_first_unknown_outcome_is_raised(
    connect: Connect, gateway: Gateway
) -> None:
    gateway.fail("create", Fault.LOSE)

    with pytest.raises(OutcomeUnknown):
        connect(ToyByOrder, reconcile="false").create(order())

    assert (len(gateway.sent("create")), len(gateway.sent("lookup"))) == (1, 0)


# -- OutcomeUnknown, and reconcile ------------------------------------------------------------


def test_an_unknown_create_by_order_id_carries_what_reconciles_it(
    connect: Connect, gateway: Gateway, fake: FakeTime
) -> None:
    provider = connect(ToyByOrder)
    provider.retry_policy = fake.policy(max_attempts=1)
    gateway.fail("create", Fault.LOSE)
    gateway.fail("lookup", Fault.VANISH)
    request = order()

    with pytest.raises(OutcomeUnknown) as raised:
        provider.create(request)
    unknown = raised.value
    payment = provider.reconcile(unknown)

    assert (unknown.operation, unknown.order_id, unknown.idempotency_key) == (
        "create",
        request.order_id,
        None,
    )
    assert isinstance(unknown.call, Call)
    assert unknown.call.request.operation == "create"
    assert isinstance(payment, Payment)
    assert [p["id"] for p in gateway.of_order(request.order_id)] == [payment.id]
    assert len(gateway.sent("create")) == 1


def test_an_unknown_create_by_key_carries_what_reconciles_it(
    connect: Connect, gateway: Gateway, fake: FakeTime
) -> None:
    provider = connect(ToyByKey)
    provider.retry_policy = fake.policy(max_attempts=1)
    gateway.fail("create", Fault.LOSE)
    request = order()

    before = time.time()
    with pytest.raises(OutcomeUnknown) as raised:
        provider.create(request)
    unknown = raised.value
    payment = provider.reconcile(unknown)

    sent = [r.headers["idempotency-key"] for r in gateway.sent("create")]
    assert (unknown.operation, unknown.idempotency_key) == ("create", sent[0])
    assert unknown.key_expires_at is not None
    assert before + Toy.key_lifetime <= unknown.key_expires_at <= time.time() + Toy.key_lifetime
    assert isinstance(unknown.call, Call)
    assert sent == [unknown.idempotency_key] * 2
    assert [p["id"] for p in gateway.of_order(request.order_id)] == [payment.id]


def test_a_call_without_a_mechanism_is_sent_once_and_never_repeated_by_reconcile(
    connect: Connect, gateway: Gateway
) -> None:
    provider = connect(ToyByOrder)
    created = provider.create(order())
    gateway.fail("cancel", Fault.LOSE)

    with pytest.raises(OutcomeUnknown) as raised:
        provider.cancel(created.id)
    with pytest.raises(OutcomeUnknown, match="by hand"):
        provider.reconcile(raised.value)

    assert raised.value.operation == "cancel"
    assert len(gateway.sent("cancel")) == 1


# -- secrets ------------------------------------------------------------------------------------


def test_no_secret_header_value_reaches_an_error_a_repr_an_exchange_or_a_log(
    connect: Connect, gateway: Gateway, fake: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    exchanges: list[paymux.Exchange] = []
    shown: list[str] = []
    with caplog.at_level(logging.DEBUG, logger="paymux"):
        for kind in (ToyByOrder, ToyByKey):
            provider = kind.from_settings(
                {"base_url": gateway.url, "secret": gateway.secret},
                instance="test",
                observers=Recorder(exchanges),
            )
            provider.retry_policy = fake.policy(max_attempts=1)
            gateway.fail("create", Fault.LOSE, Fault.REFUSE)
            gateway.fail("lookup", Fault.VANISH)
            for _ in ("lost", "refused"):
                with pytest.raises(paymux.PaymuxError) as raised:
                    provider.create(order())
                error = raised.value
                shown += [str(error), repr(error), repr(error.body), repr(error.__dict__)]
            shown += [repr(provider), str(provider)]
            provider.close()

    shown += [repr(exchange) for exchange in exchanges]
    shown += [record.getMessage() for record in caplog.records]
    assert all(r.headers["authorization"].endswith(gateway.secret) for r in gateway.received)
    assert len(caplog.records) > 0
    assert [text for text in shown if gateway.secret in text] == []


# -- helpers ------------------------------------------------------------------------------------


class Recorder:
    """Observers that keep the exchanges."""

    def __init__(self, exchanges: list[paymux.Exchange]) -> None:
        self.exchanges = exchanges

    def publish_exchange(self, exchange: paymux.Exchange) -> None:
        self.exchanges.append(exchange)

    def publish_payment(self, payment: Payment, source: str) -> None:
        pass

    def publish_refund(self, refund: paymux.Refund, source: str) -> None:
        pass

    def publish_payout(self, payout: paymux.Payout, source: str) -> None:
        pass

    def publish_sweep(self, provider: str, instance: str, report: paymux.SweepReport) -> None:
        pass


def free_port() -> int:
    """A loopback port nothing listens on (bound once, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
