"""What the shop asks of YooKassa, checked before anything is sent, written as YooKassa's JSON.

Every check names the generic field the host set (`amount`, `success_url`, `options.receipt`),
not YooKassa's parameter, so that a host's form can show it next to its own input.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import marshmallow
from marshmallow import fields, validate

from paymux import PaymentRequest, RefundRequest, ValidationError
from paymux.providers.base import header_value

CENT = Decimal("0.01")
MAX_AMOUNT = Decimal(10) ** 12
"""YooKassa takes at most 12 digits before the point."""
IDENTIFIER = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")
"""A YooKassa object id as it may stand in a URL path (theirs are UUID-like)."""
LOCALES = ("ru_RU", "en_US")


def http_url(value: str) -> None:
    """A marshmallow validator: an http(s) URL with a host, at most 2048 characters."""
    try:
        parts = urlsplit(value)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # an unclosed "[", a bad port
        valid = False
    if not valid or len(value) > 2048:
        raise marshmallow.ValidationError("Must be an http:// or https:// URL (2048 at most).")


class _Amount(fields.Field[Decimal]):
    """Money as YooKassa takes it: above 0, at most 2 decimal places; a float is refused."""

    def _deserialize(
        self, value: object, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
            raise marshmallow.ValidationError("Must be a Decimal (or an int), never a float.")
        amount = Decimal(value)
        if not amount.is_finite() or amount <= 0:
            raise marshmallow.ValidationError("Must be a finite amount above 0.")
        if amount >= MAX_AMOUNT or amount != amount.quantize(CENT):
            raise marshmallow.ValidationError("Must have at most 12 digits and 2 decimal places.")
        return amount.quantize(CENT)


def _metadata(reserved: bool) -> fields.Dict:
    """YooKassa's metadata: at most 16 keys (`order_id` is paymux's own in a payment's)."""
    most = 15 if reserved else 16

    def no_order_id(value: Mapping[str, str]) -> None:
        if reserved and "order_id" in value:
            raise marshmallow.ValidationError("order_id is set from the request's order_id.")

    return fields.Dict(
        keys=fields.String(validate=validate.Length(1, 32)),
        values=fields.String(validate=validate.Length(max=512)),
        validate=[validate.Length(max=most), no_order_id],
    )


_CURRENCY = fields.String(required=True, validate=validate.Regexp(r"[A-Z]{3}\Z"))
_KEY = fields.String(required=True, validate=[validate.Length(1, 64), header_value])
_ID = fields.String(required=True, validate=validate.Regexp(IDENTIFIER))


class _PaymentOptions(marshmallow.Schema):
    metadata = _metadata(reserved=True)
    receipt = fields.Dict()
    payment_method_data = fields.Dict()
    save_payment_method = fields.Boolean()
    merchant_customer_id = fields.String(validate=validate.Length(1, 200))
    locale = fields.String(validate=validate.OneOf(LOCALES))


class _PaymentInput(marshmallow.Schema):
    order_id = fields.String(required=True, validate=validate.Length(1, 512))
    amount = _Amount(required=True)
    currency = _CURRENCY
    description = fields.String(validate=validate.Length(max=128))
    success_url = fields.String(
        required=True,
        validate=http_url,
        error_messages={
            "required": "YooKassa returns the payer to one URL: give success_url, or set "
            "return_url in the settings."
        },
    )
    capture = fields.Boolean(required=True, truthy={True}, falsy={False})
    idempotency_key = _KEY
    customer_ip = fields.IP(data_key="customer.ip")
    options = fields.Nested(_PaymentOptions)


class _RefundOptions(marshmallow.Schema):
    metadata = _metadata(reserved=False)
    receipt = fields.Dict()


class _RefundInput(marshmallow.Schema):
    payment_id = _ID
    amount = _Amount(
        required=True,
        error_messages={
            "required": "YooKassa refunds a stated sum: give amount (all that is left is the "
            "payment's amount less its refunded_amount)."
        },
    )
    currency = _CURRENCY
    description = fields.String(validate=validate.Length(max=250))
    idempotency_key = _KEY
    options = fields.Nested(_RefundOptions)


class _CaptureInput(marshmallow.Schema):
    payment_id = _ID
    amount = _Amount()
    currency = _CURRENCY
    idempotency_key = _KEY


class _CancelInput(marshmallow.Schema):
    payment_id = _ID
    idempotency_key = _KEY


