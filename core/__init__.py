"""paymux: one interface to many payment gateways.

import paymux

provider = paymux.connect("shop")            # which gateway is configuration
payment = provider.create(paymux.PaymentRequest(...))
notification = provider.parse_notification(paymux.Incoming.from_wsgi(request.environ))
"""

__version__ = "0.1.0"  # first: the modules below read it

from paymux._retry import RetryPolicy
from paymux._transport import Exchange
from paymux.capabilities import Capabilities, Lookup, Operation
from paymux.config import Config, InstanceConfig, load_config
from paymux.connection import Connection, Observers, SweepPolicy
from paymux.decisions import Action, Decision, decide
from paymux.errors import (
    AmountOutOfRange,
    AuthenticationError,
    CertificateError,
    ConfigurationError,
    DuplicateOrder,
    GuardStoreError,
    InsufficientFunds,
    InvalidResponse,
    LedgerError,
    NotAllowed,
    NotFound,
    OrderConflict,
    OutcomeUnknown,
    PaymentNotFound,
    PaymuxError,
    PayoutNotFound,
    PluginLoadError,
    ProviderError,
    ProviderNotFound,
    ProviderServerError,
    ProviderUnavailable,
    ProviderValidationError,
    RefundNotFound,
    SignatureError,
    TLSError,
    TransportError,
    UnknownService,
    Unsupported,
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
from paymux.incoming import Incoming, NotificationInput
from paymux.ledger import Entry, EntryState, Ledger, SQLiteLedger
from paymux.models import (
    Balance,
    Customer,
    Notification,
    Payment,
    PaymentDestination,
    PaymentMismatch,
    PaymentRequest,
    Payout,
    PayoutRequest,
    Redirect,
    Refund,
    RefundRequest,
)
from paymux.provider import Provider
from paymux.registry import (
    ProviderInfo,
    Registry,
    connect,
    default_registry,
    register_plugin,
    unregister_plugin,
)
from paymux.secrets import Secret
from paymux.statuses import (
    Authentication,
    NotificationKind,
    PaymentStatus,
    PayoutStatus,
    RefundStatus,
)
from paymux.sweeper import SweepReport, sweep

__all__ = [
    "Action",
    "AmountOutOfRange",
    "Authentication",
    "AuthenticationError",
    "Balance",
    "Capabilities",
    "CertificateError",
    "Config",
    "ConfigurationError",
    "Connection",
    "Customer",
    "Decision",
    "DuplicateOrder",
    "Entry",
    "EntryState",
    "Exchange",
    "GuardStore",
    "GuardStoreError",
    "Incoming",
    "InstanceConfig",
    "InsufficientFunds",
    "InvalidResponse",
    "Ledger",
    "LedgerError",
    "Lookup",
    "MemoryStore",
    "NotAllowed",
    "NotFound",
    "Notification",
    "NotificationGuard",
    "NotificationInput",
    "NotificationKind",
    "Observers",
    "Operation",
    "OrderConflict",
    "OutcomeUnknown",
    "Payment",
    "PaymentDestination",
    "PaymentMismatch",
    "PaymentNotFound",
    "PaymentRequest",
    "PaymentStatus",
    "PaymuxError",
    "Payout",
    "PayoutNotFound",
    "PayoutRequest",
    "PayoutStatus",
    "PluginLoadError",
    "Provider",
    "ProviderError",
    "ProviderInfo",
    "ProviderNotFound",
    "ProviderServerError",
    "ProviderUnavailable",
    "ProviderValidationError",
    "Redirect",
    "Refund",
    "RefundNotFound",
    "RefundRequest",
    "RefundStatus",
    "Registry",
    "RetryPolicy",
    "SQLiteLedger",
    "SQLiteStore",
    "Secret",
    "SignatureError",
    "SweepPolicy",
    "SweepReport",
    "TLSError",
    "TransportError",
    "UnknownService",
    "Unsupported",
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
    "sweep",
    "transition",
    "unregister_plugin",
]
