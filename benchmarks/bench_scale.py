"""Costs that must stay flat as the stores grow: the guard's admit, the sweep's selection, and
the sandbox's memory.

    python benchmarks/bench_scale.py            # full run, about 2 minutes on 2 cores
    python benchmarks/bench_scale.py --quick    # smoke run: 10^2, 10^3 and 10^4 rows

1. **admit** - `with guard.admitted(notification)` (`NotificationGuard.admit`, then `commit`
   when it acts) on a store pre-filled with 10^3, 10^5 and 10^6 keys, for `SQLiteStore` and
   `paymux.stores.PostgresStore`: notifications of new payments (NEW: a claim, then a commit)
   and repeats of payments the store has (DUPLICATE: one read).
2. **selection** - `ledger.due("shop", now=..., limit=100)`, what every sweep starts with, on a
   ledger of 10^3, 10^5 and 10^6 entries, for `SQLiteLedger` and `paymux.stores.PostgresLedger`.
3. **sandbox memory** - the resident memory of a process running the AliKassa sandbox after
   10^3, 10^4 and 10^5 payments created through its `Gateway` object.

Each store or ledger is made by paymux itself (its file or table, its indexes), then filled by
bulk SQL in its own row format: one SQLite transaction of `executemany`, PostgreSQL `COPY`
(then `VACUUM ANALYZE`, as autovacuum would). The calls are timed after a warm-up, in short
blocks rotating over the sizes, round after round; each cost is the median over the rounds, and
its ratio is against the smallest size's cost in the same run. Without PostgreSQL's binaries
(on PATH, or Debian's /usr/lib/postgresql/*/bin) or psycopg, its rows are skipped, loudly.

The SQLite files are kept in /dev/shm when it has room (the flush at every commit is the
disk's constant, not the store's); PostgreSQL runs with `fsync = off`. Everything is filled
while the sandbox's process (part 3) creates its payments; nothing is timed until it is done.

Run as `python benchmarks/bench_scale.py sandbox-memory --checkpoints A,B,... --traced N`, it is
the sandbox process of part 3, printing one JSON line per checkpoint.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import glob
import itertools
import json
import os
import pwd
import queue
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from _common import JSON, Target, finish, machine_line, median, parser, ratio, rounds_for, table
from bench_sweep import free_port

import paymux
from paymux import (
    EntryState,
    Notification,
    NotificationGuard,
    NotificationKind,
    Payment,
    PaymentStatus,
    SQLiteLedger,
    SQLiteStore,
    Verdict,
)
from paymux._inputs import encode
from paymux.ledger import Entry, new_entry, to_document

ACCOUNT = "93d5df06-996c-48c3-9847-348d6b580b80"
NOW = 1_750_000_000.0
"""The sweep's `now`: every ledger's unsettled entries are due around it."""
FIRST_ID = 40_000_000_000
"""Payment ids as the sandbox makes them (milliseconds since 2025): 11 digits."""
GUARD_VALUE = "pending,paid"
"""What the store holds for a paid payment (the guard's record format): a repeat of its PAID
notification is a DUPLICATE."""
INSTANCES = (("shop", 0.6), ("shop-eu", 0.25), ("shop-kz", 0.1), ("shop-test", 0.05))
"""The ledger's instances and their shares of the entries; the sweep selects `shop`'s."""
CLOSED = ((EntryState.SETTLED, 0.93), (EntryState.REFUSED, 0.05), (EntryState.OPERATOR, 0.02))
"""How the entries that are not open or pending stand."""
TARGET = 1.5


@dataclasses.dataclass(frozen=True)
class Sizes:
    rows: tuple[int, ...]
    """Keys in each guard store, entries in each ledger (the first is the baseline)."""
    unsettled_floor: int
    """Open and pending entries: 1 % of a ledger, but at least this many, so that `shop` has
    more than `limit` due at every size and each selection returns as many entries."""
    limit: int
    """`due(..., limit=)`: the sweep's default, 100 (30 in the smoke run, whose smallest
    ledger has 100 entries)."""
    warm_up: int
    """Untimed calls per store and per ledger before the rounds."""
    admit_block: int
    """Admits per store per round, half of new payments, half repeats."""
    due_block: int
    """Selections per ledger per round."""
    payments: tuple[int, ...]
    """The sandbox's checkpoints: payments created when its memory is read."""
    traced: int
    """Payments created under tracemalloc after the last checkpoint, for the breakdown."""


FULL = Sizes(
    rows=(1_000, 100_000, 1_000_000),
    unsettled_floor=300,
    limit=100,
    warm_up=300,
    admit_block=80,
    due_block=10,
    payments=(1_000, 10_000, 100_000),
    traced=2_000,
)
QUICK = Sizes(
    rows=(100, 1_000, 10_000),
    unsettled_floor=300,
    limit=30,
    warm_up=20,
    admit_block=20,
    due_block=3,
    payments=(100, 1_000, 2_000),
    traced=100,
)


