"""Exactly-once payments under faults: response integrity, notification guards, confirmation.

A gateway repeats notifications until it hears 200, sends them out of order and to several
workers at once; a genuine notification can still be for a smaller sum than the order's. These
tests pin down what the host is told in each case.
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import stat
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.testing import LogCapture

import paymux
from paymux import (
    ConfigurationError,
    GuardStore,
    GuardStoreError,
    MemoryStore,
    Notification,
    NotificationGuard,
    NotificationKind,
    Payment,
    PaymentMismatch,
    PaymentStatus,
    Payout,
    PayoutStatus,
    Refund,
    RefundStatus,
    SQLiteStore,
    Verdict,
    confirm,
    transition,
)
from paymux.providers.alikassa import AliKassaProvider
from paymux.providers.alikassa.sandbox import Sandbox
from support import Receiver, payment_request

PENDING, PAID, CANCELED, FAILED, UNKNOWN = (
    PaymentStatus.PENDING,
    PaymentStatus.PAID,
    PaymentStatus.CANCELED,
    PaymentStatus.FAILED,
    PaymentStatus.UNKNOWN,
)
NEW, REOPENED, DUPLICATE, STALE, BUSY = (
    Verdict.NEW,
    Verdict.REOPENED,
    Verdict.DUPLICATE,
    Verdict.STALE,
    Verdict.BUSY,
)
ACCOUNT = "93d5df06-996c-48c3-9847-348d6b580b80"


def paid(**changes: object) -> Payment:
    """A payment of 500.00 for order 1001, paid in full; keyword arguments replace fields."""
    payment = Payment(
        provider="alikassa",
        id="42",
        order_id="1001",
        status=PAID,
        amount=Decimal("500.00"),
        paid_amount=Decimal("500.00"),
    )
    return dataclasses.replace(payment, **changes)  # type: ignore[arg-type]


def notification(
    status: PaymentStatus,
    payment_id: str = "42",
    kind: NotificationKind = NotificationKind.PAYMENT,
    *,
    instance: str = "shop",
    account: str = ACCOUNT,
) -> Notification:
    subject: Payment | Payout = paid(id=payment_id, status=status)
    if kind is NotificationKind.PAYOUT:
        subject = Payout(
            provider="alikassa", id=payment_id, order_id="p-1", status=PAYOUT_OF[status]
        )
    return Notification(
        provider="alikassa",
        instance=instance,
        account=account,
        kind=kind,
        subject=subject,
        fields={},
    )


# -- response integrity: is this the payment the host expects? -------------------------------


def test_a_payment_paid_in_full_matches_its_order_and_amount() -> None:
    assert paid().matches(order_id="1001", amount=Decimal("500.00"))
    assert paid().matches(order_id="1001", amount=Decimal("500"))  # the same money


def test_nothing_expected_means_nothing_to_mismatch() -> None:
    assert paid(order_id=None, amount=None).matches()


@pytest.mark.parametrize(
    ("expected", "reason"),
    [
        ({"order_id": "1002"}, "order_id is '1001', expected '1002'"),
        ({"amount": Decimal("500.01")}, "amount is 500.00, expected 500.01"),
    ],
    ids=["another order", "another amount"],
)
def test_another_order_or_amount_does_not_match_and_check_says_why(
    expected: dict[str, object], reason: str
) -> None:
    payment = paid()

    assert not payment.matches(**expected)  # type: ignore[arg-type]
    with pytest.raises(PaymentMismatch) as raised:
        payment.check(**expected)  # type: ignore[arg-type]

    assert raised.value.reasons == (reason,)
    assert raised.value.payment is payment
    assert isinstance(raised.value, paymux.PaymuxError)


def test_check_returns_the_payment_so_it_reads_as_one_line() -> None:
    payment = paid()

    assert payment.check(order_id="1001", amount=Decimal("500")) is payment


def test_check_reports_every_difference_at_once() -> None:
    with pytest.raises(PaymentMismatch) as raised:
        paid().check(order_id="9", amount=Decimal("1"))

    assert len(raised.value.reasons) == 2


def test_a_partial_payment_is_not_a_full_one_unless_the_host_accepts_it() -> None:
    partial = paid(paid_amount=Decimal("300.00"), is_partial=True)

    assert not partial.matches(amount=Decimal("500.00"))
    assert partial.matches(amount=Decimal("500.00"), accept_partial=True)
    with pytest.raises(PaymentMismatch, match=r"paid only in part: 300\.00 of 500\.00"):
        partial.check(order_id="1001", amount=Decimal("500.00"))


def test_a_partial_flag_with_an_unknown_paid_sum_is_not_a_full_payment() -> None:
    assert not paid(paid_amount=None, is_partial=True).matches(amount=Decimal("500.00"))


def test_a_short_paid_sum_is_partial_even_without_the_flag() -> None:
    assert not paid(paid_amount=Decimal("499.99")).matches(amount=Decimal("500.00"))


def test_money_covering_the_amount_is_a_full_payment_whatever_the_flag_says() -> None:
    assert paid(is_partial=True).matches(amount=Decimal("500.00"))


def test_a_pending_payment_matches_by_amount_alone_its_status_is_the_hosts_call() -> None:
    assert paid(status=PENDING, paid_amount=None).matches(amount=Decimal("500.00"))


def test_a_payment_of_unknown_amount_cannot_match_an_expected_amount() -> None:
    assert not paid(amount=None).matches(amount=Decimal("500.00"))


# -- the status-transition rule: every pair ---------------------------------------------------

AUTHORIZED = PaymentStatus.AUTHORIZED
# fmt: off
TABLE: dict[PaymentStatus | None, dict[PaymentStatus, Verdict]] = {
    # previous   new: PENDING   AUTHORIZED   PAID   CANCELED   FAILED   UNKNOWN
    None: {PENDING: NEW, AUTHORIZED: NEW, PAID: NEW, CANCELED: NEW, FAILED: NEW, UNKNOWN: NEW},
    UNKNOWN: {
        PENDING: NEW,
        AUTHORIZED: NEW,
        PAID: NEW,
        CANCELED: NEW,
        FAILED: NEW,
        UNKNOWN: DUPLICATE,
    },
    PENDING: {
        PENDING: DUPLICATE,
        AUTHORIZED: NEW,
        PAID: NEW,
        CANCELED: NEW,
        FAILED: NEW,
        UNKNOWN: STALE,
    },
    AUTHORIZED: {
        PENDING: STALE,
        AUTHORIZED: DUPLICATE,
        PAID: NEW,
        CANCELED: NEW,
        FAILED: NEW,
        UNKNOWN: STALE,
    },
    PAID: {
        PENDING: STALE,
        AUTHORIZED: STALE,
        PAID: DUPLICATE,
        CANCELED: STALE,
        FAILED: STALE,
        UNKNOWN: STALE,
    },
    CANCELED: {
        PENDING: STALE,
        AUTHORIZED: STALE,
        PAID: REOPENED,
        CANCELED: DUPLICATE,
        FAILED: STALE,
        UNKNOWN: STALE,
    },
    FAILED: {
        PENDING: STALE,
        AUTHORIZED: STALE,
        PAID: REOPENED,
        CANCELED: STALE,
        FAILED: DUPLICATE,
        UNKNOWN: STALE,
    },
}
# fmt: on
REFUND_TABLE: dict[RefundStatus | None, dict[RefundStatus, Verdict]] = {
    None: {r: NEW for r in RefundStatus},
    RefundStatus.UNKNOWN: {**{r: NEW for r in RefundStatus}, RefundStatus.UNKNOWN: DUPLICATE},
    RefundStatus.PENDING: {
        RefundStatus.UNKNOWN: STALE,
        RefundStatus.PENDING: DUPLICATE,
        RefundStatus.SUCCEEDED: NEW,
        RefundStatus.CANCELED: NEW,
    },
    RefundStatus.SUCCEEDED: {
        **{r: STALE for r in RefundStatus},
        RefundStatus.SUCCEEDED: DUPLICATE,
    },
    RefundStatus.CANCELED: {
        **{r: STALE for r in RefundStatus},
        RefundStatus.CANCELED: DUPLICATE,
        RefundStatus.SUCCEEDED: REOPENED,
    },
}
PAYOUT_OF = {
    PENDING: PayoutStatus.PENDING,
    PAID: PayoutStatus.PAID,
    FAILED: PayoutStatus.FAILED,
    CANCELED: PayoutStatus.CANCELED,
    UNKNOWN: PayoutStatus.UNKNOWN,
}
"""Payouts live the life of a one-phase payment: their table is the payment table without
AUTHORIZED."""
PAIRS = [
    (before, after, verdict) for before, row in TABLE.items() for after, verdict in row.items()
]


def test_the_table_covers_every_pair_of_statuses() -> None:
    assert set(TABLE) == {None, *PaymentStatus}
    assert all(set(row) == set(PaymentStatus) for row in TABLE.values())


@pytest.mark.parametrize(
    ("previous", "new", "verdict"), PAIRS, ids=[f"{p}->{n}" for p, n, _ in PAIRS]
)
def test_transition(previous: PaymentStatus | None, new: PaymentStatus, verdict: Verdict) -> None:
    assert transition(previous, new) is verdict


REFUND_PAIRS = [
    (before, after, verdict)
    for before, row in REFUND_TABLE.items()
    for after, verdict in row.items()
]


@pytest.mark.parametrize(
    ("previous", "new", "verdict"), REFUND_PAIRS, ids=[f"{p}->{n}" for p, n, _ in REFUND_PAIRS]
)
def test_refund_transition(
    previous: RefundStatus | None, new: RefundStatus, verdict: Verdict
) -> None:
    assert set(REFUND_TABLE) == {None, *RefundStatus}
    assert transition(previous, new) is verdict


PAYOUT_PAIRS = [
    (before, after, verdict)
    for before, row in TABLE.items()
    for after, verdict in row.items()
    if AUTHORIZED not in (before, after)
]


@pytest.mark.parametrize(
    ("previous", "new", "verdict"), PAYOUT_PAIRS, ids=[f"{p}->{n}" for p, n, _ in PAYOUT_PAIRS]
)
def test_payout_transition(
    previous: PaymentStatus | None, new: PaymentStatus, verdict: Verdict
) -> None:
    before = None if previous is None else PAYOUT_OF[previous]
    assert transition(before, PAYOUT_OF[new]) is verdict


def test_authorized_then_captured_is_new_at_each_step(guard: NotificationGuard) -> None:
    assert handle(guard, notification(PENDING)) is NEW
    assert handle(guard, notification(AUTHORIZED)) is NEW
    assert handle(guard, notification(PAID)) is NEW
    assert handle(guard, notification(AUTHORIZED)) is DUPLICATE


def test_an_authorized_arriving_after_the_capture_is_stale(guard: NotificationGuard) -> None:
    assert handle(guard, notification(PAID)) is NEW
    assert handle(guard, notification(AUTHORIZED, payment_id="42")) is STALE


def test_a_refund_is_admitted_under_its_own_key_even_when_its_id_is_a_payments(
    guard: NotificationGuard,
) -> None:
    refund = Refund(provider="alikassa", id="42", payment_id="42", status=RefundStatus.SUCCEEDED)
    refunded = Notification(
        provider="alikassa",
        instance="shop",
        account=ACCOUNT,
        kind=NotificationKind.REFUND,
        subject=refund,
        fields={},
    )
    assert handle(guard, notification(PAID)) is NEW
    assert handle(guard, refunded) is NEW
    assert handle(guard, refunded) is DUPLICATE
    assert guard.key(refunded) == f"alikassa:shop:{ACCOUNT}:refund:42"


@pytest.mark.parametrize("verdict", list(Verdict))
def test_only_new_and_reopened_are_acted_on(verdict: Verdict) -> None:
    assert verdict.act is (verdict in (NEW, REOPENED))


@pytest.mark.parametrize("verdict", list(Verdict))
def test_only_busy_asks_the_gateway_to_repeat(verdict: Verdict) -> None:
    assert verdict.retry is (verdict is BUSY)


# -- the guard, over each store ---------------------------------------------------------------


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "sqlite", "postgres", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GuardStore]:
    """Each store, the networked ones on servers started once per run (tests/servers.py), under
    a table or prefix of this test's own."""
    unique = uuid.uuid4().hex[:12]
    if request.param == "memory":
        yield MemoryStore()
    elif request.param == "sqlite":
        yield SQLiteStore(tmp_path / "guard.sqlite3")
    elif request.param == "postgres":
        dsn = request.getfixturevalue("postgres_dsn")  # first: skips, saying why, without psycopg
        from paymux.stores import PostgresStore

        with PostgresStore(dsn, table=f"guard_{unique}") as postgres:
            yield postgres
    else:
        url = request.getfixturevalue("redis_url")
        from paymux.stores import RedisStore

        with RedisStore(url, prefix=f"test:{unique}:") as redis:
            yield redis


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def guard(store: GuardStore, clock: Clock) -> NotificationGuard:
    return NotificationGuard(store, clock=clock)


