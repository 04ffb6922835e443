"""paymux: one interface to many payment gateways.

import paymux

provider = paymux.connect("shop")            # which gateway is configuration
payment = provider.create(paymux.PaymentRequest(...))
notification = provider.parse_notification(request.query_string)
"""

from paymux.config import Config, InstanceConfig, load_config
from paymux.errors import (
    AmountOutOfRange,
    AuthenticationError,
    CertificateError,
    ConfigurationError,
    DuplicateOrder,
    InvalidResponse,
    NotAllowed,
    OutcomeUnknown,
    PaymentNotFound,
    PaymuxError,
    PluginLoadError,
    ProviderError,
    ProviderNotFound,
    ProviderServerError,
    ProviderUnavailable,
    ProviderValidationError,
    SignatureError,
    TransportError,
    UnknownService,
    ValidationError,
)
from paymux.hookspecs import hookimpl
from paymux.models import (
    Customer,
    Notification,
    NotificationKind,
    Payment,
    PaymentRequest,
    PaymentStatus,
    Redirect,
)
from paymux.provider import NotificationInput, Provider
from paymux.registry import (
    ProviderInfo,
    Registry,
    connect,
    default_registry,
    register_plugin,
    unregister_plugin,
)
from paymux.transport import Exchange

__version__ = "0.1.0"

__all__ = [
    "AmountOutOfRange",
    "AuthenticationError",
    "CertificateError",
    "Config",
    "ConfigurationError",
    "Customer",
    "DuplicateOrder",
    "Exchange",
    "InstanceConfig",
    "InvalidResponse",
    "NotAllowed",
    "Notification",
    "NotificationInput",
    "NotificationKind",
    "OutcomeUnknown",
    "Payment",
    "PaymentNotFound",
    "PaymentRequest",
    "PaymentStatus",
    "PaymuxError",
    "PluginLoadError",
    "Provider",
    "ProviderError",
    "ProviderInfo",
    "ProviderNotFound",
    "ProviderServerError",
    "ProviderUnavailable",
    "ProviderValidationError",
    "Redirect",
    "Registry",
    "SignatureError",
    "TransportError",
    "UnknownService",
    "ValidationError",
    "__version__",
    "connect",
    "default_registry",
    "hookimpl",
    "load_config",
    "register_plugin",
    "unregister_plugin",
]
