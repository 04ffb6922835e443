"""The HmacPay wire protocol, shared by the provider and the emulator.

Every request is a JSON object POSTed with two headers: `X-Merchant` (the merchant id) and
`X-Signature`, the hex HMAC-SHA256 of the exact body bytes under the merchant's secret.

    POST /payments          {"order_id", "amount": "12.50", "currency", "description"?,
                             "notify_url"?}                 -> 201 a payment
    POST /payments/lookup   {"id"} or {"order_id"}           -> 200 a payment
    a payment:              {"id", "order_id", "status", "amount", "currency", "pay_url"}
    an error:               4xx {"error": {"code", "message"}}

Amounts are decimal strings with at most two places, never JSON numbers. Status words:
`new`, then one of `succeeded`, `declined`, `expired` (final).

A notification is a GET to the payment's `notify_url` whose query carries `event`, `id`,
`order_id`, `status`, `amount`, `currency`, `merchant` and `signature`: the hex HMAC-SHA256 of
the other parameters, sorted by name and form-encoded (`amount=12.50&currency=EUR&...`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import urlencode

SIGNATURE_HEADER = "X-Signature"
MERCHANT_HEADER = "X-Merchant"
SIGNATURE_FIELD = "signature"
NOTIFICATION_FIELDS = ("event", "id", "order_id", "status", "amount", "currency", "merchant")
STATUS_WORDS = ("new", "succeeded", "declined", "expired")


def sign(secret: str, message: bytes) -> str:
    """The hex HMAC-SHA256 of `message` under `secret`."""
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def verify(secret: str, message: bytes, signature: str) -> bool:
    """Whether `signature` is `message`'s signature, compared in constant time.

    Anything but ASCII is simply wrong (`compare_digest` would raise on it).
    """
    return signature.isascii() and hmac.compare_digest(sign(secret, message), signature)


def notification_message(params: Mapping[str, str]) -> bytes:
    """The bytes a notification's signature covers: every other field, sorted, form-encoded."""
    signed = sorted((k, v) for k, v in params.items() if k != SIGNATURE_FIELD)
    return urlencode(signed).encode("utf-8")
