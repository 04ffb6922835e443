"""YooKassa's behaviour without HTTP: shops, payments, refunds, their statuses and expiry.

A payment starts `pending` (waiting for the payer on the payment page). Paid with
`capture: true` it is `succeeded`; with `capture: false` it is `waiting_for_capture` (funds
held) until captured (in full or less), canceled by the shop, or its hold runs out at
`expires_at` (`hold_period`, 7 days by default, as for bank cards). A pending payment the payer
never completes is canceled after `confirmation_period` (an hour by default). Both expiries are
measured on the injectable `clock`, applied by `expire_due()` and on every access.

Every change of status is notified (payment.waiting_for_capture, payment.succeeded,
payment.canceled, refund.succeeded) to the shop's webhook URL; a change and the start of its
delivery happen together or not at all.
"""

from __future__ import annotations

import dataclasses
import hmac
import threading
from collections.abc import Callable
from concurrent.futures import Future
from decimal import Decimal
from typing import Any

from paymux_yookassa.emulator.faults import Fault
from paymux_yookassa.emulator.objects import Shop, StoredPayment, StoredRefund
from paymux_yookassa.emulator.validation import PaymentInput, RefundInput
from paymux_yookassa.emulator.webhooks import Delivery, Notifier
from paymux_yookassa.emulator.wire import ApiError, invalid, money, object_id

DEFAULT_HOLD_PERIOD = 7 * 24 * 3600.0
"""Seconds a `waiting_for_capture` payment stays held (bank cards: 7 days)."""
DEFAULT_CONFIRMATION_PERIOD = 3600.0
"""Seconds a `pending` payment waits for its payer before `expired_on_confirmation`."""
DEFAULT_COMMISSION = Decimal("0.035")
"""The share of `amount` YooKassa keeps: `income_amount` is the rest."""
CANCELLATION_REASONS = frozenset(
    {
        "3d_secure_failed", "call_issuer", "card_expired", "payment_method_limit_exceeded",
        "payment_method_restricted", "country_forbidden", "general_decline", "fraud_suspected",
        "identification_required", "insufficient_funds", "invalid_card_number", "invalid_csc",
        "issuer_unavailable", "canceled_by_merchant", "permission_revoked", "internal_timeout",
        "expired_on_confirmation", "expired_on_capture", "unsupported_mobile_operator",
        "deal_expired",
    }
)  # fmt: skip
"""`cancellation_details.reason` values YooKassa documents."""
_YOO_MONEY_REASONS = frozenset(
    {"expired_on_confirmation", "expired_on_capture", "fraud_suspected", "internal_timeout"}
)
NEXT_STATUSES = {
    "pending": ("waiting_for_capture", "succeeded", "canceled"),
    "waiting_for_capture": ("succeeded", "canceled"),
}


def party_of(reason: str) -> str:
    """Who cancels for `reason`: the shop, YooKassa, or the card's bank and network."""
    if reason == "canceled_by_merchant":
        return "merchant"
    return "yoo_money" if reason in _YOO_MONEY_REASONS else "payment_network"


def _not_found(kind: str) -> ApiError:
    return ApiError(404, "not_found", f"{kind.capitalize()} not found or forbidden", f"{kind}_id")


