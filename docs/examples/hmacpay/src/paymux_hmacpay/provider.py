"""The HmacPay provider: HMAC-signed JSON requests, idempotency keys, signed GET notifications.

It only describes HmacPay: how each request is built, how each answer and each notification is
read. paymux sends, times out, retries and makes creates and refunds exactly-once, by the
idempotency key this provider puts in each of them.
"""

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
    AuthenticationError,
    InvalidResponse,
    Notification,
    NotificationKind,
    Payment,
    PaymentNotFound,
    PaymentRequest,
    PaymentStatus,
    PaymuxError,
    ProviderError,
    ProviderServerError,
    Refund,
    RefundNotFound,
    RefundRequest,
    RefundStatus,
    SignatureError,
    ValidationError,
)
from paymux.providers.base import (
    Answer,
    Authentication,
    Call,
    Capabilities,
    Connection,
    ConnectionSettings,
    IdempotencyKey,
    Incoming,
    Lookup,
    Observers,
    Operation,
    Provider,
    Request,
    Secret,
    SecretString,
    connection_from,
    notification_params,
    validate_settings,
)
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
    "bad_signature": AuthenticationError,
    "not_found": PaymentNotFound,
}

_AMOUNT = re.compile(r"[0-9]{1,9}(\.[0-9]{1,2})?")
_CURRENCY = re.compile(r"[A-Z]{3}")
_MERCHANT = re.compile(r"[!-~]{1,64}\Z")
"""A merchant id travels in a header: printable ASCII, no spaces."""


def _long_secret(secret: Secret[str]) -> None:
    if len(secret.reveal()) < 16:
        raise marshmallow.ValidationError("Must be at least 16 characters.")


class SettingsSchema(ConnectionSettings):
    """The configuration of one HmacPay instance (and the connection settings of every one)."""

    merchant = fields.String(required=True, validate=validate.Regexp(_MERCHANT))
    secret = SecretString(required=True, validate=_long_secret)
    base_url = fields.String(load_default=DEFAULT_BASE_URL)
    currency = fields.String(load_default="EUR", validate=validate.Regexp(_CURRENCY))


SETTINGS = SettingsSchema()


