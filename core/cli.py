"""The `paymux` command line.

Generic commands work with any installed provider through the `Provider` interface:
`providers`, `create`, `status`, `verify-notification`. Provider plugins add their own through
the `paymux_cli_commands` hook.

Output is for people by default and JSON with `--json` (amounts as strings). A paymux error is
printed as `paymux: <Type>: <message>` and exits with 1; bad usage exits with 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import Enum
from pathlib import Path
from typing import Any, TypeAlias

import structlog

from paymux import __version__
from paymux.config import load_config
from paymux.errors import (
    ConfigurationError,
    OutcomeUnknown,
    PaymuxError,
    PluginLoadError,
    SignatureError,
)
from paymux.models import Customer, Notification, Payment, PaymentRequest
from paymux.provider import Provider
from paymux.redaction import redact
from paymux.registry import Registry, connect, default_registry

Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

SANDBOX_HINT = "paymux sandbox --config-out sandbox.toml"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 1 failed, 2 bad usage)."""
    registry = default_registry()
    problems = registry.load_all()
    parser = _parser(registry, problems)
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    try:
        code: int = args.handler(args)
    except PaymuxError as error:
        print(f"paymux: {type(error).__name__}: {error}", file=sys.stderr)
        if isinstance(error, OutcomeUnknown):
            print(
                "paymux: the payment may exist; find out with: "
                f"paymux status --order-id {shlex.quote(error.order_id)}",
                file=sys.stderr,
            )
        return 1
    except KeyboardInterrupt:
        return 130
    return code


def command(
    subcommands: Subcommands,
    name: str,
    *,
    help: str,
    description: str,
    epilog: str,
    parents: Sequence[argparse.ArgumentParser] = (),
) -> argparse.ArgumentParser:
    """Add a subcommand whose description and examples keep their line breaks in `--help`."""
    return subcommands.add_parser(
        name,
        help=help,
        description=description,
        epilog=epilog,
        parents=list(parents),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def print_json(data: Any) -> None:
    """`data` as indented JSON on stdout; Decimals become strings, never floats."""
    print(json.dumps(data, indent=2, default=_json_default))


def decimal_text(amount: Decimal) -> str:
    """Exactly `amount`, with at least two decimal places: `10.000000000` -> `10.00`."""
    if not amount.is_finite():
        return str(amount)
    exponent = amount.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent >= -2:
        return str(amount.quantize(Decimal("0.01")))
    return format(amount.normalize(), "f")


def payment_json(payment: Payment) -> dict[str, Any]:
    """A payment for `--json` output: amounts as strings, the provider's own payload in `raw`."""
    return {
        "provider": payment.provider,
        "id": payment.id,
        "order_id": payment.order_id,
        "status": payment.status.value,
        "final": payment.status.is_final,
        "amount": _amount_json(payment.amount),
        "paid_amount": _amount_json(payment.paid_amount),
        "fee": _amount_json(payment.fee),
        "currency": payment.currency,
        "is_partial": payment.is_partial,
        "redirect_url": payment.redirect_url,
        "hold_amount": _amount_json(payment.hold_amount),
        "hold_until": payment.hold_until,
        "raw": redact(payment.raw),
    }


# -- the parser -------------------------------------------------------------------------------

MAIN_EPILOG = f"""\
Try it, all on this machine:
  paymux demo            one whole payment on a local AliKassa sandbox
  {SANDBOX_HINT}
                         run the sandbox; write a configuration file for it
  PAYMUX_CONFIG=sandbox.toml paymux create --amount 500.00 --order-id 1001 \\
      --service payment_card_rub_hpp --ip 203.0.113.7 --user-agent Mozilla/5.0
  PAYMUX_CONFIG=sandbox.toml paymux status --order-id 1001

'paymux COMMAND --help' explains a command.
Exit status: 0 done, 1 failed (the message says why), 2 bad usage."""


def _parser(
    registry: Registry, problems: dict[str, PluginLoadError | None]
) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="paymux",
        description="One interface to many payment gateways: create a payment, ask its "
        "status, verify\nits notifications. Which gateway answers is configuration.",
        epilog=MAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"paymux {__version__}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log paymux's events to stderr (-v: info, -vv: debug, always redacted)",
    )
    subcommands = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_providers(subcommands, registry, problems)
    instance = _instance_options()
    _add_create(subcommands, instance)
    _add_status(subcommands, instance)
    _add_verify_notification(subcommands, instance)
    registry.plugin_manager.hook.paymux_cli_commands(subcommands=subcommands)
    return parser


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


