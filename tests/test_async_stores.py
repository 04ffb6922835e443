"""The networked guard stores' native async updates (`update_async`), against real servers.

The same servers as tests/test_stores.py (started once per run, tests/servers.py); each test
keeps its records under a table or prefix of its own. Here: `update_async` keeps the store
contract, loses no update among many tasks, threads and event loops, mixes with the blocking
`update` on one key, drives `NotificationGuard.admitted_async`, fails typed and without the
password, and closes its connections with their loop (pytest turns any unclosed-socket
warning into a failure).
"""

from __future__ import annotations

import asyncio
import errno
import gc
import os
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from contextlib import ExitStack

import pytest

pytest.importorskip("psycopg", reason="no psycopg: pip install 'paymux[postgres]'")
pytest.importorskip("redis", reason="no redis-py: pip install 'paymux[redis]'")

import psycopg
import redis
from psycopg import sql

import servers
from paymux import (
    GuardStoreError,
    Notification,
    NotificationGuard,
    NotificationKind,
    Payment,
    PaymentStatus,
    Verdict,
)
from paymux.stores import PostgresStore, RedisStore

Store = PostgresStore | RedisStore
Opener = Callable[[], Store]
"""Opens one more store on a test's records, as another host would."""

TASKS = 200
COPIES = 50
PASSWORD = "hunter2-not-shown"


@pytest.fixture(params=["postgres", "redis"])
def opener(request: pytest.FixtureRequest) -> Opener:
    unique = uuid.uuid4().hex[:12]
    if request.param == "postgres":
        dsn: str = request.getfixturevalue("postgres_dsn")
        return lambda: PostgresStore(dsn, table=f"guard_{unique}")
    url: str = request.getfixturevalue("redis_url")
    return lambda: RedisStore(url, prefix=f"test:{unique}:")


@pytest.fixture
def store(opener: Opener) -> Iterator[Store]:
    with opener() as running:
        yield running
    gc.collect()  # a connection left open would warn now, inside the test


def increment(value: str | None) -> str:
    return str(int(value or 0) + 1)


def keep(value: str | None) -> str | None:
    return value


def run(job: Coroutine[object, object, list[str | None]]) -> list[str | None]:
    return asyncio.run(job)


async def incremented(store: Store, tasks: int) -> list[str | None]:
    """What each of `tasks` concurrent `update_async` calls incrementing "counter" saw."""
    return await asyncio.gather(*(store.update_async("counter", increment) for _ in range(tasks)))


async def store_updates(store: Store, *keys: str) -> list[str | None]:
    """What `update_async` leaving each key as it is saw, one key after the other."""
    return [await store.update_async(key, keep) for key in keys]


def assert_none_lost(seen: list[str | None], store: Store) -> None:
    """Every update saw a different value (each one's write was seen by the next): none lost."""
    assert sorted(seen, key=lambda value: int(value or 0)) == [None, *map(str, range(1, len(seen)))]
    assert store.update("counter", keep) == str(len(seen))


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


def eventually(condition: Callable[[], bool], what: str) -> None:
    """Wait for what a server does after a client left (a backend exiting, a client dropped)."""
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


# -- the store contract ----------------------------------------------------------------------


def test_update_async_inserts_replaces_and_deletes_like_update(store: Store) -> None:
    async def updates() -> list[str | None]:
        return [
            await store.update_async("k", lambda current: "one"),
            await store.update_async("k", lambda current: f"{current},two"),
            await store.update_async("k", keep),
            await store.update_async("other", lambda current: "x"),
            await store.update_async("k", lambda current: None),
            await store.update_async("k", keep),
            await store.update_async("never", lambda current: None),
            await store.update_async("never", keep),
        ]

    assert run(updates()) == [None, "one", "one,two", None, "one,two", None, None, None]
    assert store.update("other", keep) == "x"  # the blocking path reads what the async wrote


def test_a_change_that_raises_writes_nothing(store: Store) -> None:
    def broken(current: str | None) -> str:
        raise ValueError("boom")

    async def updates() -> list[str | None]:
        await store.update_async("kept", lambda current: "before")
        for key in ("kept", "absent"):
            with pytest.raises(ValueError, match="boom"):
                await store.update_async(key, broken)
        return [await store.update_async(key, keep) for key in ("kept", "absent")]

    assert run(updates()) == ["before", None]


def test_a_postgres_change_returning_current_writes_no_row(postgres_dsn: str) -> None:
    table = f"guard_{uuid.uuid4().hex[:12]}"

    def rows() -> list[tuple[str, str, str]]:
        with psycopg.connect(postgres_dsn) as admin:
            query = sql.SQL("SELECT key, value, xmin::text FROM {}").format(sql.Identifier(table))
            return admin.execute(query).fetchall()

    with PostgresStore(postgres_dsn, table=table) as store:
        run(incremented(store, 1))
        before = rows()
        assert run(store_updates(store, "counter", "absent")) == ["1", None]
        assert rows() == before  # same row version: not rewritten; no row left for "absent"