class Store:
    """In-memory YooKassa. Thread-safe: `lock` guards every change."""

    def __init__(
        self,
        *,
        notifier: Notifier,
        page_url: str,
        clock: Callable[[], float],
        hold_period: float = DEFAULT_HOLD_PERIOD,
        confirmation_period: float = DEFAULT_CONFIRMATION_PERIOD,
        commission_rate: Decimal = DEFAULT_COMMISSION,
        pending_refunds: bool = False,
    ) -> None:
        self.notifier = notifier
        self.page_url = page_url
        self.clock = clock
        self.hold_period = hold_period
        self.confirmation_period = confirmation_period
        self.commission_rate = commission_rate
        self.pending_refunds = pending_refunds
        """New refunds start `pending` (see `settle_refund`) instead of `succeeded`."""
        self.webhook_url: str | None = None
        self.lock = threading.RLock()
        self.shops: dict[str, Shop] = {}
        self._payments: dict[str, StoredPayment] = {}
        self._refunds: dict[str, StoredRefund] = {}

    def authenticate(self, shop_id: str, secret_key: str) -> Shop | None:
        shop = self.shops.get(shop_id)
        if shop is None or not hmac.compare_digest(shop.secret_key, secret_key):
            return None
        return shop

    # -- payments -------------------------------------------------------------------------

    def create_payment(
        self, shop: Shop, data: PaymentInput, faults: frozenset[Fault] = frozenset()
    ) -> StoredPayment:
        with self.lock:
            now = self.clock()
            payment_id = self._new_id("payment", now)
            payment = StoredPayment(
                id=payment_id,
                shop=shop,
                amount=data.amount,
                currency=data.currency,
                capture=data.capture,
                return_url=data.return_url,
                confirmation_url=f"{self.page_url}/pay/{payment_id}",
                description=data.description,
                metadata=data.metadata,
                created_at=now,
                confirmation_deadline=now + self.confirmation_period,
                commission_rate=self.commission_rate,
                payment_method_type=data.payment_method_type,
                faults=faults,
            )
            self._payments[payment_id] = payment
            return payment

    def payment(self, payment_id: str, shop: Shop | None = None) -> StoredPayment:
        """The payment (expired first if its time ran out); 404 for another shop's."""
        with self.lock:
            payment = self._payments.get(payment_id)
            if payment is None or (shop is not None and payment.shop is not shop):
                raise _not_found("payment")
            self._expire_if_due(payment)
            return payment

    def payments(self) -> list[StoredPayment]:
        with self.lock:
            self.expire_due()
            return list(self._payments.values())

    def capture(
        self, shop: Shop, payment_id: str, amount: tuple[Decimal, str] | None
    ) -> StoredPayment:
        """Capture a held payment: all of it, or `amount` of it (the rest goes back)."""
        with self.lock:
            payment = self.payment(payment_id, shop)
            if payment.status != "waiting_for_capture":
                raise invalid(
                    None,
                    f"Payment is {payment.status}: only a payment in the waiting_for_capture "
                    "status can be captured",
                )
            captured = payment.amount
            if amount is not None:
                captured, currency = amount
                if currency != payment.currency:
                    raise invalid(
                        "amount.currency", f"The payment's currency is {payment.currency}"
                    )
                if captured > payment.amount:
                    raise invalid("amount.value", "Capture amount exceeds the amount held")
            self._change(payment, status="succeeded", amount=captured, captured_at=self.clock())
            return payment

    def cancel(self, shop: Shop, payment_id: str) -> StoredPayment:
        """Cancel a held payment: YooKassa cancels only `waiting_for_capture` payments."""
        with self.lock:
            payment = self.payment(payment_id, shop)
            if payment.status != "waiting_for_capture":
                raise invalid(
                    None,
                    f"Payment is {payment.status}: only a payment in the waiting_for_capture "
                    "status can be canceled",
                )
            reason = {"party": "merchant", "reason": "canceled_by_merchant"}
            self._change(payment, status="canceled", cancellation=reason)
            return payment

    def settle(
        self, payment_id: str, status: str, reason: str | None = None, party: str | None = None
    ) -> Future[Delivery | None] | None:
        """Move a payment on as the payer, the bank or YooKassa would; the notification's future.

        Raises KeyError for an unknown payment, ValueError for a move its status does not allow
        or an undocumented reason.
        """
        with self.lock:
            try:
                payment = self.payment(payment_id)
            except ApiError as error:
                raise KeyError(payment_id) from error
            if status not in NEXT_STATUSES.get(payment.status, ()):
                raise ValueError(f"payment {payment_id} is {payment.status}: it cannot be {status}")
            if status != "canceled":
                if payment.status == "waiting_for_capture":
                    return self._change(payment, status=status, captured_at=self.clock())
                return self._authorize(payment, status)
            reason = reason or "general_decline"
            if reason not in CANCELLATION_REASONS:
                raise ValueError(f"{reason!r} is not a cancellation reason YooKassa documents")
            if party not in (None, "merchant", "yoo_money", "payment_network"):
                raise ValueError(f"{party!r} is not a cancellation party YooKassa documents")
            details = {"party": party or party_of(reason), "reason": reason}
            card_used = payment.card_used or reason != "expired_on_confirmation"
            return self._change(
                payment, status="canceled", cancellation=details, card_used=card_used
            )

    def pay(self, payment_id: str) -> Future[Delivery | None] | None:
        """The payer paid on the page: held for a two-phase payment, else succeeded."""
        with self.lock:
            payment = self.payment(payment_id)
            return self.settle(
                payment_id, "succeeded" if payment.capture else "waiting_for_capture"
            )

    def _authorize(self, payment: StoredPayment, status: str) -> Future[Delivery | None] | None:
        now = self.clock()
        if status == "succeeded":
            return self._change(payment, status=status, card_used=True, captured_at=now)
        return self._change(
            payment, status=status, card_used=True, expires_at=now + self.hold_period
        )

    def expire_due(self) -> list[StoredPayment]:
        """Cancel (and notify) every payment whose confirmation time or hold ran out."""
        with self.lock:
            return [payment for payment in self._payments.values() if self._expire_if_due(payment)]

    def _expire_if_due(self, payment: StoredPayment) -> bool:
        now = self.clock()
        if payment.status == "pending" and now >= payment.confirmation_deadline:
            reason = "expired_on_confirmation"
        elif payment.status == "waiting_for_capture" and now >= (
            payment.expires_at or float("inf")
        ):
            reason = "expired_on_capture"
        else:
            return False
        try:
            self._change(
                payment, status="canceled", cancellation={"party": "yoo_money", "reason": reason}
            )
        except RuntimeError:
            return False  # nothing can notify it (the emulator is stopping): it stays as it is
        return True

    # -- refunds --------------------------------------------------------------------------

    def create_refund(self, shop: Shop, data: RefundInput) -> StoredRefund:
        """Refund part or all of what a succeeded payment has left to refund."""
        with self.lock:
            payment = self.payment(data.payment_id, shop)
            if payment.status != "succeeded":
                raise invalid(
                    "payment_id",
                    f"Payment is {payment.status}: only a succeeded payment can be refunded",
                )
            if data.currency != payment.currency:
                raise invalid("amount.currency", f"The payment's currency is {payment.currency}")
            if data.amount > payment.refundable_amount:
                left = money(payment.refundable_amount, payment.currency)["value"]
                raise invalid(
                    "amount.value", f"Refund amount exceeds what is left to refund: {left}"
                )
            now = self.clock()
            refund = StoredRefund(
                id=self._new_id("refund", now),
                payment_id=payment.id,
                shop=shop,
                amount=data.amount,
                currency=data.currency,
                created_at=now,
                description=data.description,
                metadata=data.metadata,
            )
            self._refunds[refund.id] = refund
            payment.refunding += refund.amount
            if not self.pending_refunds:
                try:
                    self._finish_refund(refund, "succeeded")
                except RuntimeError:  # nothing can notify it (the emulator is stopping)
                    del self._refunds[refund.id]
                    payment.refunding -= refund.amount
                    raise
            return refund

    def refund(self, refund_id: str, shop: Shop | None = None) -> StoredRefund:
        with self.lock:
            refund = self._refunds.get(refund_id)
            if refund is None or (shop is not None and refund.shop is not shop):
                raise _not_found("refund")
            return refund

    def refunds(self) -> list[StoredRefund]:
        with self.lock:
            return list(self._refunds.values())

    def settle_refund(self, refund_id: str, status: str) -> Future[Delivery | None] | None:
        """Finish a pending refund as `succeeded` or `canceled`; the notification's future."""
        with self.lock:
            try:
                refund = self.refund(refund_id)
            except ApiError as error:
                raise KeyError(refund_id) from error
            if refund.status != "pending" or status not in ("succeeded", "canceled"):
                raise ValueError(f"refund {refund_id} is {refund.status}: it cannot be {status}")
            return self._finish_refund(refund, status)

    def _finish_refund(self, refund: StoredRefund, status: str) -> Future[Delivery | None] | None:
        payment = self._payments[refund.payment_id]
        first = None
        if status == "succeeded":
            done = dataclasses.replace(refund, status=status)
            first = self._notify(refund.shop, "refund.succeeded", done.as_json(), payment)
            payment.refunding -= refund.amount
            payment.refunded += refund.amount
        else:
            payment.refunding -= refund.amount
            done = dataclasses.replace(
                refund,
                status=status,
                cancellation={"party": "yoo_money", "reason": "general_decline"},
            )
        vars(refund).update(vars(done))
        return first

    # -- notifications --------------------------------------------------------------------

    def _change(self, payment: StoredPayment, **changes: Any) -> Future[Delivery | None] | None:
        """Apply `changes` to `payment` and start notifying it, together or not at all."""
        changed = dataclasses.replace(payment, **changes)
        first = self._notify(payment.shop, f"payment.{changed.status}", changed.as_json(), changed)
        vars(payment).update(vars(changed))
        return first

    def _notify(
        self, shop: Shop, event: str, obj: dict[str, Any], payment: StoredPayment
    ) -> Future[Delivery | None] | None:
        url = shop.webhook_url or self.webhook_url
        if not url:
            return None
        body = {"type": "notification", "event": event, "object": obj}
        return self.notifier.notify(url, body, payment_id=payment.id, asked=payment.faults)

    def _new_id(self, kind: str, now: float) -> str:
        while True:
            candidate = object_id(kind, now)
            if candidate not in self._payments and candidate not in self._refunds:
                return candidate
