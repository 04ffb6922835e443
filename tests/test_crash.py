"""Crash test: a thousand creates while the creating process is killed at random, then the sweeper.

A shop process works through 1,000 orders with the ledger on; it is SIGKILLed at random moments
twenty times and started again each time (a restart leaves alone every order the ledger already
holds: the sweeper owns those). The sandbox loses a share of answers too. Then the sweeper
settles what the kills left open. What must hold is counted at the gateway and in the ledger:
each order paid for once, none lost, no entry left open. Run with `-s` to see the counts.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

import paymux
from paymux import EntryState
from paymux.providers.alikassa import CertificateFolder
from paymux.providers.alikassa.sandbox import Fault, Sandbox

ORDERS = 1000
KILLS = 20

SHOP = textwrap.dedent(
    """
    import json, sys
    from decimal import Decimal

    import paymux

    settings, orders = json.loads(sys.argv[1]), int(sys.argv[2])
    with paymux.connect(settings) as provider:
        known = {entry.order_id for entry in provider.connection.ledger.entries()}
        for number in range(orders):
            order_id = f"crash-{number:04d}"
            if order_id in known:
                continue  # in the ledger: created, or the sweeper's to settle
            try:
                provider.create(
                    paymux.PaymentRequest(
                        order_id=order_id,
                        amount=Decimal("150.00"),
                        customer=paymux.Customer(ip="203.0.113.7", user_agent="Mozilla/5.0"),
                        options={"service": "payment_card_rub_hpp"},
                    )
                )
            except paymux.OutcomeUnknown:
                pass  # left open in the ledger
    print("done", flush=True)
    """
)


def test_a_thousand_creates_through_twenty_kills_make_exactly_a_thousand_payments(
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
        settings = {**merchant.settings, "ledger": str(tmp_path / "ledger.sqlite3")}
        command = [sys.executable, "-c", SHOP, json.dumps(settings), str(ORDERS)]
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
        with paymux.connect(settings) as provider:
            ledger = provider.connection.ledger
            assert ledger is not None
            left_open = sum(e.state is EntryState.OPEN for e in ledger.entries())
            sweeps = 0
            while any(e.state is EntryState.OPEN for e in ledger.entries()) and sweeps < 5:
                paymux.sweep(provider, limit=ORDERS, now=time.time() + 10**6 * (sweeps + 1))
                sweeps += 1
            final = ledger.entries()
        elapsed = time.perf_counter() - started
        stored = Counter(payment.order_id for payment in sandbox.payments())

    states = Counter(entry.state.value for entry in final)
    per_order = Counter(entry.order_id for entry in final)
    duplicates = sum(count - 1 for count in stored.values())
    lost = ORDERS - len(stored)
    with capsys.disabled():
        print(
            f"\ncrash: {ORDERS} orders, {kills} kills, {elapsed:.1f} s; left open by the kills "
            f"and lost answers {left_open}, settled by {sweeps} sweeps; at the gateway "
            f"{sum(stored.values())} payments, {duplicates} duplicates, {lost} lost; "
            f"ledger {dict(states)}"
        )
    assert kills == KILLS, "the shop finished before it was killed twenty times"
    assert sum(stored.values()) == ORDERS
    assert duplicates == 0
    assert lost == 0
    assert set(per_order.values()) == {1}, "one ledger entry per order"
    assert states.keys() <= {EntryState.PENDING.value, EntryState.OPERATOR.value}
    assert all(entry.reason for entry in final if entry.state is EntryState.OPERATOR)
