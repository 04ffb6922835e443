"""The async API against the blocking one: status checks against a slow gateway.

    python benchmarks/bench_async.py            # full run, about 4 to 5 minutes on 2 cores
    python benchmarks/bench_async.py --quick    # smoke run

2,000 payments are created through paymux (8 threads, the sandbox answering at once, not
timed). Then, with every API answer of the sandbox waiting 200 ms, each configuration checks the
status of every one of them once (the same 2,000 `status` calls):

* `sequential`  - one blocking `provider.status(...)` after another, on a sample (50 calls at
                  200 ms each are 10 s; all 2,000 would be 400 s), scaled to 2,000;
* `threads N`   - a `ThreadPoolExecutor(N)` whose N workers share one blocking `Provider`;
* `async N`     - N worker tasks on one event loop sharing one `paymux.aio.AsyncProvider`.

Each concurrent configuration has its floor in the same run, the same calls through a raw
client that signs, posts and reads the JSON and does nothing else (key decrypted once, compact
`json.dumps`, RSA PKCS#1 v1.5 SHA-1 in `Sign`):

* `threads N, raw requests` - N threads sharing one `requests.Session` (`trust_env=False`, a
                              pool of `POOL_SIZE`, as `bench_http.py`'s floor);
* `async N, raw httpx`      - N tasks sharing one `httpx.AsyncClient` with the async transport's
                              limits (`POOL_SIZE` connections, no pool timeout).

A configuration and its floor run in halves (1,000 calls each), ordered paymux, floor, floor,
paymux, so that a drift of the machine's speed lands on both alike; the ratios paymux / floor
(calls/s, client CPU per call) say what paymux adds to the HTTP library it stands on.

Before that, with no latency, the client CPU of one `status` call, sequential, blocking and
async in alternating blocks after a warm-up: what the async machinery costs per call.

The sandbox runs in a separate process (see `_common.SandboxProcess`), with a connection limit
above every concurrency tried; `time.process_time()` here is the client's CPU alone. Before its
first half each concurrent client makes one untimed call per worker (threads started, pool
filled), before its second `POOL_SIZE` (the connections back after the other's turn). Both
transports keep `paymux._transport.POOL_SIZE` (32) connections: httpx's pool lets at most that
many calls be in flight (the others wait their turn), while requests' opens a new connection for
each call beyond it and discards it after (counted here).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import dataclasses
import json
import logging
import os
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import requests
from _common import (
    JSON,
    SandboxProcess,
    Target,
    finish,
    machine,
    machine_line,
    median,
    parser,
    ratio,
    table,
)
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from requests.adapters import HTTPAdapter

import paymux
from paymux._transport import POOL_SIZE
from paymux.aio import AsyncProvider

MAX_CONNECTIONS = 2048
"""The sandbox's connection limit: far above every concurrency tried (its default is 64); the
blocking transport's discarded connections take a moment to be let go of."""
CREATE_THREADS = 8
POOL_FULL = "Connection pool is full"
"""The start of urllib3's warning when it discards a connection its pool has no room for."""
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0
"""paymux's default timeouts (`paymux.connection`), the raw clients' too."""

Drain = Callable[[int, Sequence[str]], list[float]]
"""`drain(workers, ids)`: the status of each of `ids` checked, `workers` at a time; the calls'
latencies."""


@dataclasses.dataclass(frozen=True)
class Sizes:
    payments: int
    """Status calls per concurrent configuration (one per payment)."""
    latency: float
    """Seconds each sandbox API answer waits in the concurrent part."""
    sequential: int
    """Calls the sequential blocking loop makes (a sample, scaled to `payments`)."""
    concurrencies: tuple[int, ...]
    """The first one is the targets'."""
    cpu_calls: int
    """Status calls per API for the CPU comparison with no latency."""
    cpu_blocks: int
    """Blocks those calls are split into, the two APIs alternating."""
    warm_up: int
    """Untimed calls per API before the CPU comparison and the sequential loop."""


FULL = Sizes(
    payments=2000,
    latency=0.2,
    sequential=50,
    concurrencies=(100, 500),
    cpu_calls=300,
    cpu_blocks=6,
    warm_up=20,
)
QUICK = Sizes(
    payments=60,
    latency=0.05,
    sequential=5,
    concurrencies=(10, 30),
    cpu_calls=20,
    cpu_blocks=2,
    warm_up=3,
)


