"""AliKassa's payment calls, described for core's runner: create, status and balance.

Each body is checked by the wire schema before anything is sent (a `ValidationError` names
the `PaymentRequest` field), then written in PHP `json_encode` form: the bytes that are signed
are the bytes that are sent, whether the gateway checks them as sent or re-encodes them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import marshmallow

from paymux import Balance, InvalidResponse, Payment, PaymentRequest, ValidationError
from paymux.providers.alikassa import phpjson, responses, schemas, wire
from paymux.providers.base import Answer, Call, OrderLookup, Request

CREATE_PATH = "v1/payment"
STATUS_PATH = "v1/payment/status"
BALANCE_PATH = "v1/account/balance"
JSON_HEADERS = {"Content-Type": "application/json"}


def body_of(
    schema: marshmallow.Schema,
    fields: Mapping[str, Any],
    generic: Callable[[Mapping[str, Any]], dict[str, list[str]]] = wire.generic_errors,
) -> bytes:
    """`fields` checked by `schema` and written as PHP writes JSON; if they fail, a
    `ValidationError` whose messages `generic` keys by the generic model's field names."""
    errors = schemas.errors(schema, fields)
    if errors:
        raise ValidationError(generic(errors))
    try:
        return phpjson.dumps_bytes(fields)
    except phpjson.PHPJSONError as error:
        raise ValidationError({"_schema": [str(error)]}) from None


def create(request: PaymentRequest, default_service: str | None) -> Call[Payment]:
    """`v1/payment`, made exactly-once by the order id: a payment found under it must have
    this amount and service."""
    fields = wire.create_fields(request, default_service)
    body = body_of(schemas.CREATE_PAYMENT, fields)
    # Validated above as a Decimal, an int or a decimal string; money leaves as a Decimal.
    amount = Decimal(str(request.amount))
    service = str(fields["service"])
    order_id = request.order_id
    return Call(
        Request("create", "POST", CREATE_PATH, body, headers=JSON_HEADERS),
        read=lambda answer: responses.created_payment(answer, amount, order_id, request.currency),
        exactly_once=OrderLookup(
            order_id,
            amount,
            lookup=lambda: status(order_id=order_id),
            differences=lambda found: _other_service(found, service),
        ),
    )


def _other_service(payment: Payment, service: str) -> list[str]:
    found = payment.raw.get("service_code")
    return [] if found is None or found == service else [f"service {found} instead of {service}"]


def status(*, payment_id: str | None = None, order_id: str | None = None) -> Call[Payment]:
    """`v1/payment/status` by AliKassa's id or the shop's order id; the answer must be about
    the payment asked for."""
    asked = {"id": str(payment_id)} if payment_id is not None else {"order_id": str(order_id)}
    body = body_of(schemas.STATUS_REQUEST, asked)
    return Call(
        Request("status", "POST", STATUS_PATH, body, headers=JSON_HEADERS),
        read=lambda answer: responses.status_payment(answer, asked),
    )


def balance() -> Call[Balance]:
    """`v1/account/balance`: an empty body (PHP writes it `[]`), signed like a payment call."""
    return Call(
        Request("balance", "POST", BALANCE_PATH, phpjson.dumps_bytes({}), headers=JSON_HEADERS),
        read=_balance,
    )


def _balance(answer: Answer) -> Balance:
    body = responses.decode(answer)
    fields = responses.load(schemas.BALANCE, body, answer, "balance")
    if fields["balance"] is None:
        raise InvalidResponse(
            "balance: the answer shows no balance",
            http_status=answer.status,
            body=body,
            request_id=answer.request_id,
        )
    return Balance(
        provider=responses.PROVIDER,
        available=fields["balance"],
        held=fields["hold"] or Decimal(0),
        reserve=fields["rolling_reserve"] or Decimal(0),
        raw=body,
    )