def _add_providers(
    subcommands: Subcommands, registry: Registry, problems: dict[str, PluginLoadError | None]
) -> None:
    providers = command(
        subcommands,
        "providers",
        help="list installed providers and any that fail to load",
        description="Lists the payment providers installed in this Python environment (the "
        "'paymux'\nentry points), with their distribution, version and module. A provider "
        "that fails\nto load is shown with its problem, and the command exits with 1.",
        epilog="Example:\n  paymux providers\n  paymux providers --json",
    )
    providers.add_argument("--json", action="store_true", help="print JSON for scripts")
    providers.set_defaults(handler=lambda args: _providers(registry, problems, args.json))


def _add_create(subcommands: Subcommands, instance: argparse.ArgumentParser) -> None:
    create = command(
        subcommands,
        "create",
        help="create a payment and print where the customer pays",
        description="Creates a payment with the configured provider instance and prints its "
        "id, status and the\naddress to send the customer to. The input is checked before "
        "anything is sent.\nIf the provider may or may not have created it (a timeout, a "
        "server error), the command\nsays so and exits with 1: ask 'paymux status "
        "--order-id' before creating it again.",
        epilog="Example (with a running 'paymux sandbox --config-out sandbox.toml'):\n"
        "  PAYMUX_CONFIG=sandbox.toml paymux create --amount 500.00 --order-id 1001 \\\n"
        "      --service payment_card_rub_hpp --ip 203.0.113.7 --user-agent Mozilla/5.0 \\\n"
        "      --description 'Order 1001' --notification-url https://shop.example/notify",
        parents=[instance],
    )
    payment = create.add_argument_group("the payment")
    payment.add_argument(
        "--amount", required=True, type=_amount, metavar="AMOUNT", help="e.g. 500.00"
    )
    payment.add_argument(
        "--order-id", required=True, metavar="ID", help="your order's id, unique per account"
    )
    payment.add_argument(
        "--currency",
        metavar="CODE",
        help="ISO 4217 code, e.g. RUB (some providers take it from the payment method)",
    )
    payment.add_argument("--description", metavar="TEXT", help="what is being paid for")
    payment.add_argument("--lifetime", type=int, metavar="SECONDS", help="how long to pay")
    payment.add_argument(
        "--notification-url", metavar="URL", help="where the provider reports status changes"
    )
    payment.add_argument("--success-url", metavar="URL", help="where a paying customer returns")
    payment.add_argument("--fail-url", metavar="URL", help="where a failed customer returns")
    customer = create.add_argument_group("the customer")
    customer.add_argument("--ip", required=True, help="the customer's IP address")
    customer.add_argument(
        "--user-agent",
        metavar="TEXT",
        help="the customer's browser User-Agent (required by most payment-page services)",
    )
    customer.add_argument("--email", metavar="ADDRESS", help="the customer's e-mail")
    customer.add_argument("--phone", metavar="NUMBER", help="the customer's phone")
    specific = create.add_argument_group("provider-specific")
    specific.add_argument(
        "--service",
        action=_ProviderOption,
        key="service",
        dest="options",
        metavar="CODE",
        help="payment method, e.g. payment_card_rub_hpp; the same as --option service=CODE",
    )
    specific.add_argument(
        "--option",
        action=_ProviderOption,
        dest="options",
        metavar="KEY=VALUE",
        help="a provider option, repeatable (see the provider's guide); "
        "values of keys ending in _id are whole numbers",
    )
    create.set_defaults(handler=_create, options=None)


