"""Structural redaction: what paymux logs or shows never holds a secret or a whole card number.

Secrets (signatures, keys, passwords, any `Secret`) are replaced outright; card numbers keep
their first 6 and last 4 digits; personal fields (phone, e-mail, names, address) keep a hint of
their shape. Keys match whatever their case or spelling (`card_number`, `cardNumber`). Any run
of 13 to 19 digits in any string is treated as a card number, wherever it appears; free text
(`desc`, `bank`, `payment_error_message`, ...) is also searched for e-mails and phone numbers,
and its card numbers may be split by spaces, dots or dashes.

What is logged is also made inert (`loggable`): control characters, line and paragraph
separators, bidirectional overrides and lone surrogates in any value or key, at any depth, are
written as escapes (`\\r`, `\\n`, `\\x1b`, `\\u2028`), so text from a notification or a
gateway's answer can never start a log line of its own or disguise the one it is in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from paymux.secrets import REDACTED as REDACTED
from paymux.secrets import Secret

SECRET_KEYS = frozenset(
    {"sign", "signature", "password", "passphrase", "private_key", "authorization", "secret"}
)
CARD_KEYS = frozenset({"card_number", "customer_card_number", "card_mask", "pan"})
PERSONAL_KEYS = frozenset(
    {
        "phone",
        "customer_phone",
        "card_holder_name",
        "card_holder",
        "holder_name",
        "first_name",
        "last_name",
        "customer_first_name",
        "customer_last_name",
        "customer_address",
        "address",
        "customer_city",
        "customer_state",
        "customer_post_code",
        "customer_birth_date",
        "birth_date",
        "card_recipient_birth_date",
    }
)
EMAIL_KEYS = frozenset({"email", "customer_email"})
FREE_TEXT_KEYS = frozenset({"desc", "description", "bank", "payment_error_message", "message"})
"""Text a person or a gateway wrote, which may quote a card number, an e-mail or a phone."""


def _normal(key: str) -> str:
    """`key` spelled one way: `cardHolderName`, `card-holder-name` and `CARD_HOLDER_NAME` agree."""
    return key.lower().replace("_", "").replace("-", "")


_SECRET = frozenset(map(_normal, SECRET_KEYS))
_CARD = frozenset(map(_normal, CARD_KEYS))
_PERSONAL = frozenset(map(_normal, PERSONAL_KEYS))
_EMAIL = frozenset(map(_normal, EMAIL_KEYS))
_FREE_TEXT = frozenset(map(_normal, FREE_TEXT_KEYS))

_CARD_RUN = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
"""13 to 19 digits, alone or in groups split by single spaces or dashes."""
_TEXT_CARD_RUN = re.compile(r"(?<!\d)(?<!\d[ .-])\d(?:[ .-]?\d){12,18}(?![ .-]?\d)")
"""In free text: 13 to 19 digits split by single spaces, dots or dashes, not part of a longer
run."""
_TEXT_EMAIL = re.compile(r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)+")
_TEXT_PHONE = re.compile(r"(?<![\w+])\+?\d(?:[ ().-]{0,2}\d){9,14}(?![ .-]?\d)")
"""10 to 15 digits, maybe after `+`, maybe split by spaces, dots, dashes or parentheses."""


def mask_card(text: str) -> str:
    """Keep the first 6 and last 4 digits of every card-number-like run of digits."""
    return _CARD_RUN.sub(_mask_digits, text)


def _mask_digits(match: re.Match[str]) -> str:
    digits = [char for char in match[0] if char.isdigit()]
    return "".join(digits[:6]) + "*" * (len(digits) - 10) + "".join(digits[-4:])


def mask_free_text(text: str) -> str:
    """Mask every e-mail, card number and phone number written inside free text.

    A number written with a leading `+` is a phone even at card length, so those go first.
    """
    text = _TEXT_EMAIL.sub(lambda match: mask_email(match[0]), text)
    text = _TEXT_PHONE.sub(_mask_international_phone, text)
    text = _TEXT_CARD_RUN.sub(_mask_digits, text)
    return _TEXT_PHONE.sub(lambda match: mask_text(match[0]), text)


def _mask_international_phone(match: re.Match[str]) -> str:
    return mask_text(match[0]) if match[0].startswith("+") else match[0]


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
    kind = _normal(key)
    if value is None or value == "":
        return value
    if kind in _SECRET or isinstance(value, Secret):
        return REDACTED
    if isinstance(value, Mapping):
        return redact(value)
    if isinstance(value, (list, tuple)):
        return [redact_value(key, item) for item in value]
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and kind in _CARD | _EMAIL | _PERSONAL
    ):
        value = str(value)  # a card number or phone sent as a JSON number is still one
    if not isinstance(value, str):
        return value
    if kind in _CARD:
        return mask_card(value) if _CARD_RUN.search(value) else mask_text(value)
    if kind in _EMAIL:
        return mask_email(value)
    if kind in _PERSONAL:
        return mask_text(value)
    if kind in _FREE_TEXT:
        return mask_free_text(value)
    return mask_card(value)


def redact(data: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `data` safe to log or show."""
    return {key: redact_value(str(key), value) for key, value in data.items()}


_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]"
)
"""C0 and C1 controls, DEL, line/paragraph separators, bidi marks and overrides, surrogates."""
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(match: re.Match[str]) -> str:
    char = match[0]
    code = ord(char)
    return _SHORT_ESCAPES.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def escape_control(text: str) -> str:
    """`text` with every character that could break or disguise a log line written as an escape.

    Printable text (any script, emoji) is left as it is; only characters in `_UNSAFE` change.
    """
    return _UNSAFE.sub(_escape_char, text)


def escape(value: Any) -> Any:
    """A copy of `value` whose every string, and every mapping key, at any depth, is escaped.

    Numbers, booleans and None stay as they are; lists, tuples and sets become lists; any other
    object becomes its escaped `str`, since a renderer would otherwise print it unescaped.
    """
    if isinstance(value, str):
        return escape_control(value)
    if value is None or isinstance(value, (bool, int, float, Decimal)):
        return value
    if isinstance(value, Mapping):
        return {escape_control(str(key)): escape(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [escape(item) for item in value]
    if isinstance(value, (bytes, bytearray)):
        return escape_control(bytes(value).decode("utf-8", errors="backslashreplace"))
    return escape_control(str(value))


def loggable(fields: Mapping[str, Any]) -> dict[str, Any]:
    """`fields` redacted, then escaped: safe to hand to any log renderer."""
    escaped: dict[str, Any] = escape(redact(fields))
    return escaped
