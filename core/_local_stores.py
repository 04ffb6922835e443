"""The guard stores for one machine: a dict for one process, a SQLite file for all of them.

Also `Connections`, what `SQLiteStore` and `paymux.SQLiteLedger` share: one SQLite connection
per thread, kept between transactions (opening one per transaction cost more than the
transaction: closing a file's last connection checkpoints its WAL).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from os import PathLike

from paymux.errors import GuardStoreError
from paymux.stores._closing import Closing

_lock = threading.Lock()
"""Guards every `_Slot` of this process; held across `os.fork()`, so that no transaction
starts while the idle connections are closed and the process forks."""
_everywhere: weakref.WeakSet[Connections] = weakref.WeakSet()
"""Every `Connections` of this process: their idle connections are closed before it forks."""
_inherited: list[sqlite3.Connection] = []
"""Connections a forked child found open in its parent's memory (in a transaction when the
parent forked): kept and never used, since closing one in the child would act on the file's
locks as if they were the child's."""


class _Slot:
    """One thread's connection to one file (None before its first transaction, and after a
    `close`), and whether a transaction is using it."""

    __slots__ = ("__weakref__", "busy", "connection", "doomed", "file", "pid")

    def __init__(self) -> None:
        self.connection: sqlite3.Connection | None = None
        self.file: tuple[int, int] | None = None
        """The (device, inode) of the file the connection opened: when the path names another
        file (or none), the next transaction opens the path again rather than write to the
        deleted or replaced one."""
        self.busy = False
        self.doomed = False
        """`close` came while a transaction used it: closed as that transaction ends."""
        self.pid = os.getpid()

    def detach(self) -> sqlite3.Connection | None:
        """The connection, no longer this slot's: for `_dispose`."""
        connection, self.connection, self.file, self.doomed = self.connection, None, None, False
        return connection

    def __del__(
        self,
        getpid: Callable[[], int] = os.getpid,
        inherited: list[sqlite3.Connection] = _inherited,
    ) -> None:
        # Its thread ended, or its store was dropped unclosed. (What it needs is bound here:
        # at the interpreter's exit the module's globals may be gone.)
        connection = self.connection
        if connection is not None:
            if self.pid == getpid():
                connection.close()
            else:
                inherited.append(connection)


def _dispose(connection: sqlite3.Connection | None, pid: int) -> None:
    """Close `connection`, opened by process `pid`; in a forked child, keep it unused."""
    if connection is None:
        return
    if pid == os.getpid():
        connection.close()
    else:
        _inherited.append(connection)


