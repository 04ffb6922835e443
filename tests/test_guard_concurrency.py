"""Exactly once under load: four shop processes, a gateway that repeats, writes that fail.

The test plays the gateway. It signs AliKassa notifications with a notification key generated
for the run, hands 1 to 3 copies of each at once to different shop processes, and repeats every
notification until some copy was answered 200. Each shop process verifies what it gets with
`AliKassaProvider.parse_notification`, runs it through one shared `SQLiteStore` guard and records
it in the shop's own table (shared by every process, no unique constraint, so a double
fulfilment would show) — and 20 % of those writes fail. Run this file as a script and it is one
shop process, reading notifications from stdin and answering HTTP statuses on stdout.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from urllib.parse import urlencode

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

import paymux
from paymux import NotificationGuard, SQLiteStore
from paymux.providers.alikassa import CertificateFolder, Signer, generate_certificate, phpjson
from paymux.providers.alikassa.keys import load_private_key, read_password
from support import in_a_forked_child

ACCOUNT = "93d5df06-996c-48c3-9847-348d6b580b80"
NOTIFICATIONS = 2_000
PROCESSES = 4
FAILING = 0.2
STATUSES = ["paid"] * 3 + ["cancel", "fail"]  # AliKassa's words; 60 % paid


class WriteFailed(Exception):
    """The shop's database refused a write."""


def serve(shop_database: str, guard_database: str, settings: str, seed: str) -> None:
    """One shop process: the notification endpoint the recipes describe, over stdin and stdout."""
    provider = paymux.connect(json.loads(settings))
    guard = NotificationGuard(SQLiteStore(guard_database))
    failures = random.Random(int(seed))  # noqa: S311 - picks failures, guards nothing
    shop = sqlite3.connect(shop_database, timeout=30, isolation_level=None)

    def record(notification: paymux.Notification) -> None:
        if failures.random() < FAILING:
            raise WriteFailed
        payment = notification.payment
        shop.execute("INSERT INTO handled VALUES (?, ?)", (payment.id, payment.status.value))

    print("ready", flush=True)
    for line in sys.stdin:
        notification = provider.parse_notification(line.strip())
        try:
            with guard.admitted(notification) as verdict:
                if verdict.act:
                    record(notification)
        except WriteFailed:
            print(500, "failed", flush=True)
            continue
        print(503 if verdict.retry else 200, verdict.value, flush=True)


def signed_notifications(certificate: CertificateFolder) -> dict[str, tuple[str, str]]:
    """Payment id -> (AliKassa status, signed query string), signed as the gateway signs."""
    signer = Signer(
        load_private_key(
            certificate.private_key.read_bytes(), read_password(certificate.password_file)
        ),
        "sha1",
    )
    choose = random.Random(7)  # noqa: S311 - picks statuses
    notifications = {}
    for number in range(100_000_001, 100_000_001 + NOTIFICATIONS):
        status = choose.choice(STATUSES)
        paid = "500.000000000" if status == "paid" else ""
        fields = {
            "type": "payment",
            "id": str(number),
            "order_id": f"order-{number}",
            "payment_status": status,
            "amount": "500.000000000",
            "payment_amount": paid,
            "commission_amount": "",
            "is_partial_payment": "0",
            "account": ACCOUNT,
            "service": "payment_card_rub_hpp",
            "desc": "",
        }
        sign = signer.sign(phpjson.dumps_bytes({**fields, "id": number}))
        notifications[str(number)] = (status, urlencode({**fields, "sign": sign}))
    return notifications


def schedule(pending: list[str], rng: random.Random) -> list[list[tuple[int, str]]]:
    """Ticks of (process, payment id): each notification's 1 to 3 copies in one tick, to
    different processes, so they are handled at the same time."""
    ticks: list[list[tuple[int, str]]] = []
    free: list[int] = []
    for payment_id in rng.sample(pending, len(pending)):
        copies = rng.randint(1, 3)
        if copies > len(free):
            ticks.append([])
            free = list(range(PROCESSES))
        for process in rng.sample(free, copies):
            free.remove(process)
            ticks[-1].append((process, payment_id))
    return ticks


