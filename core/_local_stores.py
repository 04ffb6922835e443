"""The guard stores for one machine: a dict for one process, a SQLite file for all of them."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from os import PathLike

from paymux.errors import GuardStoreError


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
    threads, forks and processes. `timeout` is how long (seconds) to wait for another writer;
    a lock held longer, like any other database failure, raises `GuardStoreError`. A new file
    is readable by its owner only (0600; SQLite gives its WAL and SHM files the same mode).
    Not for network file systems: SQLite's locking needs a local disk.
    """

    def __init__(self, path: str | PathLike[str], *, timeout: float = 30.0) -> None:
        self.path = path
        self.timeout = timeout
        with self._failures_typed():
            # Created before SQLite sees it, so it is never readable by others, not even briefly;
            # an existing file keeps its mode.
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
            with closing(self._connect()) as connection:
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute(
                    "CREATE TABLE IF NOT EXISTS paymux_guard"
                    " (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
                )

    @contextmanager
    def _failures_typed(self) -> Iterator[None]:
        """Database and file failures as `GuardStoreError`: never a raw sqlite3 error."""
        try:
            yield
        except (sqlite3.Error, OSError) as error:
            raise GuardStoreError(f"guard store {os.fspath(self.path)}: {error}") from error

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: no implicit transactions; `update` opens its own, immediately.
        return sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)

    def update(self, key: str, change: Callable[[str | None], str | None]) -> str | None:
        with self._failures_typed(), closing(self._connect()) as connection:
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
        with self._failures_typed(), closing(self._connect()) as connection:
            moved = connection.execute(
                "UPDATE OR IGNORE paymux_guard SET key = ? || substr(key, ?)"
                " WHERE substr(key, 1, ?) = ? AND length(key) - length(replace(key, ':', '')) = 2",
                (f"{prefix}{instance}:{account}:", len(prefix) + 1, len(prefix), prefix),
            )
            return moved.rowcount
