"""The ledger itself: entries kept exactly, found when due, changed atomically, never lost —
in a SQLite file and in a PostgreSQL table alike."""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

import paymux
from paymux import EntryState, SQLiteLedger
from paymux._inputs import decode, encode
from paymux.ledger import new_entry
from paymux.providers.alikassa.sandbox import Merchant, Sandbox
from support import in_a_forked_child, payment_request

Place = Callable[[], paymux.Ledger]
"""Opens a ledger on one place (a file, a table): each call another ledger on the same data."""


@pytest.fixture(params=["sqlite", "postgres"])
def place(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Place]:
    opened: list[paymux.Ledger] = []
    if request.param == "sqlite":
        path = tmp_path / "ledger.sqlite3"
        opened_at: Place = lambda: SQLiteLedger(path)  # noqa: E731
    else:
        from paymux.stores import PostgresLedger

        dsn = request.getfixturevalue("postgres_dsn")
        table = f"ledger_{uuid.uuid4().hex}"
        opened_at = lambda: PostgresLedger(dsn, table=table)  # noqa: E731

    def opening() -> paymux.Ledger:
        ledger = opened_at()
        opened.append(ledger)
        return ledger

    yield opening
    for ledger in opened:
        ledger.close()


@pytest.fixture
def ledger(place: Place) -> paymux.Ledger:
    return place()


def entry_for(order_id: str, *, now: float = 1000.0) -> paymux.Entry:
    return new_entry(
        provider="alikassa",
        instance="shop",
        operation="create",
        input=encode("create", request(order_id)),
        body=b'{"order_id":"%s"}' % order_id.encode(),
        order_id=order_id,
        idempotency_key=None,
        key_expires_at=None,
        now=now,
    )


def request(order_id: str) -> paymux.PaymentRequest:
    return paymux.PaymentRequest(
        order_id=order_id,
        amount=Decimal("100.10"),
        customer=paymux.Customer(ip="203.0.113.7", birth_date=date(1992, 8, 10)),
        idempotency_key="k-1",
        options={"service": "payment_card_rub_hpp", "success_redirect_id": 7},
    )


def test_a_request_comes_back_from_the_ledger_as_it_was_sent() -> None:
    original = request("1001")

    assert decode(encode("create", original)) == original


def test_an_entry_is_kept_exactly_with_its_bytes_and_history(place: Place) -> None:
    written = place().open(entry_for("1001"))

    read = place().get(written.id)

    assert read == written
    assert read.body == b'{"order_id":"1001"}'
    assert [event.state for event in read.history] == [EntryState.OPEN]


def test_only_open_and_pending_entries_of_the_instance_whose_time_has_come_are_due(
    ledger: paymux.Ledger,
) -> None:
    soon, later, done = (ledger.open(entry_for(n, now=1000.0)) for n in ("a", "b", "c"))
    ledger.update(later.id, lambda entry: entry.moved(EntryState.PENDING, "waits", at=1.0))
    ledger.update(done.id, lambda entry: entry.moved(EntryState.SETTLED, "paid", at=1.0))

    due = ledger.due("shop", now=soon.next_at, limit=10)

    assert sorted(entry.order_id or "" for entry in due) == ["a", "b"]
    assert ledger.due("shop", now=soon.next_at - 1) == []
    assert ledger.due("other-instance", now=soon.next_at) == []


