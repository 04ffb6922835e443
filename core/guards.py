"""Exactly-once handling of notifications, shared by every process of a host.

Gateways repeat a notification until the shop answers 200, send them out of order, and may send
the same one to several workers at once. `NotificationGuard` tells each arrival apart:

    guard = NotificationGuard(SQLiteStore("/var/lib/shop/paymux-guard.sqlite3"))

    notification = provider.parse_notification(request.url)
    with guard.admitted(notification) as verdict:   # committed if the block succeeds
        if verdict.act:
            record(notification.payment.check(order_id=..., amount=...))
    return 503 if verdict.retry else 200            # BUSY: the gateway must repeat it

`admit` does not record a status at once: it takes a *claim* on the payment, and the host's
write turns the claim into an admitted status (`commit`) or drops it (`release`). While a claim
is held, every other arrival for the payment is BUSY, so no copy is answered 200 for a
notification whose write may still fail. A claim never committed (its process died) expires
after `lease` seconds and the gateway's next repeat is admitted again.

Whether a status may follow another is decided by `transition` (see docs/guards.md for the
table); the store only keeps, per payment, one short string (the statuses admitted so far and
the claim) and swaps it atomically (`GuardStore.update`), so any store that can do a
compare-and-swap on one key fits.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Protocol

from paymux._events import emit
from paymux._local_stores import MemoryStore, SQLiteStore
from paymux.errors import ConfigurationError, GuardStoreError
from paymux.models import Notification, Payment, PaymentMismatch, show_money
from paymux.provider import Provider
from paymux.registry import default_registry
from paymux.statuses import (
    NotificationKind,
    PaymentStatus,
    PayoutStatus,
    RefundStatus,
    Status,
    progress,
)

__all__ = [
    "GuardStore",
    "MemoryStore",
    "NotificationGuard",
    "SQLiteStore",
    "Verdict",
    "confirm",
    "transition",
]


class Verdict(str, enum.Enum):
    """What a host should do with a notification. Answer 200 for every verdict but BUSY."""

    NEW = "new"
    """First time this status is reported: act on it."""
    REOPENED = "reopened"
    """PAID after FAILED or CANCELED: money arrived after the payment was given up. Act on it
    (fulfil or refund): a late PAID is real money and must not be dropped."""
    DUPLICATE = "duplicate"
    """This status was admitted before: do nothing."""
    STALE = "stale"
    """Older than what is known (PENDING after PAID, FAILED after PAID, ...): do nothing."""
    BUSY = "busy"
    """Another worker holds an uncommitted claim on this payment right now: do nothing and
    answer a retryable non-200 (503), so the gateway repeats it once that worker is done."""

    @property
    def act(self) -> bool:
        """True when the host should act on the notification (NEW or REOPENED)."""
        return self in (Verdict.NEW, Verdict.REOPENED)

    @property
    def retry(self) -> bool:
        """True when the gateway must repeat the notification later (BUSY): answer non-200."""
        return self is Verdict.BUSY

    def __str__(self) -> str:
        return self.value


_MONEY_MOVED: dict[type[Status], Status] = {
    PaymentStatus: PaymentStatus.PAID,
    RefundStatus: RefundStatus.SUCCEEDED,
    PayoutStatus: PayoutStatus.PAID,
}
"""The status that means the money moved: the one that may come late, after a failure."""


def transition(previous: Status | None, new: Status) -> Verdict:
    """The verdict for a notification of `new` when `previous` is the subject's known status.

    `previous` is None when nothing is known. The rules: a status never repeats (DUPLICATE);
    nothing goes back towards PENDING or UNKNOWN (AUTHORIZED comes after PENDING, before the
    end); PAID (a refund's SUCCEEDED) is never undone; the first of FAILED and CANCELED wins
    over the other; only a late PAID (SUCCEEDED) may follow FAILED or CANCELED (REOPENED).
    """
    if previous is None:
        return Verdict.NEW
    if new is previous:
        return Verdict.DUPLICATE
    if new is _MONEY_MOVED[type(new)] and previous.is_final:
        return Verdict.REOPENED
    if progress(new) > progress(previous) and not previous.is_final:
        return Verdict.NEW
    return Verdict.STALE


class GuardStore(Protocol):
    """Where a guard keeps what it has admitted: one short string per key, swapped atomically.

    The store knows nothing of payments; the guard encodes its state in the value. A Redis,
    SQL or any other store fits when it can run `update` atomically per key across every
    process that shares it.
    """

    def update(self, key: str, change: Callable[[str | None], str | None]) -> str | None:
        """Replace the value under `key` by `change(current)`, atomically; return `current`.

        `current` is None when the key is absent; `change` returning None removes the key and
        returning `current` leaves it untouched. While `change` runs, no other `update` of the
        same key may commit in between (a lock, a transaction, or an optimistic retry). `change`
        is pure and may be called more than once (a retrying store calls it again with the
        newer value); the value returned is the one `change` saw on the attempt that committed.
        """
        ...


class VerdictObservers(Protocol):
    """Who hears a guard's verdicts (a `paymux.Registry` is one)."""

    def publish_verdict(self, notification: Notification, verdict: Verdict) -> None: ...


@dataclass(frozen=True)
class _Record:
    """What a store holds for one payment: the statuses admitted so far and at most one claim.

    Encoded as `pending,paid`, or `pending|paid@1733059200.5` while PAID is claimed until that
    time (seconds of the guard's clock). A value without `|` has no claim.
    """

    statuses: frozenset[Status] = frozenset()
    claim: Status | None = None
    expires: float = 0.0

    @classmethod
    def decode(cls, value: str | None, kind: type[Status] = PaymentStatus) -> _Record:
        if value is None:
            return cls()
        admitted, _, claim = value.partition("|")
        try:
            statuses = frozenset(kind(word) for word in admitted.split(",") if word)
            if not claim:
                return cls(statuses)
            status, _, expires = claim.partition("@")
            return cls(statuses, kind(status), float(expires))
        except ValueError:
            raise GuardStoreError(f"unreadable guard record {value!r}") from None

    def encode(self) -> str | None:
        ordered = sorted(self.statuses, key=lambda status: (progress(status), status.value))
        admitted = ",".join(status.value for status in ordered)
        if self.claim is None:
            return admitted or None
        return f"{admitted}|{self.claim.value}@{self.expires!r}"

    @property
    def known(self) -> Status | None:
        """The furthest status admitted; claims do not count."""
        return max(self.statuses, key=progress) if self.statuses else None

    def verdict(self, status: Status, now: float) -> Verdict:
        if self.claim is not None and now < self.expires:
            return Verdict.BUSY
        if status in self.statuses:
            return Verdict.DUPLICATE
        return transition(self.known, status)

    def claimed(self, status: Status, until: float) -> _Record:
        return replace(self, claim=status, expires=until)

    def committed(self, status: Status) -> _Record:
        return _Record(self.statuses | {status}) if self.claim is status else self

    def released(self, status: Status) -> _Record:
        return _Record(self.statuses) if self.claim is status else self


_EVENTS = {
    Verdict.REOPENED: ("warning", "paymux.guard.reopened"),
    Verdict.DUPLICATE: ("info", "paymux.guard.duplicate"),
    Verdict.STALE: ("info", "paymux.guard.stale"),
    Verdict.BUSY: ("info", "paymux.guard.busy"),
}
"""Every verdict but NEW is logged: each is a notification the host does not act on as usual."""


class NotificationGuard:
    """Admits each (provider, instance, account, kind, payment id, status) once, in an order that
    makes sense, holding off concurrent copies while one worker acts.

    Safe across processes when its store is (`SQLiteStore`, or your own `GuardStore`). `lease`
    is how long (seconds) a claim outlives a worker that never commits or releases it: longer
    than the host's write can take. `clock` must agree across the processes sharing the store.
    """

    def __init__(
        self,
        store: GuardStore,
        *,
        lease: float = 300.0,
        clock: Callable[[], float] = time.time,
        observers: VerdictObservers | None = None,
    ) -> None:
        if not lease > 0:
            raise ConfigurationError(f"guard lease must be a positive number of seconds: {lease}")
        self.store = store
        self.lease = lease
        self.clock = clock
        self.observers = observers
        """Who hears each verdict; None: the plugins of `paymux.register_plugin`."""

    @staticmethod
    def key(notification: Notification) -> str:
        """The store key of a payment: accounts, instances, payouts and payments never share one."""
        return (
            f"{notification.provider}:{notification.instance}:{notification.account}:"
            f"{notification.kind.value}:{notification.subject.id}"
        )

    def admit(self, notification: Notification) -> Verdict:
        """Decide what to do with a verified notification; claim it when it is to act on.

        Of many workers handed the same notification, one gets NEW (or REOPENED) and holds the
        claim; the rest get BUSY until it calls `commit` (then DUPLICATE) or `release` (then
        the next copy is admitted). `admitted` makes both calls for you.
        """
        claim, judge = self._admission(notification)
        return judge(self.store.update(self.key(notification), claim))

    def commit(self, notification: Notification) -> None:
        """Turn this worker's claim into an admitted status, once the host's write succeeded.

        From then on the notification's repeats are DUPLICATE.
        """
        self.store.update(self.key(notification), _committing(notification))

    def release(self, notification: Notification) -> None:
        """Drop this worker's claim after the host's write failed (then answer non-200), so the
        gateway's next repeat is admitted again.

        Call it, like `commit`, only from the worker whose `admit` returned NEW or REOPENED.
        """
        self.store.update(self.key(notification), _releasing(notification))

    @contextmanager
    def admitted(self, notification: Notification) -> Iterator[Verdict]:
        """`admit`; then `commit` when the block completes, or `release` if it raises.

        Let the exception reach the web framework (a 500): the gateway then sends it again.
        """
        verdict = self.admit(notification)
        try:
            yield verdict
        except BaseException:
            if verdict.act:
                self.release(notification)
            raise
        if verdict.act:
            self.commit(notification)

    async def admit_async(self, notification: Notification) -> Verdict:
        """`admit` for asyncio hosts."""
        claim, judge = self._admission(notification)
        return judge(await self._update_async(self.key(notification), claim))

    async def commit_async(self, notification: Notification) -> None:
        """`commit` for asyncio hosts; runs to its end even if the task is cancelled meanwhile
        (a claim left behind would make the shop's write count for nothing)."""
        await asyncio.shield(self._update_async(self.key(notification), _committing(notification)))

    async def release_async(self, notification: Notification) -> None:
        """`release` for asyncio hosts; like `commit_async`, never cut short by a cancel."""
        await asyncio.shield(self._update_async(self.key(notification), _releasing(notification)))

    @asynccontextmanager
    async def admitted_async(self, notification: Notification) -> AsyncIterator[Verdict]:
        """`admitted` for asyncio hosts: a networked store's own async client where it has one
        (`update_async`), any other store's updates in a thread, off the event loop."""
        verdict = await self.admit_async(notification)
        try:
            yield verdict
        except BaseException:
            if verdict.act:
                await self.release_async(notification)
            raise
        if verdict.act:
            await self.commit_async(notification)

    async def _update_async(
        self, key: str, change: Callable[[str | None], str | None]
    ) -> str | None:
        update = getattr(self.store, "update_async", None)
        if update is not None:
            current: str | None = await update(key, change)
            return current
        return await asyncio.to_thread(self.store.update, key, change)

    def _admission(
        self, notification: Notification
    ) -> tuple[Callable[[str | None], str | None], Callable[[str | None], Verdict]]:
        """What `admit` swaps in the store (a claim, when the status is to act on), and how it
        turns the value found into the verdict it reports (logged and published)."""
        subject = notification.subject
        status, kind = subject.status, type(subject.status)
        now = self.clock()

        def claim(value: str | None) -> str | None:
            record = _Record.decode(value, kind)
            if not record.verdict(status, now).act:
                return value
            return record.claimed(status, now + self.lease).encode()

        def judge(value: str | None) -> Verdict:
            before = _Record.decode(value, kind)
            verdict = before.verdict(status, now)
            if verdict in _EVENTS:
                level, event = _EVENTS[verdict]
                emit(
                    level,
                    event,
                    provider=notification.provider,
                    instance=notification.instance,
                    kind=notification.kind.value,
                    payment_id=subject.id,
                    order_id=getattr(subject, "order_id", None),
                    status=status.value,
                    previous=None if before.known is None else before.known.value,
                )
            (self.observers or default_registry()).publish_verdict(notification, verdict)
            return verdict

        return claim, judge


def _committing(notification: Notification) -> Callable[[str | None], str | None]:
    status = notification.subject.status
    return lambda value: _Record.decode(value, type(status)).committed(status).encode()


def _releasing(notification: Notification) -> Callable[[str | None], str | None]:
    status = notification.subject.status
    return lambda value: _Record.decode(value, type(status)).released(status).encode()


def confirm(
    provider: Provider,
    notification: Notification,
    *,
    order_id: str | None = None,
    amount: Decimal | None = None,
    accept_partial: bool = False,
) -> Payment:
    """Ask the provider's status API whether it agrees with `notification`; return its payment.

    A second opinion for hosts that want one before shipping: the status must be the same, and
    the order and sums wherever both sides state them. With `order_id` or `amount`, the
    confirmed payment is also checked against them (`Payment.check`). Raises `PaymentMismatch`
    with every difference; provider errors (`PaymentNotFound`, `TransportError`, ...) pass
    through unchanged.
    """
    if notification.kind is not NotificationKind.PAYMENT:
        raise ValueError(f"confirm knows payments only, not {notification.kind.value}s")
    claimed = notification.payment
    current = provider.status(payment_id=claimed.id)
    reasons: list[str] = []
    if current.id != claimed.id:
        reasons.append(f"status API answered for payment {current.id!r}")
    if current.status is not claimed.status:
        reasons.append(f"status is {current.status.value}, notification says {claimed.status}")
    for name in ("order_id", "amount", "paid_amount"):
        said, known = getattr(claimed, name), getattr(current, name)
        if said is not None and known is not None and said != known:
            if isinstance(said, Decimal) and isinstance(known, Decimal):
                said, known = show_money(said), show_money(known)
            reasons.append(f"{name} is {known}, notification says {said}")
    reasons.extend(current.mismatches(order_id, amount, accept_partial=accept_partial))
    if reasons:
        raise PaymentMismatch(current, reasons)
    return current
