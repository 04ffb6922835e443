"""Structural redaction: what paymux logs or shows never holds a secret or a whole card number.

Secrets (signatures, keys, passwords) are replaced outright; card numbers keep their first 6 and
last 4 digits; personal fields (phone, e-mail, names, address) keep a hint of their shape.
Any run of 13 to 19 digits in any string is treated as a card number, wherever it appears.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REDACTED = "[redacted]"

SECRET_KEYS = frozenset(
    {"sign", "signature", "password", "passphrase", "private_key", "authorization", "secret"}
)
CARD_KEYS = frozenset({"card_number", "customer_card_number", "card_mask", "pan"})
PERSONAL_KEYS = frozenset(
    {
        "phone",
        "customer_phone",
        "card_holder_name",
        "first_name",
        "last_name",
        "customer_first_name",
        "customer_last_name",
        "customer_address",
        "address",
        "customer_birth_date",
        "birth_date",
    }
)
EMAIL_KEYS = frozenset({"email", "customer_email"})

_CARD_RUN = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
"""13 to 19 digits, alone or in groups split by single spaces or dashes."""


def mask_card(text: str) -> str:
    """Keep the first 6 and last 4 digits of every card-number-like run of digits."""
    return _CARD_RUN.sub(_mask_digits, text)


def _mask_digits(match: re.Match[str]) -> str:
    digits = [char for char in match[0] if char.isdigit()]
    return "".join(digits[:6]) + "*" * (len(digits) - 10) + "".join(digits[-4:])


def mask_text(text: str) -> str:
    """Keep the first and last character of a personal value, hide the rest."""
    if len(text) <= 2:
        return "*" * len(text)
    return f"{text[0]}{'*' * (len(text) - 2)}{text[-1]}"


def mask_email(text: str) -> str:
    """Hide the local part of an e-mail address but its first character."""
    local, at, domain = text.partition("@")
    return f"{local[:1]}***{at}{domain}" if at else mask_text(text)


def redact_value(key: str, value: Any) -> Any:
    """Redact one value by what its key says it is; scan free text for card numbers."""
    lowered = key.lower()
    if value is None or value == "":
        return value
    if lowered in SECRET_KEYS:
        return REDACTED
    if isinstance(value, Mapping):
        return redact(value)
    if isinstance(value, (list, tuple)):
        return [redact_value(key, item) for item in value]
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and lowered in CARD_KEYS | EMAIL_KEYS | PERSONAL_KEYS
    ):
        value = str(value)  # a card number or phone sent as a JSON number is still one
    if not isinstance(value, str):
        return value
    if lowered in CARD_KEYS:
        return mask_card(value) if _CARD_RUN.search(value) else mask_text(value)
    if lowered in EMAIL_KEYS:
        return mask_email(value)
    if lowered in PERSONAL_KEYS:
        return mask_text(value)
    return mask_card(value)


def redact(data: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `data` safe to log or show."""
    return {key: redact_value(str(key), value) for key, value in data.items()}
