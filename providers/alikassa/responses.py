"""Reading AliKassa's answers: payments on success, typed errors otherwise."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import marshmallow

from paymux.errors import (
    AmountOutOfRange,
    AuthenticationError,
    DuplicateOrder,
    InvalidResponse,
    NotAllowed,
    PaymentNotFound,
    ProviderError,
    ProviderServerError,
    ProviderUnavailable,
    ProviderValidationError,
    UnknownService,
)
from paymux.models import Payment, PaymentStatus
from paymux.providers.alikassa import schemas
from paymux.transport import Response

PROVIDER = "alikassa"

STATUSES = {
    "wait": PaymentStatus.PENDING,
    "paid": PaymentStatus.PAID,
    "cancel": PaymentStatus.CANCELED,
    "fail": PaymentStatus.FAILED,
}

_BOUND = re.compile(r"(Minimum|Maximum) amount\s*(\S*)", re.IGNORECASE)


def decode(response: Response) -> Any:
    """The JSON body, or None when it is not JSON."""
    try:
        return json.loads(response.body, parse_float=Decimal)
    except ValueError:
        return None


def load(schema: marshmallow.Schema, body: Any, response: Response, what: str) -> dict[str, Any]:
    """`body` through `schema`, or `InvalidResponse` naming what was wrong."""
    if not isinstance(body, Mapping):
        raise InvalidResponse(
            f"{what}: the answer is not a JSON object",
            http_status=response.status,
            body=_excerpt(response),
            request_id=response.request_id,
        )
    try:
        loaded: dict[str, Any] = schema.load(body)
    except marshmallow.ValidationError as error:
        raise InvalidResponse(
            f"{what}: unexpected answer {error.messages}",
            http_status=response.status,
            body=body,
            request_id=response.request_id,
        ) from None
    return loaded


def status_of(text: str, response: Response | None = None) -> PaymentStatus:
    """paymux's status for AliKassa's `payment_status`."""
    try:
        return STATUSES[text]
    except KeyError:
        raise InvalidResponse(
            f"unknown payment_status {text!r}",
            http_status=response.status if response else None,
            request_id=response.request_id if response else None,
        ) from None


def created_payment(
    response: Response, amount: Decimal | None, order_id: str, currency: str | None
) -> Payment:
    """The payment a successful `v1/payment` answer describes."""
    body = decode(response)
    fields = load(schemas.CREATED, body, response, "create")
    return Payment(
        provider=PROVIDER,
        id=str(fields["id"]),
        order_id=order_id,
        status=status_of(fields["payment_status"], response),
        amount=amount,
        currency=currency,
        redirect_url=fields["url"],
        raw=body,
    )


def status_payment(response: Response) -> Payment:
    """The payment a successful `v1/payment/status` answer describes."""
    body = decode(response)
    fields = load(schemas.STATUS, body, response, "status")
    return Payment(
        provider=PROVIDER,
        id=str(fields["id"]),
        order_id=fields["order_id"],
        status=status_of(fields["payment_status"], response),
        amount=fields["amount"],
        paid_amount=fields["payment_amount"],
        fee=fields["commission_amount"],
        currency=fields["currency"],
        is_partial=bool(fields["is_partial_payment"]),
        redirect_url=fields["url"],
        hold_amount=fields["hold_amount"],
        hold_until=fields["hold_at"],
        raw=body,
    )


def error(response: Response, operation: str) -> ProviderError:
    """The typed error for a refusal; the body's `message` decides which."""
    body = decode(response)
    exchange: dict[str, Any] = {
        "http_status": response.status,
        "body": body if body is not None else _excerpt(response),
        "request_id": response.request_id,
    }
    try:
        parsed = schemas.ERROR.load(body) if isinstance(body, Mapping) else None
    except marshmallow.ValidationError:
        parsed = None
    if parsed is None:
        if response.status >= 500:
            return ProviderServerError(f"{operation}: AliKassa failed", **exchange)
        return InvalidResponse(f"{operation}: AliKassa answered without a message", **exchange)
    message: str = parsed["message"]
    text = f"{operation}: {message}"
    lowered = message.lower()
    if parsed["errors"]:
        return ProviderValidationError(text, fields=parsed["errors"], **exchange)
    if response.status in (401, 403):
        return AuthenticationError(text, **exchange)
    if response.status >= 500:
        return ProviderServerError(text, **exchange)
    if "technical works" in lowered:
        return ProviderUnavailable(text, **exchange)
    if "order_id exists" in lowered:
        return DuplicateOrder(text, **exchange)
    if "not exists service" in lowered or "no found service" in lowered:
        return UnknownService(text, **exchange)
    if "project not allowed" in lowered:
        return NotAllowed(text, **exchange)
    if "payment not found" in lowered:
        return PaymentNotFound(text, **exchange)
    bound = _BOUND.search(message)
    if bound:
        return AmountOutOfRange(
            text, bound=bound[1].lower(), limit=_decimal_or_none(bound[2]), **exchange
        )
    if lowered.startswith("the given data was invalid"):
        return ProviderValidationError(text, fields={}, **exchange)
    return ProviderError(text, **exchange)


def _decimal_or_none(text: str) -> Decimal | None:
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def _excerpt(response: Response) -> str:
    return response.body[:200].decode("utf-8", errors="replace")
