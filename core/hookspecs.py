"""The hooks paymux calls. Every hook name starts with `paymux_`.

Plugins implement them with the `hookimpl` marker. A provider plugin needs only
`paymux_register_providers`; host applications implement the observer hooks to watch what
paymux does (metrics, audit trails, storing status changes) and register themselves with
`paymux.register_plugin(obj)`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import argparse

    from paymux._transport import Exchange
    from paymux.guards import Verdict
    from paymux.models import Notification, Payment, Payout, Refund
    from paymux.provider import Provider
    from paymux.sweeper import SweepReport

hookspec = pluggy.HookspecMarker("paymux")
hookimpl = pluggy.HookimplMarker("paymux")


@hookspec
def paymux_register_providers(register: Callable[[type[Provider]], None]) -> None:
    """Register provider classes: call `register(cls)` once for each.

    Called when the plugin is loaded, which happens only when one of its providers is asked for.
    `cls.name` is the name hosts use in their configuration; it should equal the plugin's
    entry-point name in the `paymux` group.
    """


@hookspec
def paymux_exchange(exchange: Exchange) -> None:
    """Observe one finished HTTP exchange with a provider (success or failure).

    `exchange` carries the operation, URL, HTTP status, duration, request id and outcome,
    never a body or a header value. Called on the thread that made the call; keep it quick.
    """


@hookspec
def paymux_payment_update(payment: Payment, source: str) -> None:
    """Observe a payment snapshot as a provider reported it.

    `source` is "create", "status", "capture", "cancel", "reconcile" (what a call left unknown
    turned out to be) or "notification" (notifications only once verified; refund and payout
    notifications are not payments and do not come here).
    Hosts use it to record status changes in one place.
    """


@hookspec
def paymux_refund_update(refund: Refund, source: str) -> None:
    """Observe a refund as a provider reported it ("refund", "status", "reconcile" or
    "notification")."""


@hookspec
def paymux_payout_update(payout: Payout, source: str) -> None:
    """Observe a payout as a provider reported it ("payout", "status", "reconcile" or
    "notification")."""


@hookspec
def paymux_notification_verdict(notification: Notification, verdict: Verdict) -> None:
    """Observe a `NotificationGuard`'s verdict on a verified notification (NEW, DUPLICATE,
    BUSY, ...), once per `admit`."""


@hookspec
def paymux_sweep(provider: str, instance: str, report: SweepReport) -> None:
    """Observe one finished `paymux.sweep` of an instance's ledger; `report.due` is how many
    entries were due when it began (at most its limit)."""


@hookspec
def paymux_cli_commands(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add subcommands to the `paymux` command line.

    Add each with `subcommands.add_parser(name, help=...)` (or `paymux.cli.command`, which keeps
    the line breaks of a description and of an `Example:` epilog) and give it a handler with
    `parser.set_defaults(handler=function)`, where `function(args) -> int` returns the exit code.
    A `PaymuxError` the handler raises is printed as `paymux: <Type>: <message>`, exit code 1.
    """
