"""Payouts in the sandbox: `v1/payout`, `v1/payout/status`, and how a test settles them.

A payout create is checked in the order of a payment create: its fields (Laravel's "The given
data was invalid." with an `errors` map; fields without a rule are ignored and kept in the
stored request), its service (a `PayoutService` the sandbox knows), the service's amount limits,
a duplicate order_id (unique per account among payouts), and then, our addition, the account's
balance: a payout holds its amount and commission (see `balances`) and is refused with
`{"message": "Insufficient funds"}` when the balance is short. That message, and
`{"message": "Payout not found"}` for a status call about no payout of the account, are our
wording: no source shows the gateway's.

Ids come from the same counter as payment ids. A settled payout is notified (`type=payout`) to
the request's `notification_endpoint_url`, else to the desk's `notification_url` (the real
gateway's is set in the merchant cabinet), signed and delivered like a payment notification.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import marshmallow

from paymux.providers.alikassa import payout_schemas
from paymux.providers.alikassa.sandbox.answers import (
    Answer,
    invalid,
    looked_up,
    nine,
    order_id_as_text,
    plain,
)
from paymux.providers.alikassa.sandbox.balances import ZERO, Ledger
from paymux.providers.alikassa.sandbox.delivery import Delivery, Notice, Notifier
from paymux.providers.alikassa.sandbox.payments import FINAL_STATUSES

INSUFFICIENT_FUNDS = "Insufficient funds"
PAYOUT_NOT_FOUND = "Payout not found"


@dataclass(frozen=True)
class PayoutService:
    """A payout method the sandbox accepts, with its currency, amount limits and commission."""

    code: str
    currency: str
    minimum: Decimal = Decimal("1")
    maximum: Decimal = Decimal("100000")
    commission_rate: Decimal = ZERO
    """The share of the amount the gateway charges on top; held and paid out with it."""


DEFAULT_PAYOUT_SERVICES = (
    PayoutService("payment_card_rub", "RUB", Decimal("100"), Decimal("100000")),
    PayoutService("payment_card_sbp_rub", "RUB", Decimal("10"), Decimal("100000")),
    PayoutService("payment_card_kzt", "KZT", Decimal("500"), Decimal("2000000")),
)


@dataclass
class StoredPayout:
    """A payout as the gateway keeps it."""

    id: int
    account: str
    request: dict[str, Any]
    """The create body as received, fields the gateway has no rule for included."""
    service: PayoutService
    commission_amount: Decimal = ZERO
    status: str = "wait"
    created_at: float = 0.0
    """When the gateway created it, on the gateway's clock (seconds)."""

    @property
    def order_id(self) -> str:
        return str(self.request["order_id"])

    @property
    def amount(self) -> Decimal:
        return Decimal(str(self.request["amount"]))

    @property
    def total(self) -> Decimal:
        """What the payout takes from the account: its amount and its commission."""
        return self.amount + self.commission_amount

    @property
    def card_number(self) -> str | None:
        """The recipient's card number masked (first six and last four digits shown); None for
        a payout to a phone number."""
        if payout_schemas.pays_to_phone(self.service.code):
            return None
        number = str(self.request["number"])
        return number[:6] + "*" * (len(number) - 10) + number[-4:]

    def created_body(self) -> dict[str, Any]:
        """The `v1/payout` answer."""
        return {"id": self.id, "payment_status": self.status}

    def status_body(self) -> dict[str, Any]:
        """The `v1/payout/status` answer: amounts as strings with nine decimals."""
        return {
            "id": self.id,
            "order_id": self.order_id,
            "payment_status": self.status,
            "amount": nine(self.amount),
            "commission_amount": nine(self.commission_amount),
            "currency": self.service.currency,
            "service_code": self.service.code,
            "card_number": self.card_number,
        }

    def notification_fields(self) -> dict[str, str]:
        """The eleven signed notification fields; `payment_amount` is empty until paid."""
        return {
            "type": "payout",
            "id": str(self.id),
            "order_id": self.order_id,
            "payment_status": self.status,
            "amount": nine(self.amount) or "",
            "payment_amount": (nine(self.amount) or "") if self.status == "paid" else "",
            "commission_amount": nine(self.commission_amount) or "",
            "is_partial_payment": "0",
            "account": self.account,
            "service": self.service.code,
            "desc": "",
        }


class PayoutClosed(ValueError):
    """The payout was settled before: it is paid, failed or canceled."""

    def __init__(self, payout: StoredPayout) -> None:
        self.payout = payout
        super().__init__(f"payout {payout.id} is already {payout.status}")


