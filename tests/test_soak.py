"""Soak: a thousand creates against a sandbox that fails half of them, and not one lost or doubled.

Faults on create happen after the payment is stored, so every faulted create is one whose answer
was lost. What must hold is counted in payments: each order stored once, none lost, each
returned. How many requests that took is not: under load a status lookup may time out too, and
create then rightly re-sends the same request, which the gateway refuses as `order_id exists`.
Run with `-s` to see the counts.
"""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

import paymux
from paymux.providers.alikassa import AliKassaProvider, CertificateFolder
from paymux.providers.alikassa.sandbox import Fault, Sandbox
from support import payment_request

CREATES = 1000
THREADS = 16
RATES = {Fault.INTERNAL_ERROR: 0.3, Fault.DROP_CONNECTION: 0.1, Fault.STALL: 0.1}
AMOUNT = Decimal("150.00")


def create_one(provider: AliKassaProvider, order_id: str) -> tuple[str, paymux.Payment]:
    """("created", payment) or, when create gave up, ("reconciled", what reconcile found)."""
    try:
        return "created", provider.create(payment_request(order_id=order_id))
    except paymux.OutcomeUnknown:
        return "reconciled", provider.reconcile(order_id)


def test_a_thousand_creates_under_faults_make_exactly_a_thousand_payments(
    notification_certificate: CertificateFolder,
    tmp_path: Path,
    payment_key: rsa.RSAPrivateKey,
    capsys: pytest.CaptureFixture[str],
) -> None:
    order_ids = [f"soak-{n:04d}" for n in range(CREATES)]
    with Sandbox(
        notification_certificate=notification_certificate.path, fault_rates=RATES, fault_seed=42
    ) as sandbox:
        sandbox.gateway.stall_seconds = 0.3
        merchant = sandbox.create_merchant(tmp_path / "payment", private_key=payment_key)
        started = time.perf_counter()
        with (
            paymux.connect({**merchant.settings, "read_timeout": 0.1}) as provider,
            ThreadPoolExecutor(THREADS) as pool,
        ):
            assert isinstance(provider, AliKassaProvider)
            results = list(pool.map(lambda order_id: create_one(provider, order_id), order_ids))
        elapsed = time.perf_counter() - started
        stored = Counter(payment.order_id for payment in sandbox.payments())
        paths = Counter(request.path for request in sandbox.requests)

    outcomes = Counter(outcome for outcome, _ in results)
    returned = [str(payment.order_id) for _, payment in results]
    duplicates = sum(count - 1 for count in stored.values())
    lost = len(set(order_ids) - set(stored))
    with capsys.disabled():  # the counts belong in every run's output
        print(
            f"\nsoak: {CREATES} creates in {elapsed:.1f} s over {THREADS} threads; "
            f"returned {outcomes['created']}, reconciled later {outcomes['reconciled']}; "
            f"stored {sum(stored.values())}, duplicates {duplicates}, lost {lost}; "
            f"requests: {paths['/v1/payment']} creates, {paths['/v1/payment/status']} status"
        )
    assert sum(stored.values()) == CREATES
    assert duplicates == 0
    assert lost == 0
    assert sorted(returned) == order_ids
    assert paths["/v1/payment/status"] >= CREATES * 0.4, "half the creates were faulted"


def test_a_thousand_creates_at_yookassa_with_half_the_answers_lost_make_a_thousand_payments(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The same soak for the other exactly-once mechanism: an Idempotence-Key, no lookup."""
    from paymux_yookassa.emulator import Emulator
    from paymux_yookassa.emulator import Fault as EmulatorFault

    rates = {
        EmulatorFault.INTERNAL_ERROR: 0.3,
        EmulatorFault.DROP_CONNECTION: 0.1,
        EmulatorFault.STALL: 0.1,
    }
    order_ids = [f"soak-{n:04d}" for n in range(CREATES)]
    keys: list[tuple[str | None, str | None]] = []  # (key reconciled, key of what it left)

    def create_one(provider: paymux.Provider, order_id: str) -> tuple[str, paymux.Payment]:
        request = paymux.PaymentRequest(
            order_id=order_id, amount=AMOUNT, success_url="https://shop.example/back"
        )
        try:
            return "created", provider.create(request)
        except paymux.OutcomeUnknown as unknown:
            return "reconciled", settle(provider, unknown)

    def settle(provider: paymux.Provider, unknown: paymux.OutcomeUnknown) -> paymux.Payment:
        """What a sweeper does: reconcile again while the outcome stays unknown."""
        for _ in range(20):
            try:
                settled = provider.reconcile(unknown)
            except paymux.OutcomeUnknown as again:
                keys.append((unknown.idempotency_key, again.idempotency_key))
                unknown = again
                continue
            assert isinstance(settled, paymux.Payment)
            return settled
        raise AssertionError(f"still unknown after 20 reconciles: {unknown}")

    with Emulator(fault_rates=rates, fault_seed=42, stall_seconds=0.3) as emulator:
        started = time.perf_counter()
        with (
            paymux.connect({**emulator.settings(), "read_timeout": 0.1}) as provider,
            ThreadPoolExecutor(THREADS) as pool,
        ):
            results = list(pool.map(lambda order_id: create_one(provider, order_id), order_ids))
        elapsed = time.perf_counter() - started
        stored = Counter(payment.metadata.get("order_id") for payment in emulator.payments)
        creates = sum(1 for request in emulator.requests if request.path == "/v3/payments")

    outcomes = Counter(outcome for outcome, _ in results)
    returned = [str(payment.order_id) for _, payment in results]
    duplicates = sum(count - 1 for count in stored.values())
    lost = len(set(order_ids) - set(stored))
    with capsys.disabled():
        print(
            f"\nyookassa soak: {CREATES} creates in {elapsed:.1f} s over {THREADS} threads; "
            f"returned {outcomes['created']}, reconciled later {outcomes['reconciled']}; "
            f"stored {sum(stored.values())}, duplicates {duplicates}, lost {lost}; "
            f"requests: {creates} creates"
        )
    assert sum(stored.values()) == CREATES
    assert duplicates == 0
    assert lost == 0
    assert sorted(returned) == order_ids
    assert all(before == after for before, after in keys), "a reconcile never takes a new key"
    assert creates >= CREATES * 1.4, "half the answers were lost, so creates were re-sent"
