"""The HTTP stacks paymux could stand on, one against another: the same signed AliKassa call.

    python benchmarks/bench_stacks.py            # full run, about 2 minutes on 2 cores
    python benchmarks/bench_stacks.py --quick    # smoke run

The sandbox runs in a separate process (see `_common.SandboxProcess`), so `time.process_time()`
here is the client's CPU alone. One payment is made first; every call below is then the same
`v1/payment/status` request for it, made the way the floor client of `bench_http.py` makes it:
the key decrypted once, compact `json.dumps`, an RSA PKCS#1 v1.5 SHA-1 signature of the body in
`Sign` (base64) and the account in `Account`; the answer read as JSON and its status checked.

**Sequential, keep-alive, no latency**: one call after another over one connection kept open,
each stack doing the signing itself (client CPU per call and calls/s):

* `sign only`          - `json.dumps` and the signature, no network: what every call costs anyway;
* `http.client`        - `http.client.HTTPConnection`, `request` + `getresponse`;
* `urllib3`            - `urllib3.HTTPConnectionPool.request`;
* `requests tuned`     - `requests.Session`, `trust_env=False`, `HTTPAdapter(pool_maxsize=32)`;
* `requests defaults`  - `requests.Session()` as it comes (`trust_env` looks at the environment,
                         proxies and `~/.netrc`, on every call);
* `httpx`              - `httpx.Client`;
* `paymux Transport`   - `paymux._transport.Transport.send`, called as `paymux._runner` calls
                         it (with the default retry deadline's `time_left`);
* `httpx async`        - `httpx.AsyncClient` on an event loop, one call at a time;
* `aiohttp`            - `aiohttp.ClientSession` one call at a time (only when aiohttp can be
                         imported, being no paymux dependency; otherwise skipped, loudly);
* `paymux AsyncTransport` - `paymux._async_transport.AsyncTransport.send`, one call at a time.

Each round runs every stack in short blocks whose order rotates from block to block and adds the
blocks up; the numbers are medians over rounds, and each stack is shown as CPU per call, as a
ratio to `sign only` and as a ratio to `http.client`.

**Concurrent, 200 ms latency**: every API answer of the sandbox waits 200 ms, and 100 workers
make 1,000 status calls in all, taking them off one counter: 100 tasks on one event loop over
`httpx.AsyncClient` (`max_connections` 32, paymux's `POOL_SIZE`, and 100) and over
`aiohttp.ClientSession` (`TCPConnector(limit=32)` and 100), and a `ThreadPoolExecutor(100)` over
one `requests.Session` (`trust_env=False`, pool 32). Each configuration runs in blocks (the
order reversed every other block), each block after one untimed call per worker; calls/s and
client CPU per call. It tells whether httpx itself is what limits paymux's async API, and whether
aiohttp would lift it. One target: what paymux's transports add to the stack each wraps; the
rest informs a choice, its ratios in the summary.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import dataclasses
import http.client
import json
import logging
import os
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import requests
import urllib3
from _common import (
    JSON,
    SandboxProcess,
    Target,
    finish,
    machine_line,
    median,
    parser,
    ratio,
    rounds_for,
    table,
)
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from requests.adapters import HTTPAdapter

import paymux
from paymux._async_transport import AsyncTransport
from paymux._transport import POOL_SIZE, Transport

try:
    import aiohttp  # type: ignore[import-not-found, unused-ignore]
except ImportError as error:  # no paymux dependency: its rows are skipped, and say so
    AIOHTTP_MISSING: str | None = f"aiohttp cannot be imported ({error})"
else:
    AIOHTTP_MISSING = None

STATUS = "v1/payment/status"
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0
"""paymux's default timeouts (`paymux.connection`), given to every stack."""
DEADLINE = 60.0
"""The `time_left` paymux's runner gives the transport under the default retry deadline."""
MAX_CONNECTIONS = 2048
"""The sandbox's connection limit, far above the 100 workers (its default of 64 would answer
503): requests opens a connection of its own for each call beyond its pool of 32."""
POOL_FULL = "Connection pool is full"
"""The start of urllib3's warning when it discards a connection its pool has no room for."""
SERVICE = "payment_card_rub_hpp"
USER_AGENT = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:84.0) Gecko/20100101 Firefox/84.0"


