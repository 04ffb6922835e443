"""The ledger: every money-moving call is written down before it is sent, and stays open until
its outcome is known.

A process killed mid-call, an answer lost, a payment whose notification never comes: each
leaves an entry, and `paymux.sweep` settles it later — an unknown outcome by reconciling
(looking it up, or sending the very same bytes with the same key), never by timing out to
"failed"; a pending payment by asking its status on a backoff schedule until it is final.
What cannot be settled goes to the operator queue, with a reason, for a person to resolve;
every change is kept in the entry's history.

    provider = paymux.connect({**settings, "ledger": "/var/lib/shop/paymux-ledger.sqlite3"})
    provider = paymux.connect({**settings, "ledger": "postgresql://paymux@db/shop"})

A path keeps it in one SQLite file (`SQLiteLedger`, for the processes of one machine); a
`postgresql://` URL in a PostgreSQL table (`paymux.stores.PostgresLedger`, for several hosts).

An entry keeps the operation's input (the `PaymentRequest`, with its idempotency key) and the
exact bytes that were sent: to settle it, core describes the call again from the input and
sends it only if the bytes are the same.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from os import PathLike
from typing import Any, Protocol

from paymux._local_stores import Connections
from paymux.errors import LedgerError
from paymux.stores._closing import Closing

__all__ = ["Entry", "EntryState", "Event", "Ledger", "SQLiteLedger"]

BACKOFF = (5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)
"""Seconds before each next look at an entry (the last one repeats)."""


class EntryState(str, enum.Enum):
    """Where an operation stands in the ledger."""

    OPEN = "open"
    """Written before sending: the outcome is not known yet (in flight, or unknown)."""
    PENDING = "pending"
    """The payment exists and waits for its payer: its status is asked on a schedule."""
    SETTLED = "settled"
    """The outcome is known and final."""
    REFUSED = "refused"
    """The gateway refused it: nothing happened."""
    OPERATOR = "operator"
    """Cannot be settled by the policy: a person decides (see `reason`)."""

    @property
    def is_closed(self) -> bool:
        return self in (EntryState.SETTLED, EntryState.REFUSED)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Event:
    """One change of an entry, for the audit trail."""

    at: float
    state: EntryState
    note: str
    by: str = "paymux"


@dataclass(frozen=True)
class Entry:
    """One money-moving operation, from before it was sent until its outcome is final."""

    id: str
    provider: str
    instance: str
    operation: str
    input: dict[str, Any]
    """The operation's arguments as JSON (a `PaymentRequest` with its idempotency key, ...)."""
    body: bytes = field(repr=False)
    """The exact bytes sent (or about to be)."""
    state: EntryState = EntryState.OPEN
    order_id: str | None = None
    idempotency_key: str | None = None
    key_expires_at: float | None = None
    subject_id: str | None = None
    """The gateway's id of what the operation made, once known."""
    status: str | None = None
    """The subject's last known status."""
    reason: str | None = None
    """Why the entry is where it is (the last error, what the operator queue is for)."""
    attempts: int = 0
    """Sweeps of this entry so far."""
    next_at: float = 0.0
    """When the sweeper looks at it next (`time.time()` seconds)."""
    history: tuple[Event, ...] = ()

    def moved(self, state: EntryState, note: str, *, at: float, by: str = "paymux") -> Entry:
        return dataclasses.replace(
            self, state=state, reason=note, history=(*self.history, Event(at, state, note, by))
        )


class Ledger(Protocol):
    """Where entries are kept. Any failure to read or write raises `LedgerError`."""

    def open(self, entry: Entry) -> Entry:
        """Write a new entry (before its call is sent)."""
        ...

    def update(self, entry_id: str, change: Callable[[Entry], Entry]) -> Entry:
        """Replace an entry by `change(entry)`, atomically (no other `update` of it commits in
        between, in any process); the new entry."""
        ...

    def get(self, entry_id: str) -> Entry: ...

    def due(self, instance: str, *, now: float, limit: int = 100) -> list[Entry]:
        """The open and pending entries of `instance` whose time has come, oldest first."""
        ...

    def entries(self, states: Sequence[EntryState] = tuple(EntryState)) -> list[Entry]:
        """Every entry in one of `states`."""
        ...

    def close(self) -> None:
        """Let go of connections held open (the ledger's data stays)."""
        ...


