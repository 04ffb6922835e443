"""The async API against the blocking one: status checks against a slow gateway.

    python benchmarks/bench_async.py            # full run, about 3 minutes on 2 cores
    python benchmarks/bench_async.py --quick    # smoke run

2,000 payments are created through paymux (8 threads, the sandbox answering at once, not
timed). Then, with every API answer of the sandbox waiting 200 ms, each configuration checks the
status of every one of them once (the same 2,000 `status` calls):

* `sequential`  - one blocking `provider.status(...)` after another, on a sample (50 calls at
                  200 ms each are 10 s; all 2,000 would be 400 s), scaled to 2,000;
* `threads N`   - a `ThreadPoolExecutor(N)` whose N workers share one blocking `Provider`;
* `async N`     - N worker tasks on one event loop sharing one `paymux.aio.AsyncProvider`.

Before that, with no latency, the client CPU of one `status` call, sequential, blocking and
async in alternating blocks after a warm-up: what the async machinery costs per call.

The sandbox runs in a separate process (see `_common.SandboxProcess`), with a connection limit
above every concurrency tried; `time.process_time()` here is the client's CPU alone. Each
concurrent configuration first runs one untimed call per worker (threads started, pool filled).
Both transports keep `paymux._transport.POOL_SIZE` (32) connections: httpx's pool lets at most
that many calls be in flight (the others wait their turn), while requests' opens a new
connection for each call beyond it and discards it after (counted here). The runs are long, so
they are not interleaved: each runs once.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import os
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

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

import paymux
from paymux._transport import POOL_SIZE
from paymux.aio import AsyncProvider

MAX_CONNECTIONS = 2048
"""The sandbox's connection limit: far above every concurrency tried (its default is 64); the
blocking transport's discarded connections take a moment to be let go of."""
CREATE_THREADS = 8
POOL_FULL = "Connection pool is full"
"""The start of urllib3's warning when it discards a connection its pool has no room for."""


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
    pool: ThreadPoolExecutor, workers: int, provider: paymux.Provider, ids: Sequence[str]
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
            checked(provider.status(payment_id=payment_id))
            latencies.append(clock() - begin)

    futures = [pool.submit(work) for _ in range(workers)]
    wait(futures)
    for future in futures:
        future.result()
    return latencies


def threaded(
    name: str,
    provider: paymux.Provider,
    ids: Sequence[str],
    concurrency: int,
    sandbox: SandboxProcess,
    pool_full: PoolFull,
) -> Run:
    with ThreadPoolExecutor(concurrency) as pool:
        threads_drain(pool, concurrency, provider, ids[:concurrency])  # threads up, pool full
        discarded = pool_full.count
        with clocked(sandbox) as clock:
            latencies = threads_drain(pool, concurrency, provider, ids)
        discarded = pool_full.count - discarded
    return report(
        Run(
            name,
            concurrency,
            len(ids),
            clock.wall,
            clock.cpu,
            clock.sandbox_cpu,
            tuple(latencies),
            discarded=discarded,
        )
    )


# -- the async API ------------------------------------------------------------------------------


async def tasks_drain(shop: AsyncProvider, workers: int, ids: Sequence[str]) -> list[float]:
    """`workers` tasks taking the ids off one queue until it is empty."""
    queue = collections.deque(ids)
    latencies: list[float] = []

    async def work() -> None:
        clock = time.perf_counter
        while queue:
            payment_id = queue.popleft()
            begin = clock()
            checked(await shop.status(payment_id=payment_id))
            latencies.append(clock() - begin)

    await asyncio.gather(*(work() for _ in range(workers)))
    return latencies


async def concurrent_async(
    name: str, shop: AsyncProvider, ids: Sequence[str], concurrency: int, sandbox: SandboxProcess
) -> Run:
    await tasks_drain(shop, concurrency, ids[:concurrency])  # the pool's connections opened
    with clocked(sandbox) as clock:
        latencies = await tasks_drain(shop, concurrency, ids)
    return report(
        Run(name, concurrency, len(ids), clock.wall, clock.cpu, clock.sandbox_cpu, tuple(latencies))
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

    async def sequential_async(chosen: Sequence[str]) -> list[float]:
        return await tasks_drain(shop, 1, chosen)

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
    loop = asyncio.new_event_loop()
    with (
        tempfile.TemporaryDirectory(prefix="paymux-bench-async-") as folder,
        SandboxProcess(Path(folder), max_connections=MAX_CONNECTIONS) as sandbox,
    ):
        provider = paymux.connect(sandbox.settings)
        shop = AsyncProvider(provider)  # one for the whole run, on one event loop

        def on_loop(work: Coroutine[Any, Any, Run]) -> Run:
            return loop.run_until_complete(work)

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
                runs.append(
                    threaded(
                        f"threads {concurrency}", provider, ids, concurrency, sandbox, pool_full
                    )
                )
                runs.append(
                    on_loop(
                        concurrent_async(f"async {concurrency}", shop, ids, concurrency, sandbox)
                    )
                )
        finally:
            loop.run_until_complete(shop.aclose())
            loop.close()
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
    print(results_table(runs, floor, sizes))
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
    for run in runs:
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
    ]
    results: JSON = {
        "sizes": dataclasses.asdict(sizes),
        "pool_size": POOL_SIZE,
        "sandbox_max_connections": MAX_CONNECTIONS,
        "runs": [run.as_json() for run in runs],
        "no_latency": {name: run.as_json() for name, run in cpu.items()},
        "load_average_before": load_before,
        "notes": [
            "sequential: a sample of the same status calls; wall_for_all_s scales it.",
            f"Both transports keep {POOL_SIZE} pooled connections (paymux._transport.POOL_SIZE). "
            "httpx waits for a free one (at most that many calls in flight); requests opens an "
            "extra connection and discards it after the call (connections_discarded).",
            "The async/sync CPU ratio with no latency has no target: it is reported.",
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


if __name__ == "__main__":
    raise SystemExit(main())
