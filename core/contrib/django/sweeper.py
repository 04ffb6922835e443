"""The ledger's sweeper for the app: a change it finds is recorded as its notification would be.

Run `sweep(instance)` from a management command, Celery beat or cron; it needs the ledger on
(`PAYMUX["ledger"] = True`).
"""

from __future__ import annotations

from functools import partial

import paymux
from paymux.contrib import handle
from paymux.contrib.django.instances import guard, provider
from paymux.contrib.django.shop import DatabaseShop


def sweep(instance: str, *, limit: int = 100, now: float | None = None) -> paymux.SweepReport:
    """`paymux.sweep` of `instance`'s ledger: each change found goes through the guard to the
    shop (the `Notification` row, the `Payment` row, `payment_decided`), once, whichever of it
    and the gateway's notification comes first. One entry at a time: the shop's writes use this
    thread's database connection."""
    shop = DatabaseShop(instance)
    on_change = partial(handle, guard(), shop)
    return paymux.sweep(provider(instance), handle=on_change, limit=limit, now=now, concurrency=1)
