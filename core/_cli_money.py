"""The `paymux` commands that move money after a payment: capture, cancel, refund; and balance.

Each is exactly once at the gateway: after an unknown outcome, the same command with the same
`--idempotency-key` settles it instead of acting twice.
"""

from __future__ import annotations

import argparse
from typing import Any

from paymux._cli_output import (
    Subcommands,
    amount_json,
    at,
    command,
    connect_from,
    money,
    print_json,
    print_rows,
    read_amount,
    show_payment,
)
from paymux.models import Refund, RefundRequest


def add_money_moves(subcommands: Subcommands, instance: argparse.ArgumentParser) -> None:
    _add_capture_and_cancel(subcommands, instance)
    _add_refund(subcommands, instance)
    _add_balance(subcommands, instance)


def _add_capture_and_cancel(subcommands: Subcommands, instance: argparse.ArgumentParser) -> None:
    capture = command(
        subcommands,
        "capture",
        help="take the money held for a two-phase payment",
        description="Captures an authorized payment (created with --hold): all of the held "
        "money, or\n--amount of it. Exactly once: repeat with the same --idempotency-key.",
        epilog="Example:\n  paymux capture --id 2d9f... --amount 400.00",
        parents=[instance],
    )
    capture.add_argument("--id", dest="payment_id", required=True, metavar="ID")
    capture.add_argument("--amount", type=read_amount, metavar="AMOUNT", help="less than held")
    capture.add_argument("--currency", metavar="CODE", help="the payment's, with --amount")
    capture.add_argument("--idempotency-key", metavar="KEY")
    capture.set_defaults(handler=_capture)
    cancel = command(
        subcommands,
        "cancel",
        help="release the money held for a two-phase payment",
        description="Cancels an authorized payment, so the payer's money is released.",
        epilog="Example:\n  paymux cancel --id 2d9f...",
        parents=[instance],
    )
    cancel.add_argument("--id", dest="payment_id", required=True, metavar="ID")
    cancel.add_argument("--idempotency-key", metavar="KEY")
    cancel.set_defaults(handler=_cancel)


def _add_refund(subcommands: Subcommands, instance: argparse.ArgumentParser) -> None:
    refund = command(
        subcommands,
        "refund",
        help="give money back from a paid payment",
        description="Refunds --amount of a paid payment. Exactly once: after an unknown "
        "outcome, repeat\nwith the same --idempotency-key.",
        epilog="Example:\n  paymux refund --id 2d9f... --amount 100.00",
        parents=[instance],
    )
    refund.add_argument("--id", dest="payment_id", required=True, metavar="ID")
    refund.add_argument("--amount", type=read_amount, required=True, metavar="AMOUNT")
    refund.add_argument("--currency", metavar="CODE")
    refund.add_argument("--description", metavar="TEXT")
    refund.add_argument("--idempotency-key", metavar="KEY")
    refund.set_defaults(handler=_refund)


def _add_balance(subcommands: Subcommands, instance: argparse.ArgumentParser) -> None:
    balance = command(
        subcommands,
        "balance",
        help="show what the account holds",
        description="Asks the configured provider instance for the account's balance.",
        epilog="Example:\n  paymux balance --json",
        parents=[instance],
    )
    balance.set_defaults(handler=_balance)


def _capture(args: argparse.Namespace) -> int:
    with connect_from(args) as provider:
        payment = provider.capture(
            args.payment_id,
            args.amount,
            currency=args.currency,
            idempotency_key=args.idempotency_key,
        )
        show_payment(args, provider, payment, "captured")
    return 0


def _cancel(args: argparse.Namespace) -> int:
    with connect_from(args) as provider:
        payment = provider.cancel(args.payment_id, idempotency_key=args.idempotency_key)
        show_payment(args, provider, payment, "canceled")
    return 0


def _refund(args: argparse.Namespace) -> int:
    with connect_from(args) as provider:
        refund = provider.refund(
            RefundRequest(
                payment_id=args.payment_id,
                amount=args.amount,
                currency=args.currency,
                description=args.description,
                idempotency_key=args.idempotency_key,
            )
        )
        if args.json:
            print_json(_refund_json(refund))
            return 0
        print(f"refund {refund.id} of payment {refund.payment_id} at {at(provider)}")
        print_rows(
            [("status", str(refund.status)), ("amount", money(refund.amount, refund.currency))]
        )
    return 0


def _balance(args: argparse.Namespace) -> int:
    with connect_from(args) as provider:
        balance = provider.balance()
        if args.json:
            print_json(
                {
                    "provider": balance.provider,
                    "available": amount_json(balance.available),
                    "held": amount_json(balance.held),
                    "reserve": amount_json(balance.reserve),
                    "currency": balance.currency,
                }
            )
            return 0
        print(f"balance at {at(provider)}")
        print_rows(
            [
                ("available", money(balance.available, balance.currency)),
                ("held", money(balance.held, balance.currency)),
                ("reserve", money(balance.reserve, balance.currency)),
            ]
        )
    return 0


def _refund_json(refund: Refund) -> dict[str, Any]:
    return {
        "provider": refund.provider,
        "id": refund.id,
        "payment_id": refund.payment_id,
        "status": refund.status.value,
        "amount": amount_json(refund.amount),
        "currency": refund.currency,
    }
