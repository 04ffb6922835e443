"""Nothing in flight is forgotten, on each way a shop deploys paymux.

Two stories, each run three ways:

- **one host**: the ledger and the guard in SQLite files, `paymux.sweep` in this process;
- **PostgreSQL**: the ledger and the guard in a PostgreSQL database, the sweep on two Celery
  worker processes (a real Redis broker), one of them SIGKILLed mid-run;
- **PostgreSQL and Redis**: the ledger in PostgreSQL, the guard in Redis, the same workers.

The crash story: a shop process works through 1,000 orders and is SIGKILLed at random twenty
times (the sandbox losing a share of answers too); the sweeper settles what the kills left
open; the payers then pay, cancel or fail, and the sweeper hands each outcome to the host once.
The missed-notification story: 1,000 payments paid with the gateway's delivery down; the
sweeper finds each and the host handles it once; then the late notifications arrive over HTTP
and change nothing. Counts are printed (run with `-s`).

Between phases the test lets time pass by making every entry due (with no sweep running).
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

import paymux
import shop_host
from paymux import EntryState
from paymux.providers.alikassa import CertificateFolder
from paymux.providers.alikassa.sandbox import Fault, Merchant, NotificationReceiver, Sandbox
from support import payment_request

ORDERS = 1000
KILLS = 20
CRASH_SHOP = Path(__file__).resolve().parent / "crash_shop.py"
OUTCOMES = {0: "cancel", 1: "fail"}
"""What the payer of order number n does, by n % 10 (the rest pay)."""
STALL_AT = 100
"""The Celery worker that admits its 100th change waits there, to be killed."""


@dataclasses.dataclass
class Deployment:
    """Where one shop keeps its ledger and guard, and how its sweep runs."""

    name: str
    config: shop_host.Config
    folder: Path
    celery: bool

    @property
    def settings(self) -> dict[str, Any]:
        settings: dict[str, Any] = self.config["settings"]
        return settings


@pytest.fixture(params=["one host", "postgresql", "postgresql and redis"])
def deploy(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Callable[[dict[str, Any]], Deployment]:
    """Makes the deployment for a merchant's settings (the sandbox comes first)."""
    kind = request.param
    config: shop_host.Config = {
        "log": str(tmp_path / "handled.log"),
        "stalled": str(tmp_path / "stalled.json"),
    }
    if kind == "one host":
        config["ledger"] = str(tmp_path / "ledger.sqlite3")
        config["guard"] = {"kind": "sqlite", "path": str(tmp_path / "guard.sqlite3")}
    else:
        pytest.importorskip("celery", reason="no celery: pip install 'paymux[celery]'")
        url = request.getfixturevalue("fresh_postgres_url")
        config["ledger"] = url
        config["broker"] = request.getfixturevalue("redis_url")
        config["queue"] = f"paymux-{uuid.uuid4().hex}"
        config["stall_at"] = STALL_AT
        if kind == "postgresql":
            config["guard"] = {"kind": "postgres", "dsn": url}
        else:
            prefix = f"paymux-{uuid.uuid4().hex}:"
            config["guard"] = {"kind": "redis", "url": config["broker"], "prefix": prefix}

    def deployment(settings: dict[str, Any]) -> Deployment:
        config["settings"] = {**settings, "name": "shop", "ledger": config["ledger"]}
        return Deployment(kind, config, tmp_path, celery=kind != "one host")

    return deployment


