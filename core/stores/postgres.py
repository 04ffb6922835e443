"""A guard store in PostgreSQL: one table shared by every host that reaches the database.

Each `update` is one transaction: the key's row is inserted if missing, locked with
`SELECT ... FOR UPDATE`, changed or deleted, and committed; a second `update` of the same key
waits for the first to commit, on any host. `update_async` runs the same transaction over
psycopg's asyncio connections. Needs the `postgres` extra (psycopg 3).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from psycopg import sql

from paymux.errors import GuardStoreError
from paymux.guards import GuardStore
from paymux.stores._closing import Closing
from paymux.stores._loops import PerLoop
from paymux.stores._postgres import Pool
from paymux.stores._postgres_async import AsyncPool

__all__ = ["PostgresStore"]

Statement = tuple[sql.Composed, tuple[str, ...]]


class PostgresStore(GuardStore, Closing):
    """A store shared by every process of every host that reaches one PostgreSQL database.

    `dsn` is a libpq connection string or URI; `table` (created if missing) holds `key text
    PRIMARY KEY, value text`. Connections are pooled, one per concurrent `update`, and a
    process forked from this one opens its own; `update_async` has a pool per event loop, of
    at most `CONNECTIONS` connections (more concurrent updates wait for one). Any database
    failure raises `GuardStoreError` and changes nothing; neither errors nor `repr` show the
    DSN's passwords. `close` the store when done with it.
    """

    def __init__(self, dsn: str, *, table: str = "paymux_guard") -> None:
        self.table = table
        self._pool = Pool(dsn, what="PostgreSQL guard store")
        self._async_pools = PerLoop(lambda: AsyncPool(dsn), AsyncPool.close)
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
        """Close the idle connections (see `PerLoop.close` for the async ones: a running loop's
        soon after); an `update` after this opens new ones."""
        self._pool.close()
        self._async_pools.close()

    async def aclose(self) -> None:
        """`close`, the running loop's idle connections closed before this returns."""
        self._pool.close()
        await self._async_pools.aclose()

    def update(self, key: str, change: Callable[[str | None], str | None]) -> str | None:
        with self._failures_typed(), self._pool.transaction() as connection:
            row = None
            while row is None:  # a row deleted between the two statements is not locked: again
                connection.execute(self._insert, (key,))
                row = connection.execute(self._select, (key,)).fetchone()
            current: str | None = row[0]
            writing = self._writing(key, current, change(current))
            if writing is not None:
                connection.execute(*writing)
            return current

    async def update_async(
        self, key: str, change: Callable[[str | None], str | None]
    ) -> str | None:
        """`update` for asyncio hosts: the same transaction on this event loop's connections."""
        with self._failures_typed():
            pool = await self._async_pools.get()
            async with pool.transaction() as connection:
                row = None
                while row is None:
                    await connection.execute(self._insert, (key,))
                    row = await (await connection.execute(self._select, (key,))).fetchone()
                current: str | None = row[0]
                writing = self._writing(key, current, change(current))
                if writing is not None:
                    await connection.execute(*writing)
                return current

    def _writing(self, key: str, current: str | None, new: str | None) -> Statement | None:
        """The statement that puts `new` in place of `current`; None when nothing changes."""
        if new is None:
            return self._delete, (key,)
        if new != current:
            return self._write, (new, key)
        return None

    def _failures_typed(self) -> AbstractContextManager[None]:
        return self._pool.failures_as(GuardStoreError, f"guard store {self!r}")
