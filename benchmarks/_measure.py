"""How the HTTP benchmarks drive a client and time it: blocks of sequential calls and calls from
threads sharing one client, each with the client's CPU and the server process's.

Shared by `bench_http.py` (AliKassa's sandbox) and `bench_yookassa.py` (YooKassa's emulator);
the server is whatever runs in its own process and tells its CPU seconds.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from _common import JSON, median, ratio


class Server(Protocol):
    """The server process: its CPU seconds so far (all its threads)."""

    def cpu(self) -> float: ...


@dataclass
class Client:
    """`create(order_id) -> payment id` and `status(payment id)`, plus the payment to poll."""

    name: str
    create: Callable[[str], str]
    status: Callable[[str], None]
    context: Callable[[], contextlib.AbstractContextManager[None]] = contextlib.nullcontext
    polled: str = ""


_order_ids = itertools.count(1)


def next_order_id(client: str) -> str:
    return f"bench-{client}-{next(_order_ids)}"


@dataclass(frozen=True)
class Run:
    """What one block of calls (or a whole round, blocks added up) took."""

    calls: int
    wall: float
    cpu: float
    server_cpu: float
    latencies: tuple[float, ...]

    @property
    def throughput(self) -> float:
        return self.calls / self.wall

    @property
    def cpu_per_call(self) -> float:
        return self.cpu / self.calls

    @classmethod
    def total(cls, blocks: Sequence[Run]) -> Run:
        return cls(
            sum(block.calls for block in blocks),
            sum(block.wall for block in blocks),
            sum(block.cpu for block in blocks),
            sum(block.server_cpu for block in blocks),
            tuple(latency for block in blocks for latency in block.latencies),
        )

    def as_json(self) -> JSON:
        return {
            "calls": self.calls,
            "wall_s": self.wall,
            "client_cpu_s": self.cpu,
            "server_cpu_s": self.server_cpu,
            "throughput_per_s": self.throughput,
            "latency_median_ms": median(self.latencies) * 1000,
            "client_cpu_per_call_us": self.cpu / self.calls * 1e6,
            "server_cpu_per_call_us": self.server_cpu / self.calls * 1e6,
        }


def sequential(client: Client, operation: str, calls: int, server: Server) -> Run:
    """`calls` creates (or status checks) one after another on this thread."""
    latencies: list[float] = []
    clock = time.perf_counter
    with client.context():
        server_before = server.cpu()
        cpu_before = time.process_time()
        started = clock()
        if operation == "create":
            for _ in range(calls):
                begin = clock()
                client.create(next_order_id(client.name))
                latencies.append(clock() - begin)
        else:
            for _ in range(calls):
                begin = clock()
                client.status(client.polled)
                latencies.append(clock() - begin)
        wall = clock() - started
        cpu = time.process_time() - cpu_before
        server_cpu = server.cpu() - server_before
    return Run(calls, wall, cpu, server_cpu, tuple(latencies))


def threaded(client: Client, threads: int, calls: int, server: Server) -> Run:
    """`calls` status checks split over `threads` threads that share `client`."""
    per_thread = max(1, calls // threads)
    barrier = threading.Barrier(threads + 1)
    failures: list[BaseException] = []
    latencies: list[list[float]] = [[] for _ in range(threads)]

    def work(mine: list[float]) -> None:
        clock = time.perf_counter
        barrier.wait()
        try:
            for _ in range(per_thread):
                begin = clock()
                client.status(client.polled)
                mine.append(clock() - begin)
        except BaseException as error:
            failures.append(error)

    workers = [
        threading.Thread(target=work, args=(latencies[i],), daemon=True) for i in range(threads)
    ]
    for worker in workers:
        worker.start()
    server_before = server.cpu()
    cpu_before = time.process_time()
    barrier.wait()
    started = time.perf_counter()
    for worker in workers:
        worker.join()
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_before
    server_cpu = server.cpu() - server_before
    if failures:
        raise failures[0]
    return Run(
        per_thread * threads,
        wall,
        cpu,
        server_cpu,
        tuple(value for mine in latencies for value in mine),
    )


def summarise(runs: Sequence[Run]) -> JSON:
    """Medians over rounds (each round is the sum of its interleaved blocks)."""
    return {
        "throughput_per_s": median(run.throughput for run in runs),
        "latency_median_ms": median(median(run.latencies) for run in runs) * 1000,
        "client_cpu_per_call_us": median(run.cpu_per_call for run in runs) * 1e6,
        "server_cpu_per_call_us": median(run.server_cpu / run.calls for run in runs) * 1e6,
        "rounds": [run.as_json() for run in runs],
    }


def spread(ours: Sequence[Run], theirs: Sequence[Run], value: Callable[[Run], float]) -> JSON:
    """The ratio round by round (both measured in the same round), and its range."""
    ratios = [ratio(value(a), value(b)) for a, b in zip(ours, theirs, strict=True)]
    return {"per_round": ratios, "min": min(ratios), "max": max(ratios)}


def rotate(items: Sequence[Client], by: int) -> list[Client]:
    by %= len(items)
    return [*items[by:], *items[:by]]
