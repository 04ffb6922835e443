"""The sweep on Celery: real worker processes settle what the ledger holds, over a real Redis.

Each test writes the host's Celery app into tmp_path (`shop.py`, below) and starts `celery
worker` processes on it. Every worker connects to the same AliKassa sandbox (in this process,
on loopback), the same SQLite ledger and the same SQLite guard store; the host's handler
appends one line per verdict to a file, so the test sees what the workers did.
"""

from __future__ import annotations

import collections
import dataclasses
import gc
import json
import os
import signal
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

pytest.importorskip("celery", reason="no celery: pip install 'paymux[celery]'")

import celery

import paymux
from paymux import EntryState
from paymux.celery_tasks import ENQUEUE_DUE, register
from paymux.providers.alikassa.sandbox import Merchant, Sandbox
from support import payment_request

PAYMENTS = 200

SHOP = '''
"""The host's Celery app, as each worker process imports it."""
import json
import os
import threading

import celery

import paymux
import paymux.sweeper
from paymux.celery_tasks import register

CONFIG = json.loads(os.environ["SHOP_CONFIG"])
paymux.sweeper.CLAIM = 2.0  # a dead worker's claim expires soon
app = celery.Celery("shop", broker=CONFIG["broker"], backend=CONFIG["broker"])
app.conf.update(task_default_queue=CONFIG["queue"], worker_prefetch_multiplier=1)
handled = 0


def connect(instance):
    return paymux.connect({**CONFIG["settings"], "name": instance, "ledger": CONFIG["ledger"]})


def handle(instance):
    guard = paymux.NotificationGuard(paymux.SQLiteStore(CONFIG["guard"]))

    def on_notification(notification):
        global handled
        subject = notification.subject
        with guard.admitted(notification) as verdict:
            line = f"{subject.id} {subject.status.value} {verdict.value}\\n"
            written = os.open(CONFIG["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            os.write(written, line.encode())
            os.close(written)
        handled += verdict.act
        if handled == CONFIG["stall_at"]:
            stall(subject.id)

    return on_notification


def stall(payment_id):
    """Handled and committed, not yet settled in the ledger: the first worker here waits to be
    killed."""
    try:
        marker = os.open(CONFIG["stalled"], os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    except FileExistsError:
        return
    os.write(marker, json.dumps({"pid": os.getpid(), "payment": payment_id}).encode())
    os.close(marker)
    threading.Event().wait()


register(app, connect=connect, handle=handle)
'''


@dataclasses.dataclass
class Shop:
    """One host: its app folder, ledger and handler log, and a client app that calls the tasks."""

    folder: Path
    ledger: paymux.SQLiteLedger
    log: Path
    env: dict[str, str]
    client: celery.Celery
    payments: list[str]

    def enqueue_due(self) -> int:
        """Run `paymux.enqueue_due` in a worker, as beat would; how many it enqueued."""
        enqueued: int = self.client.tasks[ENQUEUE_DUE].delay("shop").get(timeout=30)
        return enqueued

    def unsettled(self) -> list[paymux.Entry]:
        return self.ledger.entries([EntryState.OPEN, EntryState.PENDING])

    def close(self) -> None:
        """Let go of the task results' subscriptions while Redis is up, then of every socket."""
        gc.collect()
        self.client.backend.result_consumer.stop()
        self.client.backend.client.connection_pool.disconnect()
        self.client.close()
        with warnings.catch_warnings():  # redis-py connections celery dropped without closing
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()

    def lines(self) -> collections.Counter[str]:
        text = self.log.read_text(encoding="utf-8") if self.log.exists() else ""
        return collections.Counter(text.splitlines())


def shop_with(
    sandbox: Sandbox, merchant: Merchant, redis_url: str, folder: Path, stall_at: int
) -> Shop:
    """200 payments paid at the sandbox with no notification URL, due in the ledger."""
    ledger_path = folder / "ledger.sqlite3"
    settings = {**merchant.settings, "ledger": str(ledger_path)}
    queue = f"paymux-{uuid.uuid4().hex}"
    config = {
        "broker": redis_url,
        "queue": queue,
        "settings": merchant.settings,
        "ledger": str(ledger_path),
        "guard": str(folder / "guard.sqlite3"),
        "log": str(folder / "handled.log"),
        "stalled": str(folder / "stalled.json"),
        "stall_at": stall_at,
    }
    (folder / "shop.py").write_text(SHOP, encoding="utf-8")
    with paymux.connect({**settings, "name": "shop"}) as provider:
        created = [provider.create(payment_request()).id for _ in range(PAYMENTS)]
    for payment_id in created:
        sandbox.settle(payment_id, "paid")
    ledger = paymux.SQLiteLedger(ledger_path)
    for entry in ledger.entries():
        ledger.update(entry.id, lambda found: dataclasses.replace(found, next_at=0.0))
    client = celery.Celery("shop-client", broker=redis_url, backend=redis_url)
    client.conf.task_default_queue = queue
    register(client, connect=lambda instance: paymux.connect({**settings, "name": instance}))
    env = {**os.environ, "PYTHONPATH": str(folder), "SHOP_CONFIG": json.dumps(config)}
    return Shop(folder, ledger, folder / "handled.log", env, client, created)


