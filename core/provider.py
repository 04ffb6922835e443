"""The one contract every payment provider offers: providers describe, core executes.

Hosts call the operations (`create`, `status`, `parse_notification`, and `refund`, `capture`,
`cancel`, `payout`, `payout_status`, `balance`, `reconcile` where the provider offers them);
which gateway stands behind them is configuration. A provider author writes only the other
half, the `describe_*` and `read_*` methods: how to build each request and read each answer,
how its notifications are authenticated. Sending, deadlines, retries, exactly-once, logging
and observers are core's, written once for every provider.
"""

from __future__ import annotations

import abc
import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, TypeVar, final, overload

from paymux import __version__ as _version
from paymux._authentication import IPNetwork, check_sender, confirmed
from paymux._calls import Answer, Call, Request
from paymux._events import emit
from paymux._keys import keyed, new_key
from paymux._recording import recorded
from paymux._retry import RetryPolicy
from paymux._runner import Runner
from paymux._steps import Steps, run
from paymux._transport import Transport, masked_url
from paymux.capabilities import Capabilities, Lookup, Operation
from paymux.connection import Connection, Observers, Unobserved, publish
from paymux.errors import (
    InvalidResponse,
    NotFound,
    OrderConflict,
    OutcomeUnknown,
    PaymuxError,
    Unsupported,
    ValidationError,
)
from paymux.incoming import Incoming, NotificationInput
from paymux.models import (
    Balance,
    Notification,
    Payment,
    PaymentRequest,
    Payout,
    PayoutRequest,
    Refund,
    RefundRequest,
    Subject,
)
from paymux.statuses import Authentication

__all__ = ["Connection", "NotificationInput", "Observers", "Provider"]

P = TypeVar("P", bound="Provider")
T = TypeVar("T")
S = TypeVar("S", bound=Payment | Refund | Payout | Balance)


