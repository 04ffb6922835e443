"""The gateway's payments: `v1/payment` and `v1/payment/status` once a request is authenticated,
and what the customer and the test do with a payment (settle it, let it expire).

A payment waits for its customer for `lifetime` seconds (an hour when the request gives none),
measured on the gateway's clock; after that it can no longer be paid and ends as `cancel`.
Every change of status is notified to the payment's notification URL (see `delivery`); a change
of status and the start of its delivery happen together or not at all. A paid payment credits
the account's balance (see `balances`) with `payment_amount - commission_amount`.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from decimal import Decimal
from typing import Any

import marshmallow

from paymux.providers.alikassa import schemas
from paymux.providers.alikassa.sandbox.answers import (
    Answer,
    invalid,
    looked_up,
    order_id_as_text,
    plain,
)
from paymux.providers.alikassa.sandbox.balances import Ledger
from paymux.providers.alikassa.sandbox.delivery import Delivery, Notice, Notifier
from paymux.providers.alikassa.sandbox.payments import (
    FINAL_STATUSES,
    PaymentClosed,
    Service,
    StoredPayment,
    checked_details,
    checked_paid_amount,
    transfer_card,
)


class PaymentDesk:
    """The gateway's payments. Thread-safe under `lock`, the gateway's lock, which also guards
    the ledger and starts deliveries."""

    def __init__(
        self,
        *,
        services: Sequence[Service],
        commission_rate: Decimal,
        page_url: str,
        lock: threading.Condition,
        next_id: Callable[[], int],
        clock: Callable[[], float],
        ledger: Ledger,
        notifier: Notifier,
        on_change: Callable[[], None],
    ) -> None:
        self.services = {service.code: service for service in services}
        self.commission_rate = commission_rate
        self.page_url = page_url
        self._lock = lock
        self._next_id = next_id
        self._clock = clock
        self._ledger = ledger
        self._notifier = notifier
        self._on_change = on_change
        self._payments: dict[int, StoredPayment] = {}
        self._by_order: dict[tuple[str, str], StoredPayment] = {}
        self._by_uuid: dict[str, StoredPayment] = {}

    def snapshot(self) -> list[StoredPayment]:
        """Copies of every payment as it stands, without expiring any (for saving state)."""
        with self._lock:
            return [dataclasses.replace(payment) for payment in self._payments.values()]

    def restore(self, payments: Sequence[StoredPayment]) -> None:
        """Take back the payments of a sandbox that ran before; their pages move to `page_url`."""
        with self._lock:
            for payment in payments:
                if payment.url is not None:
                    payment.url = f"{self.page_url}/pay/{payment.uuid}"
                self._payments[payment.id] = payment
                self._by_order[(payment.account, payment.order_id)] = payment
                self._by_uuid[payment.uuid] = payment

    def create(self, account: str, data: dict[str, Any]) -> tuple[Answer, StoredPayment | None]:
        """Answer a `v1/payment` body; the payment when one was stored (faults come after)."""
        data = order_id_as_text(data)
        errors = schemas.GATEWAY_CREATE_PAYMENT.validate(data)
        if errors:
            return invalid(errors), None
        service = self.services.get(data["service"])
        if service is None:
            return Answer(400, {"message": "Not exists service / No found service"}), None
        missing = {
            name: [f"The {name.replace('_', ' ')} field is required."]
            for name in service.required
            if not data.get(name)
        }
        if missing:
            return invalid(missing), None
        amount = Decimal(str(data["amount"]))
        if amount < service.minimum:
            return Answer(400, {"message": f"Minimum amount {plain(service.minimum)}"}), None
        if amount > service.maximum:
            return Answer(400, {"message": f"Maximum amount {plain(service.maximum)}"}), None
        with self._lock:
            if (account, str(data["order_id"])) in self._by_order:
                return Answer(400, {"message": "order_id exists"}), None
            payment_uuid = str(uuid.uuid4())
            payment = StoredPayment(
                id=self._next_id(),
                uuid=payment_uuid,
                account=account,
                request=data,
                service=service,
                url=None if service.card_transfer else f"{self.page_url}/pay/{payment_uuid}",
                created_at=self._clock(),
                transfer_to=transfer_card() if service.card_transfer else {},
            )
            self._payments[payment.id] = payment
            self._by_order[(account, payment.order_id)] = payment
            self._by_uuid[payment.uuid] = payment
            self._on_change()
        return Answer(200, payment.created_body()), payment

    def status(self, account: str, data: dict[str, Any]) -> Answer:
        """Answer a `v1/payment/status` body about one of `account`'s payments."""
        try:
            query = schemas.STATUS_REQUEST.load(data)
        except marshmallow.ValidationError as error:
            return invalid(error.messages_dict)
        with self._lock:
            found = looked_up(query, account, self._payments, self._by_order)
            if found is None:
                return Answer(404, {"message": "Payment not found"})
            self._expire_if_due(found)
            return Answer(200, found.status_body())

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
        A paid payment credits the account's balance with what it brings, less commission.

        With `wait`, the first notification attempt is made before returning, and returned;
        repeats, if the shop does not answer 200, follow in the background. Without it, every
        attempt is made in the background (the payment page does this) and None is returned.
        Raises `PaymentClosed` when the payment no longer waits (settled before, or expired),
        ValueError for a wrong status, amount or details, and RuntimeError when the delivery
        cannot start (the sandbox is stopped); the payment is then left as it was.
        """
        if status not in FINAL_STATUSES:
            raise ValueError(f"status must be paid, cancel or fail, not {status!r}")
        extra = checked_details(details)
        with self._lock:
            payment = self.payment(reference)
            if payment.status != "wait":
                raise PaymentClosed(payment)
            settled = dataclasses.replace(
                payment, status=status, details={**payment.details, **extra}
            )
            if status == "paid":
                paid = checked_paid_amount(paid_amount, payment)
                settled.payment_amount = paid
                settled.commission_amount = (paid * self.commission_rate).quantize(Decimal("0.01"))
            first = self._schedule(settled) if notify else None
            vars(payment).update(vars(settled))
            if payment.credited is not None:
                self._ledger.credit(payment.account, payment.credited)
            self._on_change()
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
            if payment.status != "wait" or self._clock() < payment.expires_at:
                return False
            expired = dataclasses.replace(payment, status="cancel", expired=True)
            try:
                self._schedule(expired)
            except RuntimeError:
                return False
            vars(payment).update(vars(expired))
            self._on_change()
            return True

    def notify(self, payment: StoredPayment, *, wait: bool = True) -> Delivery | None:
        """Send `payment`'s notification for its current state (again), with repeats.

        Returns the first attempt when `wait`; None when there is no notification URL.
        """
        with self._lock:
            first = self._schedule(payment)
        return first.result() if first is not None and wait else None

    def _schedule(self, payment: StoredPayment) -> Future[Delivery | None] | None:
        """Start delivering `payment`'s notification for its state; None without a URL."""
        target = payment.request.get("notification_endpoint_url")
        stale = dataclasses.replace(payment, status="wait").notification_fields()
        notice = Notice(
            record_id=payment.id,
            order_id=payment.order_id,
            target=str(target) if target else None,
            fields=payment.notification_fields(),
            stale_fields=stale if payment.status != "wait" else None,
        )
        return self._notifier.schedule(notice)