def _add_status(subcommands: Subcommands, instance: argparse.ArgumentParser) -> None:
    status = command(
        subcommands,
        "status",
        help="show where a payment stands",
        description="Asks the configured provider instance for a payment's current state, "
        "by the provider's\npayment id or by your order id. Safe to repeat.",
        epilog="Examples:\n"
        "  PAYMUX_CONFIG=sandbox.toml paymux status --order-id 1001\n"
        "  PAYMUX_CONFIG=sandbox.toml paymux status --id 100000001 --json",
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
        help="check a notification's signature and show what it says",
        description="Verifies a notification the provider sent to your notification URL "
        "and prints what it\nreports. Give the full URL as your web server logged it, or "
        "just its query string;\n'-' reads it from standard input. Exits with 1, saying why, "
        "when the notification is\nforged, damaged or for another account.",
        epilog="Examples:\n"
        "  PAYMUX_CONFIG=sandbox.toml paymux verify-notification \\\n"
        "      'https://shop.example/notify?type=payment&id=100000001&...&sign=...'\n"
        "  grep -o 'type=payment[^ ]*' access.log | tail -n 1 | "
        "paymux verify-notification -",
        parents=[instance],
    )
    verify.add_argument(
        "notification", metavar="URL_OR_QUERY", help="the notification's URL or query string"
    )
    verify.set_defaults(handler=_verify_notification)


# -- the handlers -----------------------------------------------------------------------------


def _providers(
    registry: Registry, problems: dict[str, PluginLoadError | None], as_json: bool
) -> int:
    rows = [
        {
            "name": info.name,
            "distribution": info.distribution,
            "version": info.version,
            "module": info.module,
            "problem": str(problems[info.name]) if problems.get(info.name) else None,
        }
        for info in registry.installed()
    ]
    if as_json:
        print_json(rows)
    else:
        for row in rows:
            state = f"FAILED: {row['problem']}" if row["problem"] else "ok"
            print(
                f"{row['name']:<12} {row['distribution']} {row['version']:<10} "
                f"{row['module']:<32} {state}"
            )
    return 1 if any(row["problem"] for row in rows) else 0


def _create(args: argparse.Namespace) -> int:
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
        options=args.options or {},
    )
    with _connect(args) as provider:
        payment = provider.create(request)
        if args.json:
            print_json(payment_json(payment))
            return 0
        print(f"created {_title(payment)} at {_at(provider)}")
        _print_rows(_payment_rows(payment))
        if payment.redirect_url:
            print("next: send the customer to the 'pay at' address")
        print(f"check it with: {_again(args, 'status', '--id', payment.id)}")
    return 0


def _status(args: argparse.Namespace) -> int:
    with _connect(args) as provider:
        payment = provider.status(payment_id=args.payment_id, order_id=args.order_id)
        if args.json:
            print_json(payment_json(payment))
            return 0
        print(f"{_title(payment)} at {_at(provider)}")
        _print_rows(_payment_rows(payment))
    return 0


def _verify_notification(args: argparse.Namespace) -> int:
    text: str = args.notification
    if text == "-":
        text = sys.stdin.read().strip()
    with _connect(args) as provider:
        try:
            notification = provider.parse_notification(text)
        except SignatureError as error:
            raise SignatureError(f"notification rejected: {error.message}") from error
        if args.json:
            print_json(_notification_json(notification))
            return 0
        payment = notification.payment
        print(f"verified {notification.kind} notification from {_at(provider)}")
        _print_rows(
            [
                ("payment", payment.id),
                ("order", payment.order_id),
                *_payment_rows(payment),
            ]
        )
    return 0


# -- helpers ----------------------------------------------------------------------------------


def _connect(args: argparse.Namespace) -> Provider:
    """The provider instance named by --instance (else the default) from the configuration."""
    config = load_config(args.config)
    if not config.instances:
        raise ConfigurationError(
            "no provider instance is configured: set PAYMUX_CONFIG (or give --config) to a "
            f"TOML configuration file ('{SANDBOX_HINT}' writes one for a local sandbox), "
            "or set PAYMUX__<INSTANCE>__<SETTING> variables"
        )
    return connect(args.instance, config=config)