@pytest.fixture
def shop(sandbox: Sandbox, merchant: Merchant, redis_url: str, tmp_path: Path) -> Iterator[Shop]:
    built = shop_with(sandbox, merchant, redis_url, tmp_path, stall_at=0)
    yield built
    built.close()


@pytest.fixture
def stalling_shop(
    sandbox: Sandbox, merchant: Merchant, redis_url: str, tmp_path: Path
) -> Iterator[Shop]:
    """The first worker to handle its 25th payment waits there, to be killed."""
    built = shop_with(sandbox, merchant, redis_url, tmp_path, stall_at=25)
    yield built
    built.close()


@contextmanager
def workers(shop: Shop, *pools: list[str]) -> Iterator[list[subprocess.Popen[bytes]]]:
    """One `celery worker` process per pool, ready (answering a ping); stopped at the end."""
    started = []
    names = [f"w{number}@paymux-test" for number in range(len(pools))]
    for name, pool in zip(names, pools, strict=True):
        with (shop.folder / f"{name}.log").open("wb") as log:
            command = [sys.executable, "-m", "celery", "-A", "shop", "worker", "-n", name, *pool]
            command += ["--loglevel=INFO", "--without-gossip", "--without-mingle"]
            started.append(
                subprocess.Popen(
                    command, cwd=shop.folder, env=shop.env, stdout=log, stderr=subprocess.STDOUT
                )
            )
    try:
        wait_for(lambda: _answering(shop.client, names), "the workers", timeout=30)
        yield started
    finally:
        for process in started:
            process.terminate()
        for process in started:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _answering(client: celery.Celery, names: list[str]) -> bool:
    with client.connection_for_write() as connection:
        replies = client.control.ping(destination=names, timeout=0.5, connection=connection)
    return {name for reply in replies for name in reply} == set(names)


def wait_for(condition: Callable[[], bool], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.05)


PREFORK = ["--pool=prefork", "--concurrency=2"]
SOLO = ["--pool=solo"]


def test_beat_enqueues_what_is_due_and_the_workers_settle_each_payment_once(
    shop: Shop, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    with workers(shop, PREFORK):
        enqueued = shop.enqueue_due()
        wait_for(lambda: not shop.unsettled(), "every entry settled", timeout=40)
    took = time.monotonic() - started

    lines = shop.lines()
    with capsys.disabled():
        print(f"\ncelery: {enqueued} enqueued, {len(lines)} handled in {took:.1f} s")
    assert enqueued == PAYMENTS
    assert {entry.state for entry in shop.ledger.entries()} == {EntryState.SETTLED}
    assert lines == collections.Counter(f"{payment} paid new" for payment in shop.payments)


def test_a_worker_killed_mid_run_leaves_its_entry_to_the_next_enqueue_and_nothing_twice(
    stalling_shop: Shop, capsys: pytest.CaptureFixture[str]
) -> None:
    shop = stalling_shop
    stalled = shop.folder / "stalled.json"
    with workers(shop, SOLO, SOLO):
        first = shop.enqueue_due()
        wait_for(stalled.exists, "a worker stalled mid-run", timeout=30)
        wait_for(lambda: bool(stalled.read_text()), "its marker written", timeout=5)
        marker = json.loads(stalled.read_text())
        settled_before = PAYMENTS - len(shop.unsettled())
        os.kill(marker["pid"], signal.SIGKILL)
        rounds = 0
        deadline = time.monotonic() + 40
        while shop.unsettled():  # as beat does: enqueue what is due, again and again
            assert time.monotonic() < deadline, "the entries were not all settled"
            shop.enqueue_due()
            rounds += 1
            _settled_within(shop, 3.0)

    lines = shop.lines()
    stalled_payment = marker["payment"]
    with capsys.disabled():
        print(
            f"\ncelery: {first} enqueued, a worker killed after {settled_before} settled,"
            f" {rounds} more enqueue_due, {sum(lines.values())} verdicts"
        )
    assert first == PAYMENTS
    assert 0 < settled_before < PAYMENTS
    assert {entry.state for entry in shop.ledger.entries()} == {EntryState.SETTLED}
    assert lines == collections.Counter(
        [f"{payment} paid new" for payment in shop.payments] + [f"{stalled_payment} paid duplicate"]
    ), "the killed worker's payment was handled, then its repeat found a DUPLICATE"


def _settled_within(shop: Shop, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while shop.unsettled() and time.monotonic() < deadline:
        time.sleep(0.05)