# -- PostgreSQL -------------------------------------------------------------------------------


def postgres_binaries() -> Path | None:
    """The folder of initdb and pg_ctl (as tests/servers.py finds it), or None."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    return None


def postgres_missing() -> str | None:
    """Why the PostgreSQL rows cannot run here, or None."""
    if postgres_binaries() is None:
        return "no PostgreSQL server (pg_ctl, initdb): apt-get install postgresql"
    if os.geteuid() == 0 and (shutil.which("runuser") is None or not _user_exists("postgres")):
        return "as root, needs runuser and a `postgres` user: apt-get install postgresql"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "no psycopg module: pip install 'paymux[postgres]'"
    return None


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """A throw-away PostgreSQL cluster on a free loopback port (the `postgres` user's under
    root, as in tests/servers.py), `fsync` off; yields the DSN of a database in it."""
    binaries = postgres_binaries()
    assert binaries is not None
    as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    folder = Path(tempfile.mkdtemp(prefix="paymux-bench-postgres-"))
    try:
        if as_owner:
            shutil.chown(folder, "postgres")
        data, port = str(folder / "data"), free_port()

        def run(*command: str) -> None:
            subprocess.run(command, check=True, capture_output=True)

        run(*as_owner, f"{binaries}/initdb", "-D", data, "-A", "trust", "-U", "postgres")
        with open(f"{data}/postgresql.conf", "a", encoding="utf-8") as settings:
            settings.write(
                f"port = {port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{folder}'\nfsync = off\n"
                "wal_level = minimal\nmax_wal_senders = 0\n"  # see `copy_into`
            )
        pg_ctl = [*as_owner, f"{binaries}/pg_ctl", "-D", data, "-w"]
        run(*pg_ctl, "-l", f"{folder}/log", "start")
        try:
            address = ("-h", "127.0.0.1", "-p", str(port), "-U", "postgres")
            run(f"{binaries}/createdb", *address, "bench")
            yield f"host=127.0.0.1 port={port} user=postgres dbname=bench"
        finally:
            run(*pg_ctl, "-m", "fast", "stop")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def postgres_version(dsn: str) -> str:
    import psycopg

    with psycopg.connect(dsn) as connection:
        row = connection.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "unknown"


def copy_into(dsn: str, table: str, columns: Sequence[str], rows: Iterator[Sequence[Any]]) -> None:
    """`COPY table (columns) FROM STDIN` of `rows` into the (empty) table, then `VACUUM
    ANALYZE` (what autovacuum does after a bulk load: the planner's statistics, the visibility
    map). Truncated in the same transaction, with `wal_level = minimal`, the COPY writes no WAL
    (and FREEZE no hint bits later)."""
    import psycopg
    from psycopg import sql

    name = sql.Identifier(table)
    statement = sql.SQL("COPY {} ({}) FROM STDIN WITH (FREEZE)").format(
        name, sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with psycopg.connect(dsn) as connection:
        with connection.transaction(), connection.cursor() as cursor:
            cursor.execute(sql.SQL("TRUNCATE {}").format(name))
            with cursor.copy(statement) as copy:
                for row in rows:
                    copy.write_row(row)
        connection.autocommit = True
        connection.execute(sql.SQL("VACUUM ANALYZE {}").format(name))


def postgres_plan(dsn: str, query: str, parameters: Sequence[Any]) -> list[str]:
    import psycopg

    with psycopg.connect(dsn) as connection:
        rows = connection.execute(f"EXPLAIN {query}", parameters).fetchall()
    return [str(row[0]) for row in rows]


# -- SQLite -----------------------------------------------------------------------------------


def insert_into(path: Path, statement: str, rows: Iterator[Sequence[Any]]) -> None:
    """`rows` inserted in one transaction (`executemany`), the file briefly out of WAL mode (a
    1.7 GB transaction through the WAL would be written twice), then back in it."""
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as connection:
        connection.execute("PRAGMA journal_mode=DELETE")
        connection.execute("PRAGMA synchronous=OFF")
        connection.execute("PRAGMA cache_size=-1000000")  # 1 GB: the indexes stay in memory
        connection.execute("BEGIN IMMEDIATE")
        connection.executemany(statement, rows)
        connection.execute("COMMIT")
        [(mode,)] = connection.execute("PRAGMA journal_mode=WAL").fetchall()
        if mode != "wal":
            raise RuntimeError(f"{path}: journal mode {mode}, not wal")


def sqlite_plan(path: Path, query: str, parameters: Sequence[Any]) -> list[str]:
    with contextlib.closing(sqlite3.connect(path)) as connection:
        rows = connection.execute(f"EXPLAIN QUERY PLAN {query}", parameters).fetchall()
    return [str(row[-1]) for row in rows]


def scratch_folder(needed: int) -> Path:
    """Where the SQLite files go: in memory (/dev/shm) when it has room, so that what is timed
    is SQLite and not the disk's flush at every commit (a constant, whatever the size)."""
    shared = Path("/dev/shm")  # noqa: S108 - a folder of our own is made in it
    if shared.is_dir() and os.access(shared, os.W_OK):
        space = os.statvfs(shared)
        if space.f_bavail * space.f_frsize > 2 * needed:
            return Path(tempfile.mkdtemp(prefix="paymux-bench-scale-", dir=shared))
    return Path(tempfile.mkdtemp(prefix="paymux-bench-scale-"))


