"""The sweep of pending payments whose notification was lost, against a slow gateway.

    python benchmarks/bench_sweep.py            # full run, 8 to 10 minutes on 2 cores
    python benchmarks/bench_sweep.py --quick    # smoke run

10,000 payments are created through paymux (ledger in a SQLite file, the sandbox answering at
once), then paid at the sandbox without notifying anyone, so that each one is a PENDING ledger
entry only a sweep settles; then every API answer of the sandbox waits 100 ms. A copy of that
ledger is kept, and every configuration sweeps a fresh copy of it (the sandbox's payments stay
paid: a status call only reads), with the host's handler behind a `NotificationGuard` on its
own SQLite store:

* `sequential`   - `paymux.sweep(..., concurrency=1)`, on a sample (the floor);
* `one process`  - `paymux.sweep(..., concurrency=N)`, N probed on a subset, then the best N on
                   every payment;
* `celery xK`    - K `celery worker` processes (`--pool=threads`) running
                   `paymux.celery_tasks` over a throw-away Redis: one `paymux.enqueue_due`, then
                   the time until no entry is PENDING.

Reported: payments settled per second, and CPU per settlement: this process's
`time.process_time()` for the sweeps in it (the sandbox runs in its own process), the worker
processes' user+system time (from /proc) for Celery. The sandbox's and Redis's CPU are kept in
the JSON for reference. The runs are long, so they are not interleaved: each runs once.

Imported by `celery -A bench_sweep worker` (with `PAYMUX_BENCH_SWEEP` set to the worker's JSON
configuration), this module is the host's Celery app: `app` below.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import itertools
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from _common import (
    BENCHMARKS,
    JSON,
    SandboxProcess,
    Target,
    finish,
    machine_line,
    parser,
    ratio,
    table,
)

import paymux
from paymux import EntryState

if TYPE_CHECKING:
    import celery

INSTANCE = "shop"
WORKER_CONFIG = "PAYMUX_BENCH_SWEEP"
"""The environment variable holding a Celery worker's configuration (JSON)."""
MAX_CONNECTIONS = 1024
"""The sandbox's connection limit: above every concurrency tried (its default is 64)."""
CREATE_THREADS = 8


@dataclasses.dataclass(frozen=True)
class Sizes:
    payments: int
    """Pending payments in the ledger; the best one-process run and Celery settle them all."""
    latency: float
    """Seconds each sandbox API answer waits while sweeping."""
    sequential: int
    """Entries the sequential floor settles (a sample: 10,000 one at a time take some 20 min)."""
    probe: int
    """Entries each concurrency probe settles."""
    concurrencies: tuple[int, ...]
    worker_concurrency: int
    """Threads per Celery worker (`--pool=threads --concurrency=N`)."""
    workers: tuple[int, ...]


FULL = Sizes(
    payments=10_000,
    latency=0.1,
    sequential=200,
    probe=600,
    concurrencies=(16, 32, 64, 128),
    worker_concurrency=32,
    workers=(1, 2),
)
QUICK = Sizes(
    payments=200,
    latency=0.1,
    sequential=30,
    probe=100,
    concurrencies=(8, 16),
    worker_concurrency=8,
    workers=(1, 2),
)


# -- the host ---------------------------------------------------------------------------------


class Host:
    """The host's notification handler: each change through a `NotificationGuard` on a SQLite
    store, acted on once (here: counted)."""

    def __init__(self, guard_path: str | Path) -> None:
        self.guard = paymux.NotificationGuard(paymux.SQLiteStore(guard_path))
        self.acted = 0
        self._lock = threading.Lock()

    def on_notification(self, notification: paymux.Notification) -> None:
        with self.guard.admitted(notification) as verdict:
            if verdict.act:  # where the host marks its order paid, in its own database
                with self._lock:
                    self.acted += 1


def connect(settings: JSON, ledger: Path | str) -> paymux.Provider:
    return paymux.connect({**settings, "ledger": str(ledger), "name": INSTANCE})


def worker_app(config: JSON) -> celery.Celery:
    """The Celery app of one worker process: the paymux tasks on the benchmark's queue."""
    import celery

    from paymux.celery_tasks import register

    app = celery.Celery("bench-sweep", broker=config["broker"], backend=config["broker"])
    app.conf.update(task_default_queue=config["queue"])
    host = Host(config["guard"])
    register(
        app,
        connect=lambda instance: paymux.connect({**config["settings"], "name": instance}),
        handle=lambda instance: host.on_notification,
    )
    return app


# -- the ledger -------------------------------------------------------------------------------