@dataclasses.dataclass(frozen=True)
class Sizes:
    blocks: int
    """Blocks per round in the sequential part, the stacks' order rotating."""
    block: int
    """Calls per stack per block."""
    warm_up: int
    """Untimed calls per stack before the first round."""
    latency: float
    """Seconds each sandbox API answer waits in the concurrent part."""
    workers: int
    """Tasks (or threads) making the calls in the concurrent part."""
    concurrent_calls: int
    """Calls per concurrent configuration, all its blocks together."""
    concurrent_blocks: int
    """Blocks those calls are split into, the configurations' order reversed every other one."""
    limits: tuple[int, ...] = (POOL_SIZE, 100)
    """The async pools' connection limits tried."""


FULL = Sizes(
    blocks=4,
    block=25,
    warm_up=20,
    latency=0.2,
    workers=100,
    concurrent_calls=1000,
    concurrent_blocks=2,
)
QUICK = Sizes(
    blocks=2,
    block=3,
    warm_up=2,
    latency=0.05,
    workers=10,
    concurrent_calls=40,
    concurrent_blocks=2,
)


# -- the request every stack makes --------------------------------------------------------------


class Signer:
    """The AliKassa request as the floor client makes it: key decrypted once, compact JSON,
    RSA PKCS#1 v1.5 SHA-1 over the body, base64 in `Sign`, the account in `Account`."""

    def __init__(self, account: str, cert_dir: Path) -> None:
        password = (cert_dir / "password.txt").read_bytes().strip()
        key = serialization.load_pem_private_key(
            (cert_dir / "private.pem").read_bytes(), password=password
        )
        assert isinstance(key, rsa.RSAPrivateKey)
        self._key = key
        self._account = account

    def sign(self, data: JSON) -> tuple[bytes, dict[str, str]]:
        """The body and the headers of one signed request."""
        body = json.dumps(data, separators=(",", ":")).encode()
        signature = self._key.sign(body, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303
        return body, {
            "Content-Type": "application/json",
            "Account": self._account,
            "Sign": base64.b64encode(signature).decode("ascii"),
        }


def checked(status: int, answer: Any) -> None:
    """An answer of the status call for a waiting payment, or `RuntimeError`."""
    if status != 200:
        raise RuntimeError(f"HTTP {status}: {str(answer)[:200]}")
    if answer["payment_status"] != "wait":
        raise RuntimeError(f"unexpected status {answer['payment_status']}")


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """Where the status call goes, and what it asks."""

    base_url: str
    data: JSON

    @property
    def url(self) -> str:
        return f"{self.base_url}/{STATUS}"

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        return urlsplit(self.base_url).port or 80

    @property
    def path(self) -> str:
        return f"{urlsplit(self.base_url).path.rstrip('/')}/{STATUS}"


def make_payment(signer: Signer, base_url: str) -> str:
    """One waiting payment, made with a plain `requests.post`; its id."""
    body, headers = signer.sign(
        {
            "amount": "500",
            "order_id": "bench-stacks-1",
            "service": SERVICE,
            "customer_ip": "18.191.80.10",
            "customer_browser_user_agent": USER_AGENT,
            "success_redirect_id": 1,
            "fail_redirect_id": 1,
            "notification_endpoint_id": 5,
        }
    )
    answer = requests.post(f"{base_url}/v1/payment", data=body, headers=headers, timeout=30)
    if answer.status_code != 200:
        raise RuntimeError(f"create: HTTP {answer.status_code} {answer.text[:200]}")
    return str(answer.json()["id"])


# -- the sequential stacks ------------------------------------------------------------------------


@dataclasses.dataclass
class Stack:
    """`run(n)`: n status calls one after another, on this thread."""

    key: str
    name: str
    run: Callable[[int], None]
    close: Callable[[], None]


def sign_only(signer: Signer, where: Endpoint) -> Stack:
    def run(calls: int) -> None:
        for _ in range(calls):
            signer.sign(where.data)

    return Stack("sign", "(a) sign only, no network", run, lambda: None)


def http_client_stack(signer: Signer, where: Endpoint) -> Stack:
    connection = http.client.HTTPConnection(where.host, where.port, timeout=READ_TIMEOUT)

    def run(calls: int) -> None:
        for _ in range(calls):
            body, headers = signer.sign(where.data)
            connection.request("POST", where.path, body=body, headers=headers)
            answer = connection.getresponse()
            checked(answer.status, json.loads(answer.read()))

    return Stack("http_client", "(b) http.client.HTTPConnection", run, connection.close)


def urllib3_stack(signer: Signer, where: Endpoint) -> Stack:
    pool = urllib3.HTTPConnectionPool(
        where.host,
        where.port,
        maxsize=POOL_SIZE,
        timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT),
    )

    def run(calls: int) -> None:
        for _ in range(calls):
            body, headers = signer.sign(where.data)
            answer = pool.request("POST", where.path, body=body, headers=headers)
            checked(answer.status, answer.json())

    return Stack("urllib3", "(c) urllib3.HTTPConnectionPool", run, pool.close)


