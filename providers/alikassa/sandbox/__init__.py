"""The AliKassa sandbox: a local, stateful emulator of AliKassa's merchant API."""

from paymux.providers.alikassa.sandbox.faults import Fault, FaultPlan
from paymux.providers.alikassa.sandbox.forms import Button, Form, button_form, read_forms
from paymux.providers.alikassa.sandbox.gateway import (
    DEFAULT_LIFETIME,
    DEFAULT_RETRY_DELAYS,
    DEFAULT_SERVICES,
    Delivery,
    Gateway,
    PaymentClosed,
    RecordedRequest,
    Service,
    StoredPayment,
)
from paymux.providers.alikassa.sandbox.receiver import NotificationReceiver, PostedForm
from paymux.providers.alikassa.sandbox.server import Merchant, Sandbox

__all__ = [
    "DEFAULT_LIFETIME",
    "DEFAULT_RETRY_DELAYS",
    "DEFAULT_SERVICES",
    "Button",
    "Delivery",
    "Fault",
    "FaultPlan",
    "Form",
    "Gateway",
    "Merchant",
    "NotificationReceiver",
    "PaymentClosed",
    "PostedForm",
    "RecordedRequest",
    "Sandbox",
    "Service",
    "StoredPayment",
    "button_form",
    "read_forms",
]
