"""The generic interface every payment provider implements.

Hosts program against `Provider` only; which gateway stands behind it is configuration.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, TypeVar

from paymux.models import Notification, Payment, PaymentRequest

NotificationInput = Mapping[str, str | Sequence[str]] | str | bytes
"""A notification as a web framework hands it over: query parameters, a query string or a URL."""

P = TypeVar("P", bound="Provider")


class Provider(abc.ABC):
    """One configured account at one payment gateway. Safe to share between threads."""

    name: ClassVar[str]
    """The provider's registered name, as hosts write it in their configuration."""

    instance: str
    """The configured instance name (a host may run several accounts of one provider)."""

    @classmethod
    @abc.abstractmethod
    def from_settings(
        cls: type[P], settings: Mapping[str, Any], *, instance: str, base_dir: Path | None = None
    ) -> P:
        """Build a ready provider from configuration values (strings are accepted for numbers).

        Relative paths in `settings` are resolved against `base_dir` (the folder of the
        configuration file), else the current directory. Raises `ConfigurationError`.
        """

    @abc.abstractmethod
    def create(self, request: PaymentRequest) -> Payment:
        """Create a payment. Validates before any network call (`ValidationError`).

        A provider refusal raises a `ProviderError`; when the provider may or may not have
        created the payment, raises `OutcomeUnknown` with the order_id to reconcile with.
        """

    @abc.abstractmethod
    def status(self, *, payment_id: str | None = None, order_id: str | None = None) -> Payment:
        """The payment's current state, by the provider's id or the shop's order_id (one only)."""

    @abc.abstractmethod
    def parse_notification(self, data: NotificationInput) -> Notification:
        """Verify a notification and return what it says; raises `SignatureError` if it fails.

        Never returns an unverified notification.
        """

    def close(self) -> None:  # noqa: B027 - a no-op unless the provider holds resources
        """Release pooled connections."""

    def __enter__(self: P) -> P:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