def tuned_session(pool_size: int = POOL_SIZE) -> requests.Session:
    """`requests.Session` with `trust_env=False` and one pool of `pool_size` connections."""
    session = requests.Session()
    session.trust_env = False
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def requests_stack(signer: Signer, where: Endpoint, *, tuned: bool) -> Stack:
    session = tuned_session() if tuned else requests.Session()

    def run(calls: int) -> None:
        for _ in range(calls):
            body, headers = signer.sign(where.data)
            answer = session.post(
                where.url, data=body, headers=headers, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT)
            )
            checked(answer.status_code, answer.json())

    if tuned:
        name = f"(d) requests.Session, trust_env=False, pool_maxsize={POOL_SIZE}"
        return Stack("requests_tuned", name, run, session.close)
    return Stack("requests_defaults", "(e) requests.Session(), defaults", run, session.close)


def httpx_stack(signer: Signer, where: Endpoint) -> Stack:
    client = httpx.Client(timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT))

    def run(calls: int) -> None:
        for _ in range(calls):
            body, headers = signer.sign(where.data)
            answer = client.post(where.url, content=body, headers=headers)
            checked(answer.status_code, answer.json())

    return Stack("httpx", "(f) httpx.Client", run, client.close)


def transport_arguments() -> dict[str, Any]:
    """How `paymux.Provider` makes its transports, with the default connection settings."""
    return {
        "provider": "alikassa",
        "instance": "bench",
        "connect_timeout": CONNECT_TIMEOUT,
        "read_timeout": READ_TIMEOUT,
        "user_agent": f"paymux/{paymux.__version__}",
    }


def paymux_transport_stack(signer: Signer, where: Endpoint) -> Stack:
    transport = Transport(**transport_arguments())

    def run(calls: int) -> None:
        for _ in range(calls):
            body, headers = signer.sign(where.data)
            answer = transport.send(
                "POST", where.url, body, headers, operation="status", time_left=DEADLINE
            )
            checked(answer.status, json.loads(answer.body))

    return Stack("paymux_transport", "(g) paymux Transport.send", run, transport.close)


def on_loop_stack(
    loop: asyncio.AbstractEventLoop,
    key: str,
    name: str,
    call: Callable[[], Awaitable[None]],
    close: Callable[[], Awaitable[None]],
) -> Stack:
    """A stack whose calls are coroutines, made one at a time on `loop`."""

    async def calls(count: int) -> None:
        for _ in range(count):
            await call()

    def run(count: int) -> None:
        loop.run_until_complete(calls(count))

    def closed() -> None:
        loop.run_until_complete(close())

    return Stack(key, name, run, closed)


def httpx_async_stack(loop: asyncio.AbstractEventLoop, signer: Signer, where: Endpoint) -> Stack:
    client = httpx.AsyncClient(timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT))

    async def call() -> None:
        body, headers = signer.sign(where.data)
        answer = await client.post(where.url, content=body, headers=headers)
        checked(answer.status_code, answer.json())

    name = "(h) httpx.AsyncClient, one at a time"
    return on_loop_stack(loop, "httpx_async", name, call, client.aclose)


