"""Reading AliKassa's answers: payments on success, typed errors otherwise."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import marshmallow

from paymux import (
    AmountOutOfRange,
    AuthenticationError,
    DuplicateOrder,
    InsufficientFunds,
    InvalidResponse,
    NotAllowed,
    Payment,
    PaymentDestination,
    PaymentNotFound,
    PaymentStatus,
    PayoutNotFound,
    PayoutStatus,
    ProviderError,
    ProviderServerError,
    ProviderUnavailable,
    ProviderValidationError,
    UnknownService,
)
from paymux.providers.alikassa import schemas
from paymux.providers.base import Answer

PROVIDER = "alikassa"

STATUSES = {
    "wait": PaymentStatus.PENDING,
    "paid": PaymentStatus.PAID,
    "cancel": PaymentStatus.CANCELED,
    "fail": PaymentStatus.FAILED,
}

PAYOUT_STATUSES = {
    "wait": PayoutStatus.PENDING,
    "paid": PayoutStatus.PAID,
    "cancel": PayoutStatus.CANCELED,
    "fail": PayoutStatus.FAILED,
}

W = TypeVar("W", PaymentStatus, PayoutStatus)


_BOUND = re.compile(r"(Minimum|Maximum) amount\s*(\S*)", re.IGNORECASE)


MAX_DEPTH = 16
"""How deeply an answer may nest; AliKassa's go two levels deep (a validation error's lists)."""

MAX_EXPONENT = 30
"""How far a number may reach from the point either way; money and ids stay well within it."""


def decode(answer: Answer) -> Any:
    """The JSON body, or None when it is not JSON or is shaped to exhaust the reader.

    Too deep a nesting would overflow every recursive consumer (the schemas, the log
    redaction), and `1e999999999` would hang the first `int()` taken of it: both are refused.
    """
    try:
        body = json.loads(answer.body, parse_float=_bounded_decimal)
    except (ValueError, RecursionError):
        return None
    return body if _depth_within(body, MAX_DEPTH) else None


def _bounded_decimal(text: str) -> Decimal:
    number = Decimal(text)
    if _out_of_range(number):
        raise ValueError(f"number out of range: {text[:20]}")
    return number


def _out_of_range(value: Any) -> bool:
    return isinstance(value, Decimal) and value.is_finite() and abs(value.adjusted()) > MAX_EXPONENT


def _depth_within(body: Any, limit: int) -> bool:
    """Whether `body` nests at most `limit` containers deep (walked without recursion)."""
    level: list[Any] = [body]
    for _ in range(limit + 1):
        level = [
            child
            for value in level
            if isinstance(value, (dict, list))
            for child in (value.values() if isinstance(value, dict) else value)
        ]
        if not level:
            return True
    return False


def load(schema: marshmallow.Schema, body: Any, answer: Answer, what: str) -> dict[str, Any]:
    """`body` through `schema`, or `InvalidResponse` naming what was wrong."""
    try:
        loaded: dict[str, Any] = schema.load(_object(body, answer, what))
    except marshmallow.ValidationError as error:
        raise _unexpected(answer, body, f"{what}: unexpected answer {error.messages}") from None
    return _bounded(loaded, body, answer, what)


def _object(body: Any, answer: Answer, what: str) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise InvalidResponse(
            f"{what}: the answer is not a JSON object",
            http_status=answer.status,
            body=_excerpt(answer),
            request_id=answer.request_id,
        )
    return body


def _bounded(values: dict[str, Any], body: Any, answer: Answer, what: str) -> dict[str, Any]:
    """`values`, unless an amount in them reaches absurdly far from the point."""
    unbounded = sorted(name for name, value in values.items() if _out_of_range(value))
    if unbounded:
        raise _unexpected(answer, body, f"{what}: implausible amounts in {', '.join(unbounded)}")
    return values


def _unexpected(answer: Answer, body: Any, message: str) -> InvalidResponse:
    return InvalidResponse(
        message, http_status=answer.status, body=body, request_id=answer.request_id
    )


_Read = Callable[[Any], Any]


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ValueError("Not a valid string.")


def _integer(value: Any) -> int | None:
    """A whole number, as JSON or as decimal text (ids come either way)."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _WHOLE.fullmatch(value):
        return int(value)
    raise ValueError("Not a valid integer.")


def _amount(value: Any) -> Decimal | None:
    try:
        return schemas.wire_decimal(value)
    except ValueError:
        raise ValueError("Not a valid decimal amount.") from None


def _flag(value: Any) -> bool:
    try:
        return schemas.flag(value)
    except ValueError:
        raise ValueError("Not a valid boolean.") from None


_WHOLE = re.compile(r"-?[0-9]{1,18}")

CREATED_FIELDS: dict[str, tuple[str, _Read]] = {
    "id": ("id", _integer),
    "payment_status": ("payment_status", _text),
    "url": ("url", _text),
    "uuid": ("uuid", _text),
    "card_number": ("cardNumber", _text),
    "card_holder_name": ("cardHolderName", _text),
    "bank": ("bank", _text),
}
"""A `v1/payment` answer's fields paymux reads: name -> (the answer's key, its reader)."""

STATUS_FIELDS: dict[str, tuple[str, _Read]] = {
    "id": ("id", _integer),
    "payment_status": ("payment_status", _text),
    "order_id": ("order_id", _text),
    "url": ("url", _text),
    "amount": ("amount", _amount),
    "payment_amount": ("payment_amount", _amount),
    "is_partial_payment": ("is_partial_payment", _flag),
    "hold_amount": ("hold_amount", _amount),
    "hold_at": ("hold_at", _text),
    "commission_amount": ("commission_amount", _amount),
    "currency": ("currency", _text),
}
"""A `v1/payment/status` answer's fields paymux reads (the rest stays in `Payment.raw`)."""