class Provider(abc.ABC):
    """One configured account at one payment gateway. Safe to share between threads."""

    name: ClassVar[str]
    """The provider's registered name, as hosts write it in their configuration."""

    capabilities: ClassVar[Capabilities] = Capabilities()
    """What this provider offers beyond create, status and parse_notification."""

    option_types: ClassVar[Mapping[str, Callable[[str], Any]]] = {}
    """How text given for each `PaymentRequest.options` key (on the command line) is read."""

    instance: str
    """The configured instance name (a host may run several accounts of one provider)."""

    account: str
    """The gateway account this instance acts for (guard records are kept per account)."""

    def __init__(
        self, *, instance: str, connection: Connection, observers: Observers | None = None
    ) -> None:
        self.instance = instance
        self.connection = connection
        self._verified_by = tuple(
            method for method in Authentication if method in self.capabilities.notifications
        )
        self._observers: Observers = observers or Unobserved()
        self._transport = Transport(
            provider=self.name,
            instance=instance,
            connect_timeout=connection.connect_timeout,
            read_timeout=connection.read_timeout,
            user_agent=connection.user_agent or f"paymux/{_version}",
            on_exchange=self._observers.publish_exchange,
            trust_env=connection.trust_env,
        )
        self._runner = Runner(
            provider=self.name,
            instance=instance,
            base_url=connection.base_url,
            transport=self._transport,
            policy=connection.retry,
            authenticate=self.authenticate,
            read_error=self.read_error,
            reconcile=connection.reconcile,
        )

    @classmethod
    @abc.abstractmethod
    def from_settings(
        cls: type[P],
        settings: Mapping[str, Any],
        *,
        instance: str,
        base_dir: Path | None = None,
        observers: Observers | None = None,
    ) -> P:
        """Build a ready provider from configuration values (strings are accepted for numbers).

        Relative paths in `settings` are resolved against `base_dir` (the folder of the
        configuration file), else the current directory. Raises `ConfigurationError`.
        """

    @property
    def base_url(self) -> str:
        return self._runner.base_url

    @property
    def retry_policy(self) -> RetryPolicy:
        """Attempts, pauses and deadline of every call; replace it to tune or to test."""
        return self._runner.policy

    @retry_policy.setter
    def retry_policy(self, policy: RetryPolicy) -> None:
        self._runner.policy = policy

    # -- what a provider describes ---------------------------------------------------------

    @abc.abstractmethod
    def authenticate(self, request: Request) -> Mapping[str, str]:
        """The secret headers of `request` (a signature, credentials), made as it is sent."""

    @abc.abstractmethod
    def read_error(self, request: Request, answer: Answer) -> PaymuxError:
        """The typed error for a non-2xx answer (a `ProviderError`; 5xx: `ProviderServerError`)."""

    @abc.abstractmethod
    def describe_create(self, request: PaymentRequest) -> Call[Payment]:
        """The create call, validated (`ValidationError` before anything is sent), with how the
        gateway makes it exactly-once."""

    @abc.abstractmethod
    def describe_status(
        self, *, payment_id: str | None = None, order_id: str | None = None
    ) -> Call[Payment]:
        """The status call by one of the lookups the capabilities declare."""

    @abc.abstractmethod
    def read_notification(self, incoming: Incoming) -> Notification:
        """What a notification says; with SIGNATURE authentication, verified first.

        Raises `SignatureError` for anything not proven genuine. Core checks the sender and
        re-fetches the subject, when the capabilities say so, around this call.
        """

    def allowed_senders(self) -> Sequence[IPNetwork]:
        """The networks notifications may come from (SENDER authentication)."""
        raise NotImplementedError(f"{self.name} declares sender checks but names no networks")

    def describe_refetch(self, notification: Notification) -> Call[Subject]:
        """How to fetch a notification's subject from the API (REFETCH authentication)."""
        subject = notification.subject
        if isinstance(subject, Refund):
            return self.describe_refund_status(subject.id)  # type: ignore[return-value]
        if isinstance(subject, Payout):
            return self.describe_payout_status(payout_id=subject.id)  # type: ignore[return-value]
        return self.describe_status(payment_id=subject.id)  # type: ignore[return-value]

    def describe_refund(self, request: RefundRequest) -> Call[Refund]:
        raise self._unsupported(Operation.REFUND)

    def describe_refund_status(self, refund_id: str) -> Call[Refund]:
        raise self._unsupported(Operation.REFUND_STATUS)

    def describe_capture(
        self, payment_id: str, amount: Decimal | None, currency: str | None, idempotency_key: str
    ) -> Call[Payment]:
        raise self._unsupported(Operation.CAPTURE)

    def describe_cancel(self, payment_id: str, idempotency_key: str) -> Call[Payment]:
        raise self._unsupported(Operation.CANCEL)

    def describe_payout(self, request: PayoutRequest) -> Call[Payout]:
        raise self._unsupported(Operation.PAYOUT)

    def describe_payout_status(
        self, *, payout_id: str | None = None, order_id: str | None = None
    ) -> Call[Payout]:
        raise self._unsupported(Operation.PAYOUT_STATUS)

    def describe_balance(self) -> Call[Balance]:
        raise self._unsupported(Operation.BALANCE)

    # -- what core executes -----------------------------------------------------------------

    @final
    def create(self, request: PaymentRequest) -> Payment:
        """Create a payment exactly once, even when the gateway's answer is lost.

        Validates before any network call (`ValidationError`). A refusal raises a
        `ProviderError`; a create that may or may not have happened raises `OutcomeUnknown`,
        which `reconcile` settles.
        """
        return self._run(self._create_steps(request))

    @final
    def status(self, *, payment_id: str | None = None, order_id: str | None = None) -> Payment:
        """The payment's current state, by the provider's id or the shop's order_id (one only)."""
        return self._run(self._status_steps(payment_id, order_id))

    @overload
    def reconcile(self, unknown: str, amount: Decimal | None = None) -> Payment: ...

    @overload
    def reconcile(self, unknown: OutcomeUnknown) -> Payment | Refund | Payout: ...

    @final
    def reconcile(
        self, unknown: OutcomeUnknown | str, amount: Decimal | None = None
    ) -> Payment | Refund | Payout:
        """Settle what an `OutcomeUnknown` left open: the payment (refund, payout) it made.

        Given the error, repeats its call the way the gateway makes it exactly-once: looks it
        up by order id (and sends the same bytes again only if there is nothing), or sends it
        again with the same idempotency key while the gateway still remembers the key. Given an
        order id (gateways that look payments up by order id), returns the payment under it:
        `PaymentNotFound` means the create certainly did not happen; with `amount`, a payment
        of another sum is an `OrderConflict`.
        """
        return self._run(self._reconcile_steps(unknown, amount))

    @final
    def refund(self, request: RefundRequest) -> Refund:
        """Give money back from a paid payment, exactly once (see `create` for the errors)."""
        return self._run(self._refund_steps(request))

    @final
    def refund_status(self, refund_id: str) -> Refund:
        return self._run(self._refund_status_steps(refund_id))

    @final
    def capture(
        self,
        payment_id: str,
        amount: Decimal | None = None,
        *,
        currency: str | None = None,
        idempotency_key: str | None = None,
    ) -> Payment:
        """Take the held money of an AUTHORIZED payment, exactly once: all of it, or `amount`
        (in `currency`, the payment's) when less is to be taken."""
        return self._run(self._capture_steps(payment_id, amount, currency, idempotency_key))

    @final
    def cancel(self, payment_id: str, *, idempotency_key: str | None = None) -> Payment:
        """Release the held money of an AUTHORIZED (or a still PENDING) payment, exactly once."""
        return self._run(self._cancel_steps(payment_id, idempotency_key))

    @final
    def payout(self, request: PayoutRequest) -> Payout:
        """Send money out, exactly once (see `create` for the errors)."""
        return self._run(self._payout_steps(request))

    @final
    def payout_status(self, *, payout_id: str | None = None, order_id: str | None = None) -> Payout:
        return self._run(self._payout_status_steps(payout_id, order_id))

    @final
    def balance(self) -> Balance:
        """What the account holds now."""
        return self._run(self._balance_steps())

    @final
    def parse_notification(self, data: Incoming | NotificationInput) -> Notification:
        """Authenticate a notification and return what it says; `SignatureError` if it fails.

        Never returns an unverified notification: the sender is checked before anything is
        read, a signature before anything is parsed, and a re-fetched subject replaces what the
        notification claimed (a claim the API does not confirm is refused).
        """
        return self._run(self._notification_steps(data))

    # -- the operations as steps: run here, blocking, and by `paymux.AsyncProvider` ----------

    def _create_steps(self, request: PaymentRequest) -> Steps[Payment]:
        request = keyed(request)
        call = self.describe_create(request)
        return self._published((yield from self._once(call, "create", request)), "create")

    def _status_steps(self, payment_id: str | None, order_id: str | None) -> Steps[Payment]:
        if (payment_id is None) == (order_id is None):
            raise ValidationError({"payment_id": ["Give payment_id or order_id, not both."]})
        lookup = Lookup.PAYMENT_ID if payment_id is not None else Lookup.ORDER_ID
        if lookup not in self.capabilities.status_by:
            raise Unsupported(
                f"{self.name} finds payments by {_joined(self.capabilities.status_by)} only, "
                f"not by {lookup.value}",
                operation="status",
            )
        call = self.describe_status(payment_id=payment_id, order_id=order_id)
        return self._published((yield from self._runner.fetch(call)), "status")

    def _reconcile_steps(
        self, unknown: OutcomeUnknown | str, amount: Decimal | None
    ) -> Steps[Payment | Refund | Payout]:
        if isinstance(unknown, str):
            return (yield from self._payment_of_order(unknown, amount))
        call = unknown.call
        if not isinstance(call, Call):
            if unknown.order_id is not None and unknown.operation == "create":
                return (yield from self._payment_of_order(unknown.order_id, amount))
            raise Unsupported("this error carries no call to repeat", operation="reconcile")
        if unknown.key_expires_at is not None and time.time() >= unknown.key_expires_at:
            raise OutcomeUnknown(
                f"{unknown.operation}: the gateway has forgotten idempotency key "
                f"{unknown.idempotency_key!r}; sending it again could act twice: settle it by "
                f"hand",
                operation=unknown.operation,
                idempotency_key=unknown.idempotency_key,
                key_expires_at=unknown.key_expires_at,
            )
        result: Payment | Refund | Payout = yield from self._runner.once(
            call, look_first=True, key_expires_at=unknown.key_expires_at
        )
        return self._published(result, "reconcile")

    def _refund_steps(self, request: RefundRequest) -> Steps[Refund]:
        self._require(Operation.REFUND)
        request = keyed(request)
        refunded = yield from self._once(self.describe_refund(request), "refund", request)
        return self._published(refunded, "refund")

    def _refund_status_steps(self, refund_id: str) -> Steps[Refund]:
        self._require(Operation.REFUND_STATUS)
        call = self.describe_refund_status(refund_id)
        return self._published((yield from self._runner.fetch(call)), "status")

    def _capture_steps(
        self,
        payment_id: str,
        amount: Decimal | None,
        currency: str | None,
        idempotency_key: str | None,
    ) -> Steps[Payment]:
        self._require(Operation.CAPTURE)
        key = idempotency_key or new_key()
        call = self.describe_capture(payment_id, amount, currency, key)
        arguments = {"payment_id": payment_id, "amount": amount, "currency": currency, "key": key}
        return self._published((yield from self._once(call, "capture", arguments)), "capture")

    def _cancel_steps(self, payment_id: str, idempotency_key: str | None) -> Steps[Payment]:
        self._require(Operation.CANCEL)
        key = idempotency_key or new_key()
        call = self.describe_cancel(payment_id, key)
        arguments = {"payment_id": payment_id, "key": key}
        return self._published((yield from self._once(call, "cancel", arguments)), "cancel")

    def _payout_steps(self, request: PayoutRequest) -> Steps[Payout]:
        self._require(Operation.PAYOUT)
        request = keyed(request)
        paid_out = yield from self._once(self.describe_payout(request), "payout", request)
        return self._published(paid_out, "payout")

    def _payout_status_steps(self, payout_id: str | None, order_id: str | None) -> Steps[Payout]:
        self._require(Operation.PAYOUT_STATUS)
        if (payout_id is None) == (order_id is None):
            raise ValidationError({"payout_id": ["Give payout_id or order_id, not both."]})
        call = self.describe_payout_status(payout_id=payout_id, order_id=order_id)
        return self._published((yield from self._runner.fetch(call)), "status")

    def _balance_steps(self) -> Steps[Balance]:
        self._require(Operation.BALANCE)
        return self._stamped((yield from self._runner.fetch(self.describe_balance())))

    def _notification_steps(self, data: Incoming | NotificationInput) -> Steps[Notification]:
        incoming = Incoming.of(data)
        methods = self.capabilities.notifications
        if Authentication.SENDER in methods:
            check_sender(incoming, self.allowed_senders())
        notification = self.read_notification(incoming)
        if Authentication.REFETCH in methods:
            try:
                fetched: Subject | NotFound = yield from self._runner.fetch(
                    self.describe_refetch(notification)
                )
            except NotFound as unknown:
                fetched = unknown
            notification = confirmed(notification, fetched)
        notification = dataclasses.replace(
            notification,
            subject=self._stamped(notification.subject),
            verified_by=self._verified_by,
        )
        subject = notification.subject
        emit(
            "info",
            "paymux.notification",
            provider=self.name,
            instance=self.instance,
            kind=notification.kind.value,
            id=subject.id,
            order_id=getattr(subject, "order_id", None),
            status=subject.status.value,
        )
        publish(self._observers, self.name, self.instance, subject, "notification")
        return notification

    def close(self) -> None:
        """Release pooled connections (the gateway's, and the ledger's)."""
        self._transport.close()
        if self.connection.ledger is not None:
            self.connection.ledger.close()

    def __enter__(self: P) -> P:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(instance={self.instance!r}, "
            f"base_url={masked_url(self.base_url)!r})"
        )

    # -- internals --------------------------------------------------------------------------

    def _run(self, steps: Steps[T]) -> T:
        """An operation's steps performed here, blocking."""
        return run(steps, send=self._runner.send, sleep=self._runner.policy.sleep)

    def _once(self, call: Call[T], operation: str, input: object) -> Steps[T]:
        """`call` sent exactly once, written into the instance's ledger around it if it has one."""
        return recorded(
            self.connection.ledger,
            provider=self.name,
            instance=self.instance,
            operation=operation,
            input=input,
            call=call,
            sending=self._runner.once(call),
        )

    def _require(self, operation: Operation) -> None:
        if not self.capabilities.offers(operation):
            raise self._unsupported(operation)

    def _unsupported(self, operation: Operation) -> Unsupported:
        return Unsupported(f"{self.name} does not offer {operation.value}", operation=operation)

    def _payment_of_order(self, order_id: str, amount: Decimal | None) -> Steps[Payment]:
        payment = yield from self._status_steps(None, order_id)
        if amount is not None and payment.amount is None:
            raise InvalidResponse(
                f"reconcile: the payment under order_id {order_id!r} shows no amount to "
                f"compare with {amount}",
                body=dict(payment.raw),
            )
        if amount is not None and payment.amount != Decimal(str(amount)):
            raise OrderConflict(
                f"reconcile: order_id {order_id!r} is a payment of {payment.amount}, not {amount}",
                order_id=order_id,
                payment=payment,
            )
        return payment

    def _stamped(self, result: S) -> S:
        return result if result.instance else dataclasses.replace(result, instance=self.instance)

    def _published(self, result: S, source: str) -> S:
        result = self._stamped(result)
        publish(self._observers, self.name, self.instance, result, source)
        return result


def _joined(lookups: frozenset[Lookup]) -> str:
    return " or ".join(sorted(lookup.value for lookup in lookups))
