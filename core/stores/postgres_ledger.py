"""The ledger in PostgreSQL: one table shared by every host and worker that reaches the database.

Each `update` is one transaction that locks the entry's row (`SELECT ... FOR UPDATE`), so two
workers settling the same entry take turns, on any host. Needs the `postgres` extra (psycopg 3).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager

from psycopg import sql

from paymux.errors import LedgerError
from paymux.ledger import UNSETTLED, Entry, EntryState, Ledger, from_document, to_document
from paymux.stores._closing import Closing
from paymux.stores._postgres import Connection, Pool

__all__ = ["PostgresLedger"]


class PostgresLedger(Ledger, Closing):
    """The ledger in `table` (created if missing) of the database `dsn` names.

    `dsn` is a libpq connection string or a `postgresql://` URI. Connections are pooled, one per
    concurrent transaction; a process forked from this one opens its own. Any database failure
    raises `LedgerError`; neither errors nor `repr` show the DSN's passwords.
    """

    def __init__(self, dsn: str, *, table: str = "paymux_ledger") -> None:
        self.table = table
        self._pool = Pool(dsn, what="PostgreSQL ledger")
        name = sql.Identifier(table)
        self._insert = sql.SQL("INSERT INTO {} VALUES (%s, %s, %s, %s, %s)").format(name)
        self._lock = sql.SQL("SELECT document FROM {} WHERE id = %s FOR UPDATE").format(name)
        self._select = sql.SQL("SELECT document FROM {} WHERE id = %s").format(name)
        self._write = sql.SQL(
            "UPDATE {} SET state = %s, next_at = %s, document = %s WHERE id = %s"
        ).format(name)
        unsettled = sql.SQL(UNSETTLED)  # a constant: the due index's own condition
        self._due = sql.SQL(
            "SELECT document FROM {} WHERE instance = %s AND state IN {}"
            " AND next_at <= %s ORDER BY next_at LIMIT %s"
        ).format(name, unsettled)
        self._in_states = sql.SQL("SELECT document FROM {} WHERE state = ANY(%s)").format(name)
        with self._failures_typed():
            self._pool.create_table(
                table,
                sql.SQL(
                    "CREATE TABLE {table} (id text PRIMARY KEY, instance text NOT NULL,"
                    " state text NOT NULL, next_at double precision NOT NULL,"
                    " document text NOT NULL)"
                ),
                sql.SQL("CREATE INDEX ON {table} (instance, next_at) WHERE state IN {unsettled}"),
                unsettled=unsettled,
            )

    def __repr__(self) -> str:
        return f"PostgresLedger({self._pool.shown!r}, table={self.table!r})"

    def close(self) -> None:
        """Close the idle connections; a call after this opens new ones."""
        self._pool.close()

    def open(self, entry: Entry) -> Entry:
        with self._failures_typed(), self._pool.transaction() as connection:
            connection.execute(
                self._insert,
                (entry.id, entry.instance, entry.state.value, entry.next_at, to_document(entry)),
            )
        return entry

    def update(self, entry_id: str, change: Callable[[Entry], Entry]) -> Entry:
        with self._failures_typed(), self._pool.transaction() as connection:
            changed = change(self._read(connection, self._lock, entry_id))
            connection.execute(
                self._write,
                (changed.state.value, changed.next_at, to_document(changed), entry_id),
            )
        return changed

    def get(self, entry_id: str) -> Entry:
        with self._failures_typed(), self._pool.transaction() as connection:
            return self._read(connection, self._select, entry_id)

    def due(self, instance: str, *, now: float, limit: int = 100) -> list[Entry]:
        with self._failures_typed(), self._pool.transaction() as connection:
            rows = connection.execute(self._due, (instance, now, limit)).fetchall()
        return [from_document(document) for (document,) in rows]

    def entries(self, states: Sequence[EntryState] = tuple(EntryState)) -> list[Entry]:
        with self._failures_typed(), self._pool.transaction() as connection:
            rows = connection.execute(self._in_states, ([s.value for s in states],)).fetchall()
        return [from_document(document) for (document,) in rows]

    @staticmethod
    def _read(connection: Connection, query: sql.Composed, entry_id: str) -> Entry:
        row = connection.execute(query, (entry_id,)).fetchone()
        if row is None:
            raise LedgerError(f"no ledger entry {entry_id!r}")
        return from_document(row[0])

    def _failures_typed(self) -> AbstractContextManager[None]:
        return self._pool.failures_as(LedgerError, f"ledger {self!r}")
