"""The HmacPay wire protocol, shared by the provider and the emulator.

Every request is a JSON object POSTed with two headers: `X-Merchant` (the merchant id) and
`X-Signature`, the hex HMAC-SHA256 of the exact body bytes under the merchant's secret.

    POST /payments          {"order_id", "amount": "12.50", "currency", "description"?,
                             "notify_url"?}                       -> 201 a payment
    POST /payments/lookup   {"id"}                                -> 200 a payment
    POST /refunds           {"payment_id", "amount"?}             -> 201 a refund
    POST /refunds/lookup    {"id"}                                -> 200 a refund
    a payment:              {"id", "order_id", "status", "amount", "refunded", "currency",
                             "pay_url"}
    a refund:               {"id", "payment_id", "status", "amount", "currency"}
    an error:               4xx {"error": {"code", "message"}}

A create or a refund also carries `Idempotency-Key`. HmacPay remembers each key for
`KEY_LIFETIME` seconds: a request repeating a key with the same body gets the first answer
again (same status, same body) instead of acting twice; the same key with another body is
refused (`idempotency_key_reused`). Order ids are the shop's own: HmacPay does not keep them
unique, which is why the key, not the order id, makes a create happen once.

Amounts are decimal strings with at most two places, never JSON numbers. Payment status words:
`new`, then one of `succeeded`, `declined`, `expired` (final). A refund (of a `succeeded`
payment, at most what is left of it; no amount: all of it) is `succeeded` at once.

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
IDEMPOTENCY_HEADER = "Idempotency-Key"
KEY_LIFETIME = 24 * 3600.0
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