# -- what one configuration did ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Run:
    name: str
    concurrency: int
    calls: int
    """Calls timed (for `sequential`, the sample)."""
    wall: float
    cpu: float
    sandbox_cpu: float
    latencies: tuple[float, ...]
    scaled_to: int | None = None
    """The call count the wall time is scaled to (the sequential sample), or None."""
    discarded: int = 0
    """Connections the blocking transport's pool had no room for (each call's own)."""

    @property
    def rate(self) -> float:
        return self.calls / self.wall if self.wall else 0.0

    @property
    def wall_for_all(self) -> float:
        return self.wall * (self.scaled_to / self.calls) if self.scaled_to else self.wall

    @property
    def cpu_ms(self) -> float:
        return self.cpu / self.calls * 1000

    @property
    def latency_ms(self) -> float:
        return median(self.latencies) * 1000

    def in_flight(self, latency: float) -> float:
        """Calls at the sandbox at once, on average (Little's law: rate x time there)."""
        return self.rate * latency

    def as_json(self) -> JSON:
        return {
            "name": self.name,
            "concurrency": self.concurrency,
            "calls": self.calls,
            "wall_s": self.wall,
            "scaled_to": self.scaled_to,
            "wall_for_all_s": self.wall_for_all,
            "calls_per_s": self.rate,
            "client_cpu_s": self.cpu,
            "client_cpu_ms_per_call": self.cpu_ms,
            "sandbox_cpu_ms_per_call": self.sandbox_cpu / self.calls * 1000,
            "latency_median_ms": self.latency_ms,
            "latency_max_ms": max(self.latencies) * 1000,
            "connections_discarded": self.discarded,
        }


@dataclasses.dataclass
class Clock:
    wall: float = 0.0
    cpu: float = 0.0
    sandbox_cpu: float = 0.0


@contextmanager
def clocked(sandbox: SandboxProcess) -> Iterator[Clock]:
    """Wall, client CPU and sandbox CPU of the block (the sandbox is asked outside the clock)."""
    clock = Clock()
    sandbox_before = sandbox.cpu()
    cpu_before = time.process_time()
    started = time.perf_counter()
    yield clock
    clock.wall = time.perf_counter() - started
    clock.cpu = time.process_time() - cpu_before
    clock.sandbox_cpu = sandbox.cpu() - sandbox_before