def handle(guard: NotificationGuard, received: Notification) -> Verdict:
    """A worker whose write succeeds: admitted, acted on, committed."""
    with guard.admitted(received) as verdict:
        return verdict


def test_the_first_notification_is_new_and_its_repeats_are_duplicates(
    guard: NotificationGuard,
) -> None:
    assert handle(guard, notification(PAID)) is NEW
    assert handle(guard, notification(PAID)) is DUPLICATE
    assert handle(guard, notification(PAID)) is DUPLICATE


def test_a_status_arriving_after_a_later_one_is_stale(guard: NotificationGuard) -> None:
    assert handle(guard, notification(PAID)) is NEW

    assert handle(guard, notification(PENDING)) is STALE
    assert handle(guard, notification(CANCELED)) is STALE


def test_the_usual_life_of_a_payment_is_new_at_every_step(guard: NotificationGuard) -> None:
    assert handle(guard, notification(PENDING)) is NEW
    assert handle(guard, notification(PAID)) is NEW
    assert handle(guard, notification(PENDING)) is DUPLICATE


def test_a_late_paid_after_cancel_is_reopened_and_acted_on_once(
    guard: NotificationGuard,
) -> None:
    assert handle(guard, notification(CANCELED)) is NEW

    assert handle(guard, notification(PAID)) is REOPENED
    assert handle(guard, notification(PAID)) is DUPLICATE
    assert handle(guard, notification(CANCELED)) is DUPLICATE
    assert handle(guard, notification(FAILED)) is STALE


