"""A guard store in PostgreSQL: one table shared by every host that reaches the database.

Each `update` is one transaction: the key's row is inserted if missing, locked with
`SELECT ... FOR UPDATE`, changed or deleted, and committed; a second `update` of the same key
waits for the first to commit, on any host. Needs the `postgres` extra (psycopg 3).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from psycopg import sql

from paymux.errors import GuardStoreError
from paymux.guards import GuardStore
from paymux.stores._closing import Closing
from paymux.stores._postgres import Pool

__all__ = ["PostgresStore"]


class PostgresStore(GuardStore, Closing):
    """A store shared by every process of every host that reaches one PostgreSQL database.

    `dsn` is a libpq connection string or URI; `table` (created if missing) holds `key text
    PRIMARY KEY, value text`. Connections are pooled, one per concurrent `update`, and a
    process forked from this one opens its own. Any database failure raises `GuardStoreError`
    and changes nothing; neither errors nor `repr` show the DSN's passwords. `close` the store
    when done with it.
    """

    def __init__(self, dsn: str, *, table: str = "paymux_guard") -> None:
        self.table = table
        self._pool = Pool(dsn, what="PostgreSQL guard store")
        name = sql.Identifier(table)
        self._insert = sql.SQL(
            "INSERT INTO {} (key, value) VALUES (%s, NULL) ON CONFLICT (key) DO NOTHING"
        ).format(name)
        self._select = sql.SQL("SELECT value FROM {} WHERE key = %s FOR UPDATE").format(name)
        self._delete = sql.SQL("DELETE FROM {} WHERE key = %s").format(name)
        self._write = sql.SQL("UPDATE {} SET value = %s WHERE key = %s").format(name)
        with self._failures_typed():
            # A NULL value only inside an update: the row locking a new key.
            self._pool.create_table(
                table, sql.SQL("CREATE TABLE {table} (key text PRIMARY KEY, value text)")
            )

    def __repr__(self) -> str:
        return f"PostgresStore({self._pool.shown!r}, table={self.table!r})"

    def close(self) -> None:
        """Close the idle connections; an `update` after this opens new ones."""
        self._pool.close()

    def update(self, key: str, change: Callable[[str | None], str | None]) -> str | None:
        with self._failures_typed(), self._pool.transaction() as connection:
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
            return current

    def _failures_typed(self) -> AbstractContextManager[None]:
        return self._pool.failures_as(GuardStoreError, f"guard store {self!r}")