def aiohttp_session(limit: int) -> aiohttp.ClientSession:
    """A session with `limit` connections and paymux's timeouts (made on the running loop)."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit),
        timeout=aiohttp.ClientTimeout(connect=CONNECT_TIMEOUT, sock_read=READ_TIMEOUT),
    )


def aiohttp_call(
    session: aiohttp.ClientSession, signer: Signer, where: Endpoint
) -> Callable[[], Awaitable[None]]:
    async def call() -> None:
        body, headers = signer.sign(where.data)
        async with session.post(where.url, data=body, headers=headers) as answer:
            checked(answer.status, await answer.json())

    return call


def aiohttp_stack(loop: asyncio.AbstractEventLoop, signer: Signer, where: Endpoint) -> Stack:
    async def opened() -> aiohttp.ClientSession:
        return aiohttp_session(POOL_SIZE)

    session = loop.run_until_complete(opened())
    name = "(i) aiohttp.ClientSession, one at a time"
    return on_loop_stack(loop, "aiohttp", name, aiohttp_call(session, signer, where), session.close)


def paymux_async_stack(loop: asyncio.AbstractEventLoop, signer: Signer, where: Endpoint) -> Stack:
    transport = AsyncTransport(**transport_arguments())

    async def call() -> None:
        body, headers = signer.sign(where.data)
        answer = await transport.send(
            "POST", where.url, body, headers, operation="status", time_left=DEADLINE
        )
        checked(answer.status, json.loads(answer.body))

    name = "(j) paymux AsyncTransport.send, one at a time"
    return on_loop_stack(loop, "paymux_async_transport", name, call, transport.aclose)


# -- measuring ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Run:
    """What one block of calls (or a round's blocks added up) took."""

    calls: int
    wall: float
    cpu: float
    sandbox_cpu: float
    latencies: tuple[float, ...] = ()
    discarded: int = 0
    """Connections requests' pool had no room for (the thread baseline)."""

    @property
    def rate(self) -> float:
        return self.calls / self.wall if self.wall else 0.0

    @property
    def cpu_us(self) -> float:
        return self.cpu / self.calls * 1e6

    @property
    def sandbox_cpu_us(self) -> float:
        return self.sandbox_cpu / self.calls * 1e6

    @classmethod
    def total(cls, blocks: Sequence[Run]) -> Run:
        return cls(
            sum(block.calls for block in blocks),
            sum(block.wall for block in blocks),
            sum(block.cpu for block in blocks),
            sum(block.sandbox_cpu for block in blocks),
            tuple(latency for block in blocks for latency in block.latencies),
            sum(block.discarded for block in blocks),
        )

    def as_json(self) -> JSON:
        shown: JSON = {
            "calls": self.calls,
            "wall_s": self.wall,
            "client_cpu_s": self.cpu,
            "sandbox_cpu_s": self.sandbox_cpu,
            "calls_per_s": self.rate,
            "client_cpu_per_call_us": self.cpu_us,
            "sandbox_cpu_per_call_us": self.sandbox_cpu_us,
        }
        if self.latencies:
            shown["latency_median_ms"] = median(self.latencies) * 1000
            shown["latency_max_ms"] = max(self.latencies) * 1000
            shown["connections_discarded"] = self.discarded
        return shown


def timed(sandbox: SandboxProcess, calls: int, work: Callable[[], Sequence[float] | None]) -> Run:
    """Wall, client CPU and sandbox CPU of `work()`, `calls` calls (the sandbox is asked
    outside the clock); `work` returns the latencies of its calls, or None."""
    sandbox_before = sandbox.cpu()
    cpu_before = time.process_time()
    started = time.perf_counter()
    latencies = work()
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_before
    sandbox_cpu = sandbox.cpu() - sandbox_before
    return Run(calls, wall, cpu, sandbox_cpu, tuple(latencies or ()))


def sequential_rounds(
    stacks: Sequence[Stack], sandbox: SandboxProcess, sizes: Sizes, rounds: int
) -> dict[str, list[Run]]:
    """Each round: every stack in `sizes.blocks` blocks of `sizes.block` calls, the stacks'
    order rotating from block to block (over the rounds too); a round adds its blocks up."""
    for stack in stacks:
        stack.run(sizes.warm_up)
    runs: dict[str, list[Run]] = {stack.key: [] for stack in stacks}
    turn = 0
    for number in range(rounds):
        blocks: dict[str, list[Run]] = {stack.key: [] for stack in stacks}
        for _ in range(sizes.blocks):
            by = turn % len(stacks)
            turn += 1
            for stack in [*stacks[by:], *stacks[:by]]:

                def work(chosen: Stack = stack) -> None:
                    chosen.run(sizes.block)

                blocks[stack.key].append(timed(sandbox, sizes.block, work))
        for stack in stacks:
            runs[stack.key].append(Run.total(blocks[stack.key]))
        print(f"  sequential round {number + 1}/{rounds} done", flush=True)
    return runs


# -- the concurrent configurations ----------------------------------------------------------------


@dataclasses.dataclass
class Concurrent:
    """`drain(workers, calls)`: `calls` status calls made by `workers` at once; their latencies."""

    key: str
    name: str
    limit: int
    """Connections the client keeps at most (the thread baseline's pool: more are opened)."""
    drain: Callable[[int, int], list[float]]
    close: Callable[[], None]


async def tasks_drain(call: Callable[[], Awaitable[None]], workers: int, calls: int) -> list[float]:
    """`workers` tasks taking calls off one counter until it is done."""
    left = [calls]
    latencies: list[float] = []

    async def work() -> None:
        clock = time.perf_counter
        while left[0] > 0:
            left[0] -= 1
            begin = clock()
            await call()
            latencies.append(clock() - begin)

    await asyncio.gather(*(work() for _ in range(workers)))
    return latencies


def threads_drain(
    pool: ThreadPoolExecutor, call: Callable[[], None], workers: int, calls: int
) -> list[float]:
    """`workers` pool threads taking calls off one queue until it is empty."""
    queue = collections.deque(range(calls))
    latencies: list[float] = []

    def work() -> None:
        clock = time.perf_counter
        while True:
            try:
                queue.popleft()
            except IndexError:
                return
            begin = clock()
            call()
            latencies.append(clock() - begin)

    futures = [pool.submit(work) for _ in range(workers)]
    wait(futures)
    for future in futures:
        future.result()
    return latencies


def httpx_concurrent(
    loop: asyncio.AbstractEventLoop, signer: Signer, where: Endpoint, limit: int
) -> Concurrent:
    client = httpx.AsyncClient(
        limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit),
        timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT, pool=None),
    )

    async def call() -> None:
        body, headers = signer.sign(where.data)
        answer = await client.post(where.url, content=body, headers=headers)
        checked(answer.status_code, answer.json())

    def drain(workers: int, calls: int) -> list[float]:
        return loop.run_until_complete(tasks_drain(call, workers, calls))

    def close() -> None:
        loop.run_until_complete(client.aclose())

    name = f"httpx.AsyncClient, max_connections={limit}"
    return Concurrent(f"httpx_async_{limit}", name, limit, drain, close)