class PayoutDesk:
    """The gateway's payouts. Thread-safe under `lock`, the gateway's lock, which also guards
    the ledger and starts deliveries."""

    def __init__(
        self,
        *,
        services: Sequence[PayoutService],
        lock: threading.Condition,
        next_id: Callable[[], int],
        clock: Callable[[], float],
        ledger: Ledger,
        notifier: Notifier,
        on_change: Callable[[], None],
        notification_url: str | None = None,
    ) -> None:
        self.services = {service.code: service for service in services}
        self.notification_url = notification_url
        """Where payouts without a `notification_endpoint_url` are notified; None: nowhere."""
        self._lock = lock
        self._next_id = next_id
        self._clock = clock
        self._ledger = ledger
        self._notifier = notifier
        self._on_change = on_change
        self._payouts: dict[int, StoredPayout] = {}
        self._by_order: dict[tuple[str, str], StoredPayout] = {}

    def create(self, account: str, data: dict[str, Any]) -> tuple[Answer, StoredPayout | None]:
        """Answer a `v1/payout` body; the payout when one was stored (faults come after)."""
        data = order_id_as_text(data)
        errors = payout_schemas.GATEWAY_PAYOUT.validate(data)
        if errors:
            return invalid(errors), None
        service = self.services.get(data["service"])
        if service is None:
            return Answer(400, {"message": "Not exists service / No found service"}), None
        amount = Decimal(str(data["amount"]))
        if amount < service.minimum:
            return Answer(400, {"message": f"Minimum amount {plain(service.minimum)}"}), None
        if amount > service.maximum:
            return Answer(400, {"message": f"Maximum amount {plain(service.maximum)}"}), None
        commission = (amount * service.commission_rate).quantize(Decimal("0.01"))
        with self._lock:
            if (account, str(data["order_id"])) in self._by_order:
                return Answer(400, {"message": "order_id exists"}), None
            if not self._ledger.hold(account, amount + commission):
                return Answer(400, {"message": INSUFFICIENT_FUNDS}), None
            payout = StoredPayout(
                id=self._next_id(),
                account=account,
                request=data,
                service=service,
                commission_amount=commission,
                created_at=self._clock(),
            )
            self._payouts[payout.id] = payout
            self._by_order[(account, payout.order_id)] = payout
            self._on_change()
        return Answer(200, payout.created_body()), payout

    def status(self, account: str, data: dict[str, Any]) -> Answer:
        """Answer a `v1/payout/status` body about one of `account`'s payouts."""
        try:
            query = payout_schemas.GATEWAY_PAYOUT_STATUS.load(data)
        except marshmallow.ValidationError as error:
            return invalid(error.messages_dict)
        with self._lock:
            found = looked_up(query, account, self._payouts, self._by_order)
            if found is None:
                return Answer(404, {"message": PAYOUT_NOT_FOUND})
            return Answer(200, found.status_body())

    def payouts(self) -> list[StoredPayout]:
        with self._lock:
            return list(self._payouts.values())

    def payout(self, reference: int | str) -> StoredPayout:
        """A payout by id or order_id."""
        with self._lock:
            for payout in self._payouts.values():
                if reference in (payout.id, str(payout.id), payout.order_id):
                    return payout
        raise KeyError(f"no sandbox payout {reference!r}")

    def settle(
        self, reference: int | str, status: str, *, notify: bool = True, wait: bool = True
    ) -> Delivery | None:
        """Move a payout to paid, fail or cancel, settle its hold, and notify it.

        Paid: the held sum leaves the account; fail or cancel: it goes back to the balance.
        With `wait` the first notification attempt is made before returning, and returned.
        Raises KeyError for no such payout, `PayoutClosed` when it was settled before,
        ValueError for a wrong status, and RuntimeError when the delivery cannot start (the
        sandbox is stopped); the payout is then left as it was.
        """
        if status not in FINAL_STATUSES:
            raise ValueError(f"status must be paid, cancel or fail, not {status!r}")
        with self._lock:
            payout = self.payout(reference)
            if payout.status != "wait":
                raise PayoutClosed(payout)
            settled = dataclasses.replace(payout, status=status)
            first = self._schedule(settled) if notify else None
            payout.status = status
            if status == "paid":
                self._ledger.pay_out(payout.account, payout.total)
            else:
                self._ledger.release(payout.account, payout.total)
            self._on_change()
        return first.result() if first is not None and wait else None

    def _schedule(self, payout: StoredPayout) -> Future[Delivery | None] | None:
        target = payout.request.get("notification_endpoint_url") or self.notification_url
        stale = dataclasses.replace(payout, status="wait").notification_fields()
        notice = Notice(
            record_id=payout.id,
            order_id=payout.order_id,
            target=str(target) if target else None,
            fields=payout.notification_fields(),
            stale_fields=stale if payout.status != "wait" else None,
        )
        return self._notifier.schedule(notice)

    def snapshot(self) -> list[StoredPayout]:
        """Copies of every payout as it stands (for saving state)."""
        with self._lock:
            return [dataclasses.replace(payout) for payout in self._payouts.values()]

    def restore(self, payouts: Sequence[StoredPayout]) -> None:
        """Take back the payouts of a sandbox that ran before."""
        with self._lock:
            for payout in payouts:
                self._payouts[payout.id] = payout
                self._by_order[(payout.account, payout.order_id)] = payout