@pytest.fixture
def fresh_postgres_url(postgres_dsn: str) -> str:
    """The URL of a new, empty database in the session's PostgreSQL cluster."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    name = f"shop_{uuid.uuid4().hex}"
    with psycopg.connect(postgres_dsn, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    part = conninfo_to_dict(postgres_dsn)
    return f"postgresql://{part['user']}@{part['host']}:{part['port']}/{name}"


class Sweeping:
    """The deployment's sweep, driven phase by phase: in this process, or by Celery workers."""

    def __init__(self, deployment: Deployment, provider: paymux.Provider) -> None:
        self.deployment = deployment
        self.provider = provider
        assert provider.connection.ledger is not None
        self.ledger = provider.connection.ledger
        self.killed: dict[str, object] | None = None
        self.rounds = 0

    def entries(self, *states: EntryState) -> list[paymux.Entry]:
        return self.ledger.entries(states or tuple(EntryState))

    def time_passes(self) -> None:
        """Every open and pending entry due now (only while no sweep runs)."""
        for entry in self.entries(EntryState.OPEN, EntryState.PENDING):
            self.ledger.update(entry.id, lambda found: dataclasses.replace(found, next_at=0.0))

    def until(self, done: Callable[[], bool], *, kill_one: bool = False) -> None:
        """Sweep until `done()`; with Celery and `kill_one`, one worker is SIGKILLed mid-run."""
        self.time_passes()
        if not self.deployment.celery:
            with shop_host.Host(self.deployment.config) as host:
                while not done():
                    assert self.rounds < 20, "the sweeper did not settle everything"
                    paymux.sweep(
                        self.provider, handle=host.on_notification, limit=10 * ORDERS, concurrency=8
                    )
                    self.rounds += 1
                    self.time_passes()
            return
        from celery_support import SOLO, CeleryShop

        with (
            CeleryShop(self.deployment.config, self.deployment.folder) as celery_shop,
            celery_shop.workers(SOLO, SOLO),
        ):
            celery_shop.enqueue_due()
            if kill_one:
                self.killed = celery_shop.stalled()
                os.kill(int(str(self.killed["pid"])), signal.SIGKILL)
            deadline = time.monotonic() + 180
            while not done():  # as beat does: enqueue what is due, every few seconds
                assert time.monotonic() < deadline, "the workers did not settle everything"
                round_ends = time.monotonic() + 3.0
                while not done() and time.monotonic() < round_ends:
                    time.sleep(0.1)
                if not done():
                    celery_shop.enqueue_due()
                    self.rounds += 1


