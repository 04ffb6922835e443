"""The PostgreSQL guard store's connections for asyncio: `Pool`'s twin for one event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import TupleRow

from paymux.stores._loops import CONNECTIONS

AsyncConnection = psycopg.AsyncConnection[TupleRow]


class AsyncPool:
    """Connections of one event loop (`PerLoop` makes one per loop, none shared with a forked
    process), one per concurrent transaction up to `CONNECTIONS`; idle ones are kept."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._idle: list[AsyncConnection] = []
        self._free = asyncio.Semaphore(CONNECTIONS)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A pooled connection inside a transaction, committed when the block ends."""
        async with self._free:
            connection = await self._begin()
            try:
                yield connection
                await connection.execute("COMMIT")
            except BaseException:
                await self._abandon(connection)
                raise
            self._idle.append(connection)

    async def close(self) -> None:
        """Close the idle connections; a transaction after this opens new ones."""
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.close()

    async def _begin(self) -> AsyncConnection:
        """A connection in a new transaction; an idle one the server dropped is replaced once."""
        if self._idle:
            idle = self._idle.pop()
            try:
                await idle.execute("BEGIN")
                return idle
            except psycopg.OperationalError:
                await idle.close()
        # Autocommit, as `Pool`'s: BEGIN is the first statement a dropped connection fails.
        connection = await psycopg.AsyncConnection.connect(self._dsn, autocommit=True)
        try:
            await connection.execute("BEGIN")
        except BaseException:
            await connection.close()
            raise
        return connection

    async def _abandon(self, connection: AsyncConnection) -> None:
        """Roll back a failed transaction; a connection that cannot is closed, not kept."""
        with suppress(psycopg.Error):
            await connection.execute("ROLLBACK")
        if connection.info.transaction_status is TransactionStatus.IDLE:
            self._idle.append(connection)
        else:
            await connection.close()
