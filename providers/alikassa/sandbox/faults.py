"""Misbehaviour on purpose, so a shop can rehearse every failure before production shows it.

Faults are chosen three ways, checked in this order for each request:

1. per request: the header `X-Sandbox-Fault: <fault>` on any merchant API call, or an order_id
   starting with `fault-<fault>-` on create (underscores in the name written as dashes, e.g.
   `fault-internal-error-1001`), which also applies notification faults to that payment;
2. once: `sandbox.inject(fault, on="create" | "status" | "notification", times=1)`;
3. by rate: `Sandbox(fault_rates={Fault.INTERNAL_ERROR: 0.3}, fault_seed=1)` for creates (and
   notifications), `Sandbox(status_fault_rates=...)` for status calls, or
   `sandbox.faults.set_rate(fault, rate, on=...)`: each request draws once, with the given
   probabilities side by side (0.3 and 0.1 mean 30 % one, 10 % the other, 60 % none).

Request faults on create happen *after* the payment is stored, as on the real gateway: the
payment exists although the client hears no proper answer.
"""

from __future__ import annotations

import enum
import random
import threading
from collections.abc import Mapping


class Fault(enum.Enum):
    """What the sandbox can get wrong."""

    INTERNAL_ERROR = "internal_error"
    """Answer 500 {"message": "Internal server error"} (on create: after storing)."""
    DROP_CONNECTION = "drop_connection"
    """Close the connection without answering (on create: after storing)."""
    STALL = "stall"
    """Answer only after `stall_seconds` (5 s by default): beyond a client's read timeout."""
    HTML_ANSWER = "html_answer"
    """Answer 200 with an HTML error page instead of the JSON body."""
    TRUNCATED_JSON = "truncated_json"
    """Answer 200 with the JSON body cut in half."""
    DUPLICATE_NOTIFICATION = "duplicate_notification"
    """Deliver each notification twice."""
    STALE_NOTIFICATION = "stale_notification"
    """After a final notification, deliver an older (genuinely signed) `wait` one: out of order."""
    FORGED_NOTIFICATION = "forged_notification"
    """Before each notification, deliver a copy whose signature does not verify."""

    @property
    def is_notification_fault(self) -> bool:
        return self in NOTIFICATION_FAULTS

    @property
    def prefix(self) -> str:
        """The order_id prefix that asks for this fault on one payment."""
        return f"fault-{self.value.replace('_', '-')}-"


NOTIFICATION_FAULTS = frozenset(
    {Fault.DUPLICATE_NOTIFICATION, Fault.STALE_NOTIFICATION, Fault.FORGED_NOTIFICATION}
)
OPERATIONS = ("create", "status", "notification")
HEADER = "x-sandbox-fault"


class FaultPlan:
    """Which faults the sandbox shows, and when. Thread-safe; seeded for repeatable runs."""

    def __init__(
        self,
        rates: Mapping[Fault, float] | None = None,
        *,
        status_rates: Mapping[Fault, float] | None = None,
        seed: int | None = None,
    ) -> None:
        """`rates` spoil creates (notifications, for notification faults); `status_rates` status."""
        self._lock = threading.Lock()
        self._random = random.Random(seed)  # noqa: S311 - picks faults, guards nothing
        self._queued: dict[str, list[Fault]] = {operation: [] for operation in OPERATIONS}
        self._rates: dict[str, dict[Fault, float]] = {operation: {} for operation in OPERATIONS}
        for fault, rate in (rates or {}).items():
            self.set_rate(fault, rate)
        for fault, rate in (status_rates or {}).items():
            self.set_rate(fault, rate, on="status")

    def inject(self, fault: Fault, *, on: str | None = None, times: int = 1) -> None:
        """Show `fault` on the next `times` requests of operation `on`."""
        operation = self._operation(fault, on)
        with self._lock:
            self._queued[operation].extend([fault] * times)

    def set_rate(self, fault: Fault, rate: float, *, on: str | None = None) -> None:
        """Show `fault` on this share (0 to 1) of operation `on`'s requests."""
        operation = self._operation(fault, on)
        with self._lock:
            rates = {**self._rates[operation], fault: rate}
            if rate <= 0:
                del rates[fault]
            if not 0 <= rate <= 1 or sum(rates.values()) > 1:
                raise ValueError(f"{operation} fault rates must add up to at most 1")
            self._rates[operation] = rates

    def clear(self) -> None:
        """No more faults."""
        with self._lock:
            for operation in OPERATIONS:
                self._queued[operation].clear()
                self._rates[operation].clear()

    def draw(self, operation: str, *, header: str | None = None, order_id: str = "") -> set[Fault]:
        """The faults to show for one request (or, for "notification", one payment)."""
        asked = {fault for fault in Fault if order_id.startswith(fault.prefix)}
        if header:
            asked |= {fault for fault in Fault if fault.value == header.strip().lower()}
        wanted = {
            fault for fault in asked if (operation == "notification") == fault.is_notification_fault
        }
        if wanted:
            return wanted
        with self._lock:
            if self._queued[operation]:
                return {self._queued[operation].pop(0)}
            roll = self._random.random()
            for fault, rate in self._rates[operation].items():
                if roll < rate:
                    return {fault}
                roll -= rate
        return set()

    @staticmethod
    def _operation(fault: Fault, on: str | None) -> str:
        operation = on or ("notification" if fault.is_notification_fault else "create")
        if operation not in OPERATIONS:
            raise ValueError(f"on must be one of {', '.join(OPERATIONS)}")
        if (operation == "notification") != fault.is_notification_fault:
            raise ValueError(f"{fault.value} is not a fault of {operation}")
        return operation
