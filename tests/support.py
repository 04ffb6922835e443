"""Helpers the tests share: request builders and a real notification receiver."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import paymux
from paymux.providers.alikassa.sandbox import NotificationReceiver

Receiver = NotificationReceiver
"""The shop's notification endpoint: a real HTTP server recording every GET."""


def unique_order_id() -> str:
    return f"order-{uuid.uuid4().hex[:12]}"


def payment_request(**overrides: Any) -> paymux.PaymentRequest:
    """A valid AliKassa payment request; keyword arguments replace its fields."""
    values: dict[str, Any] = {
        "order_id": unique_order_id(),
        "amount": Decimal("500.00"),
        "customer": paymux.Customer(ip="18.191.80.10", user_agent="Mozilla/5.0 (X11; Linux)"),
        "options": {"service": "payment_card_rub_hpp"},
    }
    values.update(overrides)
    return paymux.PaymentRequest(**values)