def test_a_thousand_creates_through_twenty_kills_make_exactly_a_thousand_payments(
    deploy: Callable[[dict[str, Any]], Deployment],
    notification_certificate: CertificateFolder,
    payment_key: rsa.RSAPrivateKey,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    chance = random.Random(20)  # noqa: S311 - picks moments to kill, guards nothing
    faults = {Fault.INTERNAL_ERROR: 0.05, Fault.DROP_CONNECTION: 0.05}
    with Sandbox(
        notification_certificate=notification_certificate.path, fault_rates=faults, fault_seed=5
    ) as sandbox:
        merchant = sandbox.create_merchant(tmp_path / "payment", private_key=payment_key)
        deployment = deploy(merchant.settings)
        command = [sys.executable, str(CRASH_SHOP), json.dumps(deployment.settings), str(ORDERS)]
        started = time.perf_counter()
        kills = 0
        while kills < KILLS:
            shop = subprocess.Popen(command, stdout=subprocess.DEVNULL)
            time.sleep(chance.uniform(0.3, 1.2))
            if shop.poll() is not None:
                break  # finished before this kill: nothing left to interrupt
            shop.send_signal(signal.SIGKILL)
            shop.wait()
            kills += 1
        finished = subprocess.run(command, capture_output=True, text=True, check=False)
        assert finished.stdout.strip() == "done", finished.stderr

        with shop_host.connect(deployment.config) as provider:
            sweeping = Sweeping(deployment, provider)
            left_open = len(sweeping.entries(EntryState.OPEN))
            sweeping.until(lambda: not sweeping.entries(EntryState.OPEN))
            stored = Counter(payment.order_id for payment in sandbox.payments())
            outcomes = {}
            for payment in sandbox.payments():
                outcome = OUTCOMES.get(int(payment.order_id.split("-")[1]) % 10, "paid")
                sandbox.settle(payment.id, outcome, notify=False)
                outcomes[str(payment.id)] = paymux.PaymentStatus(
                    {"cancel": "canceled", "fail": "failed"}.get(outcome, outcome)
                )
            sweeping.until(
                lambda: not sweeping.entries(EntryState.OPEN, EntryState.PENDING), kill_one=True
            )
            final = sweeping.entries()
        elapsed = time.perf_counter() - started

    states = Counter(entry.state.value for entry in final)
    per_order = Counter(entry.order_id for entry in final)
    duplicates = sum(count - 1 for count in stored.values())
    lost = ORDERS - len(stored)
    lines = shop_host.verdicts(deployment.config)
    with capsys.disabled():
        print(
            f"\ncrash ({deployment.name}): {ORDERS} orders, {kills} kills, {elapsed:.1f} s; "
            f"left open by the kills and lost answers {left_open}; at the gateway "
            f"{sum(stored.values())} payments, {duplicates} duplicates, {lost} lost; "
            f"{sweeping.rounds} extra sweep rounds; ledger {dict(states)}; "
            f"handler verdicts {Counter(line.split()[-1] for line in lines.elements())}"
        )
    assert kills == KILLS, "the shop finished before it was killed twenty times"
    assert sum(stored.values()) == ORDERS
    assert duplicates == 0
    assert lost == 0
    assert set(per_order.values()) == {1}, "one ledger entry per order"
    assert states.keys() <= {EntryState.SETTLED.value, EntryState.OPERATOR.value}
    assert all(entry.reason for entry in final if entry.state is EntryState.OPERATOR)
    assert_handled_once(lines, outcomes, sweeping.killed)


def test_a_thousand_payments_whose_notifications_were_lost_are_each_handled_once(
    deploy: Callable[[dict[str, Any]], Deployment],
    sandbox: Sandbox,
    merchant: Merchant,
    capsys: pytest.CaptureFixture[str],
) -> None:
    deployment = deploy(merchant.settings)
    with NotificationReceiver() as receiver, shop_host.connect(deployment.config) as provider:
        created = [
            provider.create(payment_request(notification_url=receiver.url)) for _ in range(ORDERS)
        ]
        for payment in created:
            sandbox.settle(payment.id, "paid", notify=False)  # the gateway's delivery is down
        sweeping = Sweeping(deployment, provider)
        sweeping.until(lambda: not sweeping.entries(EntryState.PENDING), kill_one=True)
        swept = {entry.id: entry for entry in sweeping.entries()}
        lines_after_sweep = shop_host.verdicts(deployment.config)

        for payment in created:  # delivery is back: the late notifications arrive
            sandbox.gateway.notify(sandbox.payment(payment.id), wait=False)
        arrived = receiver.wait_for(ORDERS, timeout=120)
        with shop_host.Host(deployment.config) as late:
            for path in arrived:
                late.on_notification(provider.parse_notification(path))
        after_late = {entry.id: entry for entry in sweeping.entries()}

    lines = shop_host.verdicts(deployment.config)
    outcomes = {payment.id: paymux.PaymentStatus.PAID for payment in created}
    with capsys.disabled():
        print(
            f"\nmissed notifications ({deployment.name}): {ORDERS} paid unnotified, "
            f"{sweeping.rounds} extra sweep rounds, "
            f"ledger {dict(Counter(e.state.value for e in swept.values()))}; "
            f"{len(arrived)} late notifications; "
            f"handler verdicts {Counter(line.split()[-1] for line in lines.elements())}"
        )
    assert {entry.state for entry in swept.values()} == {EntryState.SETTLED}
    assert_handled_once(lines_after_sweep, outcomes, sweeping.killed)
    assert len(arrived) == ORDERS
    assert after_late == swept, "the late notifications changed nothing in the ledger"
    late_lines = lines - lines_after_sweep
    assert late_lines == Counter(f"{payment.id} paid duplicate" for payment in created)


def assert_handled_once(
    lines: Counter[str],
    outcomes: dict[str, paymux.PaymentStatus],
    killed: dict[str, object] | None,
) -> None:
    """The handler acted once on each payment's outcome, and on nothing else; only the payment
    a killed worker had handled (then died) was seen again, as a duplicate."""
    acted = Counter(line for line in lines.elements() if line.endswith(" new"))
    expected = Counter(f"{payment} {status.value} new" for payment, status in outcomes.items())
    assert acted == expected
    repeated = lines - acted
    if killed is None:
        assert not repeated
    else:
        [line] = repeated.elements()
        assert line.startswith(f"{killed['subject']} ")
        assert line.endswith(" duplicate")