REQUIRED = frozenset({"id", "payment_status"})


def read(
    readers: Mapping[str, tuple[str, _Read]], body: Any, answer: Answer, what: str
) -> dict[str, Any]:
    """The fields of `body` that paymux uses, typed, the others left alone (a gateway adds
    fields freely); `InvalidResponse` naming every field that is missing or malformed."""
    found = _object(body, answer, what)
    values: dict[str, Any] = {}
    problems: dict[str, list[str]] = {}
    for name, (key, reader) in readers.items():
        try:
            values[name] = reader(found.get(key))
        except ValueError as error:
            problems[key] = [str(error)]
        if values.get(name) is None and name in REQUIRED and key not in problems:
            problems[key] = ["Missing data for required field."]
    if problems:
        raise _unexpected(answer, body, f"{what}: unexpected answer {problems}")
    return _bounded(values, body, answer, what)


def status_of(text: str, answer: Answer | None = None) -> PaymentStatus:
    """paymux's status for AliKassa's `payment_status` of a payment."""
    return _word(STATUSES, text, answer)


def payout_status_of(text: str, answer: Answer | None = None) -> PayoutStatus:
    """paymux's status for AliKassa's `payment_status` of a payout (the same four words)."""
    return _word(PAYOUT_STATUSES, text, answer)


def _word(statuses: Mapping[str, W], text: str, answer: Answer | None) -> W:
    try:
        return statuses[text]
    except KeyError:
        raise InvalidResponse(
            f"unknown payment_status {text!r}",
            http_status=answer.status if answer else None,
            request_id=answer.request_id if answer else None,
        ) from None


def created_payment(
    answer: Answer, amount: Decimal | None, order_id: str, currency: str | None
) -> Payment:
    """The payment a successful `v1/payment` answer describes: its payment page, or for a
    host-to-host card-number service the card the payer transfers to."""
    body = decode(answer)
    fields = read(CREATED_FIELDS, body, answer, "create")
    if fields["url"] is None and fields["card_number"] is None:
        raise InvalidResponse(
            "create: the answer names neither a payment page url nor a cardNumber to pay to",
            http_status=answer.status,
            body=body,
            request_id=answer.request_id,
        )
    return Payment(
        provider=PROVIDER,
        id=str(fields["id"]),
        order_id=order_id,
        status=status_of(fields["payment_status"], answer),
        amount=amount,
        currency=currency,
        redirect_url=fields["url"],
        destination=_destination(fields),
        raw=body,
    )


def _destination(fields: Mapping[str, Any]) -> PaymentDestination | None:
    if fields["card_number"] is None:
        return None
    return PaymentDestination(
        card_number=fields["card_number"],
        holder_name=fields["card_holder_name"],
        bank=fields["bank"],
    )


def status_payment(answer: Answer, asked: Mapping[str, str]) -> Payment:
    """The payment a successful `v1/payment/status` answer describes, if it is the one `asked`.

    `asked` is the request (`id` or `order_id`): an answer about any other payment is
    `InvalidResponse`, never taken for ours.
    """
    body = decode(answer)
    fields = read(STATUS_FIELDS, body, answer, "status")
    payment = Payment(
        provider=PROVIDER,
        id=str(fields["id"]),
        order_id=fields["order_id"],
        status=status_of(fields["payment_status"], answer),
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
    reference = "id" if "id" in asked else "order_id"
    answered = payment.id if reference == "id" else payment.order_id
    if answered != asked[reference]:
        raise InvalidResponse(
            f"status: asked for {reference} {asked[reference]!r}, the answer is about {answered!r}",
            http_status=answer.status,
            body=body,
            request_id=answer.request_id,
        )
    return payment


def error(answer: Answer, operation: str) -> ProviderError:
    """The typed error for a refusal; the body's `message` decides which."""
    body = decode(answer)
    exchange: dict[str, Any] = {
        "http_status": answer.status,
        "body": body if body is not None else _excerpt(answer),
        "request_id": answer.request_id,
    }
    try:
        parsed = schemas.ERROR.load(body) if isinstance(body, Mapping) else None
    except marshmallow.ValidationError:
        parsed = None
    if parsed is None:
        if answer.status >= 500:
            return ProviderServerError(f"{operation}: AliKassa failed", **exchange)
        return InvalidResponse(f"{operation}: AliKassa answered without a message", **exchange)
    message: str = parsed["message"]
    text = f"{operation}: {message}"
    lowered = message.lower()
    if parsed["errors"]:
        return ProviderValidationError(text, fields=parsed["errors"], **exchange)
    if answer.status in (401, 403):
        return AuthenticationError(text, **exchange)
    if answer.status >= 500:
        return ProviderServerError(text, **exchange)
    if "technical works" in lowered:
        return ProviderUnavailable(text, **exchange)
    if "order_id exists" in lowered:
        return DuplicateOrder(text, **exchange)
    if "not exists service" in lowered or "no found service" in lowered:
        return UnknownService(text, **exchange)
    if "project not allowed" in lowered:
        return NotAllowed(text, **exchange)
    if "payout not found" in lowered or (
        "payment not found" in lowered and operation.startswith("payout")
    ):
        return PayoutNotFound(text, **exchange)
    if "payment not found" in lowered:
        return PaymentNotFound(text, **exchange)
    if "insufficient funds" in lowered:
        return InsufficientFunds(text, **exchange)
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


def _excerpt(answer: Answer) -> str:
    return answer.body[:200].decode("utf-8", errors="replace")
