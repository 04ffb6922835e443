"""The `paymux` commands that run the contract's operations on a configured instance.

They know no gateway: `--option KEY=VALUE` is read with the types the provider declares
(`Provider.option_types`), and an operation the provider does not offer fails with
`Unsupported` before anything is sent.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from paymux._cli_ledger import add_ledger_commands
from paymux._cli_money import add_money_moves
from paymux._cli_output import (
    Subcommands,
    amount_json,
    at,
    command,
    connect_from,
    money,
    payment_json,
    payment_rows,
    print_json,
    print_rows,
    read_amount,
    show_payment,
)
from paymux.errors import SignatureError, ValidationError
from paymux.incoming import Incoming
from paymux.models import Customer, Notification, Payment, PaymentRequest
from paymux.provider import Provider


def add_operations(subcommands: Subcommands) -> None:
    """The contract's commands; capture, cancel, refund and balance live in `_cli_money`."""
    instance = _instance_options()
    _add_create(subcommands, instance)
    _add_status(subcommands, instance)
    add_money_moves(subcommands, instance)
    add_ledger_commands(subcommands, instance)
    _add_verify_notification(subcommands, instance)


def _instance_options() -> argparse.ArgumentParser:
    """Options shared by the commands that talk to a configured provider instance."""
    shared = argparse.ArgumentParser(add_help=False)
    group = shared.add_argument_group("configuration")
    group.add_argument(
        "--instance",
        metavar="NAME",
        help="the provider instance to use (default: the configuration's 'default', "
        "or its only instance)",
    )
    group.add_argument(
        "--config",
        metavar="FILE",
        type=Path,
        help="TOML configuration file (default: $PAYMUX_CONFIG); "
        "PAYMUX__<INSTANCE>__<SETTING> variables override its settings",
    )
    shared.add_argument(
        "--json", action="store_true", help="print JSON for scripts (amounts as strings)"
    )
    return shared


def _add_create(subcommands: Subcommands, instance: argparse.ArgumentParser) -> None:
    create = command(
        subcommands,
        "create",
        help="create a payment and print where the customer pays",
        description="Creates a payment with the configured provider instance and prints its "
        "id, status and the\naddress to send the customer to. The input is checked before "
        "anything is sent.\nIf the provider may or may not have created it (a timeout, a "
        "server error), the command\nsays so, says how to settle it, and exits with 1.",
        epilog="Example (the options a gateway takes are in its guide):\n"
        "  paymux create --amount 500.00 --order-id 1001 --ip 203.0.113.7 \\\n"
        "      --description 'Order 1001' --notification-url https://shop.example/notify \\\n"
        "      --option KEY=VALUE",
        parents=[instance],
    )
    payment = create.add_argument_group("the payment")
    payment.add_argument(
        "--amount", required=True, type=read_amount, metavar="AMOUNT", help="e.g. 500.00"
    )
    payment.add_argument(
        "--order-id", required=True, metavar="ID", help="your order's id, unique per account"
    )
    payment.add_argument("--currency", metavar="CODE", help="ISO 4217 code, e.g. RUB")
    payment.add_argument("--description", metavar="TEXT", help="what is being paid for")
    payment.add_argument("--lifetime", type=int, metavar="SECONDS", help="how long to pay")
    payment.add_argument(
        "--notification-url", metavar="URL", help="where the provider reports status changes"
    )
    payment.add_argument("--success-url", metavar="URL", help="where a paying customer returns")
    payment.add_argument("--fail-url", metavar="URL", help="where a failed customer returns")
    payment.add_argument(
        "--hold",
        action="store_true",
        help="two-phase: hold the money until 'paymux capture' (where the gateway can)",
    )
    payment.add_argument(
        "--idempotency-key",
        metavar="KEY",
        help="the key to repeat a create with after an unknown outcome (gateways with keys)",
    )
    customer = create.add_argument_group("the customer (what the gateway requires)")
    customer.add_argument("--ip", help="the customer's IP address")
    customer.add_argument("--user-agent", metavar="TEXT", help="the customer's browser User-Agent")
    customer.add_argument("--email", metavar="ADDRESS", help="the customer's e-mail")
    customer.add_argument("--phone", metavar="NUMBER", help="the customer's phone")
    create.add_argument(
        "--option",
        action=_KeyValue,
        dest="options",
        metavar="KEY=VALUE",
        help="a provider option, repeatable (see the provider's guide; read with the "
        "provider's types)",
    )
    create.set_defaults(handler=_create, options={})


def _add_status(subcommands: Subcommands, instance: argparse.ArgumentParser) -> None:
    status = command(
        subcommands,
        "status",
        help="show where a payment stands",
        description="Asks the configured provider instance for a payment's current state, "
        "by the provider's\npayment id or by your order id (where the gateway can look "
        "orders up). Safe to repeat.",
        epilog="Examples:\n  paymux status --order-id 1001\n  paymux status --id 100000001 --json",
        parents=[instance],
    )
    which = status.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", dest="payment_id", metavar="ID", help="the provider's payment id")
    which.add_argument("--order-id", metavar="ID", help="your order's id")
    status.set_defaults(handler=_status)


