"""Running the host's Celery workers (`celery_shop`) from a test, and calling their tasks."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

import celery

import shop_host
from paymux.celery_tasks import ENQUEUE_DUE, register

TESTS = Path(__file__).resolve().parent
PREFORK = ["--pool=prefork", "--concurrency=2"]
SOLO = ["--pool=solo"]


class CeleryShop:
    """The host's broker seen from the test: a client app that calls the paymux tasks on the
    host's queue, and the environment its workers start with (a context manager)."""

    def __init__(self, config: shop_host.Config, folder: Path) -> None:
        self.config = config
        self.folder = folder
        self.env = {**os.environ, "PYTHONPATH": str(TESTS), "SHOP_CONFIG": json.dumps(config)}
        self.client = celery.Celery(
            "shop-client", broker=config["broker"], backend=config["broker"]
        )
        self.client.conf.task_default_queue = config["queue"]
        register(self.client, connect=lambda instance: shop_host.connect(config, instance))

    def enqueue_due(self, instance: str = "shop") -> int:
        """Run `paymux.enqueue_due` in a worker, as beat would; how many it enqueued."""
        enqueued: int = self.client.tasks[ENQUEUE_DUE].delay(instance).get(timeout=30)
        return enqueued

    @contextmanager
    def workers(self, *pools: list[str]) -> Iterator[list[subprocess.Popen[bytes]]]:
        """One `celery worker` process per pool, ready (answering a ping); stopped at the end."""
        started = []
        names = [f"w{number}@paymux-test" for number in range(len(pools))]
        for name, pool in zip(names, pools, strict=True):
            with (self.folder / f"{name}.log").open("wb") as log:
                command = [sys.executable, "-m", "celery", "-A", "celery_shop", "worker"]
                command += ["-n", name, *pool, "--loglevel=INFO"]
                command += ["--without-gossip", "--without-mingle"]
                started.append(
                    subprocess.Popen(
                        command, cwd=self.folder, env=self.env, stdout=log, stderr=subprocess.STDOUT
                    )
                )
        try:
            wait_for(lambda: self._answering(names), "the workers", timeout=30)
            yield started
        finally:
            for process in started:
                process.terminate()
            for process in started:
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

    def stalled(self) -> dict[str, object]:
        """The marker of the worker that stalled (see `shop_host`), once it is written."""
        marker = Path(self.config["stalled"])
        wait_for(lambda: marker.exists() and bool(marker.read_text()), "a worker stalled", 60)
        found: dict[str, object] = json.loads(marker.read_text())
        return found

    def _answering(self, names: list[str]) -> bool:
        with self.client.connection_for_write() as connection:
            replies = self.client.control.ping(
                destination=names, timeout=0.5, connection=connection
            )
        return {name for reply in replies for name in reply} == set(names)

    def __enter__(self) -> CeleryShop:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Let go of the task results' subscriptions while Redis is up, then of every socket."""
        gc.collect()
        self.client.backend.result_consumer.stop()
        self.client.backend.client.connection_pool.disconnect()
        self.client.close()
        with warnings.catch_warnings():  # redis-py connections celery dropped without closing
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()


def wait_for(condition: Callable[[], bool], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.05)
