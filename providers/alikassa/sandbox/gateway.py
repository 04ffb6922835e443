"""The AliKassa gateway's behaviour, without HTTP: accounts, services, payments, notifications.

It applies the same wire schemas as the client, in the order the real gateway reports problems
(authentication, maintenance, account, fields, service, amount limits, duplicate order_id).
"""

from __future__ import annotations

import enum
import itertools
import json
import threading
import uuid
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

INVALID_DATA = "The given data was invalid."
NINE_PLACES = Decimal("0.000000001")


@dataclass(frozen=True)
class Service:
    """A payment method the sandbox accepts, with its currency and amount limits."""

    code: str
    currency: str
    minimum: Decimal = Decimal("1")
    maximum: Decimal = Decimal("100000")
    required: tuple[str, ...] = ()
    """Fields this service needs beyond the documented required ones."""


DEFAULT_SERVICES = (
    Service("payment_card_rub_hpp", "RUB", Decimal("100"), Decimal("5000")),
    Service("payment_card_eur_card", "EUR", Decimal("1"), Decimal("10000")),
    Service("payment_card_usd_card", "USD", Decimal("1"), Decimal("10000")),
    Service("payment_sbp_rub", "RUB", Decimal("10"), Decimal("100000"), ("customer_phone",)),
)


class Fault(enum.Enum):
    """Misbehaviour the sandbox can be told to show on the next create."""

    INTERNAL_ERROR = "internal_error"
    """Store the payment, then answer 500 "Internal server error"."""
    DROP_CONNECTION = "drop_connection"
    """Store the payment, then close the connection without answering."""
    STALL = "stall"
    """Store the payment, then wait `stall_seconds` before answering."""


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
    service: Service
    url: str
    status: str = "wait"
    payment_amount: Decimal | None = None
    commission_amount: Decimal | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def order_id(self) -> str:
        return str(self.request["order_id"])

    @property
    def amount(self) -> Decimal:
        return Decimal(str(self.request["amount"]))

    @property
    def is_partial(self) -> bool:
        return self.payment_amount is not None and self.payment_amount < self.amount

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
    """A notification the gateway sent, and how the receiver answered."""

    payment_id: int
    url: str
    params: dict[str, str]
    http_status: int | None
    error: str | None = None


