"""The AliKassa gateway's behaviour, without HTTP: accounts, services, payments, notifications.

It applies the same wire schemas as the client, in the order the real gateway reports problems
(authentication, maintenance, account, fields, service, amount limits, duplicate order_id).
Like the real gateway's Laravel validator it ignores create fields it has no rule for, and keeps
them in the stored request; an integer order_id (AliKassa's Go sample sends one) is kept as its
decimal text.

A payment waits for its customer for `lifetime` seconds (an hour when the request gives none),
measured on the gateway's `clock`; after that it can no longer be paid and ends as `cancel`.
Every change of status is notified to the payment's notification URL from a background
thread; a notification the shop does not answer with HTTP 200 is sent again after each of
`retry_delays`, and every attempt is recorded in `deliveries`. A change of status and the
start of its delivery happen together or not at all.

Payment ids follow the wall clock: milliseconds since 2025 (one more than the last id when
payments come faster), so a sandbox started later numbers above every id an earlier one gave,
and a shop's records never meet the same id twice. They stay at 11 or 12 digits, short of the
13 to 19 digits that logs mask as card numbers.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import marshmallow
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from paymux.errors import SignatureError
from paymux.providers.alikassa import phpjson, schemas
from paymux.providers.alikassa.keys import Signer, Verifier
from paymux.providers.alikassa.sandbox.faults import HEADER, Fault, FaultPlan

INVALID_DATA = "The given data was invalid."
NINE_PLACES = Decimal("0.000000001")
FINAL_STATUSES = ("paid", "cancel", "fail")

DEFAULT_LIFETIME = 3600
"""Seconds a payment waits for its customer when the create request gives no `lifetime`."""
DEFAULT_RETRY_DELAYS = (0.1, 0.2, 0.4)
"""Seconds to wait before each repeat of an unanswered notification: four attempts in all."""
DELIVERY_TIMEOUT = 5.0
"""Seconds one notification attempt may take."""
ID_EPOCH_MS = 1_735_689_600_000
"""2025-01-01 UTC in milliseconds: payment ids count from here."""
DETAIL_TYPES = (str, int, type(None))
"""What a settle `details` value may be: it lands as it is in the status answer."""


@dataclass(frozen=True)
class Service:
    """A payment method the sandbox accepts, with its currency and amount limits."""

    code: str
    currency: str
    minimum: Decimal = Decimal("1")
    maximum: Decimal = Decimal("100000")
    required: tuple[str, ...] = ()
    """Fields this service needs beyond the documented required ones (a `virtual_account_*`
    service needs no `customer_browser_user_agent`: see `schemas.needs_user_agent`)."""
    card_transfer: bool = False
    """Host-to-host: the create answers with a card for the payer to transfer to (`cardNumber`,
    `cardHolderName`, `bank`) instead of a payment page `url`."""


DEFAULT_SERVICES = (
    Service("payment_card_rub_hpp", "RUB", Decimal("100"), Decimal("5000")),
    Service("payment_card_eur_card", "EUR", Decimal("1"), Decimal("10000")),
    Service("payment_card_usd_card", "USD", Decimal("1"), Decimal("10000")),
    Service("payment_sbp_rub", "RUB", Decimal("10"), Decimal("100000"), ("customer_phone",)),
    Service(
        "payment_card_number_rub_card", "RUB", Decimal("100"), Decimal("100000"), card_transfer=True
    ),
    Service("virtual_account_rub_hpp", "RUB", Decimal("100"), Decimal("100000")),
)

TEST_CARD_HOLDER = "IVAN PETROV"
TEST_CARD_BANK = "Sandbox Bank"


@dataclass
class Account:
    id: str
    verifier: Verifier
    allowed: bool = True


@dataclass
class StoredPayment:
    """A payment as the gateway keeps it."""

    id: int
    uuid: str
    account: str
    request: dict[str, Any]
    """The create body as received, fields the gateway has no rule for included."""
    service: Service
    url: str | None
    """The payment page; None for a card-transfer service."""
    status: str = "wait"
    payment_amount: Decimal | None = None
    commission_amount: Decimal | None = None
    details: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    """When the gateway created it, on the gateway's clock (seconds)."""
    expired: bool = False
    """True when it was canceled because its lifetime ran out before the customer paid."""
    transfer_to: dict[str, str] = field(default_factory=dict)
    """For a card-transfer service, the card the create answered with (`cardNumber`, ...)."""

    @property
    def order_id(self) -> str:
        return str(self.request["order_id"])

    @property
    def lifetime(self) -> int:
        """Seconds the customer has to pay (the request's `lifetime`, an hour by default)."""
        return int(self.request.get("lifetime") or DEFAULT_LIFETIME)

    @property
    def expires_at(self) -> float:
        return self.created_at + self.lifetime

    @property
    def description(self) -> str:
        return str(self.request.get("desc") or "")

    @property
    def success_url(self) -> str | None:
        return _text_or_none(self.request.get("success_redirect_url"))

    @property
    def fail_url(self) -> str | None:
        return _text_or_none(self.request.get("fail_redirect_url"))

    @property
    def return_url(self) -> str | None:
        """Where the customer goes back to: the success URL once paid, else the fail URL."""
        return self.success_url if self.status == "paid" else self.fail_url

    @property
    def amount(self) -> Decimal:
        return Decimal(str(self.request["amount"]))

    @property
    def is_partial(self) -> bool:
        return self.payment_amount is not None and self.payment_amount < self.amount

    def created_body(self) -> dict[str, Any]:
        """The `v1/payment` answer: the payment page `url`, or the card to transfer to."""
        page = {"url": self.url} if self.url is not None else {}
        created = {"payment_status": self.status, "id": self.id, "uuid": self.uuid}
        return {**page, **created, **self.transfer_to}

    def status_body(self) -> dict[str, Any]:
        """The documented `v1/payment/status` answer."""
        credited = (
            self.payment_amount - (self.commission_amount or 0)
            if self.payment_amount is not None
            else None
        )
        return {
            "url": self.url,
            "antiFraud": False,
            "payment_status": self.status,
            "id": self.id,
            "order_id": self.order_id,
            "amount": _nine(self.amount),
            "payment_amount": _nine(self.payment_amount),
            "is_partial_payment": self.is_partial,
            "hold_amount": "",
            "hold_at": None,
            "account_payment_amount": _nine(credited),
            "commission_amount": _nine(self.commission_amount),
            "currency": self.service.currency,
            "service_code": self.service.code,
            "account_old_balance": None,
            "account_new_balance": None,
            "crypto_network": None,
            "crypto_txid": None,
            "customer_phone": self.request.get("customer_phone"),
            "customer_card_number": self.details.get("customer_card_number"),
            "payment_error_message": self.details.get("payment_error_message"),
            "card_number": self.details.get("card_number"),
            "card_holder_name": self.details.get("card_holder_name"),
            "bank": self.details.get("bank"),
            "bik_bank": None,
        }