class Shop:
    """The shop's processes, sharing one guard database and one table of what they handled."""

    def __init__(self, folder: Path, settings: dict[str, str]) -> None:
        self.database = folder / "shop.sqlite3"
        with closing(sqlite3.connect(self.database)) as shop:
            shop.execute("PRAGMA journal_mode=WAL")
            shop.execute("CREATE TABLE handled (payment_id TEXT NOT NULL, status TEXT NOT NULL)")
        arguments = [str(self.database), str(folder / "guard.sqlite3"), json.dumps(settings)]
        self.processes = [
            subprocess.Popen(
                [sys.executable, __file__, *arguments, str(seed)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for seed in range(PROCESSES)
        ]
        for process in self.processes:
            assert process.stdout is not None
            assert process.stdout.readline() == "ready\n"

    def deliver(self, tick: list[tuple[int, str]]) -> list[tuple[str, str]]:
        """Send each query to its process, all at once; each answer: (HTTP status, what)."""
        for number, query in tick:
            stdin = self.processes[number].stdin
            assert stdin is not None
            stdin.write(query + "\n")
            stdin.flush()
        answers = []
        for number, _ in tick:
            stdout = self.processes[number].stdout
            assert stdout is not None
            status, what = stdout.readline().split()
            answers.append((status, what))
        return answers

    def close(self) -> list[int | None]:
        """Stop every process; their exit codes."""
        for process in self.processes:
            process.communicate(timeout=30)
        return [process.returncode for process in self.processes]

    def handled(self) -> list[tuple[str, str]]:
        with closing(sqlite3.connect(self.database)) as shop:
            return shop.execute("SELECT payment_id, status FROM handled").fetchall()


@pytest.fixture
def ram_folder(tmp_path: Path) -> Iterator[Path]:
    """A temporary folder in memory where the system offers one: this test is about
    concurrency, and a disk's flush on every commit would make it minutes long."""
    shared_memory = Path("/dev/shm")
    if not (shared_memory.is_dir() and os.access(shared_memory, os.W_OK)):
        yield tmp_path
        return
    with tempfile.TemporaryDirectory(dir=shared_memory, prefix="paymux-test-") as folder:
        yield Path(folder)


def test_four_processes_fulfil_every_paid_order_exactly_once_while_writes_fail(
    ram_folder: Path,
    tmp_path: Path,
    payment_key: rsa.RSAPrivateKey,
    capsys: pytest.CaptureFixture[str],
) -> None:
    started = time.monotonic()
    # The gateway's notification key, made for this run; 1024 bits sign 2,000 notifications in
    # about a second, and key size is not what this test is about.
    gateway = generate_certificate(tmp_path / "notification", key_size=1024)
    notifications = signed_notifications(gateway)
    payment_certificate = generate_certificate(tmp_path / "payment", private_key=payment_key)
    shop = Shop(
        ram_folder,
        {
            "provider": "alikassa",
            "account": ACCOUNT,
            "certificate_dir": str(payment_certificate.path),
            "notification_public_key": str(gateway.public_key),
        },
    )
    answers: Counter[str] = Counter()
    deliveries = random.Random(11)  # noqa: S311 - picks copies and processes
    pending, rounds = list(notifications), 0
    try:
        while pending and rounds < 50:  # the gateway repeats until it hears 200
            rounds += 1
            heard_ok: set[str] = set()
            for tick in schedule(pending, deliveries):
                copies = [(number, notifications[payment_id][1]) for number, payment_id in tick]
                for (_, payment_id), (status, what) in zip(tick, shop.deliver(copies), strict=True):
                    answers[what] += 1
                    if status == "200":
                        heard_ok.add(payment_id)
            pending = [payment_id for payment_id in pending if payment_id not in heard_ok]
    finally:
        exit_codes = shop.close()

    handled = shop.handled()
    fulfilled = Counter(payment_id for payment_id, status in handled if status == "paid")
    paid = {payment_id for payment_id, (status, _) in notifications.items() if status == "paid"}
    with capsys.disabled():  # the counts belong in every run's output
        print(
            f"\n{NOTIFICATIONS} notifications ({len(paid)} paid) to {PROCESSES} processes in "
            f"{rounds} rounds, {sum(answers.values())} deliveries: {dict(answers)}; "
            f"{len(fulfilled)} orders fulfilled; {time.monotonic() - started:.1f} s"
        )
    assert exit_codes == [0] * PROCESSES
    assert not pending, f"{len(pending)} notifications never answered 200"
    assert fulfilled == dict.fromkeys(paid, 1)  # every paid order, each exactly once
    assert Counter(payment_id for payment_id, _ in handled) == dict.fromkeys(notifications, 1)
    assert answers["failed"] > 0  # writes did fail


# -- one SQLiteStore shared by threads and forked processes ----------------------------------

INCREMENTS = 200
THREADS = 8


def increment(value: str | None) -> str:
    return str(int(value or 0) + 1)


def test_threads_sharing_an_sqlite_store_lose_no_update(tmp_path: Path) -> None:
    seen: list[str | None] = []
    with SQLiteStore(tmp_path / "guard.sqlite3") as store:
        start = threading.Barrier(THREADS)

        def work() -> None:
            start.wait()  # every thread's updates overlap the others'
            seen.extend([store.update("counter", increment) for _ in range(INCREMENTS)])

        threads = [threading.Thread(target=work) for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        total = THREADS * INCREMENTS
        assert store.update("counter", lambda value: value) == str(total)
    # Each update saw the one before it: no two threads ever shared a transaction.
    assert sorted(seen, key=lambda value: int(value or 0)) == [None, *map(str, range(1, total))]


def test_forked_children_updating_the_same_sqlite_store_lose_nothing_of_anyone(
    tmp_path: Path,
) -> None:
    path, go = tmp_path / "guard.sqlite3", tmp_path / "go"
    with SQLiteStore(path) as store:
        store.update("counter", increment)  # this thread's connection, idle as it forks
        idle, done = threading.Event(), threading.Event()

        def other_thread() -> None:  # another thread's connection, idle as it forks
            store.update("other", increment)
            idle.set()
            done.wait()

        helper = threading.Thread(target=other_thread)
        helper.start()
        idle.wait()

        def child() -> None:
            while not go.exists():
                time.sleep(0.001)
            for _ in range(INCREMENTS):
                store.update("counter", increment)
            store.close()

        try:
            with warnings.catch_warnings():  # Python 3.12+ warns of forking with threads: meant
                warnings.simplefilter("ignore", DeprecationWarning)
                children = [in_a_forked_child(child) for _ in range(2)]
            # The process closed its idle connections before forking, so that no child inherits
            # SQLite's state of an open file: the file's last connection gone, so is its WAL.
            wal_after_fork = Path(f"{path}-wal").exists()
        finally:
            go.touch()
            done.set()
            helper.join()
        for _ in range(INCREMENTS):  # the parent meanwhile, on connections it opens again
            store.update("counter", increment)

        assert [exit_code() for exit_code in children] == [0, 0]
        assert not wal_after_fork
        assert store.update("counter", lambda value: value) == str(1 + 3 * INCREMENTS)
        assert store.update("other", lambda value: value) == "1"


def test_closing_an_sqlite_store_closes_every_threads_connection(tmp_path: Path) -> None:
    path = tmp_path / "guard.sqlite3"
    wal = Path(f"{path}-wal")  # SQLite removes it as the file's last connection closes
    store = SQLiteStore(path)
    updated, again = threading.Barrier(THREADS + 1), threading.Event()

    def work() -> None:
        store.update("counter", increment)
        updated.wait()  # keeps its connection, idle, until the store is closed
        again.wait()
        store.update("counter", increment)  # after `close`: a new connection

    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    updated.wait()
    assert wal.exists()

    store.close()

    assert not wal.exists()
    again.set()
    for thread in threads:
        thread.join()
    assert store.update("counter", lambda value: value) == str(2 * THREADS)
    store.close()
    assert not wal.exists()


if __name__ == "__main__":
    serve(*sys.argv[1:])
