"""Each YooKassa call as paymux's runner executes it: the request, how to read its answer, and
for a call that moves money the `Idempotence-Key` that makes a repeat return the first result.

YooKassa remembers a key for 24 hours: within them a lost answer, a 500 or a 202 "processing"
is settled by sending the same bytes with the same key again; after them only by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import TypeVar

from paymux import InvalidResponse, Payment, PaymentRequest, Refund, RefundRequest
from paymux.providers.base import Answer, Call, IdempotencyKey, Processing, Request
from paymux_yookassa import bodies
from paymux_yookassa.wire import WireError, payment_of, refund_of

T = TypeVar("T")

KEY_LIFETIME = 24 * 3600.0
"""Seconds YooKassa remembers an `Idempotence-Key`."""
DEFAULT_RETRY_AFTER = 1.0
"""Seconds to wait after a 202 that names no `retry_after`."""


def create(request: PaymentRequest, *, currency: str, return_url: str | None) -> Call[Payment]:
    body = bodies.payment_body(request, currency=currency, return_url=return_url)
    key = str(request.idempotency_key)
    return _money_call("create", "v3/payments", body, key, read_payment, request.order_id)


def status(payment_id: str) -> Call[Payment]:
    path = f"v3/payments/{bodies.checked_id(payment_id, 'payment_id')}"
    return Call(Request("status", "GET", path), read=read_payment)


def capture(
    payment_id: str, amount: Decimal | None, idempotency_key: str, *, currency: str
) -> Call[Payment]:
    body = bodies.capture_body(
        payment_id, amount, currency=currency, idempotency_key=idempotency_key
    )
    path = f"v3/payments/{payment_id}/capture"
    return _money_call("capture", path, body, idempotency_key, read_payment)


def cancel(payment_id: str, idempotency_key: str) -> Call[Payment]:
    body = bodies.cancel_body(payment_id, idempotency_key=idempotency_key)
    path = f"v3/payments/{payment_id}/cancel"
    return _money_call("cancel", path, body, idempotency_key, read_payment)


def refund(request: RefundRequest, *, currency: str) -> Call[Refund]:
    body = bodies.refund_body(request, currency=currency)
    return _money_call("refund", "v3/refunds", body, str(request.idempotency_key), read_refund)


def refund_status(refund_id: str) -> Call[Refund]:
    path = f"v3/refunds/{bodies.checked_id(refund_id, 'refund_id')}"
    return Call(Request("refund_status", "GET", path), read=read_refund)


def read_payment(answer: Answer) -> Payment:
    try:
        return payment_of(_finished(answer))
    except WireError as error:
        raise _invalid(answer, error) from None


def read_refund(answer: Answer) -> Refund:
    try:
        return refund_of(_finished(answer))
    except WireError as error:
        raise _invalid(answer, error) from None


def _money_call(
    operation: str,
    path: str,
    body: bytes,
    key: str,
    read: Callable[[Answer], T],
    order_id: str | None = None,
) -> Call[T]:
    headers = {"Content-Type": "application/json", "Idempotence-Key": key}
    return Call(
        Request(operation, "POST", path, body, headers=headers),
        read=read,
        exactly_once=IdempotencyKey(key, KEY_LIFETIME, order_id),
    )


def _finished(answer: Answer) -> dict[str, object]:
    """The answer's object; `Processing` for YooKassa's 202 "still processing"."""
    data = answer.json_object()
    if answer.status == 202 or data.get("type") == "processing":
        raise Processing(_seconds(data.get("retry_after")))
    return data


def _seconds(milliseconds: object) -> float:
    try:
        value = Decimal(str(milliseconds)) / 1000
    except InvalidOperation:
        return DEFAULT_RETRY_AFTER
    return float(value) if value.is_finite() and value >= 0 else DEFAULT_RETRY_AFTER


def _invalid(answer: Answer, error: WireError) -> InvalidResponse:
    return InvalidResponse(
        str(error), http_status=answer.status, body=answer.data, request_id=answer.request_id
    )
