"""What the PostgreSQL guard store and ledger share: pooled connections, one transaction at a
time each, and failures typed without the DSN's passwords."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus
from psycopg.rows import TupleRow

from paymux.errors import ConfigurationError, PaymuxError

Connection = psycopg.Connection[TupleRow]


class Pool:
    """Connections to one database, one per concurrent transaction; a process forked from this
    one opens its own."""

    def __init__(self, dsn: str, *, what: str) -> None:
        try:
            settings = conninfo_to_dict(dsn)
        except psycopg.Error:
            # libpq's message may quote the DSN, password included.
            raise ConfigurationError(f"{what}: unreadable DSN (not shown)") from None
        self._dsn = dsn
        self._secrets = [str(v) for k, v in settings.items() if "password" in k and v]
        self.shown = " ".join(f"{k}={v}" for k, v in settings.items() if "password" not in k)
        """The DSN without its passwords, for reprs."""
        self._idle: list[Connection] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()

    @contextmanager
    def failures_as(self, error: type[PaymuxError], about: str) -> Iterator[None]:
        """Database failures raised as `error`, naming `about`, never the passwords."""
        try:
            yield
        except psycopg.Error as failure:
            message = " ".join(str(failure).split())  # libpq's hint and caret lines in one
            for secret in self._secrets:
                message = message.replace(secret, "***")
            # Not chained: the original's text is above, redacted.
            raise error(f"{about}: {message}") from None

    def create_table(self, table: str, *definitions: sql.SQL, **parts: sql.Composable) -> None:
        """Run `definitions` (formatted with `{table}`, the table's name, and `parts`) unless
        `table` exists.

        Under an advisory lock, so that processes starting together do not race; looked up
        first, so that a role without CREATE rights may use a table made for it.
        """
        name = sql.Identifier(table)
        with self._connect() as connection, connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (table,))
            [(exists,)] = connection.execute(
                "SELECT to_regclass(%s) IS NOT NULL", (name.as_string(),)
            ).fetchall()
            if not exists:
                for definition in definitions:
                    connection.execute(definition.format(table=name, **parts))

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A pooled connection inside a transaction, committed when the block ends."""
        connection = self._begin()
        try:
            yield connection
            connection.execute("COMMIT")
        except BaseException:
            self._abandon(connection)
            raise
        self._keep(connection)

    def close(self) -> None:
        """Close the idle connections; a transaction after this opens new ones."""
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def _connect(self) -> Connection:
        # Autocommit: `transaction` sends its own BEGIN, the first statement a dropped
        # connection fails.
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
        """Roll back a failed transaction; a connection that cannot is closed, not kept."""
        with suppress(psycopg.Error):
            connection.execute("ROLLBACK")
        if connection.info.transaction_status is TransactionStatus.IDLE:
            self._keep(connection)
        else:
            connection.close()