def test_a_redis_change_returning_current_sends_no_write(redis_url: str) -> None:
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    with redis.Redis.from_url(redis_url) as admin, RedisStore(redis_url, prefix=prefix) as store:

        def swaps() -> int:
            calls: int = admin.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)
            return calls

        run(incremented(store, 1))
        before = swaps()
        assert run(store_updates(store, "counter", "absent")) == ["1", None]
        assert swaps() == before
        assert admin.keys(f"{prefix}*") == [f"{prefix}counter".encode()]


# -- atomicity under concurrency ---------------------------------------------------------------


def test_many_tasks_incrementing_one_key_lose_no_update(store: Store) -> None:
    assert_none_lost(run(incremented(store, TASKS)), store)


def test_blocking_and_async_updates_of_one_key_lose_no_update(store: Store) -> None:
    threads, per_thread = 4, 50
    start = threading.Barrier(threads + 1)
    seen: list[str | None] = []

    def blocking() -> None:
        start.wait()
        mine = [store.update("counter", increment) for _ in range(per_thread)]
        seen.extend(mine)

    async def tasks() -> list[str | None]:
        await asyncio.to_thread(start.wait)  # the threads and the tasks at once
        return await incremented(store, TASKS)

    workers = [threading.Thread(target=blocking) for _ in range(threads)]
    for worker in workers:
        worker.start()
    seen.extend(run(tasks()))
    for worker in workers:
        worker.join()

    assert len(seen) == TASKS + threads * per_thread
    assert_none_lost(seen, store)