@dataclass(frozen=True)
class RecordedRequest:
    """A request the gateway received, as it arrived (headers include `Sign`)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Delivery:
    """One attempt to send a notification, and how the receiver answered."""

    payment_id: int
    url: str
    params: dict[str, str]
    http_status: int | None
    error: str | None = None
    attempt: int = 1
    """1 for the first try, 2 for the first repeat, and so on."""
    fault: str | None = None
    """Set on a delivery a fault added: "forged", "duplicate" or "stale"."""

    @property
    def delivered(self) -> bool:
        """The receiver answered 200: the gateway stops sending this notification."""
        return self.http_status == 200

    def as_json(self) -> dict[str, Any]:
        return {
            "payment_id": self.payment_id,
            "attempt": self.attempt,
            "url": self.url,
            "params": self.params,
            "http_status": self.http_status,
            "error": self.error,
            "delivered": self.delivered,
            "fault": self.fault,
        }


class PaymentClosed(ValueError):
    """The payment no longer waits for its customer: it is paid, canceled, failed or expired."""

    def __init__(self, payment: StoredPayment) -> None:
        self.payment = payment
        reason = " (its lifetime ran out)" if payment.expired else ""
        super().__init__(f"payment {payment.id} is already {payment.status}{reason}")


@dataclass(frozen=True)
class Answer:
    """What the HTTP layer should do: answer `status` with `body`, or drop the connection."""

    status: int
    body: dict[str, Any] | None
    stall: float = 0.0
    raw: bytes | None = None
    """Bytes to send instead of `body` as JSON (a fault's broken answer)."""
    content_type: str = "application/json"

    @property
    def drop(self) -> bool:
        return self.body is None and self.raw is None

    def payload(self) -> bytes:
        if self.raw is not None:
            return self.raw
        return json.dumps(self.body, default=_json_text).encode()


def _json_text(value: object) -> str:
    """A Decimal kept from a request (a JSON float read exactly) is shown as its text."""
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class Gateway:
    """In-memory AliKassa. Thread-safe."""

    def __init__(
        self,
        *,
        notification_key: rsa.RSAPrivateKey,
        digest: str = "sha1",
        services: tuple[Service, ...] = DEFAULT_SERVICES,
        commission_rate: Decimal = Decimal("0.03"),
        page_url: str = "",
        clock: Callable[[], float] = time.time,
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        faults: FaultPlan | None = None,
        omit_empty_notification_fields: bool = False,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.digest = digest
        self.omit_empty_notification_fields = omit_empty_notification_fields
        """Leave empty nullable fields out of notifications, signed as null (the PHP way)."""
        self.services = {service.code: service for service in services}
        self.commission_rate = commission_rate
        self.page_url = page_url
        self.clock = clock
        """Seconds since some epoch; replace it to move time without sleeping."""
        self.retry_delays = tuple(retry_delays)
        self.maintenance = False
        self.stall_seconds = 5.0
        self._signer = Signer(notification_key, digest)
        self._accounts: dict[str, Account] = {}
        self._payments: dict[int, StoredPayment] = {}
        self._by_order: dict[tuple[str, str], StoredPayment] = {}
        self._by_uuid: dict[str, StoredPayment] = {}
        self._last_id = 0
        self.faults = faults or FaultPlan()
        self._on_change = on_change
        """Called, under the gateway's lock, after each change to accounts or payments."""
        self.requests: list[RecordedRequest] = []
        self.deliveries: list[Delivery] = []
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._senders: set[threading.Thread] = set()
        self._closing = threading.Event()

    def now(self) -> float:
        return self.clock()

    def _next_id(self) -> int:
        """A payment id above every earlier one, from this sandbox or one that ran before."""
        wall_clock = time.time_ns() // 1_000_000 - ID_EPOCH_MS
        with self._lock:
            self._last_id = max(self._last_id + 1, wall_clock)
            return self._last_id

    def _state_changed(self) -> None:
        if self._on_change is not None:
            self._on_change()

    def snapshot(self) -> list[StoredPayment]:
        """Copies of every payment as it stands, without expiring any (for saving state)."""
        with self._lock:
            return [dataclasses.replace(payment) for payment in self._payments.values()]

    def restore(self, payments: Sequence[StoredPayment]) -> None:
        """Take back the payments of a sandbox that ran before; their pages move to `page_url`.

        Ids go on above the highest of them, even if the clock went back.
        """
        with self._lock:
            for payment in payments:
                if payment.url is not None:
                    payment.url = f"{self.page_url}/pay/{payment.uuid}"
                self._payments[payment.id] = payment
                self._by_order[(payment.account, payment.order_id)] = payment
                self._by_uuid[payment.uuid] = payment
                self._last_id = max(self._last_id, payment.id)

    # -- set-up ---------------------------------------------------------------------------

    def register_account(
        self, public_key: rsa.RSAPublicKey, *, account: str | None = None, allowed: bool = True
    ) -> str:
        """Register a merchant account by its payment certificate's public key."""
        account_id = account or str(uuid.uuid4())
        with self._lock:
            self._accounts[account_id] = Account(
                account_id, Verifier(public_key, self.digest), allowed
            )
            self._state_changed()
        return account_id

    def inject(self, fault: Fault, *, on: str | None = None, times: int = 1) -> None:
        """Show `fault` on the next `times` requests of `on` (create, status, notification)."""
        self.faults.inject(fault, on=on, times=times)

    # -- the merchant API ---------------------------------------------------------------

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        """Answer one merchant API request."""
        with self._lock:
            self.requests.append(RecordedRequest(method, path, headers, body))
        if path not in ("/v1/payment", "/v1/payment/status"):
            return Answer(404, {"message": "Not found"})
        if method != "POST":
            return Answer(405, {"message": "Method not allowed"})
        account = self._accounts.get(headers.get("account", ""))
        if account is None:
            return Answer(401, {"message": "Account not found"})
        try:
            account.verifier.verify(body, headers.get("sign", ""))
        except SignatureError:
            return Answer(401, {"message": "Wrong sign"})
        try:
            data = json.loads(body, parse_float=Decimal)
        except (ValueError, RecursionError):
            data = None
        if not isinstance(data, dict):
            return _invalid({"body": ["The body must be a JSON object."]})
        asked = headers.get(HEADER)
        if path == "/v1/payment":
            return self._create(account, data, asked)
        answer = self._status(account, data)
        return _misbehave(self.faults.draw("status", header=asked), answer, self.stall_seconds)

    def _create(self, account: Account, data: dict[str, Any], asked: str | None) -> Answer:
        if self.maintenance:
            return Answer(400, {"message": "Technical works."})
        if not account.allowed:
            return Answer(400, {"message": "Project not allowed to accept payments"})
        data = _order_id_as_text(data)
        errors = schemas.GATEWAY_CREATE_PAYMENT.validate(data)
        if errors:
            return _invalid(errors)
        service = self.services.get(data["service"])
        if service is None:
            return Answer(400, {"message": "Not exists service / No found service"})
        missing = {
            name: [f"The {name.replace('_', ' ')} field is required."]
            for name in service.required
            if not data.get(name)
        }
        if missing:
            return _invalid(missing)
        amount = Decimal(str(data["amount"]))
        if amount < service.minimum:
            return Answer(400, {"message": f"Minimum amount {_plain(service.minimum)}"})
        if amount > service.maximum:
            return Answer(400, {"message": f"Maximum amount {_plain(service.maximum)}"})
        with self._lock:
            if (account.id, str(data["order_id"])) in self._by_order:
                return Answer(400, {"message": "order_id exists"})
            payment_uuid = str(uuid.uuid4())
            payment = StoredPayment(
                id=self._next_id(),
                uuid=payment_uuid,
                account=account.id,
                request=data,
                service=service,
                url=None if service.card_transfer else f"{self.page_url}/pay/{payment_uuid}",
                created_at=self.now(),
                transfer_to=_test_card() if service.card_transfer else {},
            )
            self._payments[payment.id] = payment
            self._by_order[(account.id, payment.order_id)] = payment
            self._by_uuid[payment.uuid] = payment
            self._state_changed()
        faults = self.faults.draw("create", header=asked, order_id=payment.order_id)
        return _misbehave(faults, Answer(200, payment.created_body()), self.stall_seconds)

    def _status(self, account: Account, data: dict[str, Any]) -> Answer:
        try:
            query = schemas.STATUS_REQUEST.load(data)
        except marshmallow.ValidationError as error:
            return _invalid(error.messages_dict)
        with self._lock:
            if "id" in query:
                found = self._payments.get(int(query["id"])) if query["id"].isdigit() else None
            else:
                found = self._by_order.get((account.id, query["order_id"]))
            if found is None or found.account != account.id:
                return Answer(404, {"message": "Payment not found"})
            self._expire_if_due(found)
            return Answer(200, found.status_body())

    # -- what the test or the customer does -----------------------------------------------

    def payments(self) -> list[StoredPayment]:
        with self._lock:
            for payment in self._payments.values():
                self._expire_if_due(payment)
            return list(self._payments.values())

    def payment(self, reference: int | str) -> StoredPayment:
        """A payment by id, order_id or uuid."""
        with self._lock:
            for payment in self._payments.values():
                if reference in (payment.id, str(payment.id), payment.order_id, payment.uuid):
                    self._expire_if_due(payment)
                    return payment
        raise KeyError(f"no sandbox payment {reference!r}")

    def payment_by_uuid(self, payment_uuid: str) -> StoredPayment:
        """The payment whose page is `/pay/<payment_uuid>`."""
        with self._lock:
            payment = self._by_uuid.get(payment_uuid)
            if payment is None:
                raise KeyError(f"no sandbox payment with uuid {payment_uuid!r}")
            self._expire_if_due(payment)
            return payment

    def settle(
        self,
        reference: int | str,
        status: str,
        *,
        paid_amount: Decimal | str | None = None,
        details: dict[str, Any] | None = None,
        notify: bool = True,
        wait: bool = True,
    ) -> Delivery | None:
        """Move a payment to paid, cancel or fail, then deliver its signed notification.

        `paid_amount` below the amount makes a partial payment; it must be above 0, at most the
        amount, with at most two decimals. `details` sets extra status fields (card_number,
        card_holder_name, customer_card_number, bank, ...) to text, whole numbers or None.

        With `wait`, the first notification attempt is made before returning, and returned;
        repeats, if the shop does not answer 200, follow in the background. Without it, every
        attempt is made in the background (the payment page does this) and None is returned.
        Raises `PaymentClosed` when the payment no longer waits (settled before, or expired),
        ValueError for a wrong status, amount or details, and RuntimeError when the delivery
        cannot start (the sandbox is stopped); the payment is then left as it was.
        """
        if status not in FINAL_STATUSES:
            raise ValueError(f"status must be paid, cancel or fail, not {status!r}")
        extra = _checked_details(details)
        with self._lock:
            payment = self.payment(reference)
            if payment.status != "wait":
                raise PaymentClosed(payment)
            settled = dataclasses.replace(
                payment, status=status, details={**payment.details, **extra}
            )
            if status == "paid":
                paid = _checked_paid_amount(paid_amount, payment)
                settled.payment_amount = paid
                settled.commission_amount = (paid * self.commission_rate).quantize(Decimal("0.01"))
            first = self._schedule(settled) if notify else None
            vars(payment).update(vars(settled))
            self._state_changed()
        return first.result() if first is not None and wait else None

    def expire_due(self) -> list[StoredPayment]:
        """Cancel (and notify) every waiting payment whose lifetime has run out; returns them.

        Reading a payment (status call, payment page, listing) does this for it anyway.
        """
        with self._lock:
            return [payment for payment in self._payments.values() if self._expire_if_due(payment)]

    def _expire_if_due(self, payment: StoredPayment) -> bool:
        """Cancel `payment` if its time ran out; it stays waiting while nothing can notify it."""
        with self._lock:
            if payment.status != "wait" or self.now() < payment.expires_at:
                return False
            expired = dataclasses.replace(payment, status="cancel", expired=True)
            try:
                self._schedule(expired)
            except RuntimeError:
                return False
            vars(payment).update(vars(expired))
            self._state_changed()
            return True

    def notification_params(self, payment: StoredPayment) -> dict[str, str]:
        """The signed query parameters of the notification for `payment`'s current state."""
        fields = {
            "type": "payment",
            "id": str(payment.id),
            "order_id": payment.order_id,
            "payment_status": payment.status,
            "amount": _nine(payment.amount) or "",
            "payment_amount": _nine(payment.payment_amount) or "",
            "commission_amount": _nine(payment.commission_amount) or "",
            "is_partial_payment": "1" if payment.is_partial else "0",
            "account": payment.account,
            "service": payment.service.code,
            "desc": str(payment.request.get("desc", "")),
        }
        omitted = self._omitted_notification_fields(fields)
        message = phpjson.dumps_bytes({**fields, "id": payment.id, **dict.fromkeys(omitted)})
        sent = {name: value for name, value in fields.items() if name not in omitted}
        return {**sent, "sign": self._signer.sign(message)}

    def _omitted_notification_fields(self, fields: dict[str, str]) -> list[str]:
        """The empty nullable fields a notification leaves out: the gateway's PHP check reads
        each as null, so it is signed as null."""
        if not self.omit_empty_notification_fields:
            return []
        nullable = schemas.NULLABLE_NOTIFICATION_FIELDS
        return [name for name, value in fields.items() if name in nullable and value == ""]

    def redirect_form(self, reference: int | str) -> dict[str, str]:
        """The signed form the customer's browser posts to the success or fail URL."""
        payment = self.payment(reference)
        message = phpjson.dumps_bytes({"order_id": payment.order_id, "uuid": payment.uuid})
        return {
            "order_id": payment.order_id,
            "uuid": payment.uuid,
            "sign": self._signer.sign(message),
        }

    def notify(self, payment: StoredPayment, *, wait: bool = True) -> Delivery | None:
        """Send `payment`'s notification for its current state (again), with repeats.

        Returns the first attempt when `wait`; None when there is no notification URL.
        """
        with self._lock:
            first = self._schedule(payment)
        return first.result() if first is not None and wait else None

    # -- notification delivery ------------------------------------------------------------

    def wait_for_deliveries(self, count: int, timeout: float = 5.0) -> list[Delivery]:
        """Block until `count` attempts are recorded; returns them all (fewer on timeout)."""
        with self._changed:
            self._changed.wait_for(lambda: len(self.deliveries) >= count, timeout)
            return list(self.deliveries)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until no notification is being sent or waiting to be sent again."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._senders, timeout)

    def close(self) -> None:
        """Stop sending: abandon pending repeats, wait for attempts in flight."""
        self._closing.set()
        with self._lock:
            senders = list(self._senders)
        for sender in senders:
            sender.join(DELIVERY_TIMEOUT + 1)

    def _schedule(self, payment: StoredPayment) -> Future[Delivery | None] | None:
        """Start delivering `payment`'s notification for its state; None without a URL.

        The future gives the first attempt once the first round (with whatever the notification
        faults add) is made; repeats follow in the same background thread. Raises RuntimeError,
        having started nothing, when the gateway is closed or no thread can start.
        """
        target = payment.request.get("notification_endpoint_url")
        if not target:
            return None
        plan = self._delivery_plan(payment)
        first: Future[Delivery | None] = Future()
        sender = threading.Thread(
            target=self._deliver,
            args=(payment.id, str(target), plan, first),
            name=f"paymux-notify-{payment.id}",
            daemon=True,
        )
        with self._lock:
            if self._closing.is_set():
                raise RuntimeError("the sandbox is stopped: it sends no more notifications")
            self._senders.add(sender)
            try:
                sender.start()
            except RuntimeError:
                self._senders.discard(sender)
                raise
        return first

    def _delivery_plan(self, payment: StoredPayment) -> list[tuple[dict[str, str], str | None]]:
        """The genuine notification, with whatever the notification faults add around it."""
        params = self.notification_params(payment)
        faults = self.faults.draw("notification", order_id=payment.order_id)
        plan: list[tuple[dict[str, str], str | None]] = []
        if Fault.FORGED_NOTIFICATION in faults:
            plan.append(({**params, "sign": _forged(params["sign"])}, "forged"))
        plan.append((params, None))
        if Fault.DUPLICATE_NOTIFICATION in faults:
            plan.append((params, "duplicate"))
        if Fault.STALE_NOTIFICATION in faults and payment.status != "wait":
            stale = self.notification_params(dataclasses.replace(payment, status="wait"))
            plan.append((stale, "stale"))
        return plan

    def _deliver(
        self,
        payment_id: int,
        target: str,
        plan: list[tuple[dict[str, str], str | None]],
        first: Future[Delivery | None],
    ) -> None:
        """One round of `plan`, then repeats of the genuine notification until answered 200."""
        try:
            genuine: Delivery | None = None
            for params, fault in plan:
                delivery = self._attempt(payment_id, target, params, 1, fault)
                if fault is None:
                    genuine = delivery
            first.set_result(genuine)
            if genuine is not None and not genuine.delivered:
                self._repeat(payment_id, target, genuine.params)
        finally:
            if not first.done():
                first.set_result(None)
            with self._changed:
                self._senders.discard(threading.current_thread())
                self._changed.notify_all()

    def _repeat(self, payment_id: int, target: str, params: dict[str, str]) -> None:
        for attempt, delay in enumerate(self.retry_delays, start=2):
            if self._closing.wait(delay):
                return
            if self._attempt(payment_id, target, params, attempt).delivered:
                return

    def _attempt(
        self,
        payment_id: int,
        target: str,
        params: dict[str, str],
        attempt: int,
        fault: str | None = None,
    ) -> Delivery:
        url = f"{target}{'&' if '?' in target else '?'}{urlencode(params)}"
        try:
            answer = requests.get(url, timeout=DELIVERY_TIMEOUT)
            delivery = Delivery(payment_id, url, params, answer.status_code, None, attempt, fault)
        except Exception as error:  # any failure is this attempt's outcome
            delivery = Delivery(payment_id, url, params, None, type(error).__name__, attempt, fault)
        with self._changed:
            self.deliveries.append(delivery)
            self._changed.notify_all()
        return delivery


def _misbehave(faults: set[Fault], answer: Answer, stall_seconds: float) -> Answer:
    """`answer` as the request faults in `faults` spoil it."""
    if Fault.INTERNAL_ERROR in faults:
        return Answer(500, {"message": "Internal server error"})
    if Fault.DROP_CONNECTION in faults:
        return Answer(500, None)
    if Fault.HTML_ANSWER in faults:
        page = b"<html><body><h1>502 Bad Gateway</h1><p>nginx</p></body></html>"
        return Answer(200, None, raw=page, content_type="text/html")
    if Fault.TRUNCATED_JSON in faults:
        whole = answer.payload()
        return Answer(200, None, raw=whole[: len(whole) // 2])
    if Fault.STALL in faults:
        return Answer(answer.status, answer.body, stall=stall_seconds)
    return answer


def _forged(sign: str) -> str:
    """A signature of the right shape that does not verify: the first byte flipped."""
    raw = bytearray(base64.b64decode(sign))
    raw[0] ^= 0xFF
    return base64.b64encode(bytes(raw)).decode("ascii")


def _checked_paid_amount(value: object, payment: StoredPayment) -> Decimal:
    """The paid sum of a settle: the whole amount by default, else above 0 and at most it."""
    if value is None:
        return payment.amount
    paid = _decimal_or_none(value)
    exponent = paid.as_tuple().exponent if paid is not None else None
    if paid is None or not isinstance(exponent, int) or exponent < -2 or paid <= 0:
        raise ValueError(f"paid_amount must be above 0, with at most two decimals, not {value!r}")
    if paid > payment.amount:
        raise ValueError(
            f"paid_amount {paid} is more than the payment's amount {_plain(payment.amount)}"
        )
    return paid


def _decimal_or_none(value: object) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, str)):
        return None
    try:
        return Decimal(value)
    except ArithmeticError:
        return None


def _checked_details(details: object) -> dict[str, Any]:
    """Settle `details` as the status answer will show them: names to text, numbers or None."""
    if details is None:
        return {}
    if not isinstance(details, dict) or not all(
        isinstance(name, str) and isinstance(value, DETAIL_TYPES) for name, value in details.items()
    ):
        raise ValueError("details must map field names to text, whole numbers or null")
    return dict(details)


def _order_id_as_text(data: dict[str, Any]) -> dict[str, Any]:
    """`data` with an integer order_id as its decimal text: AliKassa's Go sample sends a number."""
    order_id = data.get("order_id")
    if isinstance(order_id, int) and not isinstance(order_id, bool):
        return {**data, "order_id": str(order_id)}
    return data


def _test_card() -> dict[str, str]:
    """A card to transfer to, as a card-number service answers: a random Luhn-valid number."""
    number = "2200" + "".join(str(secrets.randbelow(10)) for _ in range(11))
    return {
        "cardNumber": number + _luhn_check_digit(number),
        "cardHolderName": TEST_CARD_HOLDER,
        "bank": TEST_CARD_BANK,
    }


def _luhn_check_digit(digits: str) -> str:
    """The digit that makes `digits` + it pass the Luhn check."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char) * (2 if position % 2 == 0 else 1)
        total += digit - 9 if digit > 9 else digit
    return str(-total % 10)


def _invalid(errors: dict[str, Any]) -> Answer:
    return Answer(400, {"message": INVALID_DATA, "errors": errors})


def _nine(amount: Decimal | None) -> str | None:
    """Amounts in answers: strings with nine decimals, as AliKassa writes them."""
    return None if amount is None else str(Decimal(amount).quantize(NINE_PLACES))


def _text_or_none(value: Any) -> str | None:
    return str(value) if value else None


def _plain(amount: Decimal) -> str:
    return format(amount.normalize(), "f")