def captured_events(guard: NotificationGuard, *received: Notification) -> list[dict[str, Any]]:
    """The guard's events while it handles `received` in turn."""
    capture = LogCapture()
    structlog.configure(processors=[capture])
    try:
        for item in received:
            handle(guard, item)
    finally:
        structlog.reset_defaults()
    return [dict(entry) for entry in capture.entries if entry["event"].startswith("paymux.guard.")]


def test_a_reopened_payment_is_flagged_with_a_warning_event(guard: NotificationGuard) -> None:
    (event,) = captured_events(guard, notification(CANCELED), notification(PAID))

    assert event["event"] == "paymux.guard.reopened"
    assert event["log_level"] == "warning"
    assert (event["payment_id"], event["previous"], event["status"]) == ("42", "canceled", "paid")


@pytest.mark.parametrize(
    ("later", "event"),
    [(PAID, "paymux.guard.duplicate"), (PENDING, "paymux.guard.stale")],
    ids=["duplicate", "stale"],
)
def test_a_repeat_or_a_stale_notification_is_logged_with_the_payment_it_is_about(
    guard: NotificationGuard, later: PaymentStatus, event: str
) -> None:
    (logged,) = captured_events(guard, notification(PAID), notification(later))

    assert logged == {
        "event": event,
        "log_level": "info",
        "provider": "alikassa",
        "instance": "shop",
        "kind": "payment",
        "payment_id": "42",
        "order_id": "1001",
        "status": later.value,
        "previous": "paid",
    }


