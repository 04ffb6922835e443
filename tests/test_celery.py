"""The sweep on Celery: real worker processes settle what the ledger holds, over a real Redis.

The workers run the host's app (`celery_shop`): each connects to the same AliKassa sandbox (in
this process, on loopback), the same SQLite ledger and the same SQLite guard store, and its
handler logs one line per verdict (see `shop_host`), so the test sees what the workers did.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("celery", reason="no celery: pip install 'paymux[celery]'")

import paymux
import shop_host
from celery_support import PREFORK, SOLO, CeleryShop, wait_for
from paymux import EntryState
from paymux.providers.alikassa.sandbox import Merchant, Sandbox
from support import payment_request

PAYMENTS = 200


@dataclasses.dataclass
class Shop:
    """The host's Celery side, its ledger, and the payments waiting in it."""

    celery: CeleryShop
    ledger: paymux.Ledger
    payments: list[str]

    def unsettled(self) -> list[paymux.Entry]:
        return self.ledger.entries([EntryState.OPEN, EntryState.PENDING])


def shop_with(
    sandbox: Sandbox, merchant: Merchant, redis_url: str, folder: Path, stall_at: int
) -> Iterator[Shop]:
    """200 payments paid at the sandbox with no notification URL, due in the ledger."""
    config = {
        "broker": redis_url,
        "queue": f"paymux-{uuid.uuid4().hex}",
        "settings": {**merchant.settings, "ledger": str(folder / "ledger.sqlite3")},
        "guard": {"kind": "sqlite", "path": str(folder / "guard.sqlite3")},
        "log": str(folder / "handled.log"),
        "stalled": str(folder / "stalled.json"),
        "stall_at": stall_at,
    }
    with shop_host.connect(config) as provider:
        created = [provider.create(payment_request()).id for _ in range(PAYMENTS)]
        ledger = provider.connection.ledger
        assert ledger is not None
        for payment_id in created:
            sandbox.settle(payment_id, "paid")
        for entry in ledger.entries():  # time passes: every entry is due
            ledger.update(entry.id, lambda found: dataclasses.replace(found, next_at=0.0))
        with CeleryShop(config, folder) as celery_shop:
            yield Shop(celery_shop, ledger, created)


@pytest.fixture
def shop(sandbox: Sandbox, merchant: Merchant, redis_url: str, tmp_path: Path) -> Iterator[Shop]:
    yield from shop_with(sandbox, merchant, redis_url, tmp_path, stall_at=0)


@pytest.fixture
def stalling_shop(
    sandbox: Sandbox, merchant: Merchant, redis_url: str, tmp_path: Path
) -> Iterator[Shop]:
    """The first worker to handle its 25th payment waits there, to be killed."""
    yield from shop_with(sandbox, merchant, redis_url, tmp_path, stall_at=25)


def test_beat_enqueues_what_is_due_and_the_workers_settle_each_payment_once(
    shop: Shop, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    with shop.celery.workers(PREFORK):
        enqueued = shop.celery.enqueue_due()
        wait_for(lambda: not shop.unsettled(), "every entry settled", timeout=40)
    took = time.monotonic() - started

    lines = shop_host.verdicts(shop.celery.config)
    with capsys.disabled():
        print(f"\ncelery: {enqueued} enqueued, {len(lines)} handled in {took:.1f} s")
    assert enqueued == PAYMENTS
    assert {entry.state for entry in shop.ledger.entries()} == {EntryState.SETTLED}
    assert lines == collections.Counter(f"{payment} paid new" for payment in shop.payments)


def test_a_worker_killed_mid_run_leaves_its_entry_to_the_next_enqueue_and_nothing_twice(
    stalling_shop: Shop, capsys: pytest.CaptureFixture[str]
) -> None:
    shop = stalling_shop
    with shop.celery.workers(SOLO, SOLO):
        first = shop.celery.enqueue_due()
        marker = shop.celery.stalled()
        settled_before = PAYMENTS - len(shop.unsettled())
        os.kill(int(str(marker["pid"])), signal.SIGKILL)
        rounds = settle_everything(shop)

    lines = shop_host.verdicts(shop.celery.config)
    with capsys.disabled():
        print(
            f"\ncelery: {first} enqueued, a worker killed after {settled_before} settled,"
            f" {rounds} more enqueue_due, {sum(lines.values())} verdicts"
        )
    assert first == PAYMENTS
    assert 0 < settled_before < PAYMENTS
    assert {entry.state for entry in shop.ledger.entries()} == {EntryState.SETTLED}
    assert lines == collections.Counter(
        [f"{payment} paid new" for payment in shop.payments]
        + [f"{marker['subject']} paid duplicate"]
    ), "the killed worker's payment was handled, then its repeat found a DUPLICATE"


def settle_everything(shop: Shop) -> int:
    """As beat does: enqueue what is due, again and again, until nothing is left; how often."""
    rounds = 0
    deadline = time.monotonic() + 40
    while shop.unsettled():
        assert time.monotonic() < deadline, "the entries were not all settled"
        shop.celery.enqueue_due()
        rounds += 1
        settle_deadline = time.monotonic() + 3.0
        while shop.unsettled() and time.monotonic() < settle_deadline:
            time.sleep(0.05)
    return rounds