# -- the rows ---------------------------------------------------------------------------------


def guard_key(payment_id: int) -> str:
    """`NotificationGuard.key` of a payment notification of `payment_id` to `shop`."""
    return f"alikassa:shop:{ACCOUNT}:payment:{payment_id}"


def guard_rows(size: int) -> Iterator[tuple[str, str]]:
    for number in range(size):
        yield guard_key(FIRST_ID + number), GUARD_VALUE


def notification(payment_id: int) -> Notification:
    payment = Payment(
        provider="alikassa",
        id=str(payment_id),
        order_id=f"order-{payment_id}",
        status=PaymentStatus.PAID,
        amount=Decimal("500.00"),
        paid_amount=Decimal("500.00"),
    )
    return Notification(
        provider="alikassa",
        instance="shop",
        account=ACCOUNT,
        kind=NotificationKind.PAYMENT,
        subject=payment,
        fields={},
    )


_ID, _ORDER, _INSTANCE, _NEXT = "@id@", "@order@", "@instance@", "4242424242.5"
"""Stand-ins in the document templates, replaced row by row."""


def document_templates() -> dict[EntryState, str]:
    """A realistic entry document (to_document's own output: the create's input, the exact
    body, the history) for each state, with stand-ins for id, order, instance and next_at."""
    request = paymux.PaymentRequest(
        order_id=_ORDER,
        amount=Decimal("500.00"),
        customer=paymux.Customer(ip="18.191.80.10", user_agent="Mozilla/5.0 (X11; Linux x86_64)"),
        idempotency_key="9b2f0c1e-5d4a-4c1b-8e7f-1a2b3c4d5e6f",
        options={
            "service": "payment_card_rub_hpp",
            "success_redirect_id": 1,
            "fail_redirect_id": 1,
            "notification_endpoint_id": 5,
        },
    )
    body = (
        b'{"amount":"500.00","order_id":"order-1000001","service":"payment_card_rub_hpp",'
        b'"customer_ip":"18.191.80.10","customer_browser_user_agent":'
        b'"Mozilla\\/5.0 (X11; Linux x86_64)","success_redirect_id":1,"fail_redirect_id":1,'
        b'"notification_endpoint_id":5}'
    )
    opened = new_entry(
        provider="alikassa",
        instance=_INSTANCE,
        operation="create",
        input=encode("create", request),
        body=body,
        order_id=_ORDER,
        idempotency_key=request.idempotency_key,
        key_expires_at=None,
        now=NOW - 7200,
    )
    opened = dataclasses.replace(opened, id=_ID, next_at=float(_NEXT))
    pending = opened.moved(EntryState.PENDING, "created: waiting for the payer", at=NOW - 7190)
    pending = dataclasses.replace(pending, subject_id="40000012345", status="pending")

    def closed(state: EntryState, note: str, source: Entry = pending) -> str:
        return to_document(source.moved(state, note, at=NOW - 3600))

    return {
        EntryState.OPEN: to_document(opened),
        EntryState.PENDING: to_document(pending),
        EntryState.SETTLED: closed(EntryState.SETTLED, "paid"),
        EntryState.REFUSED: closed(EntryState.REFUSED, "refused: 400 Minimum amount", opened),
        EntryState.OPERATOR: closed(EntryState.OPERATOR, "paid 400.00 of 500.00"),
    }


def _pick(choices: Sequence[tuple[Any, float]], draw: float) -> Any:
    for choice, share in choices:
        if draw < share:
            return choice
        draw -= share
    return choices[-1][0]