def copy_ledger(source: Path, target: Path) -> Path:
    """A consistent copy of the SQLite ledger (the backup API: the WAL included)."""
    with (
        contextlib.closing(sqlite3.connect(source)) as origin,
        contextlib.closing(sqlite3.connect(target)) as copy,
    ):
        origin.backup(copy)
    return target


def count(path: Path, sql: str) -> int:
    """One number from the SQLite file at `path` (a connection of its own, closed after)."""
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as connection:
        (value,) = connection.execute(sql).fetchone()
    return int(value or 0)


def pending(ledger: Path) -> int:
    return count(ledger, "SELECT COUNT(*) FROM paymux_ledger WHERE state = 'pending'")


def settled(ledger: Path) -> int:
    return count(ledger, "SELECT COUNT(*) FROM paymux_ledger WHERE state = 'settled'")


# -- what one configuration did ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Run:
    name: str
    concurrency: str
    settled: int
    handled: int
    """Changes the host acted on (its guard admitted them as new)."""
    wall: float
    cpu: float
    """CPU seconds of the settling processes."""
    sandbox_cpu: float
    broker_cpu: float | None = None
    states: dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.settled / self.wall if self.wall else 0.0

    @property
    def cpu_ms(self) -> float:
        return self.cpu / self.settled * 1000 if self.settled else float("nan")

    def as_json(self) -> JSON:
        return {
            "name": self.name,
            "concurrency": self.concurrency,
            "settled": self.settled,
            "handled": self.handled,
            "states": self.states,
            "wall_s": self.wall,
            "settled_per_s": self.rate,
            "cpu_s": self.cpu,
            "cpu_ms_per_settlement": self.cpu_ms,
            "sandbox_cpu_ms_per_settlement": (
                self.sandbox_cpu / self.settled * 1000 if self.settled else None
            ),
            "broker_cpu_ms_per_settlement": (
                self.broker_cpu / self.settled * 1000
                if self.broker_cpu is not None and self.settled
                else None
            ),
        }


def in_process(
    name: str,
    settings: JSON,
    ledger: Path,
    guard: Path,
    *,
    limit: int,
    concurrency: int,
    sandbox: SandboxProcess,
) -> Run:
    """`paymux.sweep` in this process over `limit` due entries, `concurrency` at a time."""
    provider = connect(settings, ledger)  # the key is decrypted here, before the clock starts
    host = Host(guard)
    try:
        sandbox_before = sandbox.cpu()
        cpu_before = time.process_time()
        started = time.perf_counter()
        report = paymux.sweep(
            provider, handle=host.on_notification, limit=limit, concurrency=concurrency
        )
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu_before
        sandbox_cpu = sandbox.cpu() - sandbox_before
    finally:
        provider.close()
    run = Run(
        name,
        str(concurrency),
        report.count(EntryState.SETTLED),
        host.acted,
        wall,
        cpu,
        sandbox_cpu,
        states=dict(report.states),
    )
    print(f"  {name}: {describe(run)}", flush=True)
    return run


def describe(run: Run) -> str:
    return (
        f"{run.settled} settled ({run.handled} acted on) in {run.wall:.1f} s: "
        f"{run.rate:.1f}/s, {run.cpu_ms:.2f} ms CPU each"
    )


# -- Celery -----------------------------------------------------------------------------------


def celery_missing() -> str | None:
    """Why the Celery rows cannot run here, or None."""
    if shutil.which("redis-server") is None:
        return "no redis-server on PATH (apt-get install redis-server)"
    for module in ("celery", "redis"):
        try:
            __import__(module)
        except ImportError:
            return f"no {module} module (pip install 'paymux[celery]' redis)"
    return None


