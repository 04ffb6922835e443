"""The sweep on Celery: beat finds what is due, workers settle it one entry at a time.

    app = celery.Celery("shop", broker="redis://localhost:6379/0")
    paymux.celery_tasks.register(app, connect=paymux_connect, handle=handler_of)
    app.conf.beat_schedule = paymux.celery_tasks.beat_schedule(["shop"])

`paymux.enqueue_due(instance)` asks the ledger what is due (at most 10 000) and enqueues one
`paymux.settle_entry(instance, entry_id)` per entry. A settling claims its entry in the ledger
first, so a message delivered twice, or to two workers, settles the entry once: the tasks are
acknowledged late and a message whose worker died is delivered again. An entry whose worker died
mid-settling is due again once its claim expires, and the next `enqueue_due` sends it again.

Importing this module imports celery (the `paymux[celery]` extra); paymux never imports it.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterable
from typing import Any

import celery

from paymux.models import Notification
from paymux.provider import Provider
from paymux.sweeper import due, settle

__all__ = ["ENQUEUE_DUE", "SETTLE_ENTRY", "beat_schedule", "register"]

ENQUEUE_DUE = "paymux.enqueue_due"
SETTLE_ENTRY = "paymux.settle_entry"

Handle = Callable[[Notification], None]


def register(
    app: celery.Celery,
    *,
    connect: Callable[[str], Provider],
    handle: Callable[[str], Handle | None] | None = None,
    chunk: int = 100,
) -> None:
    """Add `paymux.enqueue_due` and `paymux.settle_entry` to `app`.

    `connect(instance)` builds the instance's provider, once per worker process (its connection
    pool and ledger are reused by every task there); `handle(instance)`, called as often, gives
    the function each change found goes to — the one the host's notification endpoint runs
    through its guard. `chunk` is how many messages are published at a time.
    """
    if chunk < 1:
        raise ValueError(f"chunk must be a positive number of messages: {chunk}")
    connected: dict[str, tuple[Provider, Handle | None]] = {}
    lock = threading.Lock()

    def connected_to(instance: str) -> tuple[Provider, Handle | None]:
        with lock:  # built lazily, so a prefork pool's children each build their own
            if instance not in connected:
                provider = connect(instance)
                connected[instance] = (provider, None if handle is None else handle(instance))
            return connected[instance]

    def settle_entry(instance: str, entry_id: str) -> dict[str, Any]:
        provider, handler = connected_to(instance)
        return dataclasses.asdict(settle(provider, entry_id, handle=handler))

    def enqueue_due(instance: str, limit: int = 10_000) -> int:
        provider, _ = connected_to(instance)
        ids = due(provider, limit=limit)
        for start in range(0, len(ids), chunk):
            batch = ids[start : start + chunk]
            celery.group(settling.s(instance, entry_id) for entry_id in batch).apply_async()
        return len(ids)

    # Acknowledged once settled: a message whose worker died is delivered again, and finds its
    # entry claimed (or settled) in the ledger.
    settling = app.task(
        settle_entry,
        name=SETTLE_ENTRY,
        shared=False,
        acks_late=True,
        reject_on_worker_lost=True,
        ignore_result=True,
    )
    app.task(enqueue_due, name=ENQUEUE_DUE, shared=False)


def beat_schedule(instances: Iterable[str], every: float = 60.0) -> dict[str, dict[str, Any]]:
    """Beat entries running `paymux.enqueue_due` for each instance every `every` seconds; a run
    not started within `every` expires, so a stopped worker does not come back to a pile."""
    return {
        f"{ENQUEUE_DUE}:{instance}": {
            "task": ENQUEUE_DUE,
            "schedule": every,
            "args": (instance,),
            "options": {"expires": every},
        }
        for instance in instances
    }