def _again(args: argparse.Namespace, command: str, *rest: str) -> str:
    """A next `paymux` command line, with the options that chose this instance."""
    words = ["paymux", command]
    if args.config is not None:
        words += ["--config", str(args.config)]
    if args.instance is not None:
        words += ["--instance", args.instance]
    return shlex.join([*words, *rest])


def _title(payment: Payment) -> str:
    order = f" for order {payment.order_id}" if payment.order_id is not None else ""
    return f"payment {payment.id}{order}"


def _at(provider: Provider) -> str:
    return f"{provider.name} (instance {provider.instance})"


def _payment_rows(payment: Payment) -> list[tuple[str, str | None]]:
    currency = payment.currency
    paid = _money(payment.paid_amount, currency)
    return [
        ("status", f"{payment.status} ({'final' if payment.status.is_final else 'not final'})"),
        ("amount", _money(payment.amount, currency)),
        ("paid", f"{paid} (partial)" if paid and payment.is_partial else paid),
        ("fee", _money(payment.fee, currency)),
        ("on hold", _money(payment.hold_amount, currency)),
        ("hold until", payment.hold_until),
        ("pay at", payment.redirect_url),
    ]


def _print_rows(rows: Sequence[tuple[str, str | None]]) -> None:
    for label, value in rows:
        if value is not None:
            print(f"  {label + ':':<11} {value}")


def _money(amount: Decimal | None, currency: str | None) -> str | None:
    if amount is None:
        return None
    return f"{decimal_text(amount)} {currency}" if currency else decimal_text(amount)


def _amount_json(amount: Decimal | None) -> str | None:
    return None if amount is None else decimal_text(amount)


def _notification_json(notification: Notification) -> dict[str, Any]:
    return {
        "verified": True,
        "provider": notification.provider,
        "kind": notification.kind.value,
        "payment": payment_json(notification.payment),
        "fields": dict(notification.fields),
    }


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


AMOUNT_DIGITS = 30
"""Digits an amount may have on either side of the point: beyond any real sum, and short
enough that writing it out can never take the memory `1e-999999999` would."""


def _amount(text: str) -> Decimal:
    try:
        amount = Decimal(text)
    except InvalidOperation:
        amount = Decimal("NaN")
    exponent = amount.as_tuple().exponent
    if (
        not isinstance(exponent, int)
        or exponent < -AMOUNT_DIGITS
        or amount.adjusted() >= AMOUNT_DIGITS
    ):
        raise argparse.ArgumentTypeError(f"{text!r} is not an amount; write it like 500.00")
    return amount


class _ProviderOption(argparse.Action):
    """`--option KEY=VALUE` (repeatable) and shortcuts such as `--service CODE`, in one dict.

    Values of keys ending in `_id` become integers (gateways' numeric ids).
    """

    def __init__(
        self, option_strings: Sequence[str], dest: str, key: str | None = None, **kwargs: Any
    ) -> None:
        self.key = key
        super().__init__(option_strings, dest, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        text = str(values)
        if self.key is None:
            key, equals, value = text.partition("=")
            if not equals or not key.strip():
                raise argparse.ArgumentError(self, f"expected KEY=VALUE, not {text!r}")
            key = key.strip()
        else:
            key, value = self.key, text
        options: dict[str, Any] = dict(getattr(namespace, self.dest, None) or {})
        if key in options:
            raise argparse.ArgumentError(self, f"{key!r} is given more than once")
        if key.endswith("_id"):
            options[key] = self._whole_number(key, value)
        else:
            options[key] = value
        setattr(namespace, self.dest, options)

    def _whole_number(self, key: str, value: str) -> int:
        try:
            number = int(value) if value.strip().isdecimal() else None
        except ValueError:  # more digits than Python converts
            number = None
        if number is None:
            raise argparse.ArgumentError(self, f"{key} takes a whole number, not {value!r}")
        return number


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="%H:%M:%S"),
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )


if __name__ == "__main__":
    sys.exit(main())