def test_a_copy_held_off_while_another_worker_acts_is_logged_as_busy(
    guard: NotificationGuard,
) -> None:
    guard.admit(notification(PAID))  # another worker's claim, not committed yet

    (logged,) = captured_events(guard, notification(PAID))

    assert (logged["event"], logged["log_level"]) == ("paymux.guard.busy", "info")
    assert (logged["instance"], logged["payment_id"], logged["status"]) == ("shop", "42", "paid")


def test_the_key_names_provider_instance_account_kind_and_payment(
    guard: NotificationGuard,
) -> None:
    assert guard.key(notification(PAID)) == f"alikassa:shop:{ACCOUNT}:payment:42"


def test_the_same_payment_id_under_another_account_or_instance_is_another_payment(
    guard: NotificationGuard,
) -> None:
    assert handle(guard, notification(PAID)) is NEW

    assert handle(guard, notification(PAID, account="0d5e7a1c-other-account")) is NEW
    assert handle(guard, notification(PAID, instance="restarted-sandbox")) is NEW
    assert handle(guard, notification(PAID)) is DUPLICATE


def test_payments_and_payouts_are_kept_apart(guard: NotificationGuard) -> None:
    assert handle(guard, notification(PAID, "1")) is NEW
    assert handle(guard, notification(PAID, "2")) is NEW
    assert handle(guard, notification(PAID, "1", NotificationKind.PAYOUT)) is NEW


