"""The AliKassa gateway's behaviour, without HTTP: accounts, and the routing of every merchant
API call to the payments, payouts and balance behind it.

It applies the same wire schemas as the client, in the order the real gateway reports problems
(authentication, maintenance, account, fields, service, amount limits, duplicate order_id).
Like the real gateway's Laravel validator it ignores create fields it has no rule for, and keeps
them in the stored request; an integer order_id (AliKassa's Go sample sends one) is kept as its
decimal text.

Each account has two certificates, as on the real gateway: `v1/payment`, `v1/payment/status`
and `v1/account/balance` are signed with the payment key, `v1/payout` and `v1/payout/status`
with the payout key; a call signed with the other one is refused as a bad signature. That the
balance call takes the payment key is our choice: the production code seen signs it so.

Payments are kept by `payment_desk`, payouts by `payouts`, balances by `balances`; every
notification is sent from a background thread by `delivery`, repeated after each of
`retry_delays` while the shop does not answer HTTP 200, and every attempt is recorded in
`deliveries`.

Payment and payout ids follow the wall clock: milliseconds since 2025 (one more than the last
id when they come faster), so a sandbox started later numbers above every id an earlier one
gave, and a shop's records never meet the same id twice. They stay at 11 or 12 digits, short of
the 13 to 19 digits that logs mask as card numbers.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from paymux import SignatureError
from paymux.providers.alikassa import phpjson
from paymux.providers.alikassa.keys import Verifier
from paymux.providers.alikassa.sandbox.answers import (
    Answer,
    RecordedRequest,
    invalid,
    misbehave,
)
from paymux.providers.alikassa.sandbox.balances import Balance, Ledger, checked_money
from paymux.providers.alikassa.sandbox.delivery import (
    DEFAULT_RETRY_DELAYS,
    Delivery,
    Notifier,
)
from paymux.providers.alikassa.sandbox.faults import HEADER, Fault, asked_for, fault_plan
from paymux.providers.alikassa.sandbox.payment_desk import PaymentDesk
from paymux.providers.alikassa.sandbox.payments import (
    DEFAULT_LIFETIME,
    DEFAULT_SERVICES,
    PaymentClosed,
    Service,
    StoredPayment,
)
from paymux.providers.alikassa.sandbox.payouts import (
    DEFAULT_PAYOUT_SERVICES,
    PayoutDesk,
    PayoutService,
    StoredPayout,
)
from paymux.providers.base.faults import FaultPlan

__all__ = [
    "DEFAULT_LIFETIME",
    "DEFAULT_RETRY_DELAYS",
    "DEFAULT_SERVICES",
    "Answer",
    "Delivery",
    "Gateway",
    "PaymentClosed",
    "RecordedRequest",
    "Service",
    "StoredPayment",
]

ID_EPOCH_MS = 1_735_689_600_000
"""2025-01-01 UTC in milliseconds: payment and payout ids count from here."""
PAYMENT_PATHS = ("/v1/payment", "/v1/payment/status", "/v1/account/balance")
"""Calls signed with the payment certificate."""
PAYOUT_PATHS = ("/v1/payout", "/v1/payout/status")
"""Calls signed with the payout certificate."""


@dataclass
class Account:
    id: str
    verifier: Verifier
    allowed: bool = True
    payout_verifier: Verifier | None = None
    """Checks payout calls; None until a payout certificate is registered (all refused)."""


class Gateway:
    """In-memory AliKassa. Thread-safe."""

    def __init__(
        self,
        *,
        notification_key: rsa.RSAPrivateKey,
        digest: str = "sha1",
        services: tuple[Service, ...] = DEFAULT_SERVICES,
        payout_services: Sequence[PayoutService] = DEFAULT_PAYOUT_SERVICES,
        commission_rate: Decimal = Decimal("0.03"),
        page_url: str = "",
        clock: Callable[[], float] = time.time,
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        faults: FaultPlan[Fault] | None = None,
        omit_empty_notification_fields: bool = False,
        payout_notification_url: str | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.digest = digest
        self.clock = clock
        """Seconds since some epoch; replace it to move time without sleeping."""
        self.maintenance = False
        self.stall_seconds = 5.0
        self._accounts: dict[str, Account] = {}
        self._last_id = 0
        self.faults = faults or fault_plan()
        self._on_change = on_change
        """Called, under the gateway's lock, after each change to accounts, payments, payouts
        or balances."""
        self.requests: list[RecordedRequest] = []
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self.notifier = Notifier(
            key=notification_key,
            digest=digest,
            lock=self._changed,
            faults=self.faults,
            retry_delays=retry_delays,
            omit_empty_fields=omit_empty_notification_fields,
        )
        self.ledger = Ledger()
        self.payment_desk = PaymentDesk(
            services=services,
            commission_rate=commission_rate,
            page_url=page_url,
            lock=self._changed,
            next_id=self._next_id,
            clock=self.now,
            ledger=self.ledger,
            notifier=self.notifier,
            on_change=self._state_changed,
        )
        self.payout_desk = PayoutDesk(
            services=payout_services,
            lock=self._changed,
            next_id=self._next_id,
            clock=self.now,
            ledger=self.ledger,
            notifier=self.notifier,
            on_change=self._state_changed,
            notification_url=payout_notification_url,
        )

    @property
    def services(self) -> dict[str, Service]:
        """The payment services, by code."""
        return self.payment_desk.services

    @property
    def commission_rate(self) -> Decimal:
        return self.payment_desk.commission_rate

    @property
    def page_url(self) -> str:
        return self.payment_desk.page_url

    @property
    def retry_delays(self) -> tuple[float, ...]:
        return self.notifier.retry_delays

    @property
    def omit_empty_notification_fields(self) -> bool:
        """Leave empty nullable fields out of notifications, signed as null (the PHP way)."""
        return self.notifier.omit_empty_fields

    @property
    def deliveries(self) -> list[Delivery]:
        return self.notifier.deliveries

    def now(self) -> float:
        return self.clock()

    def _next_id(self) -> int:
        """An id above every earlier one, from this sandbox or one that ran before."""
        wall_clock = time.time_ns() // 1_000_000 - ID_EPOCH_MS
        with self._lock:
            self._last_id = max(self._last_id + 1, wall_clock)
            return self._last_id

    def _state_changed(self) -> None:
        if self._on_change is not None:
            self._on_change()

    def snapshot(self) -> list[StoredPayment]:
        """Copies of every payment as it stands, without expiring any (for saving state)."""
        return self.payment_desk.snapshot()

    def restore(
        self,
        payments: Sequence[StoredPayment],
        payouts: Sequence[StoredPayout] = (),
        balances: Mapping[str, Balance] | None = None,
    ) -> None:
        """Take back the payments, payouts and balances of a sandbox that ran before; payment
        pages move to `page_url`.

        Ids go on above the highest of them, even if the clock went back.
        """
        with self._lock:
            self.payment_desk.restore(payments)
            self.payout_desk.restore(payouts)
            self.ledger.restore(dict(balances or {}))
            ids = [payment.id for payment in payments] + [payout.id for payout in payouts]
            self._last_id = max([self._last_id, *ids])

    # -- set-up ---------------------------------------------------------------------------

    def register_account(
        self,
        public_key: rsa.RSAPublicKey,
        *,
        account: str | None = None,
        allowed: bool = True,
        payout_public_key: rsa.RSAPublicKey | None = None,
    ) -> str:
        """Register a merchant account by its payment certificate's public key (and its payout
        certificate's, if it has one)."""
        account_id = account or str(uuid.uuid4())
        payout_verifier = (
            Verifier(payout_public_key, self.digest) if payout_public_key is not None else None
        )
        with self._lock:
            self._accounts[account_id] = Account(
                account_id, Verifier(public_key, self.digest), allowed, payout_verifier
            )
            self._state_changed()
        return account_id

    def register_payout_key(self, account: str, public_key: rsa.RSAPublicKey) -> None:
        """Give `account` (registered before) its payout certificate; it replaces an earlier one."""
        with self._lock:
            self._accounts[account].payout_verifier = Verifier(public_key, self.digest)
            self._state_changed()

    def inject(self, fault: Fault, *, on: str | None = None, times: int = 1) -> None:
        """Show `fault` on the next `times` requests of `on` (see `faults.OPERATIONS`)."""
        self.faults.inject(fault, on=on, times=times)

    # -- the merchant API ---------------------------------------------------------------

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        """Answer one merchant API request."""
        with self._lock:
            self.requests.append(RecordedRequest(method, path, headers, body))
        if path not in PAYMENT_PATHS + PAYOUT_PATHS:
            return Answer(404, {"message": "Not found"})
        if method != "POST":
            return Answer(405, {"message": "Method not allowed"})
        account = self._accounts.get(headers.get("account", ""))
        if account is None:
            return Answer(401, {"message": "Account not found"})
        verifier = account.payout_verifier if path in PAYOUT_PATHS else account.verifier
        try:
            if verifier is None:
                raise SignatureError("the account has no payout certificate")
            verifier.verify(body, headers.get("sign", ""))
        except SignatureError:
            return Answer(401, {"message": "Wrong sign"})
        try:
            data = json.loads(body, parse_float=Decimal)
        except (ValueError, RecursionError):
            data = None
        if path == "/v1/account/balance" and data == []:
            data = {}  # PHP's json_encode writes an empty array, the empty body, as []
        if not isinstance(data, dict):
            return invalid({"body": ["The body must be a JSON object."]})
        asked = headers.get(HEADER)
        if path == "/v1/payment":
            return self._create(account, data, asked)
        if path == "/v1/payout":
            return self._payout(account, data, asked)
        if path == "/v1/payment/status":
            answer, operation = self.payment_desk.status(account.id, data), "status"
        elif path == "/v1/payout/status":
            answer, operation = self.payout_desk.status(account.id, data), "payout_status"
        else:
            answer, operation = self._balance(account), "balance"
        return misbehave(
            self.faults.draw(operation, asked=asked_for(asked)), answer, self.stall_seconds
        )

    def _create(self, account: Account, data: dict[str, Any], asked: str | None) -> Answer:
        if self.maintenance:
            return Answer(400, {"message": "Technical works."})
        if not account.allowed:
            return Answer(400, {"message": "Project not allowed to accept payments"})
        answer, payment = self.payment_desk.create(account.id, data)
        if payment is None:
            return answer
        faults = self.faults.draw("create", asked=asked_for(asked, payment.order_id))
        return misbehave(faults, answer, self.stall_seconds)

    def _payout(self, account: Account, data: dict[str, Any], asked: str | None) -> Answer:
        if self.maintenance:
            return Answer(400, {"message": "Technical works."})
        answer, payout = self.payout_desk.create(account.id, data)
        if payout is None:
            return answer
        faults = self.faults.draw("payout", asked=asked_for(asked, payout.order_id))
        return misbehave(faults, answer, self.stall_seconds)

    def _balance(self, account: Account) -> Answer:
        return self.balance(account.id).answer()

    def balance(self, account: str) -> Balance:
        """A copy of `account`'s balance (see `balances`)."""
        with self._lock:
            return self.ledger.of(account)

    def set_balance(
        self,
        account: str,
        *,
        balance: Decimal | str | int | None = None,
        hold: Decimal | str | int | None = None,
        rolling_reserve: Decimal | str | int | None = None,
    ) -> Balance:
        """Set the parts given (each at or above 0, else ValueError); KeyError for no account."""
        given = {"balance": balance, "hold": hold, "rolling_reserve": rolling_reserve}
        parts = {
            name: checked_money(value, name) for name, value in given.items() if value is not None
        }
        with self._lock:
            if account not in self._accounts:
                raise KeyError(f"no sandbox account {account!r}")
            changed = self.ledger.set(account, **parts)
            self._state_changed()
            return changed

    # -- what the test or the customer does -----------------------------------------------

    def payments(self) -> list[StoredPayment]:
        return self.payment_desk.payments()

    def payment(self, reference: int | str) -> StoredPayment:
        """A payment by id, order_id or uuid."""
        return self.payment_desk.payment(reference)

    def payment_by_uuid(self, payment_uuid: str) -> StoredPayment:
        """The payment whose page is `/pay/<payment_uuid>`."""
        return self.payment_desk.payment_by_uuid(payment_uuid)

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
        """Settle a payment and notify it: see `PaymentDesk.settle`."""
        return self.payment_desk.settle(
            reference, status, paid_amount=paid_amount, details=details, notify=notify, wait=wait
        )

    def expire_due(self) -> list[StoredPayment]:
        """Cancel (and notify) every waiting payment whose lifetime has run out; returns them."""
        return self.payment_desk.expire_due()

    def notification_params(self, payment: StoredPayment) -> dict[str, str]:
        """The signed query parameters of the notification for `payment`'s current state."""
        return self.notifier.params(payment.notification_fields())

    def redirect_form(self, reference: int | str) -> dict[str, str]:
        """The signed form the customer's browser posts to the success or fail URL."""
        payment = self.payment(reference)
        message = phpjson.dumps_bytes({"order_id": payment.order_id, "uuid": payment.uuid})
        return {
            "order_id": payment.order_id,
            "uuid": payment.uuid,
            "sign": self.notifier.signer.sign(message),
        }

    def notify(self, payment: StoredPayment, *, wait: bool = True) -> Delivery | None:
        """Send `payment`'s notification for its current state (again), with repeats.

        Returns the first attempt when `wait`; None when there is no notification URL.
        """
        return self.payment_desk.notify(payment, wait=wait)

    # -- notification delivery ------------------------------------------------------------

    def wait_for_deliveries(self, count: int, timeout: float = 5.0) -> list[Delivery]:
        """Block until `count` attempts are recorded; returns them all (fewer on timeout)."""
        return self.notifier.wait_for_deliveries(count, timeout)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until no notification is being sent or waiting to be sent again."""
        return self.notifier.wait_idle(timeout)

    def close(self) -> None:
        """Stop sending: abandon pending repeats, wait for attempts in flight."""
        self.notifier.close()
