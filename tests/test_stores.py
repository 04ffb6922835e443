"""The networked guard stores: `PostgresStore` and `RedisStore`, against real servers.

Each test keeps its records under a table (PostgreSQL) or prefix (Redis) of its own, on servers
started once per run (tests/servers.py). The guard's own rules run over both stores in
tests/test_guards.py; here: the store contract, atomicity across threads and processes, and
failures that name the store but never its password. Run this file as a script and it is one
worker process of the concurrency tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("psycopg", reason="no psycopg: pip install 'paymux[postgres]'")
pytest.importorskip("redis", reason="no redis-py: pip install 'paymux[redis]'")

from paymux import (
    ConfigurationError,
    GuardStoreError,
    Notification,
    NotificationGuard,
    NotificationKind,
    Payment,
    PaymentStatus,
    Verdict,
)
from paymux.stores import PostgresStore, RedisStore

Place = tuple[str, str, str]
"""Where a test's records live: the store's kind, its server's address, its table or prefix."""

INCREMENTS = 200
THREADS = 8
PROCESSES = 4
PASSWORD = "hunter2-not-shown"


def opened(kind: str, address: str, name: str) -> PostgresStore | RedisStore:
    if kind == "postgres":
        return PostgresStore(address, table=name)
    return RedisStore(address, prefix=name)


@pytest.fixture(params=["postgres", "redis"])
def place(request: pytest.FixtureRequest) -> Place:
    unique = uuid.uuid4().hex[:12]
    if request.param == "postgres":
        return "postgres", request.getfixturevalue("postgres_dsn"), f"guard_{unique}"
    return "redis", request.getfixturevalue("redis_url"), f"test:{unique}:"


@pytest.fixture
def store(place: Place) -> Iterator[PostgresStore | RedisStore]:
    with opened(*place) as running:
        yield running


def increment(value: str | None) -> str:
    return str(int(value or 0) + 1)


def payment_notification() -> Notification:
    payment = Payment(provider="alikassa", id="42", order_id="1001", status=PaymentStatus.PAID)
    return Notification(
        provider="alikassa",
        instance="shop",
        account="a",
        kind=NotificationKind.PAYMENT,
        subject=payment,
        fields={},
    )


# -- the store contract ----------------------------------------------------------------------


def test_each_update_returns_the_value_it_replaced(store: PostgresStore | RedisStore) -> None:
    assert store.update("k", lambda current: "one") is None  # the first sees nothing
    assert store.update("k", lambda current: f"{current},two") == "one"
    assert store.update("k", lambda current: current) == "one,two"  # left as it was
    assert store.update("other", lambda current: "x") is None  # keys are apart

    assert store.update("k", lambda current: None) == "one,two"  # deleted
    assert store.update("k", lambda current: current) is None
    assert store.update("never", lambda current: None) is None  # deleting nothing keeps nothing
    assert store.update("never", lambda current: current) is None


def test_a_change_that_raises_writes_nothing(store: PostgresStore | RedisStore) -> None:
    def broken(current: str | None) -> str:
        raise ValueError("boom")

    store.update("kept", lambda current: "before")
    for key in ("kept", "absent"):
        with pytest.raises(ValueError, match="boom"):
            store.update(key, broken)

    assert store.update("kept", lambda current: current) == "before"
    assert store.update("absent", lambda current: current) is None


def test_stores_on_the_same_server_share_claims_like_hosts_do(place: Place) -> None:
    with opened(*place) as host_a, opened(*place) as host_b:
        guard_a, guard_b = NotificationGuard(host_a), NotificationGuard(host_b)
        assert guard_a.admit(payment_notification()) is Verdict.NEW
        assert guard_b.admit(payment_notification()) is Verdict.BUSY

        guard_a.commit(payment_notification())

        assert guard_b.admit(payment_notification()) is Verdict.DUPLICATE


# -- atomicity under real concurrency ----------------------------------------------------------


