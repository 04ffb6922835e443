"""AliKassa's payouts, described for core's runner: `v1/payout` and `v1/payout/status`.

A payout is exactly-once by its order id, as a payment is: after a lost answer it is looked up
under the order id and sent again, the same signed bytes, only if it is not there; one found
must have this amount, service and recipient card. The recipient's card number goes out in the
body only: a found payout shows it masked (first 6 and last 4 digits), and it is compared so.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from paymux import InvalidResponse, Payout, PayoutRequest, ValidationError
from paymux.providers.alikassa import payout_schemas, responses, schemas, wire
from paymux.providers.alikassa.exchanges import JSON_HEADERS, body_of
from paymux.providers.base import Answer, Call, OrderLookup, Request

PAYOUT_PATH = "v1/payout"
PAYOUT_STATUS_PATH = "v1/payout/status"

OPTIONS = ("service",)
"""The AliKassa-specific keys a `PayoutRequest.options` may hold."""

RECIPIENT = {
    "customer_code": "customer_code",
    "first_name": "customer_first_name",
    "last_name": "customer_last_name",
    "phone": "customer_phone",
    "email": "customer_email",
    "country": "customer_country",
}
"""`PayoutRequest.recipient` key -> the `v1/payout` field (`customer_code`: the SBP bank)."""

EXTRA = (
    "card_exp_month",
    "card_exp_year",
    "card_holder",
    "card_country",
    "card_recipient_birth_date",
)
"""`PayoutRequest.recipient` keys sent in the payout's `extra` object, under the same names."""

GENERIC_NAMES = {
    "service": "options.service",
    "notification_endpoint_url": "notification_url",
    **{wire_name: f"recipient.{key}" for key, wire_name in RECIPIENT.items()},
    **{f"extra.{name}": f"recipient.{name}" for name in EXTRA},
    "id": "payout_id",
}
"""AliKassa field name -> the `PayoutRequest` attribute (or `payout_status()` argument)."""


def payout(request: PayoutRequest, default_service: str | None) -> Call[Payout]:
    """`v1/payout`, made exactly-once by the payout's order id."""
    fields = payout_fields(request, default_service)
    body = body_of(payout_schemas.PAYOUT, fields, _generic)
    amount = Decimal(str(request.amount))
    service, number, order_id = str(fields["service"]), request.number, request.order_id
    return Call(
        Request("payout", "POST", PAYOUT_PATH, body, headers=JSON_HEADERS),
        read=lambda answer: _created(answer, order_id, amount, request.currency),
        exactly_once=OrderLookup(
            order_id,
            amount,
            lookup=lambda: status(order_id=order_id),
            differences=lambda found: _differences(found, service, number),
        ),
    )


def status(*, payout_id: str | None = None, order_id: str | None = None) -> Call[Payout]:
    """`v1/payout/status` by AliKassa's id or the shop's order id; the answer must be about
    the payout asked for."""
    asked = {"id": str(payout_id)} if payout_id is not None else {"order_id": str(order_id)}
    body = body_of(payout_schemas.PAYOUT_STATUS, asked, _generic)
    return Call(
        Request("payout_status", "POST", PAYOUT_STATUS_PATH, body, headers=JSON_HEADERS),
        read=lambda answer: _reported(answer, asked),
    )


def payout_fields(request: PayoutRequest, default_service: str | None) -> dict[str, Any]:
    """The `v1/payout` body for `request`, in the order production clients send it.

    Raises `ValidationError` for what the wire schema cannot see: unknown options or recipient
    keys, a float amount, a currency the service does not take.
    """
    unknown = {f"options.{key}" for key in set(request.options) - set(OPTIONS)}
    unknown |= {f"recipient.{key}" for key in set(request.recipient) - {*RECIPIENT, *EXTRA}}
    if unknown:
        raise ValidationError({key: ["Unknown AliKassa payout field."] for key in sorted(unknown)})
    service = request.options.get("service", default_service)
    wire.check_currency(request.currency, service)
    recipient = request.recipient
    extra = {name: _text(recipient[name]) for name in EXTRA if recipient.get(name) is not None}
    fields: dict[str, Any] = {
        "amount": wire.amount_text(request.amount),
        "number": request.number,
        "order_id": request.order_id,
        "service": service,
        **{wire_name: recipient.get(key) for key, wire_name in RECIPIENT.items()},
        "notification_endpoint_url": request.notification_url,
        "extra": extra or None,
    }
    return {name: value for name, value in fields.items() if value is not None}


def _text(value: Any) -> Any:
    """A recipient detail as it travels: a date as `YYYY-MM-DD`, anything else as given."""
    return value.isoformat() if isinstance(value, date) else value


def _generic(messages: Mapping[str, Any]) -> dict[str, list[str]]:
    return wire.generic_errors(messages, GENERIC_NAMES, customer="recipient.")


def _created(answer: Answer, order_id: str, amount: Decimal, currency: str | None) -> Payout:
    body = responses.decode(answer)
    fields = responses.load(schemas.PAYOUT_CREATED, body, answer, "payout")
    return Payout(
        provider=responses.PROVIDER,
        id=str(fields["id"]),
        order_id=order_id,
        status=responses.payout_status_of(fields["payment_status"], answer),
        amount=amount,
        currency=currency,
        raw=body,
    )


def _reported(answer: Answer, asked: Mapping[str, str]) -> Payout:
    body = responses.decode(answer)
    fields = responses.load(schemas.PAYOUT_STATUS, body, answer, "payout_status")
    found = Payout(
        provider=responses.PROVIDER,
        id=str(fields["id"]),
        order_id=fields["order_id"],
        status=responses.payout_status_of(fields["payment_status"], answer),
        amount=fields["amount"],
        fee=fields["commission_amount"],
        currency=fields["currency"],
        raw=body,
    )
    reference = "id" if "id" in asked else "order_id"
    answered = found.id if reference == "id" else found.order_id
    if answered != asked[reference]:
        raise InvalidResponse(
            f"payout_status: asked for {reference} {asked[reference]!r}, the answer is about "
            f"{answered!r}",
            http_status=answer.status,
            body=body,
            request_id=answer.request_id,
        )
    return found


def _differences(found: Payout, service: str, number: str) -> list[str]:
    """How the payout found under the order id differs from the one asked for, besides its
    amount (the runner compares that)."""
    differs = []
    found_service = found.raw.get("service_code")
    if found_service is not None and found_service != service:
        differs.append(f"service {found_service} instead of {service}")
    card = found.raw.get("card_number")
    if card is not None and not payout_schemas.pays_to_phone(service) and card != masked(number):
        differs.append(f"card {card} instead of {masked(number)}")
    return differs


def masked(number: str) -> str:
    """A card number as logs and the gateway show it: the first 6 and last 4 digits."""
    return number[:6] + "*" * max(len(number) - 10, 0) + number[-4:]
