"""paymux: one interface to many payment gateways.

import paymux

provider = paymux.connect("shop")            # which gateway is configuration
payment = provider.create(paymux.PaymentRequest(...))
notification = provider.parse_notification(request.query_string)
"""

from paymux.config import Config, InstanceConfig, load_config
from paymux.decisions import Action, Decision, decide
from paymux.errors import (
    AmountOutOfRange,
    AuthenticationError,
    CertificateError,
    ConfigurationError,
    DuplicateOrder,
    GuardStoreError,
    InvalidResponse,
    NotAllowed,
    OrderConflict,
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
    TLSError,
    TransportError,
    UnknownService,
    ValidationError,
)
from paymux.guards import (
    GuardStore,
    MemoryStore,
    NotificationGuard,
    SQLiteStore,
    Verdict,
    confirm,
    transition,
)
from paymux.hookspecs import hookimpl
from paymux.models import (
    Customer,
    Notification,
    NotificationKind,
    Payment,
    PaymentDestination,
    PaymentMismatch,
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
from paymux.secrets import Secret
from paymux.transport import Exchange

__version__ = "0.1.0"

__all__ = [
    "Action",
    "AmountOutOfRange",
    "AuthenticationError",
    "CertificateError",
    "Config",
    "ConfigurationError",
    "Customer",
    "Decision",
    "DuplicateOrder",
    "Exchange",
    "GuardStore",
    "GuardStoreError",
    "InstanceConfig",
    "InvalidResponse",
    "MemoryStore",
    "NotAllowed",
    "Notification",
    "NotificationGuard",
    "NotificationInput",
    "NotificationKind",
    "OrderConflict",
    "OutcomeUnknown",
    "Payment",
    "PaymentDestination",
    "PaymentMismatch",
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
    "SQLiteStore",
    "Secret",
    "SignatureError",
    "TLSError",
    "TransportError",
    "UnknownService",
    "ValidationError",
    "Verdict",
    "__version__",
    "confirm",
    "connect",
    "decide",
    "default_registry",
    "hookimpl",
    "load_config",
    "register_plugin",
    "transition",
    "unregister_plugin",
]