def test_event_loops_of_several_threads_at_once_lose_no_update(store: Store) -> None:
    threads = 4
    start = threading.Barrier(threads)
    seen: list[str | None] = []

    def loop() -> None:
        start.wait()
        mine = run(incremented(store, TASKS // threads))
        seen.extend(mine)

    workers = [threading.Thread(target=loop) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert len(seen) == TASKS
    assert_none_lost(seen, store)


def test_one_store_serves_one_event_loop_after_another(store: Store) -> None:
    seen = run(incremented(store, 20))
    seen += run(incremented(store, 20))  # the first loop is closed: new connections

    assert_none_lost(seen, store)


def test_of_many_copies_of_one_notification_one_is_new_the_rest_busy(opener: Opener) -> None:
    async def copies(guard: NotificationGuard) -> tuple[list[Verdict], Verdict]:
        verdicts: list[Verdict] = []
        everyone = asyncio.Event()

        async def handle() -> None:
            async with guard.admitted_async(payment_notification()) as verdict:
                verdicts.append(verdict)
                if len(verdicts) == COPIES:
                    everyone.set()
                if verdict.act:
                    await everyone.wait()  # the claim held until every copy was judged

        await asyncio.wait_for(asyncio.gather(*(handle() for _ in range(COPIES))), timeout=120)
        return verdicts, await guard.admit_async(payment_notification())

    with opener() as host_a, opener() as host_b:
        verdicts, after = asyncio.run(copies(NotificationGuard(host_a)))
        repeated = NotificationGuard(host_b).admit(payment_notification())  # another host

    assert sorted(verdicts) == [Verdict.BUSY] * (COPIES - 1) + [Verdict.NEW]
    assert after is Verdict.DUPLICATE
    assert repeated is Verdict.DUPLICATE


# -- failures: typed, naming the store, never the password -----------------------------------


def test_a_stopped_postgres_server_is_a_guard_store_error_without_the_password() -> None:
    with ExitStack() as server:
        dsn = server.enter_context(servers.postgres())
        store = PostgresStore(f"{dsn} password={PASSWORD}")  # trusted: the password is unused

        async def pooled_then_stopped() -> None:
            await store.update_async("counter", increment)  # a connection pooled in this loop
            server.close()  # the cluster stops
            await store.update_async("counter", increment)

        with pytest.raises(GuardStoreError) as raised:
            asyncio.run(pooled_then_stopped())
        store.close()

    assert str(raised.value).startswith("guard store PostgresStore('user=postgres dbname=paymux")
    assert "refused" in str(raised.value)
    assert PASSWORD not in str(raised.value)
    assert raised.value.__cause__ is None  # not chained to the driver's unredacted error


def test_a_redis_server_that_is_down_is_a_guard_store_error_without_the_password() -> None:
    port = servers.free_port()
    with (
        RedisStore(f"redis://shop:{PASSWORD}@127.0.0.1:{port}/0") as store,
        pytest.raises(GuardStoreError) as raised,
    ):
        run(incremented(store, 1))

    assert str(raised.value).startswith(f"guard store RedisStore('127.0.0.1:{port}/0',")
    assert f"Error {errno.ECONNREFUSED} connecting to 127.0.0.1:{port}" in str(raised.value)
    assert PASSWORD not in str(raised.value)
    assert raised.value.__cause__ is None


def test_a_client_of_your_own_lends_its_settings_and_a_wrong_password_fails(
    redis_url: str,
) -> None:
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

    with redis.Redis.from_url(address, decode_responses=True) as own:
        store = RedisStore(own, prefix=f"shop:{user}:")  # its user, password and decoding
        assert run(store_updates(store, "k")) == [None]
        assert_none_lost(run(incremented(store, 2)), store)
        store.close()
        assert own.get(f"shop:{user}:counter") == "2"  # still open: the shop's to close
    wrong = "a-wrong-password-7f3"
    with (
        RedisStore(address.replace(PASSWORD, wrong), prefix="shop:") as refused,
        pytest.raises(GuardStoreError, match="invalid username-password pair") as raised,
    ):
        run(incremented(refused, 1))
    assert wrong not in str(raised.value)


# -- connections: one pool per event loop, closed with it --------------------------------------

Counted = tuple[Opener, Callable[[], int]]


@pytest.fixture(params=["postgres", "redis"])
def counted(request: pytest.FixtureRequest) -> Counted:
    """An opener of stores whose connections bear a name of their own, and a count of the
    server's connections of that name."""
    name = f"paymux_{uuid.uuid4().hex[:8]}"
    if request.param == "postgres":
        dsn: str = request.getfixturevalue("postgres_dsn")

        def backends() -> int:
            with psycopg.connect(dsn) as admin:
                query = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
                [(count,)] = admin.execute(query, (name,)).fetchall()
            return int(count)

        return lambda: PostgresStore(f"{dsn} application_name={name}", table=name), backends
    url: str = request.getfixturevalue("redis_url")

    def clients() -> int:
        with redis.Redis.from_url(url) as admin:
            return sum(client["name"] == name for client in admin.client_list())

    return lambda: RedisStore(f"{url}?client_name={name}", prefix=f"test:{name}:"), clients


async def none_left(count: Callable[[], int]) -> None:
    """`eventually` no connection left, inside a loop: letting the loop run meanwhile."""

    async def waited() -> None:
        while count():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(waited(), timeout=30)


def test_a_loops_connections_are_closed_when_it_ends(counted: Counted) -> None:
    open_store, count = counted
    with open_store() as store:

        async def busy() -> int:
            await incremented(store, TASKS)
            return count()

        assert asyncio.run(busy()) >= 1
        eventually(lambda: count() == 0, "connections left open after the loop ended")
        gc.collect()  # nothing left for the garbage collector to close (and warn about)


def test_close_and_aclose_inside_a_loop_close_its_connections(counted: Counted) -> None:
    open_store, count = counted

    async def closing() -> str | None:
        with open_store() as store:  # `close` at the end of the block
            await incremented(store, 20)
        await none_left(count)
        store = open_store()
        await incremented(store, 20)
        await store.aclose()
        await none_left(count)
        return await store.update_async("counter", keep)  # usable again: new connections

    assert asyncio.run(closing()) == "40"
    eventually(lambda: count() == 0, "connections left open after the loop ended")


def test_a_forked_process_leaves_the_parents_async_connections_alone(postgres_dsn: str) -> None:
    name = f"paymux_{uuid.uuid4().hex[:8]}"

    def backends() -> set[int]:
        with psycopg.connect(postgres_dsn) as admin:
            query = "SELECT pid FROM pg_stat_activity WHERE application_name = %s"
            return {pid for (pid,) in admin.execute(query, (name,)).fetchall()}

    with PostgresStore(f"{postgres_dsn} application_name={name}", table=name) as store:

        async def parent() -> tuple[set[int], int, set[int]]:
            await store.update_async("counter", increment)  # one connection pooled here
            pooled = backends()
            child = os.fork()
            if child == 0:  # pragma: no cover - the child reports by its exit status only
                status = 1
                try:
                    asyncio.run(store_updates(store, "counter"))  # a loop and connection of its own
                    store.close()
                    gc.collect()
                    status = 0
                finally:
                    os._exit(status)
            _, status = await asyncio.to_thread(os.waitpid, child, 0)
            await store.update_async("counter", increment)  # on the pooled connection, if alive
            return pooled, status, backends()

        pooled, status, after = asyncio.run(parent())

    assert os.waitstatus_to_exitcode(status) == 0
    assert len(pooled) == 1
    assert after == pooled  # the child neither closed nor used the parent's connection