def count(kind: str, address: str, name: str, go: str) -> None:
    """One worker process: wait for `go`, increment the counter, print what each update saw."""
    with opened(kind, address, name) as store:
        print("ready", flush=True)
        while not Path(go).exists():
            time.sleep(0.001)
        print(json.dumps([store.update("counter", increment) for _ in range(INCREMENTS)]))


def admit(kind: str, address: str, name: str, go: str) -> None:
    """One worker process: wait for `go`, admit the notification, print the verdict."""
    with opened(kind, address, name) as store:
        print("ready", flush=True)
        while not Path(go).exists():
            time.sleep(0.001)
        print(NotificationGuard(store).admit(payment_notification()).value, flush=True)


def started(job: str, place: Place, go: Path, number: int) -> list[subprocess.Popen[str]]:
    """`number` worker processes running `job`, each ready and waiting for `go`."""
    workers = [
        subprocess.Popen(
            [sys.executable, __file__, job, *place, str(go)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(number)
    ]
    for worker in workers:
        assert worker.stdout is not None
        assert worker.stdout.readline() == "ready\n"
    return workers


def finished(workers: list[subprocess.Popen[str]]) -> list[str]:
    """What each worker printed after "ready"; every worker exited with 0."""
    try:
        answers = [worker.communicate(timeout=120)[0] for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()
    assert [worker.returncode for worker in workers] == [0] * len(workers)
    return answers


def test_threads_and_processes_incrementing_one_key_lose_no_update(
    place: Place, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    workers = started("count", place, go, PROCESSES)
    seen: list[str | None] = []
    with opened(*place) as store:
        start = threading.Barrier(THREADS + 1)

        def work() -> None:
            start.wait()
            seen.extend([store.update("counter", increment) for _ in range(INCREMENTS)])

        threads = [threading.Thread(target=work) for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        go.touch()  # the processes and the threads at once
        start.wait()
        for thread in threads:
            thread.join()
        for printed in finished(workers):
            seen.extend(json.loads(printed))

        total = (THREADS + PROCESSES) * INCREMENTS
        assert store.update("counter", lambda current: current) == str(total)
    # Every update saw a different value: each one's write was seen by the next.
    assert sorted(seen, key=lambda value: int(value or 0)) == [None, *map(str, range(1, total))]


def test_of_many_processes_given_the_same_notification_one_gets_new_and_the_rest_busy(
    place: Place, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    workers = started("admit", place, go, 8)
    go.touch()

    answers = [printed.strip() for printed in finished(workers)]

    assert sorted(answers) == ["busy"] * 7 + ["new"]


def test_a_lost_race_is_retried_a_bounded_number_of_times(redis_url: str) -> None:
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    with (
        RedisStore(redis_url, prefix=prefix, attempts=3) as store,
        opened("redis", redis_url, prefix) as other,
    ):
        calls: list[str | None] = []

        def always_overtaken(current: str | None) -> str:
            calls.append(current)
            other.update("k", increment)  # another host writes between the read and the swap
            return "mine"

        with pytest.raises(GuardStoreError, match="changed by others 3 times in a row"):
            store.update("k", always_overtaken)

        assert calls == [None, "1", "2"]
        assert store.update("k", lambda current: current) == "3"  # never "mine"
    with pytest.raises(ConfigurationError, match="attempts must be 1 or more"):
        RedisStore(redis_url, attempts=0)


# -- failures: typed, naming the store, never the password -----------------------------------


def test_a_server_that_is_down_is_a_guard_store_error_without_the_password() -> None:
    from servers import free_port

    port = free_port()
    with pytest.raises(GuardStoreError) as postgres:
        PostgresStore(f"postgresql://shop:{PASSWORD}@127.0.0.1:{port}/shop")
    with RedisStore(f"redis://shop:{PASSWORD}@127.0.0.1:{port}/0") as redis_store:
        with pytest.raises(GuardStoreError) as redis:
            redis_store.update("k", increment)
        assert PASSWORD not in repr(redis_store)

    assert str(postgres.value).startswith(
        f"guard store PostgresStore('user=shop dbname=shop host=127.0.0.1 port={port}',"
    )
    assert str(redis.value).startswith(f"guard store RedisStore('127.0.0.1:{port}/0',")
    for raised in (postgres, redis):
        assert "refused" in str(raised.value)
        assert PASSWORD not in str(raised.value)
        assert raised.value.__cause__ is None  # not chained to the driver's unredacted error


def test_an_unreadable_dsn_is_a_configuration_error_that_does_not_quote_it() -> None:
    with pytest.raises(ConfigurationError, match="unreadable DSN") as raised:
        PostgresStore("host=127.0.0.1 user=shop password=hunter2 not-shown")  # a space unquoted

    assert "not-shown" not in str(raised.value)  # libpq's own message would quote it


def test_a_postgres_role_with_a_password_uses_a_table_made_for_it(postgres_dsn: str) -> None:
    import psycopg

    role, table = f"shop_{uuid.uuid4().hex[:8]}", f"guard_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'")
        admin.execute(f"CREATE TABLE {table} (key text PRIMARY KEY, value text)")
        admin.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {role}")
    dsn = f"{postgres_dsn.replace('user=postgres', f'user={role}')} password={PASSWORD}"

    with PostgresStore(dsn, table=table) as store:  # no CREATE rights: the table is there
        assert store.update("k", increment) is None
        assert store.update("k", increment) == "1"
        assert PASSWORD not in repr(store)
    with pytest.raises(GuardStoreError, match="permission denied for schema public") as raised:
        PostgresStore(dsn, table="not_made_for_it")
    assert PASSWORD not in str(raised.value)


def test_a_wrong_redis_password_is_a_guard_store_error_without_it(redis_url: str) -> None:
    import redis

    user = f"shop_{uuid.uuid4().hex[:8]}"
    with redis.Redis.from_url(redis_url) as admin:
        admin.acl_setuser(
            user,
            enabled=True,
            passwords=[f"+{PASSWORD}"],
            keys=["~shop:*"],
            commands=["+get", "+set", "+del", "+evalsha", "+script|load"],
        )
    address = redis_url.replace("redis://", f"redis://{user}:{PASSWORD}@")

    with redis.Redis.from_url(address, decode_responses=True) as own:  # a client of the shop's
        store = RedisStore(own, prefix="shop:")  # only its own keys, only its commands
        assert store.update("k", increment) is None
        assert store.update("k", increment) == "1"
        assert own.get("shop:k") == "2"
    wrong = "a-wrong-password-7f3"
    with (
        RedisStore(address.replace(PASSWORD, wrong), prefix="shop:") as refused,
        pytest.raises(GuardStoreError, match="invalid username-password pair") as raised,
    ):
        refused.update("k", increment)
    assert wrong not in str(raised.value)


def test_a_pooled_connection_the_server_dropped_is_replaced(postgres_dsn: str) -> None:
    import psycopg

    application = f"paymux_{uuid.uuid4().hex[:8]}"
    dsn = f"{postgres_dsn} application_name={application}"
    with PostgresStore(dsn, table=f"guard_{uuid.uuid4().hex[:12]}") as store:
        store.update("k", increment)  # leaves its connection in the pool
        with psycopg.connect(postgres_dsn, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = %s",
                (application,),
            )  # a server restart, an idle timeout

        assert store.update("k", increment) == "1"


def test_importing_the_stores_needs_neither_driver() -> None:
    script = (
        "import sys; sys.modules['psycopg'] = sys.modules['redis'] = None\n"
        "import paymux.stores\n"
        "try:\n    paymux.stores.RedisStore\n"
        "except ImportError as error:\n    print(error)\n"
    )
    printed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout

    assert printed == "RedisStore needs redis: pip install 'paymux[redis]'\n"


if __name__ == "__main__":
    {"count": count, "admit": admit}[sys.argv[1]](*sys.argv[2:])
