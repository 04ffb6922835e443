"""YooKassa's payment and refund objects, read into paymux's models.

The same objects come in API answers and inside notifications; `WireError` says one is not the
documented shape, and each caller turns it into its own error (`InvalidResponse` for an answer,
`SignatureError` for a notification).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from paymux import Payment, PaymentStatus, Refund, RefundStatus

PROVIDER = "yookassa"

PAYMENT_STATUSES = {
    "pending": PaymentStatus.PENDING,
    "waiting_for_capture": PaymentStatus.AUTHORIZED,
    "succeeded": PaymentStatus.PAID,
    "canceled": PaymentStatus.CANCELED,
}
"""What each payment status means; a `canceled` one may be FAILED instead (`status_of`)."""

CANCELED_REASONS = frozenset(
    {"canceled_by_merchant", "expired_on_confirmation", "expired_on_capture", "deal_expired"}
)
"""`cancellation_details.reason` values that mean nobody tried and failed to pay: the shop
canceled, or the payer or the shop let the time run out. Every other reason (a decline by the
bank, 3-D Secure, anti-fraud, insufficient funds, ...) means the payment failed."""

REFUND_STATUSES = {
    "pending": RefundStatus.PENDING,
    "succeeded": RefundStatus.SUCCEEDED,
    "canceled": RefundStatus.CANCELED,
}


class WireError(ValueError):
    """An object that is not the documented shape; the message names what is wrong."""


class _Reading:
    """One object's fields read one by one, every problem collected (named like the object's
    keys, `amount.value`), so that the error names all of them at once."""

    def __init__(self, data: Any, kind: str) -> None:
        if not isinstance(data, Mapping):
            raise WireError(f"the {kind} is not a JSON object")
        self.data: Mapping[str, Any] = data
        self.kind = kind
        self.problems: dict[str, list[str]] = {}

    def text(self, key: str, *, required: bool = False, longest: int | None = None) -> Any:
        value = self.data.get(key)
        if value is None:
            if required:
                self.problems[key] = ["Missing data for required field."]
            return None
        if not isinstance(value, str):
            self.problems[key] = ["Not a valid string."]
        elif longest is not None and not 1 <= len(value) <= longest:
            self.problems[key] = [f"Length must be between 1 and {longest}."]
        return value

    def word(self, key: str, words: Mapping[str, Any]) -> Any:
        value = self.text(key, required=True)
        if isinstance(value, str) and value not in words:
            self.problems[key] = [f"Must be one of: {', '.join(words)}."]
        return value

    def money(self, key: str, *, required: bool = False) -> dict[str, Any] | None:
        """YooKassa's amount object: `value` a decimal not below 0, `currency` ISO 4217."""
        value = self.data.get(key)
        if value is None:
            if required:
                self.problems[key] = ["Missing data for required field."]
            return None
        if not isinstance(value, Mapping):
            self.problems[key] = ["Invalid input type."]
            return None
        amount = _decimal(value.get("value"))
        currency = value.get("currency")
        if amount is None or amount < 0:
            self.problems[f"{key}.value"] = ["Not a valid amount (a decimal, 0 or more)."]
        if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
            self.problems[f"{key}.currency"] = ["Not a currency code."]
        return {"value": amount, "currency": currency}

    def inner(self, key: str, names: tuple[str, ...]) -> dict[str, Any]:
        """A nested object's text fields `names` (an absent object reads as empty)."""
        value = self.data.get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.problems[key] = ["Invalid input type."]
            return {}
        found = {name: value[name] for name in names if value.get(name) is not None}
        if any(not isinstance(each, str) for each in found.values()):
            self.problems[key] = ["Not a valid string."]
        return found

    def metadata(self) -> Mapping[str, Any]:
        value = self.data.get("metadata")
        if value is None:
            return {}
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            self.problems["metadata"] = ["Not a valid mapping type."]
            return {}
        return value

    def done(self) -> None:
        if self.problems:
            raise WireError(f"the {self.kind} object is not as documented: {self.problems}")


_CURRENCY = re.compile(r"[A-Z]{3}")


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def status_of(status: str, cancellation: Mapping[str, str] | None) -> PaymentStatus:
    """A payment's status in paymux's words: `canceled` is FAILED unless `CANCELED_REASONS`
    (or no reason at all) says nobody failed to pay."""
    meaning = PAYMENT_STATUSES[status]
    reason = (cancellation or {}).get("reason")
    if meaning is PaymentStatus.CANCELED and reason is not None and reason not in CANCELED_REASONS:
        return PaymentStatus.FAILED
    return meaning


def payment_of(data: Any) -> Payment:
    """A payment object (`GET v3/payments/{id}`, a create, a capture, a notification)."""
    reading = _Reading(data, "payment")
    payment_id = reading.text("id", required=True, longest=64)
    word = reading.word("status", PAYMENT_STATUSES)
    money = reading.money("amount", required=True)
    income = reading.money("income_amount")
    refunded = reading.money("refunded_amount")
    confirmation = reading.inner("confirmation", ("confirmation_url",))
    cancellation = reading.inner("cancellation_details", ("party", "reason"))
    expires_at = reading.text("expires_at")
    order_id = reading.metadata().get("order_id")
    reading.done()
    assert money is not None  # required: done() raised otherwise
    status = status_of(word, cancellation)
    amount: Decimal = money["value"]
    held = status is PaymentStatus.AUTHORIZED
    return Payment(
        provider=PROVIDER,
        id=payment_id,
        order_id=order_id if isinstance(order_id, str) else None,
        status=status,
        amount=amount,
        paid_amount=amount if status is PaymentStatus.PAID else None,
        fee=amount - income["value"] if income is not None else None,
        currency=money["currency"],
        redirect_url=confirmation.get("confirmation_url"),
        hold_amount=amount if held else None,
        hold_until=expires_at if held else None,
        refunded_amount=refunded["value"] if refunded is not None else None,
        raw=data,
    )


def refund_of(data: Any) -> Refund:
    """A refund object (`GET v3/refunds/{id}`, a refund made, a notification)."""
    reading = _Reading(data, "refund")
    refund_id = reading.text("id", required=True, longest=64)
    payment_id = reading.text("payment_id", required=True, longest=64)
    word = reading.word("status", REFUND_STATUSES)
    money = reading.money("amount", required=True)
    reading.done()
    assert money is not None  # required: done() raised otherwise
    return Refund(
        provider=PROVIDER,
        id=refund_id,
        payment_id=payment_id,
        status=REFUND_STATUSES[word],
        amount=money["value"],
        currency=money["currency"],
        raw=data,
    )


def recipient_of(data: Mapping[str, Any]) -> str | None:
    """The shop a payment object belongs to (`recipient.account_id`), when it says."""
    recipient = data.get("recipient")
    account = recipient.get("account_id") if isinstance(recipient, Mapping) else None
    return str(account) if account is not None else None
