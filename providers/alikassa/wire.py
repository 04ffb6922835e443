"""Between paymux's generic model and AliKassa's fields."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from paymux import PaymentRequest, ValidationError
from paymux.providers.alikassa import schemas

CENT = Decimal("0.01")

OPTIONS = (
    "service",
    "success_redirect_id",
    "fail_redirect_id",
    "notification_endpoint_id",
    "project_url",
    "customer_code",
    "customer_user_id",
)
"""The AliKassa-specific keys a `PaymentRequest.options` may hold (`customer_code`: the payer's
bank, for card-number and SBP services; `customer_user_id`: the payer's id in the shop)."""

GENERIC_NAMES = {
    "service": "options.service",
    "desc": "description",
    "customer_ip": "customer.ip",
    "customer_browser_user_agent": "customer.user_agent",
    "success_redirect_url": "success_url",
    "fail_redirect_url": "fail_url",
    "notification_endpoint_url": "notification_url",
    **{name: f"options.{name}" for name in OPTIONS if name != "service"},
    "id": "payment_id",
}
"""AliKassa field name -> the `PaymentRequest` attribute (or `status()` argument) it comes from,
where they differ."""


def create_fields(request: PaymentRequest, default_service: str | None) -> dict[str, Any]:
    """The `v1/payment` body for `request`, in the documented field order, nulls left out.

    Raises `ValidationError` for what the wire schema cannot see: a two-phase payment
    (AliKassa charges at once), unknown options, a float amount, a currency the service does
    not take.
    """
    if not request.capture:
        raise ValidationError(
            {"capture": ["AliKassa has one-phase payments only: leave capture True."]}
        )
    unknown = sorted(set(request.options) - set(OPTIONS))
    if unknown:
        raise ValidationError({f"options.{key}": ["Unknown AliKassa option."] for key in unknown})
    service = request.options.get("service", default_service)
    check_currency(request.currency, service)
    customer = request.customer
    options = request.options
    birth_date = customer.birth_date.isoformat() if customer.birth_date is not None else None
    fields: dict[str, Any] = {
        "amount": amount_text(request.amount),
        "order_id": request.order_id,
        "service": service,
        "desc": request.description,
        "lifetime": request.lifetime,
        "customer_ip": customer.ip,
        "customer_account": customer.account,
        "customer_email": customer.email,
        "customer_first_name": customer.first_name,
        "customer_last_name": customer.last_name,
        "customer_address": customer.address,
        "customer_phone": customer.phone,
        "customer_post_code": customer.post_code,
        "customer_state": customer.state,
        "customer_city": customer.city,
        "customer_browser_user_agent": customer.user_agent,
        "customer_birth_date": birth_date,
        "success_redirect_id": options.get("success_redirect_id"),
        "fail_redirect_id": options.get("fail_redirect_id"),
        "notification_endpoint_id": options.get("notification_endpoint_id"),
        "success_redirect_url": request.success_url,
        "fail_redirect_url": request.fail_url,
        "notification_endpoint_url": request.notification_url,
        "project_url": options.get("project_url"),
        "customer_code": options.get("customer_code"),
        "customer_user_id": options.get("customer_user_id"),
    }
    return {name: value for name, value in fields.items() if value is not None}


def amount_text(amount: object) -> object:
    """Decimals travel as plain decimal strings; floats are refused outright.

    Trailing zeros beyond two places are dropped (`100.000` is sent as `100.00`): the value is
    exact either way, and AliKassa takes at most two decimal places.
    """
    if isinstance(amount, float):
        raise ValidationError({"amount": ["Must be a Decimal, never a float."]})
    if not isinstance(amount, Decimal):
        return amount
    exponent = amount.as_tuple().exponent
    if not isinstance(exponent, int) or amount.adjusted() > 8:  # not finite, or 10+ digits
        # Refused before it is written out: `1e999999999` would be a billion-digit string.
        raise ValidationError({"amount": [schemas.AMOUNT_RULE]})
    if exponent < -2:
        if amount != amount.quantize(CENT):
            raise ValidationError({"amount": [schemas.AMOUNT_RULE]})
        amount = amount.quantize(CENT)
    return format(amount, "f")


def check_currency(currency: str | None, service: object) -> None:
    if currency is None or not isinstance(service, str):
        return
    if len(currency) != 3 or not currency.isalpha() or not currency.isupper():
        raise ValidationError({"currency": ["Must be an ISO 4217 code such as 'EUR'."]})
    if currency.lower() not in service.split("_"):
        raise ValidationError(
            {
                "currency": [
                    f"Service {service!r} does not take {currency}; choose a {currency} "
                    f"service or leave currency out."
                ]
            }
        )


def generic_errors(
    messages: Mapping[str, Any],
    names: Mapping[str, str] = GENERIC_NAMES,
    customer: str = "customer.",
) -> dict[str, list[str]]:
    """Schema messages keyed by the generic request's attribute paths instead of wire names:
    `names` where given, else `customer_x` as `<customer>x`. A nested object's messages are
    keyed `parent.child` before renaming."""
    result: dict[str, list[str]] = {}
    for name, value in _flat(messages):
        key = names.get(
            name,
            customer + name.removeprefix("customer_") if name.startswith("customer_") else name,
        )
        result[key] = [str(item) for item in value] if isinstance(value, list) else [str(value)]
    return result


def _flat(messages: Mapping[str, Any], parent: str = "") -> list[tuple[str, Any]]:
    pairs: list[tuple[str, Any]] = []
    for name, value in messages.items():
        if isinstance(value, Mapping):
            pairs += _flat(value, f"{parent}{name}.")
        else:
            pairs.append((f"{parent}{name}", value))
    return pairs
