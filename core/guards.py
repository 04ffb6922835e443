"""Exactly-once handling of notifications, shared by every process of a host.

Gateways repeat a notification until the shop answers 200, send them out of order, and may send
the same one to several workers at once. `NotificationGuard` tells each arrival apart:

    guard = NotificationGuard(SQLiteStore("/var/lib/shop/paymux-guard.sqlite3"))

    notification = provider.parse_notification(request.url)
    with guard.admitted(notification) as verdict:      # released again if the body raises
        if verdict.act:
            record(notification.payment.check(order_id=..., amount=...))
    return 200                                          # for every verdict

Whether a status may follow another is decided by `transition` (see docs/guards.md for the
table); the store only keeps, per payment, the statuses admitted so far and swaps them atomically
(`GuardStore.update`), so any store that can do a compare-and-swap on one key fits.
"""

from __future__ import annotations

import enum
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from decimal import Decimal
from os import PathLike
from typing import Protocol

from paymux.events import emit
from paymux.models import (
    Notification,
    NotificationKind,
    Payment,
    PaymentMismatch,
    PaymentStatus,
    show_money,
)
from paymux.provider import Provider

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
    """What a host should do with a notification. Answer 200 for every verdict."""

    NEW = "new"
    """First time this status is reported: act on it."""
    REOPENED = "reopened"
    """PAID after FAILED or CANCELED: money arrived after the payment was given up. Act on it
    (fulfil or refund): a late PAID is real money and must not be dropped."""
    DUPLICATE = "duplicate"
    """This status was admitted before (a repeat, or another worker got it): do nothing."""
    STALE = "stale"
    """Older than what is known (PENDING after PAID, FAILED after PAID, ...): do nothing."""

    @property
    def act(self) -> bool:
        """True when the host should act on the notification (NEW or REOPENED)."""
        return self in (Verdict.NEW, Verdict.REOPENED)

    def __str__(self) -> str:
        return self.value


_RANK = {
    PaymentStatus.UNKNOWN: 0,
    PaymentStatus.PENDING: 1,
    PaymentStatus.CANCELED: 2,
    PaymentStatus.FAILED: 2,
    PaymentStatus.PAID: 3,
}
"""How far along a payment is. Admitted statuses always climb, so the highest one is current."""


def transition(previous: PaymentStatus | None, new: PaymentStatus) -> Verdict:
    """The verdict for a notification of `new` when `previous` is the payment's known status.

    `previous` is None when nothing is known. The rules: a status never repeats (DUPLICATE);
    nothing goes back towards PENDING or UNKNOWN; PAID is never undone; the first of FAILED and
    CANCELED wins over the other; only a late PAID may follow FAILED or CANCELED (REOPENED).
    """
    if previous is None:
        return Verdict.NEW
    if new is previous:
        return Verdict.DUPLICATE
    if new is PaymentStatus.PAID and previous in (PaymentStatus.FAILED, PaymentStatus.CANCELED):
        return Verdict.REOPENED
    if _RANK[new] > _RANK[previous] and not previous.is_final:
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


class MemoryStore:
    """A store for one process (threads included): a dict behind a lock. Forgets on exit."""

    def __init__(self) -> None:
        self._values: dict[str, str] = {}
        self._lock = threading.Lock()

    def update(self, key: str, change: Callable[[str | None], str | None]) -> str | None:
        with self._lock:
            current = self._values.get(key)
            new = change(current)
            if new is None:
                self._values.pop(key, None)
            else:
                self._values[key] = new
            return current