def test_concurrent_updates_of_one_entry_are_each_applied_once(ledger: paymux.Ledger) -> None:
    entry = ledger.open(entry_for("1001"))

    def look() -> None:
        for _ in range(50):
            ledger.update(
                entry.id, lambda found: found.moved(found.state, f"look {found.attempts}", at=1.0)
            )

    threads = [threading.Thread(target=look) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(ledger.get(entry.id).history) == 1 + 4 * 50


def test_a_change_that_raises_writes_nothing(ledger: paymux.Ledger) -> None:
    entry = ledger.open(entry_for("1001"))

    def broken(found: paymux.Entry) -> paymux.Entry:
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        ledger.update(entry.id, broken)

    assert ledger.get(entry.id) == entry


def test_a_ledger_that_cannot_be_written_is_a_ledger_error_before_anything_is_sent(
    tmp_path: Path, merchant: Merchant, sandbox: Sandbox
) -> None:
    path = tmp_path / "ledger.sqlite3"
    with paymux.connect({**merchant.settings, "ledger": str(path)}) as provider:
        for leftover in tmp_path.glob("ledger.sqlite3*"):
            leftover.unlink()
        path.mkdir()  # where the file was: the ledger cannot be opened now
        with pytest.raises(paymux.LedgerError, match="ledger "):
            provider.create(
                paymux.PaymentRequest(
                    order_id="1001",
                    amount=Decimal("500.00"),
                    customer=paymux.Customer(ip="203.0.113.7", user_agent="Mozilla/5.0"),
                    options={"service": "payment_card_rub_hpp"},
                )
            )

    assert sandbox.requests == []


def test_an_entry_that_is_not_there_is_a_ledger_error(ledger: paymux.Ledger) -> None:
    with pytest.raises(paymux.LedgerError, match="no ledger entry 'nope'"):
        ledger.get("nope")


def test_due_entries_are_found_oldest_first_up_to_the_limit(ledger: paymux.Ledger) -> None:
    for number in (3, 1, 2):
        ledger.open(entry_for(f"order-{number}", now=1000.0 + number))

    due = ledger.due("shop", now=2000.0, limit=2)

    assert [entry.order_id for entry in due] == ["order-1", "order-2"]


def test_a_postgresql_url_in_the_settings_keeps_the_ledger_in_that_database(
    postgres_dsn: str, merchant: Merchant, sandbox: Sandbox
) -> None:
    from psycopg.conninfo import conninfo_to_dict

    from paymux.stores import PostgresLedger

    part = conninfo_to_dict(postgres_dsn)
    url = f"postgresql://{part['user']}@{part['host']}:{part['port']}/{part['dbname']}"
    with paymux.connect({**merchant.settings, "ledger": url}) as provider:
        created = provider.create(payment_request(order_id="pg-1001"))
        assert isinstance(provider.connection.ledger, PostgresLedger)

    with PostgresLedger(postgres_dsn) as ledger:
        [entry] = [e for e in ledger.entries() if e.order_id == "pg-1001"]
    assert (entry.state, entry.subject_id) == (EntryState.PENDING, created.id)


def test_a_postgresql_ledger_never_shows_its_password() -> None:
    from paymux.stores import PostgresLedger

    with pytest.raises(paymux.LedgerError) as refused:
        PostgresLedger("postgresql://shop:hunter2-secret@127.0.0.1:1/shop?connect_timeout=2")

    assert "hunter2-secret" not in str(refused.value)
    assert "ledger" in str(refused.value)


# -- threads and forked processes sharing one ledger ------------------------------------------


def attempted(found: paymux.Entry) -> paymux.Entry:
    """The entry with one more attempt: a change whose every loss would show."""
    return dataclasses.replace(found, attempts=found.attempts + 1)


def test_threads_updating_one_entry_lose_no_update(ledger: paymux.Ledger) -> None:
    entry = ledger.open(entry_for("1001"))
    start = threading.Barrier(8)

    def work() -> None:
        start.wait()  # every thread's updates overlap the others'
        for _ in range(200):
            ledger.update(entry.id, attempted)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert ledger.get(entry.id).attempts == 8 * 200


def test_forked_children_updating_one_entry_lose_nothing_of_anyone(
    ledger: paymux.Ledger, tmp_path: Path
) -> None:
    entry = ledger.open(entry_for("1001"))  # this thread's connection, idle as it forks
    go = tmp_path / "go"

    def child() -> None:
        while not go.exists():
            time.sleep(0.001)
        for _ in range(200):
            ledger.update(entry.id, attempted)
        ledger.close()

    try:
        children = [in_a_forked_child(child) for _ in range(2)]
    finally:
        go.touch()
    for _ in range(200):  # the parent meanwhile
        ledger.update(entry.id, attempted)

    assert [exit_code() for exit_code in children] == [0, 0]
    assert ledger.get(entry.id).attempts == 3 * 200


def test_closing_an_sqlite_ledger_closes_every_threads_connection(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    wal = Path(f"{path}-wal")  # SQLite removes it as the file's last connection closes
    ledger = SQLiteLedger(path)
    entry = ledger.open(entry_for("1001"))
    updated, again = threading.Barrier(5), threading.Event()

    def work() -> None:
        ledger.update(entry.id, attempted)
        updated.wait()  # keeps its connection, idle, until the ledger is closed
        again.wait()
        ledger.update(entry.id, attempted)  # after `close`: a new connection

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    updated.wait()
    assert wal.exists()

    ledger.close()

    assert not wal.exists()
    again.set()
    for thread in threads:
        thread.join()
    assert ledger.get(entry.id).attempts == 8
    ledger.close()
    assert not wal.exists()
