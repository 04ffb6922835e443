"""The AliKassa sandbox: a local, stateful emulator of AliKassa's merchant API."""

from paymux.providers.alikassa.sandbox.answers import RecordedRequest
from paymux.providers.alikassa.sandbox.balances import Balance
from paymux.providers.alikassa.sandbox.delivery import DEFAULT_RETRY_DELAYS, Delivery
from paymux.providers.alikassa.sandbox.faults import Fault, fault_plan
from paymux.providers.alikassa.sandbox.forms import Button, Form, button_form, read_forms
from paymux.providers.alikassa.sandbox.gateway import Gateway
from paymux.providers.alikassa.sandbox.merchants import Merchant
from paymux.providers.alikassa.sandbox.payments import (
    DEFAULT_LIFETIME,
    DEFAULT_SERVICES,
    PaymentClosed,
    Service,
    StoredPayment,
)
from paymux.providers.alikassa.sandbox.payouts import (
    DEFAULT_PAYOUT_SERVICES,
    PayoutClosed,
    PayoutService,
    StoredPayout,
)
from paymux.providers.alikassa.sandbox.receiver import NotificationReceiver, PostedForm
from paymux.providers.alikassa.sandbox.server import Sandbox

__all__ = [
    "DEFAULT_LIFETIME",
    "DEFAULT_PAYOUT_SERVICES",
    "DEFAULT_RETRY_DELAYS",
    "DEFAULT_SERVICES",
    "Balance",
    "Button",
    "Delivery",
    "Fault",
    "Form",
    "Gateway",
    "Merchant",
    "NotificationReceiver",
    "PaymentClosed",
    "PayoutClosed",
    "PayoutService",
    "PostedForm",
    "RecordedRequest",
    "Sandbox",
    "Service",
    "StoredPayment",
    "StoredPayout",
    "button_form",
    "fault_plan",
    "read_forms",
]