def aiohttp_concurrent(
    loop: asyncio.AbstractEventLoop, signer: Signer, where: Endpoint, limit: int
) -> Concurrent:
    async def opened() -> aiohttp.ClientSession:
        return aiohttp_session(limit)

    session = loop.run_until_complete(opened())
    call = aiohttp_call(session, signer, where)

    def drain(workers: int, calls: int) -> list[float]:
        return loop.run_until_complete(tasks_drain(call, workers, calls))

    def close() -> None:
        loop.run_until_complete(session.close())

    name = f"aiohttp, TCPConnector(limit={limit})"
    return Concurrent(f"aiohttp_{limit}", name, limit, drain, close)


def threads_concurrent(signer: Signer, where: Endpoint, workers: int) -> Concurrent:
    session = tuned_session()
    pool = ThreadPoolExecutor(workers)

    def call() -> None:
        body, headers = signer.sign(where.data)
        answer = session.post(
            where.url, data=body, headers=headers, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT)
        )
        checked(answer.status_code, answer.json())

    def drain(count: int, calls: int) -> list[float]:
        return threads_drain(pool, call, count, calls)

    def close() -> None:
        pool.shutdown()
        session.close()

    name = f"threads: ThreadPoolExecutor({workers}), requests tuned, pool {POOL_SIZE}"
    return Concurrent("threads", name, POOL_SIZE, drain, close)