class HmacPayProvider(Provider):
    """One HmacPay merchant account."""

    name = "hmacpay"
    capabilities = Capabilities(
        operations={Operation.REFUND, Operation.REFUND_STATUS},
        status_by={Lookup.PAYMENT_ID},
        notifications={Authentication.SIGNATURE},
    )

    def __init__(
        self,
        *,
        merchant: str,
        secret: Secret[str],
        currency: str,
        instance: str,
        connection: Connection,
        observers: Observers | None = None,
    ) -> None:
        super().__init__(instance=instance, connection=connection, observers=observers)
        self.account = merchant
        self.currency = currency
        self._secret = secret

    @classmethod
    def from_settings(
        cls,
        settings: Mapping[str, Any],
        *,
        instance: str,
        base_dir: Path | None = None,
        observers: Observers | None = None,
    ) -> HmacPayProvider:
        values = validate_settings(SETTINGS, settings, instance=instance)
        return cls(
            merchant=values["merchant"],
            secret=values["secret"],
            currency=values["currency"],
            instance=instance,
            connection=connection_from(values, instance=instance),
            observers=observers,
        )

    # -- requests -------------------------------------------------------------------------

    def describe_create(self, request: PaymentRequest) -> Call[Payment]:
        problems: dict[str, list[str]] = {}
        amount = _amount_problem(request.amount)
        if amount:
            problems["amount"] = [amount]
        if not 1 <= len(request.order_id) <= 64:
            problems["order_id"] = ["Must be 1 to 64 characters."]
        currency = request.currency or self.currency
        if not _CURRENCY.fullmatch(currency):
            problems["currency"] = ["Must be an ISO 4217 code such as 'EUR'."]
        if request.notification_url and not _is_http_url(request.notification_url):
            problems["notification_url"] = ["Must be an http:// or https:// URL."]
        if request.options:
            problems["options"] = ["HmacPay takes no options."]
        if problems:
            raise ValidationError(problems)
        body = {
            "order_id": request.order_id,
            "amount": format(request.amount, "f"),
            "currency": currency,
            "description": request.description,
            "notify_url": request.notification_url,
        }
        key = _required_key(request.idempotency_key)
        return Call(
            self._request("create", "payments", body, key),
            read=self._payment,
            exactly_once=IdempotencyKey(key, protocol.KEY_LIFETIME, request.order_id),
        )

    def describe_status(
        self, *, payment_id: str | None = None, order_id: str | None = None
    ) -> Call[Payment]:
        request = self._request("status", "payments/lookup", {"id": payment_id})
        return Call(request, read=self._payment)

    def describe_refund(self, request: RefundRequest) -> Call[Refund]:
        problem = None if request.amount is None else _amount_problem(request.amount)
        if problem:
            raise ValidationError({"amount": [problem]})
        amount = None if request.amount is None else format(request.amount, "f")
        body = {"payment_id": request.payment_id, "amount": amount}
        key = _required_key(request.idempotency_key)
        return Call(
            self._request("refund", "refunds", body, key),
            read=self._refund,
            exactly_once=IdempotencyKey(key, protocol.KEY_LIFETIME),
        )

    def describe_refund_status(self, refund_id: str) -> Call[Refund]:
        request = self._request("refund_status", "refunds/lookup", {"id": refund_id})
        return Call(request, read=self._refund)

    def authenticate(self, request: Request) -> Mapping[str, str]:
        return {protocol.SIGNATURE_HEADER: protocol.sign(self._secret.reveal(), request.body)}

    def _request(
        self, operation: str, path: str, body: dict[str, Any], key: str | None = None
    ) -> Request:
        """A signed POST (signed as it is sent, by `authenticate`); `key`: its idempotency key."""
        headers = {"Content-Type": "application/json", protocol.MERCHANT_HEADER: self.account}
        if key is not None:
            headers[protocol.IDEMPOTENCY_HEADER] = key
        data = {name: value for name, value in body.items() if value is not None}
        payload = json.dumps(data, separators=(",", ":")).encode("utf-8")
        return Request(operation, "POST", path, payload, headers=headers)

    # -- answers --------------------------------------------------------------------------

    def read_error(self, request: Request, answer: Answer) -> PaymuxError:
        try:
            error = answer.json_object().get("error")
        except InvalidResponse:
            error = None
        code = error.get("code") if isinstance(error, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        text = f"{request.operation}: {message or 'HmacPay refused'} ({code or 'no code'})"
        exchange: dict[str, Any] = {
            "http_status": answer.status,
            "body": error,
            "request_id": answer.request_id,
        }
        if code == "amount_out_of_range":
            return AmountOutOfRange(text, bound="unknown", limit=None, **exchange)
        if code == "not_found" and request.operation == "refund_status":
            return RefundNotFound(text, **exchange)
        default = ProviderServerError if answer.status >= 500 else ProviderError
        return ERRORS.get(str(code), default)(text, **exchange)

    def _payment(self, answer: Answer) -> Payment:
        return self._to_payment(answer.json_object(), answer)

    def _refund(self, answer: Answer) -> Refund:
        data = answer.json_object()
        try:
            return Refund(
                provider=self.name,
                id=_text(data, "id"),
                payment_id=_text(data, "payment_id"),
                status=RefundStatus(_text(data, "status")),
                amount=_money(data, "amount"),
                currency=_text(data, "currency"),
                raw=data,
            )
        except (KeyError, ValueError) as error:
            raise _unexpected("refund", error, answer) from None

    def _to_payment(self, data: Mapping[str, Any], answer: Answer | None) -> Payment:
        try:
            status = STATUSES[_text(data, "status")]
            amount = _money(data, "amount")
            pay_url = data.get("pay_url")
            if pay_url is not None and not isinstance(pay_url, str):
                raise ValueError("pay_url is not text")
            return Payment(
                provider=self.name,
                id=_text(data, "id"),
                order_id=_text(data, "order_id"),
                status=status,
                amount=amount,
                paid_amount=amount if status is PaymentStatus.PAID else None,
                refunded_amount=_money(data, "refunded") if "refunded" in data else None,
                currency=_text(data, "currency"),
                redirect_url=pay_url,
                raw=dict(data),
            )
        except (KeyError, ValueError) as error:
            raise _unexpected("payment", error, answer) from None

    # -- notifications --------------------------------------------------------------------

    def read_notification(self, incoming: Incoming) -> Notification:
        params = notification_params(incoming.query)
        signature = params.get(protocol.SIGNATURE_FIELD, "")
        message = protocol.notification_message(params)
        if not signature or not protocol.verify(self._secret.reveal(), message, signature):
            raise SignatureError("HmacPay notification signature does not verify")
        missing = [name for name in protocol.NOTIFICATION_FIELDS if name not in params]
        if missing:
            raise SignatureError(f"notification is missing {', '.join(missing)}")
        if params["merchant"] != self.account:
            raise SignatureError("notification is for another HmacPay merchant")
        signed = {k: v for k, v in params.items() if k != protocol.SIGNATURE_FIELD}
        return Notification(
            provider=self.name,
            instance=self.instance,
            account=self.account,
            kind=NotificationKind.PAYMENT,
            subject=self._to_payment(signed, None),
            fields=signed,
        )


def _required_key(key: str | None) -> str:
    """The request's idempotency key (paymux gives every money-moving request one)."""
    if not key:
        raise ValidationError(
            {"idempotency_key": ["HmacPay needs one on every create and refund."]}
        )
    return key


def _amount_problem(amount: Decimal) -> str | None:
    """Why `amount` cannot be sent to HmacPay, or None: a Decimal above 0, two places at most."""
    if not isinstance(amount, Decimal) or not amount.is_finite():
        return "Must be a finite Decimal, never a float."
    if amount <= 0 or not _AMOUNT.fullmatch(format(amount, "f")):
        return "Must be above 0, with at most 2 decimal places."
    return None


def _is_http_url(text: str) -> bool:
    """Whether `text` is an http(s) URL with a host; a malformed one is simply not."""
    try:
        parts = urlsplit(text)
        return parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # e.g. an unclosed `[` of an IPv6 host
        return False


def _text(data: Mapping[str, Any], name: str) -> str:
    """A field that must be text: HmacPay writes every one of them as a JSON string."""
    value = data[name]
    if not isinstance(value, str):
        raise ValueError(f"{name} is not text")
    return value


def _money(data: Mapping[str, Any], name: str) -> Decimal:
    """An amount, from its text only: a JSON number is refused, money is never a float."""
    text = _text(data, name)
    if not _AMOUNT.fullmatch(text):
        raise ValueError(f"{name} {text!r} is not an amount")
    return Decimal(text)


def _unexpected(what: str, error: Exception, answer: Answer | None) -> InvalidResponse:
    return InvalidResponse(
        f"unexpected HmacPay {what}: {type(error).__name__}: {error}",
        http_status=answer.status if answer else None,
        request_id=answer.request_id if answer else None,
    )