def test_while_a_claim_is_held_every_copy_is_busy_until_it_is_committed(
    guard: NotificationGuard,
) -> None:
    assert guard.admit(notification(PAID)) is NEW

    assert guard.admit(notification(PAID)) is BUSY
    assert guard.admit(notification(PENDING)) is BUSY  # whatever it reports

    guard.commit(notification(PAID))
    assert guard.admit(notification(PAID)) is DUPLICATE
    assert guard.admit(notification(PENDING)) is STALE


def test_release_lets_the_gateways_repeat_through(guard: NotificationGuard) -> None:
    assert guard.admit(notification(PAID)) is NEW

    guard.release(notification(PAID))  # the host failed to record it and answers 500

    assert handle(guard, notification(PAID)) is NEW
    assert handle(guard, notification(PAID)) is DUPLICATE


def test_release_drops_only_its_own_claim(guard: NotificationGuard) -> None:
    handle(guard, notification(PENDING))
    guard.admit(notification(PAID))

    guard.release(notification(PENDING))  # not the status claimed: nothing changes
    assert guard.admit(notification(PAID)) is BUSY

    guard.release(notification(PAID))
    assert guard.admit(notification(PENDING)) is DUPLICATE
    assert guard.admit(notification(PAID)) is NEW


def test_a_claim_whose_worker_died_expires_after_the_lease(store: GuardStore, clock: Clock) -> None:
    guard = NotificationGuard(store, clock=clock)  # the default lease: five minutes
    assert guard.admit(notification(PAID)) is NEW  # and the process dies before its write

    clock.now += 299.5
    assert guard.admit(notification(PAID)) is BUSY
    clock.now += 0.5
    assert handle(guard, notification(PAID)) is NEW

    clock.now += 10**9  # a committed status never expires
    assert guard.admit(notification(PAID)) is DUPLICATE


def test_the_lease_is_configurable(store: GuardStore, clock: Clock) -> None:
    guard = NotificationGuard(store, lease=2.0, clock=clock)
    assert guard.admit(notification(PAID)) is NEW

    clock.now += 2.0

    assert guard.admit(notification(PAID)) is NEW


@pytest.mark.parametrize("lease", [0.0, -1.0, float("nan")])
def test_a_lease_that_is_not_a_positive_duration_is_refused(lease: float) -> None:
    with pytest.raises(ConfigurationError, match="lease"):
        NotificationGuard(MemoryStore(), lease=lease)


def endpoint(guard: NotificationGuard, received: Notification, write: Callable[[], None]) -> int:
    """A notification endpoint as the recipes write it; returns its HTTP status."""
    try:
        with guard.admitted(received) as verdict:
            if verdict.act:
                write()
    except RuntimeError:
        return 500
    return 503 if verdict.retry else 200


def test_a_copy_arriving_while_a_write_fails_is_not_answered_200_so_it_is_not_lost(
    store: GuardStore,
) -> None:
    worker_a, worker_b = NotificationGuard(store), NotificationGuard(store)
    answers: list[tuple[str, int]] = []
    recorded: list[Notification] = []

    def write_that_fails_while_b_gets_a_copy() -> None:
        answers.append(("B", endpoint(worker_b, notification(PAID), lambda: None)))
        raise RuntimeError("the shop's database is down")

    answers.append(
        ("A", endpoint(worker_a, notification(PAID), write_that_fails_while_b_gets_a_copy))
    )

    assert answers == [("B", 503), ("A", 500)]  # no 200: the gateway repeats it
    assert (
        endpoint(worker_b, notification(PAID), lambda: recorded.append(notification(PAID))) == 200
    )
    assert len(recorded) == 1


def handle_and_fail(guard: NotificationGuard, received: Notification) -> list[Verdict]:
    """A notification endpoint whose recording fails; returns the verdict it was given."""
    seen: list[Verdict] = []

    def endpoint() -> None:
        with guard.admitted(received) as verdict:
            seen.append(verdict)
            raise RuntimeError("the shop's database is down")

    with pytest.raises(RuntimeError, match="database is down"):
        endpoint()
    return seen


