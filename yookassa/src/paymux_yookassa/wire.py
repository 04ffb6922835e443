"""YooKassa's payment and refund objects, read into paymux's models.

The same objects come in API answers and inside notifications; `WireError` says one is not the
documented shape, and each caller turns it into its own error (`InvalidResponse` for an answer,
`SignatureError` for a notification).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import marshmallow
from marshmallow import fields, validate

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


class _Money(marshmallow.Schema):
    class Meta:
        unknown = marshmallow.EXCLUDE

    value = fields.Decimal(required=True, validate=validate.Range(min=0))
    currency = fields.String(required=True, validate=validate.Regexp(r"[A-Z]{3}\Z"))


class _Confirmation(marshmallow.Schema):
    class Meta:
        unknown = marshmallow.EXCLUDE

    confirmation_url = fields.String()


class _Cancellation(marshmallow.Schema):
    class Meta:
        unknown = marshmallow.EXCLUDE

    party = fields.String()
    reason = fields.String()


class _Recipient(marshmallow.Schema):
    class Meta:
        unknown = marshmallow.EXCLUDE

    account_id = fields.String()


class _Payment(marshmallow.Schema):
    class Meta:
        unknown = marshmallow.EXCLUDE

    id = fields.String(required=True, validate=validate.Length(1, 64))
    status = fields.String(required=True, validate=validate.OneOf(PAYMENT_STATUSES))
    amount = fields.Nested(_Money, required=True)
    income_amount = fields.Nested(_Money)
    refunded_amount = fields.Nested(_Money)
    confirmation = fields.Nested(_Confirmation)
    expires_at = fields.String()
    metadata = fields.Dict(keys=fields.String(), allow_none=True)
    cancellation_details = fields.Nested(_Cancellation)
    recipient = fields.Nested(_Recipient)


class _Refund(marshmallow.Schema):
    class Meta:
        unknown = marshmallow.EXCLUDE

    id = fields.String(required=True, validate=validate.Length(1, 64))
    payment_id = fields.String(required=True, validate=validate.Length(1, 64))
    status = fields.String(required=True, validate=validate.OneOf(REFUND_STATUSES))
    amount = fields.Nested(_Money, required=True)


_PAYMENT = _Payment()
_REFUND = _Refund()


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
    values = _load(_PAYMENT, data, "payment")
    status = status_of(values["status"], values.get("cancellation_details"))
    amount: Decimal = values["amount"]["value"]
    income = values.get("income_amount")
    metadata = values.get("metadata") or {}
    order_id = metadata.get("order_id")
    held = status is PaymentStatus.AUTHORIZED
    return Payment(
        provider=PROVIDER,
        id=values["id"],
        order_id=order_id if isinstance(order_id, str) else None,
        status=status,
        amount=amount,
        paid_amount=amount if status is PaymentStatus.PAID else None,
        fee=amount - income["value"] if income is not None else None,
        currency=values["amount"]["currency"],
        redirect_url=values.get("confirmation", {}).get("confirmation_url"),
        hold_amount=amount if held else None,
        hold_until=values.get("expires_at") if held else None,
        refunded_amount=values.get("refunded_amount", {}).get("value"),
        raw=data,
    )


def refund_of(data: Any) -> Refund:
    """A refund object (`GET v3/refunds/{id}`, a refund made, a notification)."""
    values = _load(_REFUND, data, "refund")
    return Refund(
        provider=PROVIDER,
        id=values["id"],
        payment_id=values["payment_id"],
        status=REFUND_STATUSES[values["status"]],
        amount=values["amount"]["value"],
        currency=values["amount"]["currency"],
        raw=data,
    )


def recipient_of(data: Mapping[str, Any]) -> str | None:
    """The shop a payment object belongs to (`recipient.account_id`), when it says."""
    recipient = data.get("recipient")
    account = recipient.get("account_id") if isinstance(recipient, Mapping) else None
    return str(account) if account is not None else None


def _load(schema: marshmallow.Schema, data: Any, kind: str) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise WireError(f"the {kind} is not a JSON object")
    try:
        values: dict[str, Any] = schema.load(data)
    except marshmallow.ValidationError as error:
        raise WireError(f"the {kind} object is not as documented: {error.messages}") from None
    return values
