"""Request bodies checked as YooKassa checks them: 400 invalid_request naming the parameter.

The limits are those of YooKassa's API reference (OpenAPI specification): an amount is a
decimal string with at most two places, above 0, in one of the listed currencies; a description
has at most 128 characters (250 for a refund); metadata has at most 16 keys of at most 32
characters, each value a string of at most 512. Fields the emulator has no rule for (receipt,
client_ip, ...) are accepted and ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from paymux_yookassa.emulator.wire import invalid

CURRENCIES = frozenset(
    {"RUB", "EUR", "USD", "KZT", "BYN", "UAH", "UZS", "TRY", "INR", "MDL", "AZN", "AMD"}
)
"""The currencies YooKassa's reference lists for amounts."""
PAYMENT_METHOD_TYPES = frozenset(
    {
        "bank_card", "cash", "sberbank", "tinkoff_bank", "yoo_money", "mobile_balance",
        "b2b_sberbank", "sbp", "sber_loan", "electronic_certificate", "sber_bnpl",
    }
)  # fmt: skip
"""The `payment_method_data.type` values a payment may ask for."""
_VALUE = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,2})?")
MAX_DESCRIPTION = 128
MAX_REFUND_DESCRIPTION = 250
MAX_RETURN_URL = 2048
MAX_METADATA_KEYS = 16
MAX_METADATA_KEY = 32
MAX_METADATA_VALUE = 512


@dataclass(frozen=True)
class PaymentInput:
    """A create-payment body that passed the checks."""

    amount: Decimal
    currency: str
    capture: bool
    return_url: str
    description: str | None
    metadata: dict[str, str | None]
    payment_method_type: str | None


@dataclass(frozen=True)
class RefundInput:
    """A create-refund body that passed the checks."""

    payment_id: str
    amount: Decimal
    currency: str
    description: str | None
    metadata: dict[str, str | None] | None


def checked_object(body: Any, parameter: str | None = None) -> dict[str, Any]:
    if not isinstance(body, dict):
        where = f"{parameter} must be" if parameter else "The request body must be"
        raise invalid(parameter, f"{where} a JSON object")
    return body


def checked_amount(data: Any, parameter: str = "amount") -> tuple[Decimal, str]:
    """An amount object: `value` a decimal string above 0 with at most 2 places, `currency`."""
    if data is None:
        raise invalid(parameter, f"Missing required parameter {parameter}")
    amount = checked_object(data, parameter)
    value = amount.get("value")
    if not isinstance(value, str) or not _VALUE.fullmatch(value) or Decimal(value) <= 0:
        raise invalid(
            f"{parameter}.value",
            f"{parameter}.value must be a decimal string above 0 with at most 2 places, "
            f'e.g. "10.00", not {value!r}',
        )
    currency = amount.get("currency")
    if currency not in CURRENCIES:
        raise invalid(f"{parameter}.currency", f"Unsupported currency {currency!r}")
    return Decimal(value), str(currency)


def checked_payment(body: Any) -> PaymentInput:
    data = checked_object(body)
    amount, currency = checked_amount(data.get("amount"))
    capture = data.get("capture", False)
    if not isinstance(capture, bool):
        raise invalid("capture", "capture must be true or false")
    return PaymentInput(
        amount=amount,
        currency=currency,
        capture=capture,
        return_url=_checked_confirmation(data.get("confirmation")),
        description=_checked_text(data.get("description"), "description", MAX_DESCRIPTION),
        metadata=checked_metadata(data.get("metadata")) or {},
        payment_method_type=_checked_method(data.get("payment_method_data")),
    )


def checked_capture(body: Any) -> tuple[Decimal, str] | None:
    """The amount to capture, if the body names one (none: capture all that is held)."""
    data = checked_object(body)
    if data.get("amount") is None:
        return None
    return checked_amount(data["amount"])


def checked_refund(body: Any) -> RefundInput:
    data = checked_object(body)
    payment_id = data.get("payment_id")
    if not isinstance(payment_id, str) or not payment_id:
        raise invalid("payment_id", "Missing required parameter payment_id")
    amount, currency = checked_amount(data.get("amount"))
    description = _checked_text(data.get("description"), "description", MAX_REFUND_DESCRIPTION)
    return RefundInput(
        payment_id, amount, currency, description, checked_metadata(data.get("metadata"))
    )


def checked_metadata(data: Any) -> dict[str, str | None] | None:
    if data is None:
        return None
    metadata = checked_object(data, "metadata")
    if len(metadata) > MAX_METADATA_KEYS:
        raise invalid("metadata", f"metadata may have at most {MAX_METADATA_KEYS} keys")
    for key, value in metadata.items():
        if len(key) > MAX_METADATA_KEY:
            raise invalid("metadata", f"metadata key {key[:40]!r} is over {MAX_METADATA_KEY} chars")
        if value is not None and not isinstance(value, str):
            raise invalid("metadata", f"metadata value of {key!r} must be a string")
        if value is not None and len(value) > MAX_METADATA_VALUE:
            raise invalid(
                "metadata", f"metadata value of {key!r} is over {MAX_METADATA_VALUE} chars"
            )
    return dict(metadata)


def _checked_confirmation(data: Any) -> str:
    """The return URL of a redirect confirmation, the only scenario the emulator plays."""
    if data is None:
        raise invalid("confirmation", "Missing confirmation: the emulator needs type redirect")
    confirmation = checked_object(data, "confirmation")
    if confirmation.get("type") != "redirect":
        kind = confirmation.get("type")
        raise invalid("confirmation.type", f"Unsupported confirmation type {kind!r}: use redirect")
    url = confirmation.get("return_url")
    parts = urlsplit(url) if isinstance(url, str) else None
    if url is None:
        raise invalid("confirmation.return_url", "Missing required parameter return_url")
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise invalid("confirmation.return_url", "return_url must be an http(s) URL")
    if len(url) > MAX_RETURN_URL:
        raise invalid("confirmation.return_url", f"return_url is over {MAX_RETURN_URL} chars")
    return str(url)


def _checked_text(value: Any, parameter: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(parameter, f"{parameter} must be a string")
    if len(value) > limit:
        raise invalid(parameter, f"{parameter} may have at most {limit} characters")
    return value


def _checked_method(data: Any) -> str | None:
    if data is None:
        return None
    method = checked_object(data, "payment_method_data")
    if method.get("type") not in PAYMENT_METHOD_TYPES:
        kind = method.get("type")
        raise invalid("payment_method_data.type", f"Unsupported payment method type {kind!r}")
    return str(method["type"])
