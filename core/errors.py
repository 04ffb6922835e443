"""Every error paymux raises, under one root.

    PaymuxError
    ├── ConfigurationError          the host's settings, keys or plugins are wrong
    │   ├── ProviderNotFound        no installed provider has that name
    │   ├── PluginLoadError         a plugin failed to import or register
    │   └── CertificateError        a key file is missing, damaged or its password is wrong
    ├── ValidationError             bad input, raised before any network call
    ├── SignatureError              a notification or redirect failed verification
    ├── TransportError              the exchange itself failed (connect, TLS, read)
    │   └── TLSError                TLS failed (certificate, or no TLS there): never retried
    ├── OutcomeUnknown              the provider may or may not have acted: `reconcile` it
    ├── Unsupported                 the provider does not offer that operation (nothing sent)
    ├── GuardStoreError             a notification guard's store could not be read or written
    ├── LedgerError                 the ledger of open operations could not be read or written
    └── ProviderError               the provider answered and refused
        ├── ProviderValidationError the provider's own field validation failed
        ├── DuplicateOrder          a payment with this order_id exists already
        │   └── OrderConflict       ... and it is not the payment asked for (amount, service)
        ├── UnknownService          the service (payment method) does not exist
        ├── AmountOutOfRange        below the service's minimum or above its maximum
        ├── ProviderUnavailable     maintenance: try again later
        ├── NotAllowed              the account may not accept payments
        ├── InsufficientFunds       the balance does not cover a payout
        ├── NotFound                no such object at the provider
        │   ├── PaymentNotFound     no payment with that id or order_id
        │   ├── RefundNotFound      no refund with that id
        │   └── PayoutNotFound      no payout with that id or order_id
        ├── AuthenticationError     the provider rejected the account or the request signature
        ├── ProviderServerError     the provider failed (5xx) on a call that is safe to repeat
        └── InvalidResponse         the provider's answer could not be understood

Errors raised after an HTTP exchange carry its `http_status`, the parsed `body` and the
`request_id` paymux sent as `X-Request-Id`, so a host can quote them to the provider's support.
No error ever carries a key, a password or a request signature.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from paymux._redaction import escape_control

if TYPE_CHECKING:
    from paymux.models import Payment


class PaymuxError(Exception):
    """Root of every error paymux raises."""

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        body: Any = None,
        request_id: str | None = None,
    ) -> None:
        message = escape_control(message)  # gateway text must not break a log line
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.body = body
        self.request_id = request_id

    def __str__(self) -> str:
        extras = [f"HTTP {self.http_status}"] if self.http_status is not None else []
        if self.request_id:
            extras.append(f"request {self.request_id}")
        return f"{self.message} ({', '.join(extras)})" if extras else self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class ConfigurationError(PaymuxError):
    """The host's settings, certificates or plugins are wrong; nothing was sent."""


class ProviderNotFound(ConfigurationError):
    """No installed provider has the requested name."""


class PluginLoadError(ConfigurationError):
    """A plugin failed to import or to register its providers."""

    def __init__(self, message: str, *, plugin: str, distribution: str | None) -> None:
        super().__init__(message)
        self.plugin = plugin
        self.distribution = distribution


class CertificateError(ConfigurationError):
    """A key file is missing or damaged, or its password is wrong (the password is never shown)."""


class ValidationError(PaymuxError):
    """The input is invalid; raised before any network call.

    `fields` maps each offending field to its messages.
    """

    def __init__(self, fields: Mapping[str, Sequence[str]], message: str | None = None) -> None:
        self.fields = {name: list(messages) for name, messages in fields.items()}
        summary = "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in self.fields.items())
        super().__init__(message or f"invalid input: {summary}")


class SignatureError(PaymuxError):
    """A notification or redirect is missing its signature, is malformed, or fails verification."""


class TransportError(PaymuxError):
    """The HTTP exchange failed before an answer arrived.

    `request_sent` is False when the request certainly never reached the provider (connection
    refused, connect timeout, TLS failure), so repeating it cannot duplicate anything.
    """

    def __init__(self, message: str, *, request_sent: bool, request_id: str | None = None) -> None:
        super().__init__(message, request_id=request_id)
        self.request_sent = request_sent


