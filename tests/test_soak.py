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


def create_one(provider: AliKassaProvider, order_id: str) -> tuple[str, paymux.Payment]:
    """("created", payment) or, when create gave up, ("reconciled", what reconcile found)."""
    try:
        return "created", provider.create(payment_request(order_id=order_id))
    except paymux.OutcomeUnknown as unknown:
        return "reconciled", provider.reconcile(unknown.order_id)


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
