"""A fake YooKassa API v3 on loopback, for tests and demos: shops, payments, refunds, the
payment page, webhooks from a chosen sender address, and faults on purpose."""

from paymux_yookassa.emulator.api import IDEMPOTENCE_LIFETIME, RecordedRequest
from paymux_yookassa.emulator.faults import FAULT_OPERATIONS, Fault, fault_plan
from paymux_yookassa.emulator.objects import Shop, StoredPayment, StoredRefund
from paymux_yookassa.emulator.server import Emulator
from paymux_yookassa.emulator.webhooks import (
    DEFAULT_FORGED_SENDER,
    DEFAULT_RETRY_DELAYS,
    DEFAULT_SENDER,
    Delivery,
)

__all__ = [
    "DEFAULT_FORGED_SENDER",
    "DEFAULT_RETRY_DELAYS",
    "DEFAULT_SENDER",
    "FAULT_OPERATIONS",
    "IDEMPOTENCE_LIFETIME",
    "Delivery",
    "Emulator",
    "Fault",
    "RecordedRequest",
    "Shop",
    "StoredPayment",
    "StoredRefund",
    "fault_plan",
]