def free_port() -> int:
    with contextlib.closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for(condition: Callable[[], bool], what: str, timeout: float, every: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {timeout} s")
        time.sleep(every)


@dataclasses.dataclass(frozen=True)
class Redis:
    url: str
    pid: int


@contextlib.contextmanager
def redis_server(folder: Path) -> Iterator[Redis]:
    """A Redis server on a free loopback port, keeping nothing on disk."""
    binary = shutil.which("redis-server")
    assert binary is not None
    port = free_port()
    settings = ["--bind", "127.0.0.1", "--dir", str(folder), "--save", "", "--appendonly", "no"]
    server = subprocess.Popen([binary, "--port", str(port), *settings], stdout=subprocess.DEVNULL)
    try:
        wait_for(lambda: _pong(port), "redis-server", timeout=30)
        yield Redis(f"redis://127.0.0.1:{port}/0", server.pid)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _pong(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of process `pid` (all its threads, and children it reaped)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks = sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def celery_workers(
    workers: int, config: JSON, folder: Path, concurrency: int
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`workers` worker processes of `worker_app(config)`, each answering a ping and connected
    (see `warm_up`); stopped after."""
    import celery

    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(BENCHMARKS), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
        WORKER_CONFIG: json.dumps(config),
    }
    names = [f"w{number}@bench-sweep" for number in range(workers)]
    started: list[subprocess.Popen[bytes]] = []
    client = celery.Celery("bench-sweep-ping", broker=config["broker"])
    try:
        for name in names:
            with (folder / f"{name}.log").open("wb") as log:
                started.append(
                    subprocess.Popen(
                        [
                            *(sys.executable, "-m", "celery", "-A", "bench_sweep", "worker"),
                            *("-n", name, "-Q", f"{config['queue']},{warm_queue(config, name)}"),
                            *("--pool=threads", f"--concurrency={concurrency}"),
                            *("--without-gossip", "--without-mingle"),
                        ],
                        cwd=folder,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )

        def answering() -> bool:
            for process in started:
                if process.poll() is not None:
                    raise RuntimeError(f"a celery worker exited (code {process.returncode})")
            with client.connection_for_write() as connection:
                replies = client.control.ping(destination=names, timeout=0.5, connection=connection)
            return {name for reply in replies for name in reply} == set(names)

        wait_for(answering, "the celery workers", timeout=60)
        yield started
    except BaseException:
        for name in names:  # the folder goes at the end: show why here
            log_file = folder / f"{name}.log"
            if log_file.exists():
                tail = log_file.read_text(errors="replace").splitlines()[-20:]
                print(f"--- {name} log, last lines ---", *tail, sep="\n", file=sys.stderr)
        raise
    finally:
        client.close()
        for process in started:
            process.terminate()
        for process in started:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def warm_queue(config: JSON, worker: str) -> str:
    """The queue only `worker` reads besides the common one: for its warm-up."""
    return f"{config['queue']}-{worker.split('@')[0]}"


def call_task(client: celery.Celery, queue: str, *args: object) -> int:
    """Run `paymux.enqueue_due(*args)` on `queue` and wait for its answer.

    Its result names the `settle_entry` messages it published as its children, and the client
    keeps waiting on those (they keep no result): it stops here, while Redis is up, rather than
    in `AsyncResult.__del__` at exit.
    """
    from paymux.celery_tasks import ENQUEUE_DUE

    result = client.send_task(ENQUEUE_DUE, args=args, queue=queue)
    try:
        return int(result.get(timeout=300))
    finally:
        for group in result.children or []:  # from the result itself: no further lookups
            for child in getattr(group, "results", None) or [group]:
                client.backend.remove_pending_result(child)
            client.backend.remove_pending_result(group)
        client.backend.remove_pending_result(result)


def warm_up(client: celery.Celery, config: JSON, workers: int) -> None:
    """Each worker connects (the plugin imported, the key decrypted) before the clock starts, as
    a long-running worker has: `enqueue_due` with limit 0 enqueues nothing."""
    for number in range(workers):
        queue = warm_queue(config, f"w{number}@bench-sweep")
        if call_task(client, queue, INSTANCE, 0) != 0:
            raise RuntimeError("the warm-up enqueued something")


def on_celery(
    workers: int,
    settings: JSON,
    ledger: Path,
    guard: Path,
    *,
    redis: Redis,
    folder: Path,
    sizes: Sizes,
    sandbox: SandboxProcess,
) -> Run:
    """`workers` Celery workers settle every entry: one `enqueue_due`, then none PENDING."""
    import celery

    config: JSON = {
        "broker": redis.url,
        "queue": f"bench-sweep-{uuid.uuid4().hex}",
        "settings": {**settings, "ledger": str(ledger)},
        "guard": str(guard),
    }
    Host(guard)  # the store's file and table exist before the workers race to make them
    name = f"celery x{workers}"
    with celery_workers(workers, config, folder, sizes.worker_concurrency) as started:
        client = celery.Celery("bench-sweep-client", broker=redis.url, backend=redis.url)
        try:
            warm_up(client, config, workers)
            before = [process_cpu(process.pid) for process in started]
            broker_before = process_cpu(redis.pid)
            sandbox_before = sandbox.cpu()
            begin = time.perf_counter()
            enqueued = call_task(client, config["queue"], INSTANCE, sizes.payments)

            def done() -> bool:
                for process in started:
                    if process.poll() is not None:
                        raise RuntimeError(f"a celery worker exited (code {process.returncode})")
                return pending(ledger) == 0

            wait_for(done, "every entry settled", timeout=1800, every=0.1)
            wall = time.perf_counter() - begin
            cpu = sum(process_cpu(p.pid) - b for p, b in zip(started, before, strict=True))
            broker_cpu = process_cpu(redis.pid) - broker_before
            sandbox_cpu = sandbox.cpu() - sandbox_before
        finally:  # the results' subscription and sockets let go of while Redis is up
            gc.collect()
            client.backend.result_consumer.stop()
            client.backend.client.connection_pool.disconnect()
            client.close()
    guarded = count(guard, "SELECT COUNT(*) FROM paymux_guard")
    run = Run(
        name,
        f"{workers} x {sizes.worker_concurrency} threads",
        settled(ledger),
        guarded,
        wall,
        cpu,
        sandbox_cpu,
        broker_cpu,
        states={"enqueued": enqueued},
    )
    print(f"  {name}: {describe(run)}", flush=True)
    return run


# -- preparing the payments -------------------------------------------------------------------


def create_payments(settings: JSON, ledger: Path, payments: int) -> float:
    """`payments` payments created through paymux, each a PENDING ledger entry; seconds taken."""
    provider = connect(settings, ledger)
    options = {
        "service": "payment_card_rub_hpp",
        "success_redirect_id": 1,
        "fail_redirect_id": 1,
        "notification_endpoint_id": 5,
    }
    customer = paymux.Customer(ip="18.191.80.10", user_agent="Mozilla/5.0 (X11; Linux x86_64)")

    def create(number: int) -> str:
        request = paymux.PaymentRequest(
            order_id=f"sweep-{number}", amount=Decimal("500"), customer=customer, options=options
        )
        return provider.create(request).id

    started = time.perf_counter()
    try:
        with ThreadPoolExecutor(CREATE_THREADS) as pool:
            created = list(pool.map(create, range(payments)))
    finally:
        provider.close()
    assert len(set(created)) == payments
    return time.perf_counter() - started


# -- the run ----------------------------------------------------------------------------------


def main() -> int:
    options = parser(__doc__.split("\n\n")[0] if __doc__ else "")
    args = options.parse_args()
    sizes = QUICK if args.quick else FULL
    print(f"bench_sweep: {machine_line()}")
    print(f"bench_sweep: sizes {dataclasses.asdict(sizes)}", flush=True)
    load_before = os.getloadavg()
    missing = celery_missing()
    if missing is not None:
        print(f"bench_sweep: !!! CELERY ROWS SKIPPED: {missing} !!!", flush=True)

    folder = Path(tempfile.mkdtemp(prefix="paymux-bench-sweep-"))
    runs: list[Run] = []
    probes: list[Run] = []
    preparation: JSON = {}
    try:
        with SandboxProcess(folder, max_connections=MAX_CONNECTIONS) as sandbox:
            settings = sandbox.settings
            pristine = folder / "pristine.sqlite3"
            took = create_payments(settings, pristine, sizes.payments)
            paid = sandbox.pay_all()
            assert paid == sizes.payments, paid
            assert pending(pristine) == sizes.payments
            sandbox.set_latency(sizes.latency)
            # Each entry is first due 5 s after its create: wait until the last one is.
            last_due = float(
                count(pristine, "SELECT CAST(MAX(next_at) * 1000 AS INTEGER) FROM paymux_ledger")
            )
            time.sleep(max(0.0, last_due / 1000 + 0.5 - time.time()))
            preparation = {"create_s": took, "created": sizes.payments, "paid": paid}
            print(
                f"  {sizes.payments} payments created in {took:.1f} s ({CREATE_THREADS} threads,"
                f" no latency), paid at the sandbox without notification;"
                f" latency now {sizes.latency * 1000:.0f} ms",
                flush=True,
            )

            copies = itertools.count()

            def fresh() -> tuple[Path, Path]:
                number = next(copies)
                ledger = copy_ledger(pristine, folder / f"ledger-{number}.sqlite3")
                return ledger, folder / f"guard-{number}.sqlite3"

            def sweep_run(name: str, limit: int, concurrency: int) -> Run:
                ledger, guard = fresh()
                run = in_process(
                    name,
                    settings,
                    ledger,
                    guard,
                    limit=limit,
                    concurrency=concurrency,
                    sandbox=sandbox,
                )
                ledger.unlink()
                return run

            runs.append(sweep_run("sequential", sizes.sequential, 1))
            for concurrency in sizes.concurrencies:
                probes.append(sweep_run(f"probe {concurrency}", sizes.probe, concurrency))
            best = max(probes, key=lambda run: run.rate)
            runs.append(sweep_run("one process", sizes.payments, int(best.concurrency)))

            if missing is None:
                with redis_server(folder) as redis:
                    for workers in sizes.workers:
                        ledger, guard = fresh()
                        runs.append(
                            on_celery(
                                workers,
                                settings,
                                ledger,
                                guard,
                                redis=redis,
                                folder=folder,
                                sizes=sizes,
                                sandbox=sandbox,
                            )
                        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    by_name = {run.name: run for run in runs}
    floor = by_name["sequential"]
    print()
    print(f"Concurrency probes: {sizes.probe} entries each, {sizes.latency * 1000:.0f} ms latency")
    print(probe_table(probes))
    print()
    print(f"The sweep: {sizes.latency * 1000:.0f} ms latency per API answer")
    print(results_table(runs, floor))
    print(f"  load average before the run (other work on the machine): {load_before[0]:.2f}")
    if missing is not None:
        print(f"  !!! CELERY ROWS SKIPPED: {missing} !!!")
    for run in runs:
        if run.settled != run.handled:
            print(f"  !!! {run.name}: {run.settled} settled but {run.handled} acted on")

    ratios: dict[str, float] = {
        "one_process_over_sequential_settled_per_s": ratio(by_name["one process"].rate, floor.rate),
        "one_process_over_sequential_cpu_per_settlement": ratio(
            by_name["one process"].cpu_ms, floor.cpu_ms
        ),
    }
    targets = [
        Target(
            "settled/s, one process at its best concurrency / sequential",
            ratios["one_process_over_sequential_settled_per_s"],
            ">=",
            10,
            f"{sizes.latency * 1000:.0f} ms per status call; best concurrency "
            f"{by_name['one process'].concurrency} of {list(sizes.concurrencies)}",
        ),
        Target(
            "CPU per settlement, one process at its best concurrency / sequential",
            ratios["one_process_over_sequential_cpu_per_settlement"],
            "<=",
            1.5,
            "time.process_time() of the sweeping process; the sandbox is another process",
        ),
    ]
    celery_runs = [run for run in runs if run.name.startswith("celery")]
    for run in celery_runs:
        key = run.name.replace(" ", "_")
        ratios[f"{key}_over_sequential_settled_per_s"] = ratio(run.rate, floor.rate)
        ratios[f"{key}_over_one_process_settled_per_s"] = ratio(
            run.rate, by_name["one process"].rate
        )
        ratios[f"{key}_over_sequential_cpu_per_settlement"] = ratio(run.cpu_ms, floor.cpu_ms)
    if "celery x1" in by_name and "celery x2" in by_name:
        ratios["celery_x2_over_celery_x1_settled_per_s"] = ratio(
            by_name["celery x2"].rate, by_name["celery x1"].rate
        )
        targets.append(
            Target(
                "settled/s, Celery 2 workers / Celery 1 worker",
                ratios["celery_x2_over_celery_x1_settled_per_s"],
                ">=",
                1.5,
                f"--pool=threads --concurrency={sizes.worker_concurrency} per worker; "
                f"{machine_cores()} CPUs shared with the sandbox and Redis",
            )
        )
    results: JSON = {
        "sizes": dataclasses.asdict(sizes),
        "preparation": preparation,
        "probes": [run.as_json() for run in probes],
        "runs": [run.as_json() for run in runs],
        "celery_skipped": missing,
        "load_average_before": load_before,
        "notes": [
            "CPU of in-process rows: time.process_time() of the benchmark process; of Celery "
            "rows: utime+stime of the worker processes (/proc), Redis's CPU apart.",
            "Every configuration sweeps its own copy of the same ledger; the sandbox's payments "
            "stay paid, so each status call finds the payment final.",
            "The targets are this script's own: the issue set none.",
        ],
    }
    return finish("sweep", args, results, ratios, targets)


def machine_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 0


def probe_table(probes: Sequence[Run]) -> str:
    return table(
        ["concurrency", "settled", "wall s", "settled/s", "CPU ms/settlement"],
        [(int(run.concurrency), run.settled, run.wall, run.rate, run.cpu_ms) for run in probes],
    )


def results_table(runs: Sequence[Run], floor: Run) -> str:
    return table(
        [
            "configuration",
            "concurrency",
            "settled",
            "wall s",
            "settled/s",
            "CPU ms/settlement",
            "x sequential",
        ],
        [
            (
                run.name,
                run.concurrency,
                run.settled,
                run.wall,
                run.rate,
                run.cpu_ms,
                ratio(run.rate, floor.rate),
            )
            for run in runs
        ],
    )


if __name__ == "__main__":
    raise SystemExit(main())
elif WORKER_CONFIG in os.environ:  # imported by `celery -A bench_sweep worker`
    app = worker_app(json.loads(os.environ[WORKER_CONFIG]))
