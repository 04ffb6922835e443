"""The `paymux` commands for the ledger: `sweep` (one pass, for cron) and `ops` (the operator's
view of open operations: list, show, resolve, with an audit trail)."""

from __future__ import annotations

import argparse
import getpass
import time
from typing import Any

from paymux._cli_output import Subcommands, command, connect_from, print_json
from paymux.errors import ConfigurationError, LedgerError
from paymux.ledger import Entry, EntryState, Ledger
from paymux.provider import Provider
from paymux.sweeper import sweep

RESOLUTIONS = {
    "paid": EntryState.SETTLED,
    "canceled": EntryState.SETTLED,
    "failed": EntryState.SETTLED,
    "not-created": EntryState.REFUSED,
}
"""What an operator may say an operation ended as, and the state that closes it."""


def add_ledger_commands(subcommands: Subcommands, instance: argparse.ArgumentParser) -> None:
    sweeping = command(
        subcommands,
        "sweep",
        help="settle what the ledger holds open, once (for cron)",
        description="Settles the instance's due ledger entries once: unknown outcomes by\n"
        "reconciling (never by timing out), pending payments by asking their status.\n"
        "What cannot be settled goes to the operator queue ('paymux ops list').",
        epilog="Example (every minute, from cron):\n  paymux sweep --instance shop --limit 500",
        parents=[instance],
    )
    sweeping.add_argument("--limit", type=int, default=100, metavar="N", help="entries at most")
    sweeping.add_argument(
        "--concurrency",
        type=int,
        metavar="N",
        help="entries settled at once (default: the instance's sweep_concurrency setting)",
    )
    sweeping.set_defaults(handler=_sweep)
    ops = command(
        subcommands,
        "ops",
        help="the open operations in the ledger, and the operator queue",
        description="Lists, shows and resolves the ledger's entries. 'resolve' closes an entry\n"
        "the sweeper could not settle, recording who did it and why.",
        epilog="Examples:\n  paymux ops list --state operator\n  paymux ops show 6f1c...\n"
        "  paymux ops resolve 6f1c... --as paid --note 'confirmed in the cabinet'",
        parents=[instance],
    )
    actions = ops.add_subparsers(title="actions", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="entries, newest last", parents=[instance])
    listing.add_argument("--state", choices=[state.value for state in EntryState])
    listing.set_defaults(handler=_list)
    showing = actions.add_parser("show", help="one entry and its history", parents=[instance])
    showing.add_argument("entry", metavar="ID")
    showing.set_defaults(handler=_show)
    resolving = actions.add_parser("resolve", help="close an entry by hand", parents=[instance])
    resolving.add_argument("entry", metavar="ID")
    resolving.add_argument("--as", dest="outcome", required=True, choices=sorted(RESOLUTIONS))
    resolving.add_argument("--note", required=True, metavar="TEXT", help="why: for the audit")
    resolving.set_defaults(handler=_resolve)


def _sweep(args: argparse.Namespace) -> int:
    with connect_from(args) as provider:
        report = sweep(provider, limit=args.limit, concurrency=args.concurrency)
    if args.json:
        print_json({"looked": report.looked, "states": report.states})
    else:
        states = ", ".join(f"{count} {state}" for state, count in sorted(report.states.items()))
        print(f"swept {report.looked} entries of {provider.instance}: {states or 'nothing due'}")
    return 0


def _list(args: argparse.Namespace) -> int:
    with connect_from(args) as provider:
        ledger = _ledger(provider)
    states = [EntryState(args.state)] if args.state else list(EntryState)
    found = sorted(
        (e for e in ledger.entries(states) if e.instance == provider.instance),
        key=lambda entry: entry.history[0].at,
    )
    if args.json:
        print_json([_summary(entry) for entry in found])
        return 0
    for entry in found:
        print(
            f"{entry.id}  {entry.state.value:<8} {entry.operation:<8} "
            f"order {entry.order_id or '-'}  {entry.reason or ''}"
        )
    return 0


def _show(args: argparse.Namespace) -> int:
    with connect_from(args) as provider:
        entry = _ledger(provider).get(args.entry)
    if args.json:
        print_json({**_summary(entry), "history": [vars(event) for event in entry.history]})
        return 0
    for label, value in _summary(entry).items():
        print(f"  {label + ':':<17} {value}")
    print("  history:")
    for event in entry.history:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(event.at))
        print(f"    {when}  {event.state.value:<8} {event.by}: {event.note}")
    return 0


def _resolve(args: argparse.Namespace) -> int:
    with connect_from(args) as provider:
        ledger = _ledger(provider)
    state = RESOLUTIONS[args.outcome]
    who = getpass.getuser()

    def resolved(entry: Entry) -> Entry:
        if entry.state.is_closed:
            raise LedgerError(f"entry {entry.id} is {entry.state} already")
        note = f"resolved as {args.outcome}: {args.note}"
        return entry.moved(state, note, at=time.time(), by=who)

    entry = ledger.update(args.entry, resolved)
    print(f"{entry.id} is {entry.state} ({entry.reason})")
    return 0


def _ledger(provider: Provider) -> Ledger:
    if provider.connection.ledger is None:
        raise ConfigurationError(
            f"instance {provider.instance!r} keeps no ledger: set its `ledger` setting"
        )
    return provider.connection.ledger


def _summary(entry: Entry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "state": entry.state.value,
        "operation": entry.operation,
        "order_id": entry.order_id,
        "idempotency_key": entry.idempotency_key,
        "subject_id": entry.subject_id,
        "status": entry.status,
        "reason": entry.reason,
        "attempts": entry.attempts,
    }
