"""The host of the durability and Celery tests, as each of its processes imports it: where its
ledger and guard are, and its notification handler (`Host`).

The configuration is one JSON document (`SHOP_CONFIG` in a worker's environment).
`Host.on_notification` runs each notification through the host's guard and appends one line per
verdict to the log file — `<subject id> <status> <verdict>` — so that a test sees what every
process did. A host given `stall_at` N waits for ever, once, right after its N-th admitted
change is committed: the test kills that process there.
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import paymux

Config = dict[str, Any]


def guard_store(config: Config) -> paymux.GuardStore:
    """The guard store `config["guard"]` names: {"kind": "sqlite" | "postgres" | "redis", ...}."""
    guard = config["guard"]
    if guard["kind"] == "sqlite":
        return paymux.SQLiteStore(guard["path"])
    from paymux.stores import PostgresStore, RedisStore

    if guard["kind"] == "postgres":
        return PostgresStore(guard["dsn"])
    return RedisStore(guard["url"], prefix=guard["prefix"])


def connect(config: Config, instance: str = "shop") -> paymux.Provider:
    return paymux.connect({**config["settings"], "name": instance})


class Host:
    """The host's notification path: its guard, and the log of what it did (a context manager
    that closes the guard's store)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.store = guard_store(config)
        self.guard = paymux.NotificationGuard(self.store)
        self.acted = 0
        self._lock = threading.Lock()

    def on_notification(self, notification: paymux.Notification) -> None:
        subject = notification.subject
        with self.guard.admitted(notification) as verdict:
            line = f"{subject.id} {subject.status.value} {verdict.value}\n"
            written = os.open(self.config["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            os.write(written, line.encode())
            os.close(written)
        with self._lock:
            self.acted += verdict.act
            stall_now = self.acted == self.config.get("stall_at")
        if stall_now:
            _stall(self.config["stalled"], subject.id)

    def __enter__(self) -> Host:
        return self

    def __exit__(self, *exc_info: object) -> None:
        close = getattr(self.store, "close", None)
        if close is not None:
            close()


def verdicts(config: Config) -> Counter[str]:
    """Every line the handlers have written so far, counted."""
    log = Path(config["log"])
    return Counter(log.read_text(encoding="utf-8").splitlines() if log.exists() else [])


def _stall(marker_path: str, subject_id: str) -> None:
    """Handled and committed, not yet settled in the ledger: the first process here waits to
    be killed, writing its pid to the marker."""
    try:
        marker = os.open(marker_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    except FileExistsError:
        return
    os.write(marker, json.dumps({"pid": os.getpid(), "subject": subject_id}).encode())
    os.close(marker)
    threading.Event().wait()