@dataclass(frozen=True)
class Answer:
    """What the HTTP layer should do: answer `status` with `body`, or drop the connection."""

    status: int
    body: dict[str, Any] | None
    stall: float = 0.0

    @property
    def drop(self) -> bool:
        return self.body is None


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
    ) -> None:
        self.digest = digest
        self.services = {service.code: service for service in services}
        self.commission_rate = commission_rate
        self.page_url = page_url
        self.maintenance = False
        self.stall_seconds = 5.0
        self._signer = Signer(notification_key, digest)
        self._accounts: dict[str, Account] = {}
        self._payments: dict[int, StoredPayment] = {}
        self._by_order: dict[tuple[str, str], StoredPayment] = {}
        self._ids = itertools.count(100_000_001)
        self._faults: list[Fault] = []
        self.requests: list[RecordedRequest] = []
        self.deliveries: list[Delivery] = []
        self._lock = threading.RLock()

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
        return account_id

    def inject(self, fault: Fault) -> None:
        """Make the next create misbehave once."""
        with self._lock:
            self._faults.append(fault)

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
        except ValueError:
            data = None
        if not isinstance(data, dict):
            return _invalid({"body": ["The body must be a JSON object."]})
        if path == "/v1/payment":
            return self._create(account, data)
        return self._status(account, data)

    def _create(self, account: Account, data: dict[str, Any]) -> Answer:
        if self.maintenance:
            return Answer(400, {"message": "Technical works."})
        if not account.allowed:
            return Answer(400, {"message": "Project not allowed to accept payments"})
        errors = schemas.CREATE_PAYMENT.validate(data)
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
                id=next(self._ids),
                uuid=payment_uuid,
                account=account.id,
                request=data,
                service=service,
                url=f"{self.page_url}/pay/{payment_uuid}",
            )
            self._payments[payment.id] = payment
            self._by_order[(account.id, payment.order_id)] = payment
            fault = self._faults.pop(0) if self._faults else None
        answer = {
            "url": payment.url,
            "payment_status": payment.status,
            "id": payment.id,
            "uuid": payment.uuid,
        }
        if fault is Fault.INTERNAL_ERROR:
            return Answer(500, {"message": "Internal server error"})
        if fault is Fault.DROP_CONNECTION:
            return Answer(500, None)
        if fault is Fault.STALL:
            return Answer(200, answer, stall=self.stall_seconds)
        return Answer(200, answer)

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
            return Answer(200, found.status_body())

    # -- what the test or the customer does -----------------------------------------------

    def payments(self) -> list[StoredPayment]:
        with self._lock:
            return list(self._payments.values())

    def payment(self, reference: int | str) -> StoredPayment:
        """A payment by id, order_id or uuid."""
        with self._lock:
            for payment in self._payments.values():
                if reference in (payment.id, str(payment.id), payment.order_id, payment.uuid):
                    return payment
        raise KeyError(f"no sandbox payment {reference!r}")

    def settle(
        self,
        reference: int | str,
        status: str,
        *,
        paid_amount: Decimal | None = None,
        details: dict[str, Any] | None = None,
        notify: bool = True,
    ) -> Delivery | None:
        """Move a payment to paid, cancel or fail, then deliver its signed notification.

        `paid_amount` below the amount makes a partial payment. `details` sets extra status
        fields (card_number, card_holder_name, customer_card_number, bank, ...).
        """
        if status not in ("paid", "cancel", "fail"):
            raise ValueError(f"status must be paid, cancel or fail, not {status!r}")
        with self._lock:
            payment = self.payment(reference)
            if payment.status != "wait":
                raise ValueError(f"payment {payment.id} is already {payment.status}")
            payment.status = status
            if status == "paid":
                paid = payment.amount if paid_amount is None else Decimal(paid_amount)
                payment.payment_amount = paid
                payment.commission_amount = (paid * self.commission_rate).quantize(Decimal("0.01"))
            payment.details.update(details or {})
        return self.notify(payment) if notify else None

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
        message = phpjson.dumps_bytes({**fields, "id": payment.id})
        return {**fields, "sign": self._signer.sign(message)}

    def redirect_form(self, reference: int | str) -> dict[str, str]:
        """The signed form the customer's browser posts to the success or fail URL."""
        payment = self.payment(reference)
        message = phpjson.dumps_bytes({"order_id": payment.order_id, "uuid": payment.uuid})
        return {
            "order_id": payment.order_id,
            "uuid": payment.uuid,
            "sign": self._signer.sign(message),
        }

    def notify(self, payment: StoredPayment) -> Delivery | None:
        """Send `payment`'s notification to its notification_endpoint_url, once."""
        target = payment.request.get("notification_endpoint_url")
        if not target:
            return None
        params = self.notification_params(payment)
        url = f"{target}{'&' if '?' in target else '?'}{urlencode(params)}"
        try:
            answer = requests.get(url, timeout=5)
            delivery = Delivery(payment.id, url, params, answer.status_code)
        except requests.RequestException as error:
            delivery = Delivery(payment.id, url, params, None, type(error).__name__)
        with self._lock:
            self.deliveries.append(delivery)
        return delivery


def _invalid(errors: dict[str, Any]) -> Answer:
    return Answer(400, {"message": INVALID_DATA, "errors": errors})


def _nine(amount: Decimal | None) -> str | None:
    """Amounts in answers: strings with nine decimals, as AliKassa writes them."""
    return None if amount is None else str(Decimal(amount).quantize(NINE_PLACES))


def _plain(amount: Decimal) -> str:
    return format(amount.normalize(), "f")
