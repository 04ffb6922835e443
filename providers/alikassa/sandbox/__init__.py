"""The AliKassa sandbox: a local, stateful emulator of AliKassa's merchant API."""

from paymux.providers.alikassa.sandbox.gateway import (
    DEFAULT_SERVICES,
    Delivery,
    Fault,
    Gateway,
    RecordedRequest,
    Service,
    StoredPayment,
)
from paymux.providers.alikassa.sandbox.receiver import NotificationReceiver
from paymux.providers.alikassa.sandbox.server import Merchant, Sandbox

__all__ = [
    "DEFAULT_SERVICES",
    "Delivery",
    "Fault",
    "Gateway",
    "Merchant",
    "NotificationReceiver",
    "RecordedRequest",
    "Sandbox",
    "Service",
    "StoredPayment",
]