class PoolFull(logging.Handler):
    """Counts urllib3's "Connection pool is full, discarding connection" warnings."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:  # under the handler's own lock
        if str(record.msg).startswith(POOL_FULL):
            self.count += 1


def concurrent_blocks(
    configurations: Sequence[Concurrent], sandbox: SandboxProcess, sizes: Sizes
) -> dict[str, Run]:
    """Every configuration's calls in `sizes.concurrent_blocks` blocks, the order reversed
    every other block; one untimed call per worker before each block."""
    pool_full = PoolFull()
    logger = logging.getLogger("urllib3.connectionpool")
    logger.addHandler(pool_full)
    per_block = max(1, sizes.concurrent_calls // sizes.concurrent_blocks)
    blocks: dict[str, list[Run]] = {each.key: [] for each in configurations}
    try:
        for block in range(sizes.concurrent_blocks):
            order = configurations if block % 2 == 0 else list(reversed(configurations))
            for each in order:
                each.drain(sizes.workers, sizes.workers)  # connections opened, threads up
                discarded = pool_full.count

                def work(chosen: Concurrent = each) -> list[float]:
                    return chosen.drain(sizes.workers, per_block)

                run = timed(sandbox, per_block, work)
                run = dataclasses.replace(run, discarded=pool_full.count - discarded)
                blocks[each.key].append(run)
                print(
                    f"  {each.name}, block {block + 1}/{sizes.concurrent_blocks}: "
                    f"{per_block / run.wall:.0f} calls/s, {run.cpu / per_block * 1000:.2f} ms "
                    f"CPU each",
                    flush=True,
                )
    finally:
        logger.removeHandler(pool_full)
    return {key: Run.total(runs) for key, runs in blocks.items()}


# -- the run --------------------------------------------------------------------------------------


def main() -> int:
    options = parser(__doc__.split("\n\n")[0] if __doc__ else "")
    args = options.parse_args()
    sizes = QUICK if args.quick else FULL
    rounds = rounds_for(args, full=7)
    print(f"bench_stacks: {machine_line()}")
    print(
        f"bench_stacks: {rounds} round(s), sizes {dataclasses.asdict(sizes)}; httpx "
        f"{httpx.__version__}, urllib3 {version('urllib3')}, requests {requests.__version__}, "
        f"aiohttp {'-' if AIOHTTP_MISSING else aiohttp.__version__}",
        flush=True,
    )
    if AIOHTTP_MISSING is not None:
        print(f"bench_stacks: !!! AIOHTTP ROWS SKIPPED: {AIOHTTP_MISSING} !!!", flush=True)
    load_before = os.getloadavg()

    loop = asyncio.new_event_loop()
    try:
        with (
            tempfile.TemporaryDirectory(prefix="paymux-bench-stacks-") as folder,
            SandboxProcess(Path(folder), max_connections=MAX_CONNECTIONS) as sandbox,
        ):
            signer = Signer(sandbox.account, sandbox.certificate_dir)
            where = Endpoint(sandbox.base_url, {"id": make_payment(signer, sandbox.base_url)})
            makers: list[Callable[[], Stack]] = [
                lambda: sign_only(signer, where),
                lambda: http_client_stack(signer, where),
                lambda: urllib3_stack(signer, where),
                lambda: requests_stack(signer, where, tuned=True),
                lambda: requests_stack(signer, where, tuned=False),
                lambda: httpx_stack(signer, where),
                lambda: paymux_transport_stack(signer, where),
                lambda: httpx_async_stack(loop, signer, where),
            ]
            if AIOHTTP_MISSING is None:
                makers.append(lambda: aiohttp_stack(loop, signer, where))
            makers.append(lambda: paymux_async_stack(loop, signer, where))
            stacks = [make() for make in makers]
            try:
                sequential = sequential_rounds(stacks, sandbox, sizes, rounds)
            finally:
                for stack in stacks:
                    stack.close()

            sandbox.set_latency(sizes.latency)
            print(f"  latency now {sizes.latency * 1000:.0f} ms", flush=True)
            configurations: list[Concurrent] = []
            try:
                for limit in sizes.limits:
                    configurations.append(httpx_concurrent(loop, signer, where, limit))
                if AIOHTTP_MISSING is None:
                    for limit in sizes.limits:
                        configurations.append(aiohttp_concurrent(loop, signer, where, limit))
                configurations.append(threads_concurrent(signer, where, sizes.workers))
                concurrent = concurrent_blocks(configurations, sandbox, sizes)
            finally:
                for each in configurations:
                    each.close()
    finally:
        loop.close()
    names = {stack.key: stack.name for stack in stacks}
    return report(args, sizes, rounds, names, sequential, configurations, concurrent, load_before)


def report(
    args: argparse.Namespace,
    sizes: Sizes,
    rounds: int,
    names: dict[str, str],
    sequential: dict[str, list[Run]],
    configurations: Sequence[Concurrent],
    concurrent: dict[str, Run],
    load_before: tuple[float, float, float],
) -> int:
    cpu = {key: median(run.cpu_us for run in runs) for key, runs in sequential.items()}
    rate = {key: median(run.rate for run in runs) for key, runs in sequential.items()}
    sandbox_cpu = {
        key: median(run.sandbox_cpu_us for run in runs) for key, runs in sequential.items()
    }
    sign, plain = cpu["sign"], cpu["http_client"]
    print()
    print(
        f"Sequential status calls, one keep-alive connection, no latency (medians over "
        f"{rounds} round(s) of {sizes.blocks} x {sizes.block} calls per stack)"
    )
    print(
        table(
            [
                "stack",
                "calls/s",
                "client CPU us/call",
                "minus signing us",
                "x sign only",
                "x http.client",
                "sandbox CPU us/call",
            ],
            [
                (
                    names[key],
                    rate[key],
                    cpu[key],
                    cpu[key] - sign,
                    ratio(cpu[key], sign),
                    ratio(cpu[key], plain),
                    sandbox_cpu[key],
                )
                for key in sequential
            ],
        )
    )
    print(
        "  minus signing: the client CPU per call less that of `sign only` (json.dumps and the "
        "RSA signature): what the HTTP stack and the answer's JSON cost."
    )
    if AIOHTTP_MISSING is not None:
        print(f"  !!! AIOHTTP ROW SKIPPED: {AIOHTTP_MISSING} !!!")

    threads = concurrent["threads"]
    ms = f"{sizes.latency * 1000:.0f} ms"
    print()
    print(
        f"{sizes.workers} workers, {sizes.concurrent_calls:,} status calls per configuration in "
        f"{sizes.concurrent_blocks} blocks, {ms} latency per API answer"
    )
    print(
        table(
            [
                "configuration",
                "connections",
                "calls/s",
                "client CPU ms/call",
                "median latency ms",
                "in flight",
                "ceiling calls/s",
                "x threads calls/s",
                "x threads CPU",
            ],
            [
                (
                    each.name,
                    each.limit,
                    concurrent[each.key].rate,
                    concurrent[each.key].cpu_us / 1000,
                    median(concurrent[each.key].latencies) * 1000,
                    concurrent[each.key].rate * sizes.latency,
                    min(each.limit, sizes.workers) / sizes.latency
                    if each.key != "threads"
                    else sizes.workers / sizes.latency,
                    ratio(concurrent[each.key].rate, threads.rate),
                    ratio(concurrent[each.key].cpu, threads.cpu),
                )
                for each in configurations
            ],
        )
    )
    print(
        f"  in flight: calls/s x {ms}, the calls at the sandbox at once on average; ceiling: "
        f"the connections (or workers) in use / {ms}."
    )
    if threads.discarded:
        print(
            f"  threads: requests' pool was full {threads.discarded:,} times: that many calls "
            f"ran on a connection of their own, opened and discarded"
        )
    if AIOHTTP_MISSING is not None:
        print(f"  !!! AIOHTTP ROWS SKIPPED: {AIOHTTP_MISSING} !!!")
    print(f"  load average before the run (other work on the machine): {load_before[0]:.2f}")

    ratios: dict[str, float] = {}
    for key in sequential:
        if key != "sign":
            ratios[f"{key}_cpu_over_sign"] = ratio(cpu[key], sign)
        if key not in ("sign", "http_client"):
            ratios[f"{key}_cpu_over_http_client"] = ratio(cpu[key], plain)
    for wrapper, under in (
        ("paymux_transport", "requests_tuned"),
        ("paymux_async_transport", "httpx_async"),
    ):
        ratios[f"{wrapper}_cpu_over_{under}"] = ratio(cpu[wrapper], cpu[under])
    for limit in sizes.limits:
        if f"aiohttp_{limit}" in concurrent:
            ours, theirs = concurrent[f"aiohttp_{limit}"], concurrent[f"httpx_async_{limit}"]
            ratios[f"concurrent_aiohttp_over_httpx_calls_per_s_at_{limit}"] = ratio(
                ours.rate, theirs.rate
            )
            ratios[f"concurrent_aiohttp_over_httpx_cpu_per_call_at_{limit}"] = ratio(
                ours.cpu, theirs.cpu
            )
    for each in configurations:
        if each.key != "threads":
            ratios[f"concurrent_{each.key}_over_threads_calls_per_s"] = ratio(
                concurrent[each.key].rate, threads.rate
            )
            ratios[f"concurrent_{each.key}_over_threads_cpu_per_call"] = ratio(
                concurrent[each.key].cpu, threads.cpu
            )
    results: JSON = {
        "sizes": dataclasses.asdict(sizes),
        "rounds": rounds,
        "pool_size": POOL_SIZE,
        "sandbox_max_connections": MAX_CONNECTIONS,
        "aiohttp_skipped": AIOHTTP_MISSING,
        "sequential": {
            key: {
                "name": names[key],
                "calls_per_s": rate[key],
                "client_cpu_per_call_us": cpu[key],
                "sandbox_cpu_per_call_us": sandbox_cpu[key],
                "cpu_over_sign_per_round": [
                    ratio(run.cpu, base.cpu)
                    for run, base in zip(runs, sequential["sign"], strict=True)
                ],
                "cpu_over_http_client_per_round": [
                    ratio(run.cpu, base.cpu)
                    for run, base in zip(runs, sequential["http_client"], strict=True)
                ],
                "rounds": [run.as_json() for run in runs],
            }
            for key, runs in sequential.items()
        },
        "concurrent": {
            each.key: {
                "name": each.name,
                "connections": each.limit,
                **concurrent[each.key].as_json(),
            }
            for each in configurations
        },
        "load_average_before": load_before,
        "notes": [
            "Sequential: the same signed status call over one keep-alive connection; every "
            "stack signs each call itself, so 'sign' is the part no stack can avoid.",
            "Concurrent: one payment polled; every answer waits the latency; the thread "
            "baseline's requests pool keeps 32 connections and opens one more per call beyond.",
            "One target (paymux's transports over their stacks); the rest informs the choice of "
            "HTTP stack.",
        ],
    }
    targets = [
        Target(
            f"{wrapper.replace('_', ' ')} / {under.replace('_', ' ')}, CPU per call",
            ratios[f"{wrapper}_cpu_over_{under}"],
            "<=",
            1.10,
            "what paymux's own layer (deadlines, size cap, request id, report) adds to its stack",
        )
        for wrapper, under in (
            ("paymux_transport", "requests_tuned"),
            ("paymux_async_transport", "httpx_async"),
        )
    ]
    return finish("stacks", args, results, ratios, targets)


if __name__ == "__main__":
    raise SystemExit(main())