def test_admitted_releases_when_acting_fails(guard: NotificationGuard) -> None:
    assert handle_and_fail(guard, notification(PAID)) == [NEW]

    with guard.admitted(notification(PAID)) as verdict:
        assert verdict is NEW
    assert guard.admit(notification(PAID)) is DUPLICATE


def test_admitted_never_releases_what_another_worker_claimed(guard: NotificationGuard) -> None:
    guard.admit(notification(PAID))  # another worker's claim

    assert handle_and_fail(guard, notification(PAID)) == [BUSY]

    assert guard.admit(notification(PAID)) is BUSY


def test_of_many_threads_given_the_same_notification_one_gets_new_and_the_rest_busy(
    guard: NotificationGuard,
) -> None:
    verdicts: list[Verdict] = []
    start = threading.Barrier(16)

    def admit() -> None:
        start.wait()
        verdicts.append(guard.admit(notification(PAID)))

    threads = [threading.Thread(target=admit) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(verdicts) == sorted([NEW] + [BUSY] * 15)


def test_an_sqlite_store_remembers_claims_and_statuses_across_instances(tmp_path: Path) -> None:
    path = tmp_path / "guard.sqlite3"
    assert NotificationGuard(SQLiteStore(path)).admit(notification(PAID)) is NEW
    assert NotificationGuard(SQLiteStore(path)).admit(notification(PAID)) is BUSY

    NotificationGuard(SQLiteStore(path)).commit(notification(PAID))

    assert NotificationGuard(SQLiteStore(path)).admit(notification(PAID)) is DUPLICATE


def test_an_sqlite_store_keeps_nothing_of_a_change_that_raised(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "guard.sqlite3")

    def broken(current: str | None) -> str | None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        store.update("k", broken)

    assert store.update("k", lambda current: current) is None


def replaced_by(value: str) -> Callable[[str | None], str]:
    """A store change that writes `value` whatever was there."""
    return lambda current: value


def test_an_unreadable_guard_record_is_a_guard_store_error(
    store: GuardStore, guard: NotificationGuard
) -> None:
    store.update(guard.key(notification(PAID)), replaced_by("paid,refunded"))

    with pytest.raises(GuardStoreError, match="unreadable guard record 'paid,refunded'"):
        guard.admit(notification(PAID))


def test_an_sqlite_lock_held_past_the_timeout_is_a_guard_store_error(tmp_path: Path) -> None:
    path = tmp_path / "guard.sqlite3"
    guard = NotificationGuard(SQLiteStore(path, timeout=0.05))
    with closing(sqlite3.connect(path, isolation_level=None)) as other_process:
        other_process.execute("BEGIN IMMEDIATE")  # holds the write lock

        with pytest.raises(GuardStoreError, match="database is locked"):
            guard.admit(notification(PAID))

        other_process.execute("ROLLBACK")

    assert guard.admit(notification(PAID)) is NEW  # the failed admit claimed nothing


def test_a_new_sqlite_store_and_its_wal_and_shm_files_are_for_the_owner_only(
    tmp_path: Path,
) -> None:
    path = tmp_path / "guard.sqlite3"
    umask = os.umask(0)  # even a host that lets everyone read what it creates
    try:
        store = SQLiteStore(path)
        with closing(sqlite3.connect(path)) as reader:  # keeps the WAL and SHM files in place
            reader.execute("SELECT count(*) FROM paymux_guard").fetchone()
            handle(NotificationGuard(store), notification(PAID))
            modes = {
                suffix: stat.S_IMODE(os.stat(f"{path}{suffix}").st_mode)
                for suffix in ("", "-wal", "-shm")
            }
    finally:
        os.umask(umask)

    assert modes == {"": 0o600, "-wal": 0o600, "-shm": 0o600}


def test_migrate_keys_moves_records_kept_before_keys_named_instance_and_account(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "guard.sqlite3")
    old = {
        "alikassa:payment:42": "pending,paid",
        "alikassa:payout:42": "paid",
        "alikassa:payment:7": "paid",
        f"alikassa:shop:{ACCOUNT}:payment:7": "pending",  # written by this version already
        "hmacpay:payment:42": "paid",
    }
    for key, value in old.items():
        store.update(key, replaced_by(value))

    assert store.migrate_keys("alikassa", instance="shop", account=ACCOUNT) == 2

    guard = NotificationGuard(store)
    assert guard.admit(notification(PAID)) is DUPLICATE
    assert guard.admit(notification(PENDING)) is DUPLICATE
    assert guard.admit(notification(PAID, kind=NotificationKind.PAYOUT)) is DUPLICATE
    assert guard.admit(notification(PAID, account="0d5e7a1c-other-account")) is NEW
    assert store.update(f"alikassa:shop:{ACCOUNT}:payment:7", lambda value: value) == "pending"
    assert store.update("hmacpay:payment:42", lambda value: value) == "paid"
    assert store.migrate_keys("alikassa", instance="shop", account=ACCOUNT) == 0


WORKER = """
import sys, time, pathlib
from paymux import (
    Notification, NotificationGuard, NotificationKind, Payment, PaymentStatus, SQLiteStore
)
guard = NotificationGuard(SQLiteStore(sys.argv[1]))
payment = Payment(provider="alikassa", id="42", order_id="1001", status=PaymentStatus.PAID)
notification = Notification(
    provider="alikassa", instance="shop", account="a", kind=NotificationKind.PAYMENT,
    subject=payment, fields={}
)
go = pathlib.Path(sys.argv[2])
print("ready", flush=True)
while not go.exists():
    time.sleep(0.001)
print(guard.admit(notification).value, flush=True)
"""


def test_of_many_processes_given_the_same_notification_one_gets_new_and_the_rest_busy(
    tmp_path: Path,
) -> None:
    database, go = tmp_path / "guard.sqlite3", tmp_path / "go"
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(database), str(go)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            assert worker.stdout.readline() == "ready\n"
        go.touch()  # all at once
        answers = [worker.communicate(timeout=60)[0].strip() for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()

    assert [worker.returncode for worker in workers] == [0] * 8
    assert sorted(answers) == ["busy"] * 7 + ["new"]


# -- confirmation against the status API, over a real sandbox ---------------------------------


def delivered(
    provider: AliKassaProvider,
    sandbox: Sandbox,
    receiver: Receiver,
    *,
    paid_amount: Decimal | None = None,
) -> Notification:
    """Create a payment of 500.00, settle it as paid and parse the notification the shop got."""
    created = provider.create(payment_request(notification_url=receiver.url))
    sandbox.settle(created.id, "paid", paid_amount=paid_amount)
    (path,) = receiver.wait_for(1)
    return provider.parse_notification(path)


def test_a_paid_notification_is_confirmed_by_the_status_api(
    provider: AliKassaProvider, sandbox: Sandbox, receiver: Receiver
) -> None:
    received = delivered(provider, sandbox, receiver)
    assert NotificationGuard(MemoryStore()).admit(received) is NEW

    confirmed = confirm(
        provider, received, order_id=received.payment.order_id, amount=Decimal("500.00")
    )

    assert confirmed.status is PAID
    assert confirmed.id == received.payment.id
    assert confirmed.paid_amount == Decimal("500.00")


def test_a_partial_payment_is_refused_when_the_host_expects_the_full_amount(
    provider: AliKassaProvider, sandbox: Sandbox, receiver: Receiver
) -> None:
    received = delivered(provider, sandbox, receiver, paid_amount=Decimal("300.00"))

    assert received.payment.status is PAID
    assert not received.payment.matches(amount=Decimal("500.00"))
    with pytest.raises(PaymentMismatch, match="paid only in part") as raised:
        confirm(provider, received, amount=Decimal("500.00"))
    assert raised.value.payment.paid_amount == Decimal("300.00")

    accepted = confirm(provider, received, amount=Decimal("500.00"), accept_partial=True)
    assert accepted.paid_amount == Decimal("300.00")


def test_a_notification_the_status_api_disagrees_with_is_a_mismatch(
    provider: AliKassaProvider, sandbox: Sandbox, receiver: Receiver
) -> None:
    received = delivered(provider, sandbox, receiver)
    claimed = dataclasses.replace(
        received,
        subject=dataclasses.replace(received.payment, amount=Decimal("5000.00"), status=FAILED),
    )

    with pytest.raises(PaymentMismatch) as raised:
        confirm(provider, claimed)

    assert raised.value.reasons == (
        "status is paid, notification says failed",
        "amount is 500.00, notification says 5000.00",
    )


def test_confirm_knows_payments_only(provider: AliKassaProvider) -> None:
    with pytest.raises(ValueError, match="payments only"):
        confirm(provider, notification(PAID, kind=NotificationKind.PAYOUT))