class OutcomeUnknown(PaymuxError):
    """The provider may or may not have acted: never a failure, the payment may exist.

    It carries what reconciles it: the `operation`, the shop's `order_id` and/or the
    `idempotency_key` the request went with (valid at the gateway until `key_expires_at`, a
    `time.time()` reading), and the exact request, which `provider.reconcile(error)` looks up
    or sends again with the same bytes and key, never as a new payment.
    """

    def __init__(
        self,
        message: str,
        *,
        order_id: str | None = None,
        operation: str = "create",
        idempotency_key: str | None = None,
        key_expires_at: float | None = None,
        call: Any = None,
        http_status: int | None = None,
        body: Any = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, http_status=http_status, body=body, request_id=request_id)
        self.order_id = order_id
        self.operation = operation
        self.idempotency_key = idempotency_key
        self.key_expires_at = key_expires_at
        self.call = call
        """The described exchange (`paymux.providers.base.Call`) that `reconcile` repeats."""


class Unsupported(PaymuxError):
    """The provider does not offer `operation` (or not that way, e.g. status by order_id).

    Raised before anything is sent; `paymux providers` and `provider.capabilities` say what each
    provider offers.
    """

    def __init__(self, message: str, *, operation: str) -> None:
        super().__init__(message)
        self.operation = operation


class GuardStoreError(PaymuxError):
    """A notification guard's store failed: locked for longer than its timeout, or unreadable.

    Nothing was admitted or changed; answer non-200 so the gateway repeats the notification.
    """


class LedgerError(PaymuxError):
    """The ledger of open operations could not be read or written.

    Raised before a call is sent when its intent cannot be written: nothing was sent.
    """


class ProviderError(PaymuxError):
    """The provider answered and refused; `code` names the reason in paymux's words."""

    code = "provider_error"


class ProviderValidationError(ProviderError):
    """The provider's own validation failed; `fields` maps each field to its messages."""

    code = "invalid_data"

    def __init__(self, message: str, *, fields: Mapping[str, Sequence[str]], **exchange: Any):
        super().__init__(message, **exchange)
        self.fields = {name: list(messages) for name, messages in fields.items()}


class DuplicateOrder(ProviderError):
    """A payment with this order_id already exists on the provider's side."""

    code = "duplicate_order"


class UnknownService(ProviderError):
    """The requested service (payment method) does not exist for this account."""

    code = "unknown_service"


class AmountOutOfRange(ProviderError):
    """The amount is below the service's minimum or above its maximum."""

    code = "amount_out_of_range"

    def __init__(self, message: str, *, bound: str, limit: Decimal | None, **exchange: Any):
        super().__init__(message, **exchange)
        self.bound = bound
        self.limit = limit


class ProviderUnavailable(ProviderError):
    """The provider is under maintenance; nothing was created. Try again later."""

    code = "maintenance"


class NotAllowed(ProviderError):
    """The account is not allowed to do this."""

    code = "not_allowed"


class NotFound(ProviderError):
    """The provider has no such object."""

    code = "not_found"


class InsufficientFunds(ProviderError):
    """The account's balance does not cover the payout (and its commission); nothing was sent."""

    code = "insufficient_funds"


class PaymentNotFound(NotFound):
    """No payment has that id or order_id."""


class RefundNotFound(NotFound):
    """No refund has that id."""


class PayoutNotFound(NotFound):
    """No payout has that id or order_id."""


class AuthenticationError(ProviderError):
    """The provider rejected the account or the request signature."""

    code = "authentication_failed"


class ProviderServerError(ProviderError):
    """The provider failed (5xx) on a call that is safe to repeat."""

    code = "server_error"


class InvalidResponse(ProviderError):
    """The provider's answer could not be understood (not JSON, or not the documented shape)."""

    code = "invalid_response"


class TLSError(TransportError):
    """TLS verification or the handshake failed: nothing was sent, and repeating will not help.

    The message says which, since each has its own fix: a certificate that does not verify, or
    an address that speaks no TLS at all (an `https://` URL at a plain-HTTP server).
    """

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        super().__init__(message, request_sent=False, request_id=request_id)


class OrderConflict(DuplicateOrder):
    """The order_id belongs to a payment other than the one asked for (amount or service differ).

    Raised instead of returning someone else's payment when a create is reconciled; `payment`
    is the one the provider holds under that order_id.
    """

    code = "order_conflict"

    def __init__(self, message: str, *, order_id: str, payment: Payment, **exchange: Any) -> None:
        super().__init__(message, **exchange)
        self.order_id = order_id
        self.payment = payment