def _add_verify_notification(subcommands: Subcommands, instance: argparse.ArgumentParser) -> None:
    verify = command(
        subcommands,
        "verify-notification",
        help="authenticate a notification and show what it says",
        description="Verifies a notification the provider sent to your notification URL "
        "and prints what it\nreports. Give the full URL as your web server logged it, or "
        "just its query string;\n'-' reads it from standard input. For a gateway that POSTs "
        "a body, give the body\nwith --body FILE and the address it came from with --sender. "
        "Exits with 1, saying\nwhy, when the notification is forged, damaged or for another "
        "account.",
        epilog="Examples:\n"
        "  paymux verify-notification 'https://shop.example/notify?type=payment&...&sign=...'\n"
        "  grep -o 'type=payment[^ ]*' access.log | tail -n 1 | paymux verify-notification -\n"
        "  paymux verify-notification --body webhook.json --sender 185.71.76.5",
        parents=[instance],
    )
    verify.add_argument(
        "notification",
        nargs="?",
        default="",
        metavar="URL_OR_QUERY",
        help="the notification's URL or query string",
    )
    verify.add_argument("--body", type=Path, metavar="FILE", help="the POSTed body, as received")
    verify.add_argument("--sender", metavar="IP", help="the address the notification came from")
    verify.set_defaults(handler=_verify_notification)


# -- the handlers -----------------------------------------------------------------------------


def _create(args: argparse.Namespace) -> int:
    with connect_from(args) as provider:
        request = PaymentRequest(
            order_id=args.order_id,
            amount=args.amount,
            currency=args.currency,
            description=args.description,
            customer=Customer(
                ip=args.ip, user_agent=args.user_agent, email=args.email, phone=args.phone
            ),
            success_url=args.success_url,
            fail_url=args.fail_url,
            notification_url=args.notification_url,
            lifetime=args.lifetime,
            capture=not args.hold,
            idempotency_key=args.idempotency_key,
            options=_options(provider, args.options),
        )
        payment = provider.create(request)
        show_payment(args, provider, payment, "created")
        if not args.json:
            if payment.redirect_url:
                print("next: send the customer to the 'pay at' address")
            print(f"check it with: {_again(args, 'status', '--id', payment.id)}")
    return 0


def _status(args: argparse.Namespace) -> int:
    with connect_from(args) as provider:
        payment = provider.status(payment_id=args.payment_id, order_id=args.order_id)
        show_payment(args, provider, payment, "")
    return 0


def _verify_notification(args: argparse.Namespace) -> int:
    text: str = args.notification
    if text == "-":
        text = sys.stdin.read().strip()
    body = args.body.read_bytes() if args.body is not None else b""
    incoming = Incoming(method="POST" if body else "GET", query=text, body=body, sender=args.sender)
    with connect_from(args) as provider:
        try:
            notification = provider.parse_notification(incoming)
        except SignatureError as error:
            raise SignatureError(f"notification rejected: {error.message}") from error
        if args.json:
            print_json(_notification_json(notification))
            return 0
        subject = notification.subject
        how = ", ".join(method.value for method in notification.verified_by)
        print(f"verified {notification.kind} notification from {at(provider)} (by {how})")
        if isinstance(subject, Payment):
            print_rows([("payment", subject.id), ("order", subject.order_id)])
            print_rows(payment_rows(subject))
        else:
            print_rows(
                [
                    (notification.kind.value, subject.id),
                    ("status", str(subject.status)),
                    ("amount", money(subject.amount, subject.currency)),
                ]
            )
    return 0


# -- helpers ----------------------------------------------------------------------------------


def _options(provider: Provider, given: dict[str, str]) -> dict[str, Any]:
    """The `--option` texts as the provider's options, each read with the type it declares."""
    options: dict[str, Any] = {}
    problems: dict[str, list[str]] = {}
    for key, value in given.items():
        read = provider.option_types.get(key, str)
        try:
            options[key] = read(value)
        except (TypeError, ValueError, ArithmeticError):
            problems[key] = [f"cannot read {value!r} as {_type_name(read)}"]
    if problems:
        raise ValidationError(problems)
    return options


class _KeyValue(argparse.Action):
    """`--option KEY=VALUE`, repeatable, into one dict of texts (typed later, by the provider)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        text = str(values)
        key, equals, value = text.partition("=")
        key = key.strip()
        if not equals or not key:
            raise argparse.ArgumentError(self, f"expected KEY=VALUE, not {text!r}")
        options: dict[str, str] = dict(getattr(namespace, self.dest, None) or {})
        if key in options:
            raise argparse.ArgumentError(self, f"{key!r} is given more than once")
        options[key] = value
        setattr(namespace, self.dest, options)


def _type_name(read: Any) -> str:
    return str(getattr(read, "__name__", read))


def _again(args: argparse.Namespace, command: str, *rest: str) -> str:
    """A next `paymux` command line, with the options that chose this instance."""
    words = ["paymux", command]
    if args.config is not None:
        words += ["--config", str(args.config)]
    if args.instance is not None:
        words += ["--instance", args.instance]
    return shlex.join([*words, *rest])


def _notification_json(notification: Notification) -> dict[str, Any]:
    subject = notification.subject
    about: dict[str, Any] = (
        payment_json(subject)
        if isinstance(subject, Payment)
        else {
            "id": subject.id,
            "status": subject.status.value,
            "amount": amount_json(subject.amount),
            "currency": subject.currency,
        }
    )
    return {
        "verified": True,
        "verified_by": [method.value for method in notification.verified_by],
        "provider": notification.provider,
        "kind": notification.kind.value,
        notification.kind.value: about,
        "fields": dict(notification.fields),
    }