class SQLiteStore:
    """A store shared by the processes of one machine: one SQLite file (WAL, `BEGIN IMMEDIATE`).

    Each `update` is one write transaction on its own connection, so the store is safe across
    threads, forks and processes. `timeout` is how long (seconds) to wait for another writer.
    Not for network file systems: SQLite's locking needs a local disk.
    """

    def __init__(self, path: str | PathLike[str], *, timeout: float = 30.0) -> None:
        self.path = path
        self.timeout = timeout
        with closing(self._connect()) as connection:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(
                "CREATE TABLE IF NOT EXISTS paymux_guard"
                " (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
            )

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: no implicit transactions; `update` opens its own, immediately.
        return sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)

    def update(self, key: str, change: Callable[[str | None], str | None]) -> str | None:
        with closing(self._connect()) as connection:
            # IMMEDIATE takes the write lock before reading, so two processes cannot both read
            # the same old value and both commit a change made from it.
            connection.execute("BEGIN IMMEDIATE")
            try:
                row = connection.execute(
                    "SELECT value FROM paymux_guard WHERE key = ?", (key,)
                ).fetchone()
                current: str | None = None if row is None else str(row[0])
                new = change(current)
                if new is None:
                    connection.execute("DELETE FROM paymux_guard WHERE key = ?", (key,))
                elif new != current:
                    connection.execute(
                        "INSERT OR REPLACE INTO paymux_guard (key, value) VALUES (?, ?)",
                        (key, new),
                    )
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
            return current


def _decode(value: str | None) -> set[PaymentStatus]:
    return {PaymentStatus(word) for word in value.split(",")} if value else set()


def _encode(statuses: set[PaymentStatus]) -> str | None:
    ordered = sorted(statuses, key=lambda status: (_RANK[status], status.value))
    return ",".join(status.value for status in ordered) or None


def _known(statuses: set[PaymentStatus]) -> PaymentStatus | None:
    return max(statuses, key=_RANK.__getitem__) if statuses else None


def _verdict(statuses: set[PaymentStatus], new: PaymentStatus) -> Verdict:
    if new in statuses:
        return Verdict.DUPLICATE
    return transition(_known(statuses), new)


class NotificationGuard:
    """Admits each (provider, kind, payment id, status) once, in an order that makes sense.

    Safe across processes when its store is (`SQLiteStore`, or your own `GuardStore`).
    """

    def __init__(self, store: GuardStore) -> None:
        self.store = store

    @staticmethod
    def key(notification: Notification) -> str:
        """The store key of a notification's payment (payouts and payments never share one)."""
        payment = notification.payment
        return f"{notification.provider}:{notification.kind.value}:{payment.id}"

    def admit(self, notification: Notification) -> Verdict:
        """Decide what to do with a verified notification, and remember it when it is to act on.

        NEW and REOPENED are recorded at once: of many workers handed the same notification,
        one gets NEW and the rest DUPLICATE. If acting on it then fails, call `release`.
        """
        status = notification.payment.status

        def admit_status(value: str | None) -> str | None:
            statuses = _decode(value)
            return _encode(statuses | {status}) if _verdict(statuses, status).act else value

        before = self.store.update(self.key(notification), admit_status)
        verdict = _verdict(_decode(before), status)
        if verdict is Verdict.REOPENED:
            emit(
                "warning",
                "paymux.guard.reopened",
                provider=notification.provider,
                payment_id=notification.payment.id,
                order_id=notification.payment.order_id,
                status=status.value,
                previous=str(_known(_decode(before))),
            )
        return verdict

    def release(self, notification: Notification) -> None:
        """Forget an admitted notification, so the gateway's next repeat is admitted again.

        Call it only from the worker whose `admit` returned NEW or REOPENED and that failed to
        act (then answer non-200): releasing another worker's admission would let it through
        twice.
        """
        status = notification.payment.status

        def release_status(value: str | None) -> str | None:
            return _encode(_decode(value) - {status})

        self.store.update(self.key(notification), release_status)

    @contextmanager
    def admitted(self, notification: Notification) -> Iterator[Verdict]:
        """`admit`, then `release` if the block raises, so a failed attempt is repeated.

        Let the exception reach the web framework (a 500): the gateway then sends it again.
        """
        verdict = self.admit(notification)
        try:
            yield verdict
        except BaseException:
            if verdict.act:
                self.release(notification)
            raise


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