def unsettled_count(size: int, floor: int) -> int:
    return min(size, max(floor, size // 100))


def ledger_rows(size: int, unsettled: int, seed: int) -> Iterator[tuple[str, str, str, float, str]]:
    """`size` rows of the ledger's table (id, instance, state, next_at, document), `unsettled`
    of them open or pending, due from two hours before `NOW` to one hour after; in id order
    (random UUIDs, sorted: the same index, built faster)."""
    rng = random.Random(seed)  # noqa: S311 - test data
    templates = {state: Template(text) for state, text in document_templates().items()}
    hexes = sorted(f"{rng.getrandbits(128):032x}" for _ in range(size))
    open_ones = set(rng.sample(range(size), unsettled))
    for number, digits in enumerate(hexes):
        variant = "89ab"[int(digits[16], 16) & 3]
        entry_id = (
            f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-{variant}{digits[17:20]}-{digits[20:]}"
        )
        instance = _pick(INSTANCES, rng.random())
        if number in open_ones:
            state = EntryState.OPEN if rng.random() < 0.25 else EntryState.PENDING
            next_at = NOW + rng.uniform(-7200.0, 3600.0)
        else:
            state = _pick(CLOSED, rng.random())
            next_at = NOW - rng.uniform(3600.0, 365 * 86400.0)
        document = templates[state].filled(
            {_ID: entry_id, _ORDER: f"order-{number}", _INSTANCE: instance, _NEXT: repr(next_at)}
        )
        yield entry_id, instance, state.value, next_at, document


class Template:
    """A document with stand-ins (`_ID`, `_ORDER`, `_INSTANCE`, `_NEXT`), filled row by row
    (a join of its pieces: `str.format` or `replace` on 1.7 kB would cost more than SQLite)."""

    def __init__(self, text: str) -> None:
        stand_ins = "|".join(re.escape(stand_in) for stand_in in (_ID, _ORDER, _INSTANCE, _NEXT))
        self.pieces = re.split(f"({stand_ins})", text)
        self.slots = [(i, piece) for i, piece in enumerate(self.pieces) if i % 2]

    def filled(self, values: dict[str, str]) -> str:
        pieces = self.pieces.copy()
        for i, stand_in in self.slots:
            pieces[i] = values[stand_in]
        return "".join(pieces)


DUE_SQL = (
    "SELECT document FROM paymux_ledger WHERE instance = {p} AND state IN ('open', 'pending')"
    " AND next_at <= {p} ORDER BY next_at LIMIT {p}"
)
"""The ledgers' own selection (see `SQLiteLedger.due`), for the query plans shown."""


# -- timing -----------------------------------------------------------------------------------


@dataclasses.dataclass
class Samples:
    """Per-round costs (µs per call) of one store or ledger, by kind of call."""

    by_kind: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    returned: list[int] = dataclasses.field(default_factory=list)

    def add(self, kind: str, microseconds: float) -> None:
        self.by_kind.setdefault(kind, []).append(microseconds)

    def median(self, kind: str) -> float:
        return median(self.by_kind[kind])


def rotated(items: Sequence[int], number: int) -> list[int]:
    shift = number % len(items)
    return [*items[shift:], *items[:shift]]


def time_admits(
    guards: dict[int, NotificationGuard], sizes: Sizes, rounds: int
) -> dict[int, Samples]:
    """Rounds of `admit_block` notifications per store, half new (NEW: claim and commit), half
    repeats of a random payment it has (DUPLICATE), alternating; stores in rotating order."""
    rng = random.Random(3)  # noqa: S311 - picks payments
    fresh = {size: FIRST_ID + size + 1_000_000 for size in guards}  # past every filled id
    samples = {size: Samples() for size in guards}

    def calls(size: int, count: int) -> list[tuple[str, Notification]]:
        made: list[tuple[str, Notification]] = []
        for number in range(count):
            if number % 2:
                made.append(("existing", notification(FIRST_ID + rng.randrange(size))))
            else:
                fresh[size] += 1
                made.append(("new", notification(fresh[size])))
        return made

    def run(guard: NotificationGuard, block: list[tuple[str, Notification]]) -> dict[str, float]:
        spent = {"new": 0.0, "existing": 0.0}
        clock = time.perf_counter
        for kind, given in block:
            started = clock()
            with guard.admitted(given) as verdict:
                pass
            spent[kind] += clock() - started
            expected = Verdict.NEW if kind == "new" else Verdict.DUPLICATE
            if verdict is not expected:
                raise RuntimeError(f"{kind} payment {given.subject.id}: {verdict}, not {expected}")
        return spent

    for size, guard in guards.items():
        run(guard, calls(size, sizes.warm_up))
    for number in range(rounds):
        for size in rotated(list(guards), number):
            spent = run(guards[size], calls(size, sizes.admit_block))
            for kind, seconds in spent.items():
                samples[size].add(kind, seconds / (sizes.admit_block / 2) * 1e6)
    return samples


def time_selections(
    ledgers: dict[int, paymux.Ledger], sizes: Sizes, rounds: int
) -> dict[int, Samples]:
    """Rounds of `due_block` selections per ledger, ledgers in rotating order."""
    samples = {size: Samples() for size in ledgers}

    def run(ledger: paymux.Ledger, count: int) -> tuple[float, int]:
        started = time.perf_counter()
        for _ in range(count):
            due = ledger.due("shop", now=NOW, limit=sizes.limit)
        return time.perf_counter() - started, len(due)

    for ledger in ledgers.values():
        run(ledger, max(1, sizes.warm_up // 10))
    for number in range(rounds):
        for size in rotated(list(ledgers), number):
            seconds, returned = run(ledgers[size], sizes.due_block)
            samples[size].add("due", seconds / sizes.due_block * 1e6)
            samples[size].returned.append(returned)
    return samples


# -- the parts --------------------------------------------------------------------------------


@dataclasses.dataclass
class Part:
    """One store or ledger kind's results at every size."""

    name: str
    fill_seconds: dict[int, float]
    samples: dict[int, Samples] = dataclasses.field(default_factory=dict)
    plan: list[str] = dataclasses.field(default_factory=list)
    """The query plan of its lookup (a key, the due entries) at the largest size."""

    def as_json(self) -> JSON:
        return {
            "name": self.name,
            "fill_seconds": self.fill_seconds,
            "plan_at_largest": self.plan,
            "by_size": {
                size: {
                    **{f"{kind}_us": sample.median(kind) for kind in sample.by_kind},
                    "rounds_us": sample.by_kind,
                    "returned": sample.returned,
                }
                for size, sample in self.samples.items()
            },
        }


def filled(what: str, sizes: Sizes, fill: Callable[[int], None]) -> dict[int, float]:
    """`fill(size)` for every size; the seconds each took (printed as it goes)."""
    seconds: dict[int, float] = {}
    for size in sizes.rows:
        started = time.perf_counter()
        fill(size)
        seconds[size] = time.perf_counter() - started
        print(f"  {what}: {size:,} rows in {seconds[size]:.1f} s", flush=True)
    return seconds


class SQLiteParts:
    """`SQLiteStore` and `SQLiteLedger` files of every size, in `folder`."""

    def __init__(self, folder: Path, sizes: Sizes) -> None:
        self.folder, self.sizes = folder, sizes

    def guard_path(self, size: int) -> Path:
        return self.folder / f"guard-{size}.sqlite3"

    def ledger_path(self, size: int) -> Path:
        return self.folder / f"ledger-{size}.sqlite3"

    def fill_guards(self) -> Part:
        def fill(size: int) -> None:
            SQLiteStore(self.guard_path(size)).close()  # its own file (0600) and table
            insert_into(
                self.guard_path(size),
                "INSERT INTO paymux_guard (key, value) VALUES (?, ?)",
                guard_rows(size),
            )

        return Part("SQLiteStore", filled("SQLiteStore", self.sizes, fill))

    def fill_ledgers(self) -> Part:
        def fill(size: int) -> None:
            SQLiteLedger(self.ledger_path(size)).close()  # its own table and partial due index
            rows = ledger_rows(size, unsettled_count(size, self.sizes.unsettled_floor), size)
            insert_into(
                self.ledger_path(size), "INSERT INTO paymux_ledger VALUES (?, ?, ?, ?, ?)", rows
            )

        return Part("SQLiteLedger", filled("SQLiteLedger", self.sizes, fill))

    def time_guards(self, part: Part, rounds: int) -> None:
        stores = {size: SQLiteStore(self.guard_path(size)) for size in self.sizes.rows}
        try:
            guards = {size: NotificationGuard(store) for size, store in stores.items()}
            part.samples = time_admits(guards, self.sizes, rounds)
        finally:
            for store in stores.values():
                store.close()
        largest = self.guard_path(self.sizes.rows[-1])
        part.plan = sqlite_plan(largest, "SELECT value FROM paymux_guard WHERE key = ?", ("k",))

    def time_ledgers(self, part: Part, rounds: int) -> None:
        ledgers = {size: SQLiteLedger(self.ledger_path(size)) for size in self.sizes.rows}
        try:
            part.samples = time_selections(dict(ledgers), self.sizes, rounds)
        finally:
            for ledger in ledgers.values():
                ledger.close()
        largest = self.ledger_path(self.sizes.rows[-1])
        part.plan = sqlite_plan(largest, DUE_SQL.format(p="?"), ("shop", NOW, self.sizes.limit))


class PostgresParts:
    """`PostgresStore` and `PostgresLedger` tables of every size, in the database `dsn`."""

    def __init__(self, dsn: str, sizes: Sizes) -> None:
        self.dsn, self.sizes = dsn, sizes

    def fill_guards(self) -> Part:
        from paymux.stores import PostgresStore

        def fill(size: int) -> None:
            with PostgresStore(self.dsn, table=f"guard_{size}") as store:  # its own table
                copy_into(self.dsn, store.table, ("key", "value"), guard_rows(size))

        return Part("PostgresStore", filled("PostgresStore", self.sizes, fill))

    def fill_ledgers(self) -> Part:
        from paymux.stores import PostgresLedger

        columns = ("id", "instance", "state", "next_at", "document")

        def fill(size: int) -> None:
            # The ledger makes its own table and partial due index.
            with PostgresLedger(self.dsn, table=f"ledger_{size}") as ledger:
                rows = ledger_rows(size, unsettled_count(size, self.sizes.unsettled_floor), size)
                copy_into(self.dsn, ledger.table, columns, rows)

        return Part("PostgresLedger", filled("PostgresLedger", self.sizes, fill))

    def time_guards(self, part: Part, rounds: int) -> None:
        from paymux.stores import PostgresStore

        stores = {size: PostgresStore(self.dsn, table=f"guard_{size}") for size in self.sizes.rows}
        try:
            guards = {size: NotificationGuard(store) for size, store in stores.items()}
            part.samples = time_admits(guards, self.sizes, rounds)
        finally:
            for store in stores.values():
                store.close()
        largest = f"guard_{self.sizes.rows[-1]}"
        query = f"SELECT value FROM {largest} WHERE key = %s FOR UPDATE"  # noqa: S608
        part.plan = postgres_plan(self.dsn, query, ("k",))

    def time_ledgers(self, part: Part, rounds: int) -> None:
        from paymux.stores import PostgresLedger

        ledgers = {
            size: PostgresLedger(self.dsn, table=f"ledger_{size}") for size in self.sizes.rows
        }
        try:
            part.samples = time_selections(dict(ledgers), self.sizes, rounds)
        finally:
            for ledger in ledgers.values():
                ledger.close()
        largest = f"ledger_{self.sizes.rows[-1]}"
        query = DUE_SQL.format(p="%s").replace("paymux_ledger", largest)
        part.plan = postgres_plan(self.dsn, query, ("shop", NOW, self.sizes.limit))


# -- the sandbox's memory ---------------------------------------------------------------------


def sandbox_memory(argv: Sequence[str]) -> int:
    """The sandbox process: a `Sandbox` running (its HTTP server up, one merchant), one payment
    created over HTTP by paymux, then `--payments` more through `sandbox.gateway.handle` with
    the same headers and a body of that payment's shape, each signed (a thread signs while the
    gateway works: over HTTP, 10^5 creates would take some 5 minutes). One JSON line per
    checkpoint: payments so far, resident memory; then the allocations of `--traced` more
    payments under tracemalloc, by file."""
    options = argparse.ArgumentParser(prog="bench_scale.py sandbox-memory")
    options.add_argument("--checkpoints", required=True)
    options.add_argument("--traced", type=int, default=0)
    args = options.parse_args(argv)
    checkpoints = sorted(int(value) for value in args.checkpoints.split(","))

    from paymux.providers.alikassa import Signer, phpjson
    from paymux.providers.alikassa.sandbox import Sandbox

    def report(**values: Any) -> None:
        print(json.dumps(values), flush=True)

    # 1024-bit keys: the client's signing is not what is measured here.
    with (
        tempfile.TemporaryDirectory(prefix="paymux-bench-sandbox-") as folder,
        Sandbox(key_size=1024) as sandbox,
    ):
        merchant = sandbox.create_merchant(Path(folder) / "payment")
        with paymux.connect(merchant.settings) as provider:
            provider.create(
                paymux.PaymentRequest(
                    order_id="first",
                    amount=Decimal("500"),
                    customer=paymux.Customer(
                        ip="18.191.80.10", user_agent="Mozilla/5.0 (X11; Linux x86_64)"
                    ),
                    options={
                        "service": "payment_card_rub_hpp",
                        "success_redirect_id": 1,
                        "fail_redirect_id": 1,
                        "notification_endpoint_id": 5,
                    },
                )
            )
        [first] = sandbox.requests
        template = json.loads(first.body)
        signer = Signer.from_certificate_dir(merchant.payment_certificate.path)
        signed: queue.Queue[tuple[bytes, str]] = queue.Queue(maxsize=256)
        total = checkpoints[-1] + args.traced

        def sign() -> None:
            for number in range(total):
                body = phpjson.dumps_bytes({**template, "order_id": f"scale-{number}"})
                signed.put((body, signer.sign(body)))

        signing = threading.Thread(target=sign, daemon=True)
        signing.start()
        gateway = sandbox.gateway

        def create(count: int) -> None:
            for _ in range(count):
                body, signature = signed.get()
                answer = gateway.handle(
                    "POST", "/v1/payment", {**first.headers, "sign": signature}, body
                )
                if answer.status != 200:
                    raise RuntimeError(f"the sandbox answered {answer.status}: {answer.body}")

        started, done = time.perf_counter(), 0
        report(payments=0, rss=resident(), seconds=0.0)
        for checkpoint in checkpoints:
            create(checkpoint - done)
            done = checkpoint
            report(
                payments=done,
                rss=resident(),
                seconds=time.perf_counter() - started,
                recorded_requests=len(sandbox.requests),
            )
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        create(args.traced)
        grown = tracemalloc.take_snapshot().compare_to(before, "filename")
        tracemalloc.stop()
        signing.join()
        report(
            traced=args.traced,
            by_file=[
                {"file": str(stat.traceback[0].filename), "bytes": stat.size_diff}
                for stat in grown[:6]
            ],
        )
    return 0


def resident() -> int:
    """This process's resident memory, bytes, after a full collection."""
    gc.collect()
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def start_sandbox_memory(sizes: Sizes) -> subprocess.Popen[str]:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "sandbox-memory",
        "--checkpoints",
        ",".join(map(str, sizes.payments)),
        "--traced",
        str(sizes.traced),
    ]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)


def sandbox_results(process: subprocess.Popen[str]) -> JSON:
    output, _ = process.communicate(timeout=900)
    if process.returncode != 0:
        raise RuntimeError(f"the sandbox process exited with code {process.returncode}")
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    checkpoints = [line for line in lines if "payments" in line]
    [traced] = [line for line in lines if "traced" in line]
    return {"checkpoints": checkpoints, "tracemalloc": traced}


# -- the report -------------------------------------------------------------------------------


def size_label(size: int) -> str:
    exponent = len(str(size)) - 1
    return f"10^{exponent}" if size == 10**exponent else f"{size:,}"


def admit_table(parts: Sequence[Part], sizes: Sizes) -> str:
    rows = []
    base = sizes.rows[0]
    for part in parts:
        for size in sizes.rows:
            sample = part.samples[size]
            rows.append(
                (
                    part.name,
                    size_label(size),
                    sample.median("new"),
                    ratio(sample.median("new"), part.samples[base].median("new")),
                    sample.median("existing"),
                    ratio(sample.median("existing"), part.samples[base].median("existing")),
                )
            )
    return table(
        [
            "store",
            "keys",
            "new µs/admit+commit",
            f"x {size_label(base)}",
            "repeat µs/admit",
            f"x {size_label(base)}",
        ],
        rows,
    )


def selection_table(parts: Sequence[Part], sizes: Sizes) -> str:
    rows = []
    base = sizes.rows[0]
    for part in parts:
        for size in sizes.rows:
            sample = part.samples[size]
            rows.append(
                (
                    part.name,
                    size_label(size),
                    unsettled_count(size, sizes.unsettled_floor),
                    min(sample.returned),
                    sample.median("due"),
                    ratio(sample.median("due"), part.samples[base].median("due")),
                )
            )
    return table(
        ["ledger", "entries", "open+pending", "returned", "µs/due()", f"x {size_label(base)}"],
        rows,
    )


def memory_table(memory: JSON) -> str:
    points = memory["checkpoints"]
    start = points[0]
    rows: list[tuple[object, ...]] = [("0", start["rss"] / 2**20, 0.0, "-", 0.0)]
    for previous, point in itertools.pairwise(points):
        grown = point["rss"] - previous["rss"]
        added = point["payments"] - previous["payments"]
        rows.append(
            (
                f"{point['payments']:,}",
                point["rss"] / 2**20,
                (point["rss"] - start["rss"]) / 2**20,
                grown / added / 1024,
                point["seconds"],
            )
        )
    return table(
        ["payments", "RSS MiB", "grown MiB", "KiB/payment since last", "s (cumulative)"], rows
    )


def main() -> int:
    if sys.argv[1:2] == ["sandbox-memory"]:
        return sandbox_memory(sys.argv[2:])
    options = parser(__doc__.split("\n\n")[0] if __doc__ else "")
    args = options.parse_args()
    sizes = QUICK if args.quick else FULL
    rounds = rounds_for(args, full=25)
    if args.quick:
        rounds = max(rounds, 2)
    print(f"bench_scale: {machine_line()}")
    print(f"bench_scale: sizes {dataclasses.asdict(sizes)}, {rounds} rounds", flush=True)
    load_before = os.getloadavg()
    missing = postgres_missing()
    if missing is not None:
        print(f"bench_scale: !!! POSTGRESQL ROWS SKIPPED: {missing} !!!", flush=True)

    started = time.perf_counter()
    # ~1.7 kB per ledger entry, ~0.2 kB per guard key, with their indexes
    folder = scratch_folder(sizes.rows[-1] * 2_000)
    sandbox = start_sandbox_memory(sizes)
    postgres: str | None = None
    try:
        with contextlib.ExitStack() as servers:
            kinds: list[SQLiteParts | PostgresParts] = [SQLiteParts(folder, sizes)]
            if missing is None:
                dsn = servers.enter_context(postgres_server())
                postgres = postgres_version(dsn)
                kinds.append(PostgresParts(dsn, sizes))
            # Everything is filled first, while the sandbox's process creates its payments;
            # nothing is timed until that process is done.
            print("filling, while the sandbox's process creates its payments:", flush=True)
            guards = [kind.fill_guards() for kind in kinds]
            ledgers = [kind.fill_ledgers() for kind in kinds]
            memory = sandbox_results(sandbox)
            print(f"  the sandbox: {sizes.payments[-1]:,} payments", flush=True)
            print("timing:", flush=True)
            for kind, part in zip(kinds, guards, strict=True):
                kind.time_guards(part, rounds)
                print(f"  {part.name}: admits timed", flush=True)
            for kind, part in zip(kinds, ledgers, strict=True):
                kind.time_ledgers(part, rounds)
                print(f"  {part.name}: selections timed", flush=True)
    finally:
        if sandbox.poll() is None:
            sandbox.kill()
            sandbox.wait()
        shutil.rmtree(folder, ignore_errors=True)
    seconds = time.perf_counter() - started

    print()
    print(f"Admit on a store of N keys (median of {rounds} rounds; µs of wall time per call)")
    print(admit_table(guards, sizes))
    print()
    print(f"Selection: ledger.due('shop', now=..., limit={sizes.limit}) on a ledger of N entries")
    print(selection_table(ledgers, sizes))
    print()
    print(f"The sandbox's memory ({sizes.payments[-1]:,} payments through its Gateway object)")
    print(memory_table(memory))
    for item in memory["tracemalloc"]["by_file"][:4]:
        per = item["bytes"] / memory["tracemalloc"]["traced"]
        where = Path(item["file"])
        print(f"  kept per payment (tracemalloc): {per:,.0f} B, {where.parent.name}/{where.name}")
    print(f"  load average before the run (other work on the machine): {load_before[0]:.2f}")
    if missing is not None:
        print(f"  !!! POSTGRESQL ROWS SKIPPED: {missing} !!!")

    base, largest = sizes.rows[0], sizes.rows[-1]
    ratios: dict[str, float] = {}
    targets: list[Target] = []
    for part in guards:
        for kind, what in (("new", "new payments"), ("existing", "repeats")):
            key = f"{part.name}_admit_{kind}_at_largest_over_smallest"
            ratios[key] = ratio(part.samples[largest].median(kind), part.samples[base].median(kind))
            targets.append(
                Target(
                    f"{part.name} admit, {what}: {size_label(largest)} keys / {size_label(base)}",
                    ratios[key],
                    "<=",
                    TARGET,
                    f"{part.samples[largest].median(kind):.0f} µs against "
                    f"{part.samples[base].median(kind):.0f} µs per notification",
                )
            )
    for part in ledgers:
        key = f"{part.name}_due_at_largest_over_smallest"
        ratios[key] = ratio(part.samples[largest].median("due"), part.samples[base].median("due"))
        targets.append(
            Target(
                f"{part.name} due(limit={sizes.limit}): {size_label(largest)} entries / "
                f"{size_label(base)}",
                ratios[key],
                "<=",
                TARGET,
                f"{part.samples[largest].median('due'):.0f} µs against "
                f"{part.samples[base].median('due'):.0f} µs per selection",
            )
        )
    points = memory["checkpoints"]
    ratios["sandbox_rss_at_largest_over_smallest"] = ratio(points[-1]["rss"], points[1]["rss"])
    ratios["sandbox_kib_per_payment"] = round(
        (points[-1]["rss"] - points[1]["rss"])
        / (points[-1]["payments"] - points[1]["payments"])
        / 1024,
        3,
    )
    results: JSON = {
        "sizes": dataclasses.asdict(sizes),
        "rounds": rounds,
        "seconds": seconds,
        "postgres_version": postgres,
        "postgres_skipped": missing,
        "scratch_folder": str(folder),
        "guards": [part.as_json() for part in guards],
        "ledgers": [part.as_json() for part in ledgers],
        "sandbox_memory": memory,
        "load_average_before": load_before,
        "notes": [
            "Wall time per call of this process; PostgreSQL's server is another process on the "
            "same 2 cores (fsync off).",
            "new: a notification of a payment the store has no key for (NEW: admit claims, "
            "commit records); repeat: the PAID notification of a payment recorded as "
            "'pending,paid' (DUPLICATE: no write).",
            "Ledger entries: 1 % open or pending (at least the floor), 4 instances (60/25/10/5 "
            "%), closed ones 93 % settled, 5 % refused, 2 % operator; documents are "
            "to_document()'s own, ~1.7 kB.",
        ],
    }
    print(f"  whole run: {seconds:.0f} s")
    return finish("scale", args, results, ratios, targets)


if __name__ == "__main__":
    raise SystemExit(main())
