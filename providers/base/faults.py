"""Misbehaviour on purpose, for an emulator: which fault to show on which request, and when.

An emulator names its faults in an enum and its operations ("create", "status", ...,
"notification"), and says which faults fit which operation. A `FaultPlan` then picks, for each
request, in this order: the faults the request asked for itself (a header, an order id prefix),
the next one injected for its operation (`inject`), or one drawn by rate (`set_rate`), the rates
side by side (0.3 and 0.1 mean 30 % one, 10 % the other, 60 % none). Thread-safe; seeded for
repeatable runs.
"""

from __future__ import annotations

import enum
import random
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Generic, TypeVar

F = TypeVar("F", bound=enum.Enum)

__all__ = ["FaultPlan"]


class FaultPlan(Generic[F]):
    """The faults an emulator shows. `fits(fault, operation)` says where a fault can strike;
    `default_operation(fault)` is where `inject` and `set_rate` put one given no `on`."""

    def __init__(
        self,
        operations: Sequence[str],
        *,
        fits: Callable[[F, str], bool],
        default_operation: Callable[[F], str],
        rates: Mapping[F, float] | None = None,
        seed: int | None = None,
    ) -> None:
        """`rates` are set on each fault's default operation."""
        self.operations = tuple(operations)
        self._fits = fits
        self._default_operation = default_operation
        self._lock = threading.Lock()
        self._random = random.Random(seed)  # noqa: S311 - picks faults, guards nothing
        self._queued: dict[str, list[F]] = {operation: [] for operation in self.operations}
        self._rates: dict[str, dict[F, float]] = {operation: {} for operation in self.operations}
        for fault, rate in (rates or {}).items():
            self.set_rate(fault, rate)

    def inject(self, fault: F, *, on: str | None = None, times: int = 1) -> None:
        """Show `fault` on the next `times` requests of operation `on`."""
        operation = self._operation(fault, on)
        with self._lock:
            self._queued[operation].extend([fault] * times)

    def set_rate(self, fault: F, rate: float, *, on: str | None = None) -> None:
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
            for operation in self.operations:
                self._queued[operation].clear()
                self._rates[operation].clear()

    def draw(self, operation: str, *, asked: Iterable[F] = ()) -> set[F]:
        """The faults to show for one request of `operation`: those it `asked` for that fit
        there, else the next injected one, else one drawn by rate (or none)."""
        wanted = {fault for fault in asked if self._fits(fault, operation)}
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

    def _operation(self, fault: F, on: str | None) -> str:
        operation = on or self._default_operation(fault)
        if operation not in self.operations:
            raise ValueError(f"on must be one of {', '.join(self.operations)}")
        if not self._fits(fault, operation):
            raise ValueError(f"{fault.value} is not a fault of {operation}")
        return operation
