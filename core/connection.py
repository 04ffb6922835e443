"""What a provider instance is given to work with: how to reach its gateway, and who hears
what it does."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from paymux._retry import RetryPolicy
from paymux._transport import Exchange
from paymux.models import Payment, Payout, Refund

__all__ = ["Connection", "Observers"]


class Observers(Protocol):
    """Who hears what a provider did (a `paymux.Registry` is one): passed in, never global."""

    def publish_exchange(self, exchange: Exchange) -> None: ...

    def publish_payment(self, payment: Payment, source: str) -> None: ...

    def publish_refund(self, refund: Refund, source: str) -> None: ...

    def publish_payout(self, payout: Payout, source: str) -> None: ...


class Unobserved:
    """The observers of a provider built without any."""

    def publish_exchange(self, exchange: Exchange) -> None:
        pass

    def publish_payment(self, payment: Payment, source: str) -> None:
        pass

    def publish_refund(self, refund: Refund, source: str) -> None:
        pass

    def publish_payout(self, payout: Payout, source: str) -> None:
        pass


@dataclass(frozen=True)
class Connection:
    """How core reaches one instance's gateway: address, timeouts, retries.

    `reconcile` False makes a money-moving call raise `OutcomeUnknown` at its first unknown
    outcome instead of settling it (lookups and repeats) within `retry`'s attempts and deadline.
    """

    base_url: str
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    user_agent: str | None = None
    trust_env: bool = False
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    reconcile: bool = True