class SQLiteLedger(Ledger, Closing):
    """The ledger in one SQLite file, shared by the processes of one machine (WAL).

    Each call is one `BEGIN IMMEDIATE` transaction on a connection of the calling thread's own,
    kept for its next ones (a forked child opens its own); `close` closes them.
    """

    def __init__(self, path: str | PathLike[str], *, timeout: float = 30.0) -> None:
        self.path = os.fspath(path)
        self.timeout = timeout
        self._connections = Connections(
            self.path,
            timeout=timeout,
            prepare=lambda connection: connection.execute("PRAGMA journal_mode=WAL"),
        )
        with self._transaction() as connection:
            connection.execute(
                "CREATE TABLE IF NOT EXISTS paymux_ledger ("
                " id TEXT PRIMARY KEY, instance TEXT NOT NULL, state TEXT NOT NULL,"
                " next_at REAL NOT NULL, document TEXT NOT NULL)"
            )
            connection.execute(
                "CREATE INDEX IF NOT EXISTS paymux_ledger_due ON paymux_ledger (instance, next_at)"
                f" WHERE state IN {UNSETTLED}"
            )

    def __repr__(self) -> str:
        return f"SQLiteLedger({self.path!r})"

    def close(self) -> None:
        """Close the connections of every thread (one in use as its transaction ends); a call
        after this opens a new one."""
        self._connections.close()

    # -- writing --------------------------------------------------------------------------

    def open(self, entry: Entry) -> Entry:
        """Write a new entry (before its call is sent)."""
        with self._transaction() as connection:
            connection.execute(
                "INSERT INTO paymux_ledger VALUES (?, ?, ?, ?, ?)",
                (entry.id, entry.instance, entry.state.value, entry.next_at, to_document(entry)),
            )
        return entry

    def update(self, entry_id: str, change: Callable[[Entry], Entry]) -> Entry:
        """Replace an entry by `change(entry)`, atomically; the new entry."""
        with self._transaction() as connection:
            changed = change(_read(connection, entry_id))
            connection.execute(
                "UPDATE paymux_ledger SET state = ?, next_at = ?, document = ? WHERE id = ?",
                (changed.state.value, changed.next_at, to_document(changed), entry_id),
            )
        return changed

    # -- reading --------------------------------------------------------------------------

    def get(self, entry_id: str) -> Entry:
        with self._transaction() as connection:
            return _read(connection, entry_id)

    def due(self, instance: str, *, now: float, limit: int = 100) -> list[Entry]:
        with self._transaction() as connection:
            rows = connection.execute(
                f"SELECT document FROM paymux_ledger WHERE instance = ? AND state IN {UNSETTLED}"  # noqa: S608
                " AND next_at <= ? ORDER BY next_at LIMIT ?",
                (instance, now, limit),
            ).fetchall()
        return [from_document(document) for (document,) in rows]

    def entries(self, states: Sequence[EntryState] = tuple(EntryState)) -> list[Entry]:
        marks = ",".join("?" * len(states))
        with self._transaction() as connection:
            rows = connection.execute(
                f"SELECT document FROM paymux_ledger WHERE state IN ({marks})",  # noqa: S608
                [state.value for state in states],
            ).fetchall()
        return [from_document(document) for (document,) in rows]

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            with self._connections.transaction() as connection:
                connection.execute("BEGIN IMMEDIATE")
                try:
                    yield connection
                except BaseException:
                    connection.execute("ROLLBACK")
                    raise
                connection.execute("COMMIT")
        except sqlite3.Error as error:
            raise LedgerError(f"ledger {self.path}: {error}") from None


def new_entry(
    *,
    provider: str,
    instance: str,
    operation: str,
    input: dict[str, Any],
    body: bytes,
    order_id: str | None,
    idempotency_key: str | None,
    key_expires_at: float | None,
    now: float | None = None,
) -> Entry:
    """An OPEN entry for a call about to be sent, first due a backoff step from now."""
    at = time.time() if now is None else now
    return Entry(
        id=str(uuid.uuid4()),
        provider=provider,
        instance=instance,
        operation=operation,
        input=input,
        body=body,
        order_id=order_id,
        idempotency_key=idempotency_key,
        key_expires_at=key_expires_at,
        next_at=at + BACKOFF[0],
        history=(Event(at, EntryState.OPEN, "written before sending"),),
    )


def next_look(entry: Entry, now: float) -> float:
    """When to look at `entry` again after this sweep's look."""
    return now + BACKOFF[min(entry.attempts, len(BACKOFF) - 1)]


def _read(connection: sqlite3.Connection, entry_id: str) -> Entry:
    row = connection.execute(
        "SELECT document FROM paymux_ledger WHERE id = ?", (entry_id,)
    ).fetchone()
    if row is None:
        raise LedgerError(f"no ledger entry {entry_id!r}")
    return from_document(row[0])


UNSETTLED = f"('{EntryState.OPEN.value}', '{EntryState.PENDING.value}')"
"""The states the sweeper looks at, as SQL (the due index covers exactly these)."""


def to_document(entry: Entry) -> str:
    """`entry` as the JSON text a ledger keeps."""
    document = dataclasses.asdict(entry)
    document["body"] = entry.body.hex()
    document["state"] = entry.state.value
    document["history"] = [
        {"at": event.at, "state": event.state.value, "note": event.note, "by": event.by}
        for event in entry.history
    ]
    return json.dumps(document, separators=(",", ":"))


def from_document(text: str) -> Entry:
    document = json.loads(text)
    document["body"] = bytes.fromhex(document["body"])
    document["state"] = EntryState(document["state"])
    document["history"] = tuple(
        Event(item["at"], EntryState(item["state"]), item["note"], item["by"])
        for item in document["history"]
    )
    return Entry(**document)
