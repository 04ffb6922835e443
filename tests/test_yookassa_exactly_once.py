"""Exactly once, by YooKassa's Idempotence-Key: whatever the answer's fate (a 500, a dropped
connection, a stall past the timeout, a 202 "processing", a 429), the emulator ends up holding
exactly one payment (capture, refund) per call, and an outcome left unknown is settled by
`reconcile(error)` sending the very same bytes with the very same key."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest
from yookassa_support import inject, paid, payment_request, settings_of

import paymux
from paymux import PaymentStatus, Provider, RefundStatus

if TYPE_CHECKING:
    from paymux_yookassa.emulator import Emulator, RecordedRequest

DAY = 24 * 3600


@pytest.fixture
def unreconciled(emulator: Emulator) -> Iterator[Provider]:
    """The shop with `reconcile = false`: the first unknown outcome is raised, not settled."""
    with paymux.connect(settings_of(emulator, reconcile=False)) as connected:
        yield connected


def posts(emulator: Emulator, path: str) -> list[RecordedRequest]:
    return [r for r in emulator.requests if r.method == "POST" and r.path == path]


def same_bytes_and_key(sent: list[RecordedRequest]) -> bool:
    return len({(r.body, r.headers["idempotence-key"]) for r in sent}) == 1


@pytest.mark.parametrize("fault", ["internal_error", "drop_connection", "too_many_requests"])
def test_a_create_whose_answer_is_lost_is_repeated_into_the_same_payment(
    yookassa: Provider, emulator: Emulator, fault: str
) -> None:
    inject(emulator, fault, on="create")

    created = yookassa.create(payment_request())

    assert [payment.id for payment in emulator.payments] == [created.id]
    sent = posts(emulator, "/v3/payments")
    assert len(sent) == 2
    assert same_bytes_and_key(sent)


def test_a_create_past_the_read_timeout_is_repeated_into_the_same_payment(
    emulator: Emulator,
) -> None:
    emulator.stall_seconds = 1.0
    inject(emulator, "stall", on="create")

    with paymux.connect(settings_of(emulator, read_timeout=0.3)) as impatient:
        created = impatient.create(payment_request())

    assert [payment.id for payment in emulator.payments] == [created.id]
    assert same_bytes_and_key(posts(emulator, "/v3/payments"))


def test_a_202_still_processing_is_asked_again_after_its_retry_after() -> None:
    from paymux_yookassa.emulator import Emulator

    slept: list[float] = []
    with Emulator(retry_after_ms=1800) as running, paymux.connect(running.settings()) as shop:
        shop.retry_policy = dataclasses.replace(shop.retry_policy, sleep=slept.append)
        inject(running, "processing", on="create")
        created = shop.create(payment_request())

        assert [payment.id for payment in running.payments] == [created.id]
        assert same_bytes_and_key(posts(running, "/v3/payments"))
    assert len(slept) == 1
    assert slept[0] >= 1.8


def test_an_unknown_outcome_is_raised_with_what_settles_it_never_as_a_failure(
    unreconciled: Provider, emulator: Emulator
) -> None:
    inject(emulator, "internal_error", on="create")

    with pytest.raises(paymux.OutcomeUnknown) as raised:
        unreconciled.create(payment_request())

    unknown = raised.value
    assert not isinstance(unknown, paymux.ProviderError)
    assert unknown.operation == "create"
    assert unknown.idempotency_key == posts(emulator, "/v3/payments")[0].headers["idempotence-key"]
    assert unknown.key_expires_at is not None
    assert DAY - 60 < unknown.key_expires_at - time.time() <= DAY
    assert unknown.http_status == 500
    assert len(emulator.payments) == 1  # YooKassa acted before failing to answer


def test_reconcile_settles_an_unknown_create_into_the_one_payment(
    unreconciled: Provider, emulator: Emulator
) -> None:
    inject(emulator, "drop_connection", on="create")
    with pytest.raises(paymux.OutcomeUnknown) as raised:
        unreconciled.create(payment_request(amount=Decimal("99.90")))

    settled = unreconciled.reconcile(raised.value)

    assert isinstance(settled, paymux.Payment)
    assert [payment.id for payment in emulator.payments] == [settled.id]
    assert (settled.amount, settled.status) == (Decimal("99.90"), PaymentStatus.PENDING)
    assert same_bytes_and_key(posts(emulator, "/v3/payments"))


def test_a_create_that_runs_out_of_attempts_is_settled_later(
    yookassa: Provider, emulator: Emulator
) -> None:
    inject(emulator, "internal_error", on="create", times=3)
    with pytest.raises(paymux.OutcomeUnknown) as raised:
        yookassa.create(payment_request())

    settled = yookassa.reconcile(raised.value)

    assert [payment.id for payment in emulator.payments] == [settled.id]
    assert len(posts(emulator, "/v3/payments")) == 4
    assert same_bytes_and_key(posts(emulator, "/v3/payments"))


def test_an_unknown_outcome_whose_key_yookassa_forgot_is_left_to_a_person(
    unreconciled: Provider, emulator: Emulator
) -> None:
    inject(emulator, "internal_error", on="create")
    with pytest.raises(paymux.OutcomeUnknown) as raised:
        unreconciled.create(payment_request())
    raised.value.key_expires_at = time.time() - 1
    sent = len(emulator.requests)

    with pytest.raises(paymux.OutcomeUnknown, match="by hand"):
        unreconciled.reconcile(raised.value)

    assert len(emulator.requests) == sent


def test_reconcile_by_order_id_is_unsupported(yookassa: Provider) -> None:
    with pytest.raises(paymux.Unsupported):
        yookassa.reconcile("order-1")


def test_a_capture_whose_answer_is_lost_captures_once(
    yookassa: Provider, emulator: Emulator
) -> None:
    held = paid(yookassa, emulator, capture=False, amount=Decimal("500.00"))
    inject(emulator, "internal_error", on="capture")

    captured = yookassa.capture(held.id, Decimal("400.00"))

    assert (captured.status, captured.amount) == (PaymentStatus.PAID, Decimal("400.00"))
    assert same_bytes_and_key(posts(emulator, f"/v3/payments/{held.id}/capture"))


def test_a_refund_whose_answer_is_lost_refunds_once(
    unreconciled: Provider, emulator: Emulator
) -> None:
    payment = paid(unreconciled, emulator, amount=Decimal("500.00"))
    inject(emulator, "drop_connection", on="refund")
    with pytest.raises(paymux.OutcomeUnknown) as raised:
        unreconciled.refund(paymux.RefundRequest(payment.id, Decimal("200.00")))

    settled = unreconciled.reconcile(raised.value)

    assert isinstance(settled, paymux.Refund)
    assert settled.status is RefundStatus.SUCCEEDED
    assert [refund.id for refund in emulator.refunds] == [settled.id]
    assert raised.value.operation == "refund"


def test_concurrent_creates_through_every_fault_make_one_payment_each() -> None:
    from paymux_yookassa.emulator import Emulator, Fault

    rates = {Fault.INTERNAL_ERROR: 0.2, Fault.DROP_CONNECTION: 0.2, Fault.PROCESSING: 0.1}
    made: list[str] = []
    failed: list[BaseException] = []
    with Emulator(fault_rates=rates, fault_seed=7, retry_after_ms=1) as running:
        settings = {**running.settings(), "backoff": 0.01, "max_attempts": 10}
        with paymux.connect(settings) as shop:
            shop.retry_policy = dataclasses.replace(shop.retry_policy, sleep=lambda _: None)

            def buyer() -> None:
                for _ in range(5):
                    try:
                        made.append(shop.create(payment_request()).id)
                    except BaseException as error:
                        failed.append(error)

            threads = [threading.Thread(target=buyer) for _ in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        held = sorted(payment.id for payment in running.payments)

    assert failed == []
    assert sorted(made) == held
    assert len(held) == 40
