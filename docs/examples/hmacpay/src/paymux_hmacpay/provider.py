"""The HmacPay provider: one merchant account, HMAC-signed JSON requests and notifications."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import marshmallow
from marshmallow import fields, validate

from paymux import (
    AmountOutOfRange,
    DuplicateOrder,
    InvalidResponse,
    Notification,
    NotificationKind,
    OutcomeUnknown,
    Payment,
    PaymentNotFound,
    PaymentRequest,
    PaymentStatus,
    ProviderError,
    SignatureError,
    TransportError,
    ValidationError,
    default_registry,
)
from paymux.events import emit
from paymux.providers.base import (
    NotificationInput,
    Provider,
    Secret,
    SecretString,
    notification_params,
    validate_settings,
)
from paymux.transport import Response, Transport
from paymux_hmacpay import protocol

DEFAULT_BASE_URL = "https://api.hmacpay.example"

STATUSES = {
    "new": PaymentStatus.PENDING,
    "succeeded": PaymentStatus.PAID,
    "declined": PaymentStatus.FAILED,
    "expired": PaymentStatus.CANCELED,
}
"""HmacPay's status words and what they mean in paymux's terms."""

ERRORS: dict[str, type[ProviderError]] = {
    "duplicate_order": DuplicateOrder,
    "amount_out_of_range": AmountOutOfRange,
    "not_found": PaymentNotFound,
}

_AMOUNT = re.compile(r"[0-9]{1,9}(\.[0-9]{1,2})?")
_CURRENCY = re.compile(r"[A-Z]{3}")
_MERCHANT = re.compile(r"[!-~]{1,64}\Z")
"""A merchant id travels in a header: printable ASCII, no spaces."""


def is_http_url(text: str) -> bool:
    """Whether `text` is an http(s) URL with a host; a malformed one is simply not."""
    try:
        parts = urlsplit(text)
        return parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # e.g. an unclosed `[` of an IPv6 host
        return False


def _http_url(text: str) -> None:
    if not is_http_url(text):
        raise marshmallow.ValidationError("Must be an http:// or https:// URL.")


def _long_secret(secret: Secret[str]) -> None:
    if len(secret.reveal()) < 16:
        raise marshmallow.ValidationError("Must be at least 16 characters.")


class SettingsSchema(marshmallow.Schema):
    """The configuration of one HmacPay instance."""

    merchant = fields.String(required=True, validate=validate.Regexp(_MERCHANT))
    secret = SecretString(required=True, validate=_long_secret)
    base_url = fields.String(load_default=DEFAULT_BASE_URL, validate=_http_url)
    currency = fields.String(load_default="EUR", validate=validate.Regexp(_CURRENCY))
    connect_timeout = fields.Float(load_default=5.0, validate=validate.Range(min=0.001))
    read_timeout = fields.Float(load_default=30.0, validate=validate.Range(min=0.001))


SETTINGS = SettingsSchema()


class HmacPayProvider(Provider):
    """One HmacPay merchant account."""

    name = "hmacpay"

    def __init__(
        self,
        *,
        merchant: str,
        secret: Secret[str],
        base_url: str = DEFAULT_BASE_URL,
        currency: str = "EUR",
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        instance: str = "hmacpay",
    ) -> None:
        self.merchant = merchant
        self.instance = instance
        self.base_url = base_url.rstrip("/")
        self.currency = currency
        self._secret = secret
        self._registry = default_registry()
        self._transport = Transport(
            provider=self.name,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            user_agent="paymux-hmacpay/0.1",
            on_exchange=self._registry.publish_exchange,
        )

    @classmethod
    def from_settings(
        cls, settings: Mapping[str, Any], *, instance: str, base_dir: Path | None = None
    ) -> HmacPayProvider:
        values = validate_settings(SETTINGS, settings, instance=instance)
        return cls(**values, instance=instance)

    def __repr__(self) -> str:
        return f"HmacPayProvider(instance={self.instance!r}, merchant={self.merchant!r})"

    # -- the three calls ------------------------------------------------------------------

    def create(self, request: PaymentRequest) -> Payment:
        body = self._create_body(request)
        try:
            response = self._post("/payments", body, "create")
        except TransportError as error:
            if not error.request_sent:
                raise
            raise OutcomeUnknown(
                f"create: {error.message}; check order_id {request.order_id!r}",
                order_id=request.order_id,
                request_id=error.request_id,
            ) from error
        if response.status >= 500:
            raise OutcomeUnknown(
                f"create: HmacPay failed (HTTP {response.status}); check order_id "
                f"{request.order_id!r}",
                order_id=request.order_id,
                http_status=response.status,
                request_id=response.request_id,
            )
        return self._payment(response, "create", expected=201)

    def status(self, *, payment_id: str | None = None, order_id: str | None = None) -> Payment:
        if (payment_id is None) == (order_id is None):
            raise ValidationError({"payment_id": ["Give payment_id or order_id, not both."]})
        query = {"id": payment_id} if payment_id is not None else {"order_id": order_id}
        return self._payment(self._post("/payments/lookup", query, "status"), "status")

    def parse_notification(self, data: NotificationInput) -> Notification:
        params = notification_params(data)
        signature = params.get(protocol.SIGNATURE_FIELD, "")
        message = protocol.notification_message(params)
        if not signature or not protocol.verify(self._secret.reveal(), message, signature):
            raise SignatureError("HmacPay notification signature does not verify")
        missing = [name for name in protocol.NOTIFICATION_FIELDS if name not in params]
        if missing:
            raise SignatureError(f"notification is missing {', '.join(missing)}")
        if params["merchant"] != self.merchant:
            raise SignatureError("notification is for another HmacPay merchant")
        signed = {k: v for k, v in params.items() if k != protocol.SIGNATURE_FIELD}
        payment = self._to_payment(signed, None)
        emit(
            "info",
            "paymux.notification",
            provider=self.name,
            instance=self.instance,
            payment_id=payment.id,
            status=payment.status.value,
        )
        self._registry.publish_payment(payment, "notification")
        return Notification(
            provider=self.name,
            instance=self.instance,
            account=self.merchant,
            kind=NotificationKind.PAYMENT,
            payment=payment,
            fields=signed,
        )

    def close(self) -> None:
        self._transport.close()

    # -- the wire -------------------------------------------------------------------------

    def _create_body(self, request: PaymentRequest) -> dict[str, Any]:
        problems: dict[str, list[str]] = {}
        amount = request.amount
        if not isinstance(amount, Decimal) or not amount.is_finite():
            problems["amount"] = ["Must be a finite Decimal, never a float."]
        elif amount <= 0 or not _AMOUNT.fullmatch(format(amount, "f")):
            problems["amount"] = ["Must be above 0, with at most 2 decimal places."]
        if not 1 <= len(request.order_id) <= 64:
            problems["order_id"] = ["Must be 1 to 64 characters."]
        currency = request.currency or self.currency
        if not _CURRENCY.fullmatch(currency):
            problems["currency"] = ["Must be an ISO 4217 code such as 'EUR'."]
        if request.notification_url and not is_http_url(request.notification_url):
            problems["notification_url"] = ["Must be an http:// or https:// URL."]
        if request.options:
            problems["options"] = ["HmacPay takes no options."]
        if problems:
            raise ValidationError(problems)
        body: dict[str, Any] = {
            "order_id": request.order_id,
            "amount": format(amount, "f"),
            "currency": currency,
            "description": request.description,
            "notify_url": request.notification_url,
        }
        return {key: value for key, value in body.items() if value is not None}

    def _post(self, path: str, data: Mapping[str, Any], operation: str) -> Response:
        body = json.dumps(data, separators=(",", ":")).encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            protocol.MERCHANT_HEADER: self.merchant,
            protocol.SIGNATURE_HEADER: protocol.sign(self._secret.reveal(), body),
        }
        response = self._transport.post(self.base_url + path, body, headers, operation=operation)
        emit(
            "debug",
            "paymux.hmacpay.exchange",
            operation=operation,
            instance=self.instance,
            http_status=response.status,
            request=dict(data),
        )
        return response

    def _payment(self, response: Response, source: str, expected: int = 200) -> Payment:
        try:
            body = json.loads(response.body)
        except ValueError:
            body = None
        if response.status != expected:
            error = body.get("error") if isinstance(body, dict) else None
            code = error.get("code") if isinstance(error, dict) else None
            message = error.get("message") if isinstance(error, dict) else None
            kind = ERRORS.get(str(code), ProviderError)
            text = f"{source}: {message or 'HmacPay refused'} ({code or 'no code'})"
            details = {
                "http_status": response.status,
                "body": body,
                "request_id": response.request_id,
            }
            if kind is AmountOutOfRange:
                raise AmountOutOfRange(text, bound="unknown", limit=None, **details)
            raise kind(text, **details)
        if not isinstance(body, dict):
            raise InvalidResponse(f"{source}: the answer is not a JSON object")
        payment = self._to_payment(body, response)
        self._registry.publish_payment(payment, source)
        return payment

    def _to_payment(self, fields: Mapping[str, Any], response: Response | None) -> Payment:
        try:
            status = STATUSES[_text(fields, "status")]
            amount = _text(fields, "amount")  # a JSON number is refused: money is never a float
            if not _AMOUNT.fullmatch(amount):
                raise ValueError(amount)
            pay_url = fields.get("pay_url")
            if pay_url is not None and not isinstance(pay_url, str):
                raise ValueError("pay_url is not text")
            return Payment(
                provider=self.name,
                id=_text(fields, "id"),
                order_id=_text(fields, "order_id"),
                status=status,
                amount=Decimal(amount),
                paid_amount=Decimal(amount) if status is PaymentStatus.PAID else None,
                currency=_text(fields, "currency"),
                redirect_url=pay_url,
                raw=dict(fields),
            )
        except (KeyError, ValueError) as error:
            raise InvalidResponse(
                f"unexpected HmacPay payment: {type(error).__name__}: {error}",
                http_status=response.status if response else None,
                request_id=response.request_id if response else None,
            ) from None


def _text(fields: Mapping[str, Any], name: str) -> str:
    """A field that must be text: HmacPay writes every one of them as a JSON string."""
    value = fields[name]
    if not isinstance(value, str):
        raise ValueError(f"{name} is not text")
    return value