class Connections:
    """One SQLite connection per thread of this process to the file at `path`.

    `transaction()` lends the calling thread its own connection (opened on first use and
    kept) for one transaction; the caller begins and ends it. A thread's connection is closed
    when the thread ends, by `close`, and, if idle, before this process forks (a child must not
    inherit SQLite's state of an open file); a forked child opens its own. `prepare` runs on
    each new connection (its PRAGMAs).
    """

    def __init__(
        self,
        path: str | PathLike[str],
        *,
        timeout: float,
        prepare: Callable[[sqlite3.Connection], object] = lambda connection: None,
    ) -> None:
        self.path = path
        self.timeout = timeout
        self._prepare = prepare
        self._local = threading.local()
        self._slots: weakref.WeakSet[_Slot] = weakref.WeakSet()
        with _lock:
            _everywhere.add(self)

    def open(self) -> sqlite3.Connection:
        """A new connection, not kept: the caller closes it."""
        # isolation_level=None: no implicit transactions, each one begins its own.
        # check_same_thread=False: `close` and the fork hook close idle connections of other
        # threads; only one thread at a time ever uses a connection.
        connection = sqlite3.connect(
            self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
        )
        try:
            self._prepare(connection)
        except BaseException:
            connection.close()
            raise
        return connection

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection, for the one transaction the block begins and ends.

        Afterwards a connection still in a transaction (its COMMIT or ROLLBACK failed), or one
        a database or file error came through, is closed: the next transaction opens another.
        Inside another transaction of this thread (a change that updates the same file) the
        block gets a connection of its own, as if from another thread.
        """
        slot = self._slot()
        with _lock:
            nested, slot.busy = slot.busy, True
        if nested:
            with closing(self.open()) as connection:
                yield connection
            return
        keep = False
        try:
            if slot.connection is None or slot.file != _identity(self.path):
                _dispose(slot.detach(), slot.pid)
                slot.connection = self.open()
                slot.file = _identity(self.path)
            yield slot.connection
            keep = not slot.connection.in_transaction
        except (sqlite3.Error, OSError):
            raise
        except BaseException:
            keep = slot.connection is not None and not slot.connection.in_transaction
            raise
        finally:
            with _lock:
                slot.busy = False
                closing_now = slot.detach() if slot.doomed or not keep else None
            _dispose(closing_now, slot.pid)

    def close(self) -> None:
        """Close every thread's connection: the idle ones now, one in use as its transaction
        ends. A transaction after this opens a new one."""
        with _lock:
            idle = [slot.detach() for slot in self._idle()]
            for slot in self._slots:
                slot.doomed = slot.busy
        for connection in idle:
            _dispose(connection, os.getpid())

    def _idle(self) -> list[_Slot]:
        """The slots of this process with a connection and no transaction (under `_lock`)."""
        pid = os.getpid()
        return [slot for slot in list(self._slots) if not slot.busy and slot.pid == pid]

    def _slot(self) -> _Slot:
        slot: _Slot | None = getattr(self._local, "slot", None)
        if slot is None or slot.pid != os.getpid():  # forked: the parent's slot goes
            slot = _Slot()
            self._local.slot = slot
            with _lock:
                self._slots.add(slot)
        return slot


def _identity(path: str | PathLike[str]) -> tuple[int, int] | None:
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino


def _before_fork() -> None:
    _lock.acquire()
    for connections in list(_everywhere):
        for slot in connections._idle():
            _dispose(slot.detach(), slot.pid)


def _after_fork_in_parent() -> None:
    _lock.release()


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()


os.register_at_fork(
    before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child
)


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


class SQLiteStore(Closing):
    """A store shared by the processes of one machine: one SQLite file (WAL, `BEGIN IMMEDIATE`).

    Each `update` is one write transaction, on a connection of the calling thread's own (kept
    for its next ones; a forked child opens its own), so the store is safe across threads,
    forks and processes. `timeout` is how long (seconds) to wait for another writer; a lock
    held longer, like any other database failure, raises `GuardStoreError`. A new file is
    readable by its owner only (0600; SQLite gives its WAL and SHM files the same mode). Not
    for network file systems: SQLite's locking needs a local disk. `close` it when done (or
    use it as a context manager): a thread's connection is otherwise closed when the thread
    ends.
    """

    def __init__(self, path: str | PathLike[str], *, timeout: float = 30.0) -> None:
        self.path = path
        self.timeout = timeout
        self._connections = Connections(path, timeout=timeout)
        with self._failures_typed():
            # Created before SQLite sees it, so it is never readable by others, not even briefly;
            # an existing file keeps its mode.
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
            with closing(self._connections.open()) as connection:
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute(
                    "CREATE TABLE IF NOT EXISTS paymux_guard"
                    " (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
                )

    def close(self) -> None:
        """Close the connections of every thread (one in use as its update ends); an `update`
        after this opens a new one."""
        self._connections.close()

    @contextmanager
    def _failures_typed(self) -> Iterator[None]:
        """Database and file failures as `GuardStoreError`: never a raw sqlite3 error."""
        try:
            yield
        except (sqlite3.Error, OSError) as error:
            raise GuardStoreError(f"guard store {os.fspath(self.path)}: {error}") from error

    def update(self, key: str, change: Callable[[str | None], str | None]) -> str | None:
        with self._failures_typed(), self._connections.transaction() as connection:
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

    def migrate_keys(self, provider: str, *, instance: str, account: str) -> int:
        """Move `provider`'s records from keys that named neither instance nor account
        (`<provider>:payment:42`) to keys of this `instance` and `account`; return how many moved.

        For a store kept from before keys named them: run it once, for the one instance that
        wrote those records, before that instance's first notification. A record whose new key
        exists already is left under its old key (which nothing reads any more).
        """
        prefix = f"{provider}:"
        with self._failures_typed(), self._connections.transaction() as connection:
            moved = connection.execute(
                "UPDATE OR IGNORE paymux_guard SET key = ? || substr(key, ?)"
                " WHERE substr(key, 1, ?) = ? AND length(key) - length(replace(key, ':', '')) = 2",
                (f"{prefix}{instance}:{account}:", len(prefix) + 1, len(prefix), prefix),
            )
            return moved.rowcount
