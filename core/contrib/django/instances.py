"""The `PAYMUX` setting: the configured instances, built once per process on first use.

    PAYMUX = {
        "instances": {"shop": {"provider": "mygateway", ...}, "b": {"provider": "other", ...}},
        "ledger": True,                      # the ledger in the database (the admin shows it)
        "guard_store": "myshop.stores.redis_store",  # a function returning a GuardStore
        "site_url": "https://shop.example",  # the host in notification and return URLs
    }

Each instance goes through paymux's own configuration (`paymux.Config`), so its secrets are
wrapped in a `paymux.Secret` as soon as they are read.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

import paymux
from paymux import ConfigurationError, GuardStore, NotificationGuard, Provider
from paymux.contrib.django.ledger import DatabaseLedger
from paymux.contrib.django.store import DatabaseStore

_lock = threading.Lock()
_providers: dict[str, Provider] = {}
_guard: NotificationGuard | None = None


def configured() -> Mapping[str, Any]:
    """The `PAYMUX` setting (empty when it is not set)."""
    value = getattr(settings, "PAYMUX", {})
    if not isinstance(value, Mapping):
        raise ConfigurationError("the PAYMUX setting must be a dict")
    return value


def config() -> paymux.Config:
    """The configured instances as paymux's `Config`."""
    return paymux.Config.from_mapping({"providers": configured().get("instances", {})})


def provider(instance: str) -> Provider:
    """The connected provider of `instance`, the same one for every caller in the process."""
    with _lock:
        if instance not in _providers:
            _providers[instance] = _connect(instance)
        return _providers[instance]


def guard() -> NotificationGuard:
    """The process's notification guard: the database store unless `guard_store` names one."""
    global _guard
    with _lock:
        if _guard is None:
            _guard = NotificationGuard(_store())
        return _guard


def _connect(instance: str) -> Provider:
    loaded = config()
    in_database = bool(configured().get("ledger"))
    if in_database and "ledger" in loaded.instance(instance).settings:
        raise ConfigurationError(
            f"instance {instance!r} names a ledger of its own and PAYMUX['ledger'] is on: "
            "choose one"
        )
    connected = paymux.connect(instance, config=loaded)
    if in_database:
        # Connected without a ledger, the provider now writes each money-moving call into the
        # database before sending it.
        connected.connection = dataclasses.replace(connected.connection, ledger=DatabaseLedger())
    return connected


def _store() -> GuardStore:
    named = configured().get("guard_store")
    if named is None:
        return DatabaseStore()
    store: GuardStore = import_string(named)()
    return store