class PoolFull(logging.Handler):
    """Counts urllib3's "Connection pool is full, discarding connection" warnings."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if str(record.msg).startswith(POOL_FULL):
            self.count += 1


def checked(payment: paymux.Payment) -> None:
    if payment.status is not paymux.PaymentStatus.PENDING:
        raise RuntimeError(f"unexpected status {payment.status}")


# -- the floors: the least a client can do for the same calls ----------------------------------


class RawClient:
    """Sign, post, read the JSON, nothing else: the key decrypted once, compact `json.dumps`,
    RSA PKCS#1 v1.5 SHA-1 over the body in `Sign` (base64), the account in `Account`.

    `status` posts over one `requests.Session` (`trust_env=False`, a pool of `POOL_SIZE`), the
    blocking floor; `astatus` over one `httpx.AsyncClient` with the async transport's limits
    (`POOL_SIZE` connections, no pool timeout), the async floor."""

    def __init__(self, sandbox: SandboxProcess) -> None:
        folder = sandbox.certificate_dir
        password = (folder / "password.txt").read_bytes().strip()
        key = serialization.load_pem_private_key(
            (folder / "private.pem").read_bytes(), password=password
        )
        assert isinstance(key, rsa.RSAPrivateKey)
        self._key = key
        self._account = sandbox.account
        self._url = f"{sandbox.base_url}/v1/payment/status"
        self._session = requests.Session()
        self._session.trust_env = False
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=POOL_SIZE)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._client = httpx.AsyncClient(
            trust_env=False,
            limits=httpx.Limits(max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE),
            timeout=httpx.Timeout(
                connect=CONNECT_TIMEOUT, read=READ_TIMEOUT, write=READ_TIMEOUT, pool=None
            ),
        )

    def _signed(self, payment_id: str) -> tuple[bytes, dict[str, str]]:
        body = json.dumps({"id": payment_id}, separators=(",", ":")).encode()
        signature = self._key.sign(body, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303
        return body, {
            "Content-Type": "application/json",
            "Account": self._account,
            "Sign": base64.b64encode(signature).decode("ascii"),
        }

    def status(self, payment_id: str) -> None:
        body, headers = self._signed(payment_id)
        answer = self._session.post(
            self._url, data=body, headers=headers, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT)
        )
        raw_checked(answer.status_code, answer.json())

    async def astatus(self, payment_id: str) -> None:
        body, headers = self._signed(payment_id)
        answer = await self._client.post(self._url, content=body, headers=headers)
        raw_checked(answer.status_code, answer.json())

    async def aclose(self) -> None:
        await self._client.aclose()

    def close(self) -> None:
        self._session.close()


def raw_checked(status: int, answer: Any) -> None:
    if status != 200:
        raise RuntimeError(f"raw client: HTTP {status}: {str(answer)[:200]}")
    if answer["payment_status"] != "wait":
        raise RuntimeError(f"raw client: unexpected status {answer['payment_status']}")


def paired(
    names: tuple[str, str],
    drains: tuple[Drain, Drain],
    ids: Sequence[str],
    concurrency: int,
    sandbox: SandboxProcess,
    pool_full: PoolFull,
) -> tuple[Run, Run]:
    """A paymux configuration and its floor over the same ids, each in two halves, in the order
    paymux, floor, floor, paymux (a drift of the machine's speed lands on both alike). Before
    its first half each makes one untimed call per worker (threads started, pool filled); before
    its second, `POOL_SIZE` calls (the connections back after the other's turn)."""
    half = len(ids) // 2
    halves = (ids[:half], ids[half:])
    clocks: tuple[list[Clock], list[Clock]] = ([], [])
    latencies: tuple[list[float], list[float]] = ([], [])
    discarded = [0, 0]
    for who, part in ((0, 0), (1, 0), (1, 1), (0, 1)):
        drain = drains[who]
        if part == 0:
            drain(concurrency, ids[:concurrency])
        else:
            drain(min(concurrency, POOL_SIZE), ids[:POOL_SIZE])
        before = pool_full.count
        with clocked(sandbox) as clock:
            latencies[who].extend(drain(concurrency, halves[part]))
        clocks[who].append(clock)
        discarded[who] += pool_full.count - before
    return (
        report(
            Run(
                names[0],
                concurrency,
                len(ids),
                sum(c.wall for c in clocks[0]),
                sum(c.cpu for c in clocks[0]),
                sum(c.sandbox_cpu for c in clocks[0]),
                tuple(latencies[0]),
                discarded=discarded[0],
            )
        ),
        report(
            Run(
                names[1],
                concurrency,
                len(ids),
                sum(c.wall for c in clocks[1]),
                sum(c.cpu for c in clocks[1]),
                sum(c.sandbox_cpu for c in clocks[1]),
                tuple(latencies[1]),
                discarded=discarded[1],
            )
        ),
    )


# -- the blocking API ---------------------------------------------------------------------------


def create_payments(provider: paymux.Provider, payments: int) -> list[str]:
    """`payments` waiting payments made through `provider`, from a few threads; their ids."""
    customer = paymux.Customer(ip="18.191.80.10", user_agent="Mozilla/5.0 (X11; Linux x86_64)")
    options = {
        "service": "payment_card_rub_hpp",
        "success_redirect_id": 1,
        "fail_redirect_id": 1,
        "notification_endpoint_id": 5,
    }

    def one(number: int) -> str:
        request = paymux.PaymentRequest(
            order_id=f"async-{number}", amount=Decimal("500"), customer=customer, options=options
        )
        return provider.create(request).id

    with ThreadPoolExecutor(CREATE_THREADS) as pool:
        ids = list(pool.map(one, range(payments)))
    assert len(set(ids)) == payments
    return ids


def sequential_blocking(provider: paymux.Provider, ids: Sequence[str]) -> list[float]:
    latencies: list[float] = []
    clock = time.perf_counter
    for payment_id in ids:
        begin = clock()
        checked(provider.status(payment_id=payment_id))
        latencies.append(clock() - begin)
    return latencies


def threads_drain(
    pool: ThreadPoolExecutor, workers: int, status: Callable[[str], None], ids: Sequence[str]
) -> list[float]:
    """`workers` pool threads taking the ids off one queue until it is empty."""
    queue = collections.deque(ids)
    latencies: list[float] = []

    def work() -> None:
        clock = time.perf_counter
        while True:
            try:
                payment_id = queue.popleft()
            except IndexError:
                return
            begin = clock()
            status(payment_id)
            latencies.append(clock() - begin)

    futures = [pool.submit(work) for _ in range(workers)]
    wait(futures)
    for future in futures:
        future.result()
    return latencies


def threaded(
    provider: paymux.Provider,
    raw: RawClient,
    ids: Sequence[str],
    concurrency: int,
    sandbox: SandboxProcess,
    pool_full: PoolFull,
) -> tuple[Run, Run]:
    """`threads N` and its floor, `threads N, raw requests`, each on a pool of its own."""

    def status(payment_id: str) -> None:
        checked(provider.status(payment_id=payment_id))

    with ThreadPoolExecutor(concurrency) as ours, ThreadPoolExecutor(concurrency) as theirs:

        def paymux_drain(workers: int, chosen: Sequence[str]) -> list[float]:
            return threads_drain(ours, workers, status, chosen)

        def raw_drain(workers: int, chosen: Sequence[str]) -> list[float]:
            return threads_drain(theirs, workers, raw.status, chosen)

        return paired(
            (f"threads {concurrency}", f"threads {concurrency}, raw requests"),
            (paymux_drain, raw_drain),
            ids,
            concurrency,
            sandbox,
            pool_full,
        )


# -- the async API ------------------------------------------------------------------------------


async def tasks_drain(
    status: Callable[[str], Awaitable[None]], workers: int, ids: Sequence[str]
) -> list[float]:
    """`workers` tasks taking the ids off one queue until it is empty."""
    queue = collections.deque(ids)
    latencies: list[float] = []

    async def work() -> None:
        clock = time.perf_counter
        while queue:
            payment_id = queue.popleft()
            begin = clock()
            await status(payment_id)
            latencies.append(clock() - begin)

    await asyncio.gather(*(work() for _ in range(workers)))
    return latencies


def shop_status(shop: AsyncProvider) -> Callable[[str], Awaitable[None]]:
    async def status(payment_id: str) -> None:
        checked(await shop.status(payment_id=payment_id))

    return status


def concurrent_async(
    shop: AsyncProvider,
    raw: RawClient,
    ids: Sequence[str],
    concurrency: int,
    sandbox: SandboxProcess,
    pool_full: PoolFull,
    loop: asyncio.AbstractEventLoop,
) -> tuple[Run, Run]:
    """`async N` and its floor, `async N, raw httpx`, tasks on `loop`."""
    status = shop_status(shop)

    def paymux_drain(workers: int, chosen: Sequence[str]) -> list[float]:
        return loop.run_until_complete(tasks_drain(status, workers, chosen))

    def raw_drain(workers: int, chosen: Sequence[str]) -> list[float]:
        return loop.run_until_complete(tasks_drain(raw.astatus, workers, chosen))

    return paired(
        (f"async {concurrency}", f"async {concurrency}, raw httpx"),
        (paymux_drain, raw_drain),
        ids,
        concurrency,
        sandbox,
        pool_full,
    )


# -- the run ------------------------------------------------------------------------------------


def report(run: Run) -> Run:
    scaled = f" (x{run.scaled_to / run.calls:g} for {run.scaled_to:,})" if run.scaled_to else ""
    print(
        f"  {run.name}: {run.calls} calls in {run.wall:.2f} s{scaled}: {run.rate:.1f}/s, "
        f"{run.cpu_ms:.2f} ms CPU each, median latency {run.latency_ms:.0f} ms",
        flush=True,
    )
    return run


def cpu_comparison(
    provider: paymux.Provider,
    shop: AsyncProvider,
    ids: Sequence[str],
    sizes: Sizes,
    sandbox: SandboxProcess,
    loop: asyncio.AbstractEventLoop,
) -> dict[str, Run]:
    """Sequential status calls with no latency, blocking and async in alternating blocks."""

    status = shop_status(shop)

    async def sequential_async(chosen: Sequence[str]) -> list[float]:
        return await tasks_drain(status, 1, chosen)

    def blocking(chosen: Sequence[str]) -> list[float]:
        return sequential_blocking(provider, chosen)

    def on_loop(chosen: Sequence[str]) -> list[float]:
        return loop.run_until_complete(sequential_async(chosen))

    apis: dict[str, Callable[[Sequence[str]], list[float]]] = {"sync": blocking, "async": on_loop}
    warm = ids[: sizes.warm_up]
    for api in apis.values():
        api(warm)
    per_block = max(1, sizes.cpu_calls // sizes.cpu_blocks)
    clocks: dict[str, list[Clock]] = {name: [] for name in apis}
    latencies: dict[str, list[float]] = {name: [] for name in apis}
    for block in range(sizes.cpu_blocks):
        chosen = ids[block * per_block : (block + 1) * per_block]
        order = list(apis) if block % 2 == 0 else list(reversed(apis))
        for name in order:
            with clocked(sandbox) as clock:
                latencies[name] += apis[name](chosen)
            clocks[name].append(clock)
    calls = per_block * sizes.cpu_blocks
    return {
        name: report(
            Run(
                f"{name}, no latency",
                1,
                calls,
                sum(c.wall for c in clocks[name]),
                sum(c.cpu for c in clocks[name]),
                sum(c.sandbox_cpu for c in clocks[name]),
                tuple(latencies[name]),
            )
        )
        for name in apis
    }


def main() -> int:
    options = parser(__doc__.split("\n\n")[0] if __doc__ else "")
    args = options.parse_args()
    sizes = QUICK if args.quick else FULL
    print(f"bench_async: {machine_line()}")
    print(f"bench_async: sizes {dataclasses.asdict(sizes)}", flush=True)
    load_before = os.getloadavg()
    pool_full = PoolFull()
    logging.getLogger("urllib3.connectionpool").addHandler(pool_full)

    runs: list[Run] = []
    """paymux's configurations."""
    raws: list[Run] = []
    """Their floors, the raw clients'."""
    loop = asyncio.new_event_loop()
    with (
        tempfile.TemporaryDirectory(prefix="paymux-bench-async-") as folder,
        SandboxProcess(Path(folder), max_connections=MAX_CONNECTIONS) as sandbox,
    ):
        provider = paymux.connect(sandbox.settings)
        shop = AsyncProvider(provider)  # one for the whole run, on one event loop
        raw = RawClient(sandbox)  # the floors, the same for the whole run
        try:
            started = time.perf_counter()
            ids = create_payments(provider, sizes.payments)
            print(
                f"  {sizes.payments} payments created in {time.perf_counter() - started:.1f} s"
                f" ({CREATE_THREADS} threads, no latency)",
                flush=True,
            )
            cpu = cpu_comparison(provider, shop, ids, sizes, sandbox, loop)

            sandbox.set_latency(sizes.latency)
            print(f"  latency now {sizes.latency * 1000:.0f} ms", flush=True)
            sample = ids[: sizes.sequential]
            sequential_blocking(provider, ids[-3:])  # connection up again after the pause
            with clocked(sandbox) as clock:
                latencies = sequential_blocking(provider, sample)
            runs.append(
                report(
                    Run(
                        "sequential (sample)",
                        1,
                        len(sample),
                        clock.wall,
                        clock.cpu,
                        clock.sandbox_cpu,
                        tuple(latencies),
                        scaled_to=sizes.payments,
                    )
                )
            )
            for concurrency in sizes.concurrencies:
                ours, theirs = threaded(provider, raw, ids, concurrency, sandbox, pool_full)
                runs.append(ours)
                raws.append(theirs)
                ours, theirs = concurrent_async(
                    shop, raw, ids, concurrency, sandbox, pool_full, loop
                )
                runs.append(ours)
                raws.append(theirs)
        finally:
            loop.run_until_complete(shop.aclose())
            loop.run_until_complete(raw.aclose())
            loop.close()
            raw.close()
            provider.close()
            logging.getLogger("urllib3.connectionpool").removeHandler(pool_full)

    by_name = {run.name: run for run in runs}
    floor = runs[0]
    first = sizes.concurrencies[0]
    ms = f"{sizes.latency * 1000:.0f} ms"
    ceiling = POOL_SIZE / sizes.latency
    print()
    print(
        f"Status checks of {sizes.payments:,} payments, {ms} latency per API answer "
        f"(sequential: a {sizes.sequential}-call sample, its wall time scaled to "
        f"{sizes.payments:,})"
    )
    beside = [runs[0], *(run for pair in zip(runs[1:], raws, strict=True) for run in pair)]
    print(results_table(beside, floor, sizes))
    print(
        f"  pools: both transports keep POOL_SIZE = {POOL_SIZE} connections "
        f"(paymux._transport.POOL_SIZE, a module constant: no setting changes it)."
    )
    print(
        f"  async: httpx lets at most {POOL_SIZE} calls be in flight, the others wait for a "
        f"connection: at {ms} that is {ceiling:.0f} calls/s at most, whatever the concurrency; "
        f"concurrency above {POOL_SIZE} is not reached."
    )
    print(f"  in flight: calls/s x {ms}, the calls at the sandbox at once on average.")
    for run in beside:
        if run.name.startswith("async") and run.in_flight(sizes.latency) < 0.8 * POOL_SIZE:
            print(
                f"  {run.name}: about {run.in_flight(sizes.latency):.0f} calls in flight, below "
                f"the pool's {POOL_SIZE}: the client's CPU ({run.cpu_ms:.1f} ms per call), not "
                f"the pool, is what limits it here"
            )
        if run.discarded:
            print(
                f"  {run.name}: requests' pool was full {run.discarded:,} times: that many calls "
                f"ran on a connection of their own, opened and discarded"
            )
    print(f"  load average before the run (other work on the machine): {load_before[0]:.2f}")
    print()
    print(
        "paymux against its floor in the same run: the same status calls through the raw client "
        "(sign, post, JSON), in halves ordered paymux, floor, floor, paymux"
    )
    print(floors_table(runs[1:], raws))
    print()
    print("Sequential status calls, no latency (client CPU per call)")
    print(
        table(
            ["API", "calls", "calls/s", "client CPU us/call", "sandbox CPU us/call"],
            [
                (
                    name,
                    run.calls,
                    run.rate,
                    run.cpu * 1e6 / run.calls,
                    run.sandbox_cpu * 1e6 / run.calls,
                )
                for name, run in cpu.items()
            ],
        )
    )
    async_over_sync_cpu = ratio(cpu["async"].cpu, cpu["sync"].cpu)
    print(f"  client CPU per call, async / sync: {async_over_sync_cpu:g} (no target)")

    ratios: dict[str, float] = {}
    for concurrency in sizes.concurrencies:
        threads_run, async_run = by_name[f"threads {concurrency}"], by_name[f"async {concurrency}"]
        ratios[f"async_over_threads_calls_per_s_at_{concurrency}"] = ratio(
            async_run.rate, threads_run.rate
        )
        ratios[f"async_over_threads_cpu_per_call_at_{concurrency}"] = ratio(
            async_run.cpu_ms, threads_run.cpu_ms
        )
    for run in runs[1:]:
        ratios[f"{run.name.replace(' ', '_')}_over_sequential_calls_per_s"] = ratio(
            run.rate, floor.rate
        )
    ratios["async_over_sync_sequential_cpu_per_call_no_latency"] = async_over_sync_cpu
    raw_by_name = {run.name: run for run in raws}
    for concurrency in sizes.concurrencies:
        for kind, floor_name in (("threads", "raw requests"), ("async", "raw httpx")):
            ours = by_name[f"{kind} {concurrency}"]
            theirs = raw_by_name[f"{kind} {concurrency}, {floor_name}"]
            key = f"{kind}_paymux_over_{floor_name.replace(' ', '_')}"
            ratios[f"{key}_calls_per_s_at_{concurrency}"] = ratio(ours.rate, theirs.rate)
            ratios[f"{key}_cpu_per_call_at_{concurrency}"] = ratio(ours.cpu_ms, theirs.cpu_ms)
        raw_threads = raw_by_name[f"threads {concurrency}, raw requests"]
        raw_async = raw_by_name[f"async {concurrency}, raw httpx"]
        ratios[f"raw_httpx_over_raw_requests_calls_per_s_at_{concurrency}"] = ratio(
            raw_async.rate, raw_threads.rate
        )
        ratios[f"raw_httpx_over_raw_requests_cpu_per_call_at_{concurrency}"] = ratio(
            raw_async.cpu_ms, raw_threads.cpu_ms
        )
    cores = machine()["nproc"]
    targets = [
        Target(
            f"calls/s, async / threads, at concurrency {first}",
            ratios[f"async_over_threads_calls_per_s_at_{first}"],
            ">=",
            0.9,
            f"{sizes.payments:,} status calls at {ms}; httpx's pool caps async at {POOL_SIZE} "
            f"in flight ({ceiling:.0f} calls/s), requests opens a connection per call beyond it",
        ),
        Target(
            f"client CPU per call, async / threads, at concurrency {first}",
            ratios[f"async_over_threads_cpu_per_call_at_{first}"],
            "<=",
            1.0,
            f"time.process_time() of the client; the sandbox is another process on the same "
            f"{cores} CPUs",
        ),
        Target(
            f"calls/s, async paymux / raw httpx, at concurrency {first}",
            ratios[f"async_paymux_over_raw_httpx_calls_per_s_at_{first}"],
            ">=",
            0.95,
            f"the same {sizes.payments:,} status calls at {ms} through one httpx.AsyncClient with "
            f"the async transport's limits ({POOL_SIZE} connections): sign, post, JSON; halves "
            f"ordered paymux, raw, raw, paymux",
        ),
        Target(
            f"calls/s, threads paymux / raw requests, at concurrency {first}",
            ratios[f"threads_paymux_over_raw_requests_calls_per_s_at_{first}"],
            ">=",
            0.95,
            f"the same {sizes.payments:,} status calls at {ms} from {first} threads through one "
            f"requests.Session (trust_env=False, pool {POOL_SIZE}): sign, post, JSON; halves "
            f"ordered paymux, raw, raw, paymux",
        ),
    ]
    results: JSON = {
        "sizes": dataclasses.asdict(sizes),
        "pool_size": POOL_SIZE,
        "sandbox_max_connections": MAX_CONNECTIONS,
        "runs": [run.as_json() for run in runs],
        "raw_runs": [run.as_json() for run in raws],
        "no_latency": {name: run.as_json() for name, run in cpu.items()},
        "load_average_before": load_before,
        "notes": [
            "sequential: a sample of the same status calls; wall_for_all_s scales it.",
            f"Both transports keep {POOL_SIZE} pooled connections (paymux._transport.POOL_SIZE). "
            "httpx waits for a free one (at most that many calls in flight); requests opens an "
            "extra connection and discards it after the call (connections_discarded).",
            "The async/sync CPU ratio with no latency has no target: it is reported.",
            "raw_runs: each concurrent configuration's floor, the same status calls through a "
            "client that only signs, posts and reads the JSON (requests.Session trust_env=False "
            f"pool {POOL_SIZE} on threads; httpx.AsyncClient with the async transport's limits "
            "on tasks). Each configuration and its floor ran in halves ordered paymux, floor, "
            "floor, paymux.",
        ],
    }
    return finish("async", args, results, ratios, targets)


def results_table(runs: Sequence[Run], floor: Run, sizes: Sizes) -> str:
    return table(
        [
            "configuration",
            "concurrency",
            "calls timed",
            f"wall s ({sizes.payments:,} calls)",
            "calls/s",
            "client CPU ms/call",
            "median latency ms",
            "in flight",
            "x sequential",
        ],
        [
            (
                run.name,
                run.concurrency,
                run.calls,
                run.wall_for_all,
                run.rate,
                run.cpu_ms,
                run.latency_ms,
                run.in_flight(sizes.latency),
                ratio(run.rate, floor.rate),
            )
            for run in runs
        ],
    )


def floors_table(ours: Sequence[Run], theirs: Sequence[Run]) -> str:
    return table(
        [
            "configuration",
            "floor",
            "calls/s",
            "floor calls/s",
            "x floor calls/s",
            "client CPU ms/call",
            "floor CPU ms/call",
            "x floor CPU",
        ],
        [
            (
                run.name,
                raw.name.partition(", ")[2],
                run.rate,
                raw.rate,
                ratio(run.rate, raw.rate),
                run.cpu_ms,
                raw.cpu_ms,
                ratio(run.cpu_ms, raw.cpu_ms),
            )
            for run, raw in zip(ours, theirs, strict=True)
        ],
    )


if __name__ == "__main__":
    raise SystemExit(main())