_PAYMENT = _PaymentInput()
_REFUND = _RefundInput()
_CAPTURE = _CaptureInput()
_CANCEL = _CancelInput()
"""Made once: a schema is stateless when loading, and making one costs more than a load."""


def payment_body(request: PaymentRequest, *, currency: str, return_url: str | None) -> bytes:
    """`POST v3/payments`: a redirect to YooKassa's page, the order id kept in `metadata`."""
    values = _checked(
        _PAYMENT,
        {
            "order_id": request.order_id,
            "amount": request.amount,
            "currency": request.currency or currency,
            "description": request.description,
            "success_url": request.success_url or return_url,
            "capture": request.capture,
            "idempotency_key": request.idempotency_key,
            "customer.ip": request.customer.ip,
            "options": dict(request.options) or None,  # None: no nested load for nothing
        },
    )
    options = values.get("options", {})
    confirmation = {"type": "redirect", "return_url": values["success_url"]}
    if "locale" in options:
        confirmation["locale"] = options.pop("locale")
    body: dict[str, Any] = {
        "amount": money(values["amount"], values["currency"]),
        "capture": values["capture"],
        "confirmation": confirmation,
        "metadata": {**options.pop("metadata", {}), "order_id": values["order_id"]},
    }
    if "description" in values:
        body["description"] = values["description"]
    if "customer_ip" in values:
        body["client_ip"] = str(values["customer_ip"])
    return encoded({**body, **options})


def refund_body(request: RefundRequest, *, currency: str) -> bytes:
    """`POST v3/refunds`: `amount` of payment `payment_id` back to the payer."""
    values = _checked(
        _REFUND,
        {
            "payment_id": request.payment_id,
            "amount": request.amount,
            "currency": request.currency or currency,
            "description": request.description,
            "idempotency_key": request.idempotency_key,
            "options": dict(request.options) or None,  # None: no nested load for nothing
        },
    )
    body: dict[str, Any] = {
        "payment_id": values["payment_id"],
        "amount": money(values["amount"], values["currency"]),
    }
    if "description" in values:
        body["description"] = values["description"]
    return encoded({**body, **values.get("options", {})})


def capture_body(
    payment_id: str, amount: Decimal | None, *, currency: str, idempotency_key: str
) -> bytes:
    """`POST v3/payments/{id}/capture`: all that is held (`{}`) or `amount` of it."""
    values = _checked(
        _CAPTURE,
        {
            "payment_id": payment_id,
            "amount": amount,
            "currency": currency,
            "idempotency_key": idempotency_key,
        },
    )
    if "amount" not in values:
        return b"{}"
    return encoded({"amount": money(values["amount"], values["currency"])})


def cancel_body(payment_id: str, *, idempotency_key: str) -> bytes:
    """`POST v3/payments/{id}/cancel`: an empty JSON object."""
    _checked(_CANCEL, {"payment_id": payment_id, "idempotency_key": idempotency_key})
    return b"{}"


def checked_id(value: str, name: str) -> str:
    """`value` if it can stand in a URL path as a YooKassa id; `ValidationError` otherwise."""
    if not isinstance(value, str) or not IDENTIFIER.match(value):
        raise ValidationError({name: ["Must be a YooKassa id (letters, digits, - and _)."]})
    return value


def money(amount: Decimal, currency: str) -> dict[str, str]:
    """YooKassa's amount object: the value with exactly 2 decimal places, as a string."""
    return {"value": f"{amount:.2f}", "currency": currency}


def encoded(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _checked(schema: marshmallow.Schema, values: Mapping[str, Any]) -> dict[str, Any]:
    """`values` (those not None) loaded through `schema`; `ValidationError` naming each field."""
    try:
        loaded: dict[str, Any] = schema.load(
            {name: value for name, value in values.items() if value is not None}
        )
    except marshmallow.ValidationError as error:
        raise ValidationError(_flat(error.messages)) from None
    return loaded


def _flat(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """marshmallow's nested messages as `{"options.receipt": [...]}`."""
    if not isinstance(messages, Mapping):
        items = messages if isinstance(messages, list) else [messages]
        return {prefix or "_schema": [str(item) for item in items]}
    flat: dict[str, list[str]] = {}
    for name, inner in messages.items():
        flat.update(_flat(inner, f"{prefix}.{name}" if prefix else str(name)))
    return flat
