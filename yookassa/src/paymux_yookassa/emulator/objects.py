"""The objects YooKassa's API returns, as the emulator keeps them: shops, payments, refunds.

`as_json()` gives each one as `GET /v3/payments/{id}` (or `/v3/refunds/{id}`) answers it: the
fields of YooKassa's reference that apply to its state (`income_amount` once paid,
`expires_at` while held, `confirmation` while pending, `refunded_amount` once refunded,
`cancellation_details` once canceled), amounts as strings with two decimals, times in UTC
with milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from paymux_yookassa.emulator.faults import Fault
from paymux_yookassa.emulator.wire import CENT, iso, money

TEST_CARD = {
    "first6": "555555",
    "last4": "4477",
    "expiry_year": "2030",
    "expiry_month": "12",
    "card_type": "MasterCard",
    "issuer_country": "RU",
}


@dataclass
class Shop:
    """A YooKassa shop: its credentials, its webhook URL, and the settings to connect to it."""

    shop_id: str
    secret_key: str
    gateway_id: str
    webhook_url: str | None = None
    """Where this shop's notifications go; None: the emulator's `webhook_url`."""
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class StoredPayment:
    """A payment as the emulator keeps it; `as_json()` is the object the API returns."""

    id: str
    shop: Shop
    amount: Decimal
    currency: str
    capture: bool
    return_url: str
    confirmation_url: str
    description: str | None
    metadata: dict[str, str | None]
    created_at: float
    confirmation_deadline: float
    commission_rate: Decimal
    payment_method_type: str | None = None
    faults: frozenset[Fault] = frozenset()
    """Notification faults asked for when it was created (X-Emulator-Fault)."""
    status: str = "pending"
    card_used: bool = False
    captured_at: float | None = None
    expires_at: float | None = None
    cancellation: dict[str, str] | None = None
    refunded: Decimal = Decimal(0)
    """The sum of its succeeded refunds."""
    refunding: Decimal = Decimal(0)
    """The sum of its refunds still pending."""

    @property
    def paid(self) -> bool:
        return self.status in ("waiting_for_capture", "succeeded")

    @property
    def refundable_amount(self) -> Decimal:
        return (
            self.amount - self.refunded - self.refunding
            if self.status == "succeeded"
            else Decimal(0)
        )

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "status": self.status,
            "amount": money(self.amount, self.currency),
        }
        if self.paid:
            income = self.amount - (self.amount * self.commission_rate).quantize(
                CENT, ROUND_HALF_UP
            )
            body["income_amount"] = money(income, self.currency)
        if self.description is not None:
            body["description"] = self.description
        body["recipient"] = {"account_id": self.shop.shop_id, "gateway_id": self.shop.gateway_id}
        method = self._payment_method()
        if method is not None:
            body["payment_method"] = method
        if self.captured_at is not None:
            body["captured_at"] = iso(self.captured_at)
        body["created_at"] = iso(self.created_at)
        if self.status == "waiting_for_capture" and self.expires_at is not None:
            body["expires_at"] = iso(self.expires_at)
        if self.status == "pending":
            body["confirmation"] = {
                "type": "redirect",
                "confirmation_url": self.confirmation_url,
                "return_url": self.return_url,
            }
        body["test"] = True
        if self.refunded > 0:
            body["refunded_amount"] = money(self.refunded, self.currency)
        body["paid"] = self.paid
        body["refundable"] = self.refundable_amount > 0
        body["metadata"] = dict(self.metadata)
        if self.cancellation is not None:
            body["cancellation_details"] = dict(self.cancellation)
        return body

    def _payment_method(self) -> dict[str, Any] | None:
        if not self.card_used and self.payment_method_type is None:
            return None
        method: dict[str, Any] = {"type": self.payment_method_type or "bank_card", "id": self.id}
        method.update(saved=False, status="inactive")
        if self.card_used and method["type"] == "bank_card":
            method.update(title=f"Bank card *{TEST_CARD['last4']}", card=dict(TEST_CARD))
        return method


@dataclass
class StoredRefund:
    """A refund as the emulator keeps it; `as_json()` is the object the API returns."""

    id: str
    payment_id: str
    shop: Shop
    amount: Decimal
    currency: str
    created_at: float
    description: str | None
    metadata: dict[str, str | None] | None
    status: str = "pending"
    cancellation: dict[str, str] | None = None

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "payment_id": self.payment_id,
            "status": self.status,
            "amount": money(self.amount, self.currency),
            "created_at": iso(self.created_at),
        }
        if self.description is not None:
            body["description"] = self.description
        if self.metadata is not None:
            body["metadata"] = dict(self.metadata)
        if self.cancellation is not None:
            body["cancellation_details"] = dict(self.cancellation)
        return body
