"""What a provider instance is given to work with: how to reach its gateway, and who hears
what it does."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from paymux._events import emit, enabled
from paymux._retry import RetryPolicy
from paymux._transport import Exchange
from paymux.ledger import Ledger
from paymux.models import Balance, Payment, Payout, Refund

if TYPE_CHECKING:
    from paymux.sweeper import SweepReport

__all__ = ["Connection", "Observers", "SweepPolicy", "publish"]


class Observers(Protocol):
    """Who hears what a provider did (a `paymux.Registry` is one): passed in, never global."""

    def publish_exchange(self, exchange: Exchange) -> None: ...

    def publish_payment(self, payment: Payment, source: str) -> None: ...

    def publish_refund(self, refund: Refund, source: str) -> None: ...

    def publish_payout(self, payout: Payout, source: str) -> None: ...

    def publish_sweep(self, provider: str, instance: str, report: SweepReport) -> None: ...


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

    def publish_sweep(self, provider: str, instance: str, report: SweepReport) -> None:
        pass


class SweepPolicy:
    """How hard the sweeper may work on one instance, in one process: `concurrency` entries
    settled at once by `paymux.sweep`, and at most `rate` settlings started per second (none:
    no limit) by every sweep and Celery task of the process together."""

    def __init__(self, *, concurrency: int = 4, rate: float | None = None) -> None:
        if concurrency < 1 or (rate is not None and rate <= 0):
            raise ValueError(f"concurrency must be 1 or more, rate positive: {concurrency}, {rate}")
        self.concurrency = concurrency
        self.rate = rate
        self._next = 0.0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SweepPolicy(concurrency={self.concurrency}, rate={self.rate})"

    def take_turn(self) -> float:
        """Take the next turn to settle; the seconds to wait before it starts (turns are spaced
        1/`rate` seconds apart)."""
        if self.rate is None:
            return 0.0
        with self._lock:
            now = time.monotonic()
            turn = max(now, self._next)
            self._next = turn + 1 / self.rate
        return turn - now


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
    ledger: Ledger | None = None
    """Where money-moving calls are written before they are sent (see `paymux.ledger`)."""
    sweep: SweepPolicy = field(default_factory=SweepPolicy)


def publish(
    observers: Observers,
    provider: str,
    instance: str,
    result: Payment | Refund | Payout | Balance,
    source: str,
) -> None:
    """Tell `observers` what a provider reported (a balance is no update of anything)."""
    if isinstance(result, Balance):
        return
    if enabled("debug"):
        emit(
            "debug",
            f"paymux.{type(result).__name__.lower()}",
            provider=provider,
            instance=instance,
            source=source,
            id=result.id,
            status=result.status.value,
            raw=dict(result.raw),
        )
    if isinstance(result, Payment):
        observers.publish_payment(result, source)
    elif isinstance(result, Refund):
        observers.publish_refund(result, source)
    else:
        observers.publish_payout(result, source)
