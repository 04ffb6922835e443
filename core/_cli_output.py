"""What every `paymux` command prints the same way: subcommands, JSON, amounts, payments.

Provider plugins use these through `paymux.cli` for the commands they add.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any, TypeAlias

from paymux._redaction import redact
from paymux.config import load_config
from paymux.models import Payment
from paymux.provider import Provider
from paymux.registry import connect

Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


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
        "amount": amount_json(payment.amount),
        "paid_amount": amount_json(payment.paid_amount),
        "refunded_amount": amount_json(payment.refunded_amount),
        "fee": amount_json(payment.fee),
        "currency": payment.currency,
        "is_partial": payment.is_partial,
        "redirect_url": payment.redirect_url,
        "hold_amount": amount_json(payment.hold_amount),
        "hold_until": payment.hold_until,
        "raw": redact(payment.raw),
    }


def amount_json(amount: Decimal | None) -> str | None:
    return None if amount is None else decimal_text(amount)


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


def connect_from(args: argparse.Namespace) -> Provider:
    """The provider instance named by --instance (else the default) from the configuration."""
    return connect(args.instance, config=load_config(args.config))


def show_payment(args: argparse.Namespace, provider: Provider, payment: Payment, did: str) -> None:
    if args.json:
        print_json(payment_json(payment))
        return
    order = f" for order {payment.order_id}" if payment.order_id is not None else ""
    print(f"{did + ' ' if did else ''}payment {payment.id}{order} at {at(provider)}")
    print_rows(payment_rows(payment))


def at(provider: Provider) -> str:
    return f"{provider.name} (instance {provider.instance})"


def payment_rows(payment: Payment) -> list[tuple[str, str | None]]:
    currency = payment.currency
    paid = money(payment.paid_amount, currency)
    return [
        ("status", f"{payment.status} ({'final' if payment.status.is_final else 'not final'})"),
        ("amount", money(payment.amount, currency)),
        ("paid", f"{paid} (partial)" if paid and payment.is_partial else paid),
        ("refunded", money(payment.refunded_amount, currency)),
        ("fee", money(payment.fee, currency)),
        ("on hold", money(payment.hold_amount, currency)),
        ("hold until", payment.hold_until),
        ("pay at", payment.redirect_url),
    ]


def print_rows(rows: Sequence[tuple[str, str | None]]) -> None:
    for label, value in rows:
        if value is not None:
            print(f"  {label + ':':<11} {value}")


def money(amount: Decimal | None, currency: str | None) -> str | None:
    if amount is None:
        return None
    return f"{decimal_text(amount)} {currency}" if currency else decimal_text(amount)


AMOUNT_DIGITS = 30
"""Digits an amount may have on either side of the point: beyond any real sum, and short
enough that writing it out can never take the memory `1e-999999999` would."""


def read_amount(text: str) -> Decimal:
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
