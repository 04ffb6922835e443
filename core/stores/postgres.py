"""A guard store in PostgreSQL: one table shared by every host that reaches the database.

Each `update` is one transaction: the key's row is inserted if missing, locked with
`SELECT ... FOR UPDATE`, changed or deleted, and committed; a second `update` of the same key
waits for the first to commit, on any host. Needs the `postgres` extra (psycopg 3).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from types import TracebackType

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus
from psycopg.rows import TupleRow

from paymux.errors import ConfigurationError, GuardStoreError
from paymux.guards import GuardStore

__all__ = ["PostgresStore"]

Connection = psycopg.Connection[TupleRow]


class PostgresStore(GuardStore):
    """A store shared by every process of every host that reaches one PostgreSQL database.

    `dsn` is a libpq connection string or URI; `table` (created if missing, under an advisory
    lock so that processes starting together do not race) holds `key text PRIMARY KEY, value
    text`. Connections are pooled, one per concurrent `update`, and a process forked from
    this one opens its own. Any database failure raises `GuardStoreError` and changes nothing;
    neither errors nor `repr` show the DSN's passwords. `close` the store when done with it.
    """

    def __init__(self, dsn: str, *, table: str = "paymux_guard") -> None:
        try:
            settings = conninfo_to_dict(dsn)
        except psycopg.Error:
            # libpq's message may quote the DSN, password included.
            raise ConfigurationError("PostgreSQL guard store: unreadable DSN (not shown)") from None
        self.table = table
        self._dsn = dsn
        self._secrets = [str(v) for k, v in settings.items() if "password" in k and v]
        self._shown = " ".join(f"{k}={v}" for k, v in settings.items() if "password" not in k)
        self._idle: list[Connection] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()
        name = sql.Identifier(table)
        self._insert = sql.SQL(
            "INSERT INTO {} (key, value) VALUES (%s, NULL) ON CONFLICT (key) DO NOTHING"
        ).format(name)
        self._select = sql.SQL("SELECT value FROM {} WHERE key = %s FOR UPDATE").format(name)
        self._delete = sql.SQL("DELETE FROM {} WHERE key = %s").format(name)
        self._write = sql.SQL("UPDATE {} SET value = %s WHERE key = %s").format(name)
        with self._failures_typed(), self._connect() as connection, connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (table,))
            # Looked up first: a role without CREATE rights may use a table made for it.
            [(exists,)] = connection.execute(
                "SELECT to_regclass(%s) IS NOT NULL", (name.as_string(),)
            ).fetchall()
            if not exists:  # a NULL value only inside an update: the row locking a new key
                create = sql.SQL("CREATE TABLE {} (key text PRIMARY KEY, value text)")
                connection.execute(create.format(name))

    def __repr__(self) -> str:
        return f"PostgresStore({self._shown!r}, table={self.table!r})"

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the idle connections; an `update` after this opens new ones."""
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def update(self, key: str, change: Callable[[str | None], str | None]) -> str | None:
        with self._failures_typed():
            connection = self._begin()
            try:
                while True:
                    # A row deleted between the two statements is not locked: insert it again.
                    connection.execute(self._insert, (key,))
                    row = connection.execute(self._select, (key,)).fetchone()
                    if row is not None:
                        break
                current: str | None = row[0]
                new = change(current)
                if new is None:
                    connection.execute(self._delete, (key,))
                elif new != current:
                    connection.execute(self._write, (new, key))
                connection.execute("COMMIT")
            except BaseException:
                self._abandon(connection)
                raise
            self._keep(connection)
            return current

    @contextmanager
    def _failures_typed(self) -> Iterator[None]:
        """Database failures as `GuardStoreError`, naming the store, never its passwords."""
        try:
            yield
        except psycopg.Error as error:
            message = " ".join(str(error).split())  # libpq's hint and caret lines in one
            for secret in self._secrets:
                message = message.replace(secret, "***")
            # Not chained: the original's text is above, redacted.
            raise GuardStoreError(f"guard store {self!r}: {message}") from None

    def _connect(self) -> Connection:
        # Autocommit: `update` sends its own BEGIN, the first statement a dropped connection fails.
        return psycopg.connect(self._dsn, autocommit=True)

    def _begin(self) -> Connection:
        """A connection in a new transaction; an idle one the server dropped is replaced once."""
        with self._lock:
            if self._pid != os.getpid():
                # Forked: those sockets are the parent's (psycopg never closes them in a child).
                self._idle, self._pid = [], os.getpid()
            idle = self._idle.pop() if self._idle else None
        if idle is not None:
            try:
                idle.execute("BEGIN")
                return idle
            except psycopg.OperationalError:
                idle.close()
        connection = self._connect()
        try:
            connection.execute("BEGIN")
        except BaseException:
            connection.close()
            raise
        return connection

    def _keep(self, connection: Connection) -> None:
        with self._lock:
            self._idle.append(connection)

    def _abandon(self, connection: Connection) -> None:
        """Roll back a failed update; a connection that cannot is closed, not kept."""
        with suppress(psycopg.Error):
            connection.execute("ROLLBACK")
        if connection.info.transaction_status is TransactionStatus.IDLE:
            self._keep(connection)
        else:
            connection.close()
