"""A shop process working through its orders with the ledger on, as the crash test runs it
(and kills it): `python crash_shop.py SETTINGS_JSON ORDERS`.

A restart leaves alone every order the ledger already holds: created, or the sweeper's to
settle. Prints "done" once every order has been through `create`.
"""

import contextlib
import json
import sys
from decimal import Decimal

import paymux


def order_id(number: int) -> str:
    return f"crash-{number:04d}"


def main() -> None:
    settings, orders = json.loads(sys.argv[1]), int(sys.argv[2])
    with paymux.connect(settings) as provider:
        assert provider.connection.ledger is not None
        known = {entry.order_id for entry in provider.connection.ledger.entries()}
        for number in range(orders):
            if order_id(number) in known:
                continue
            with contextlib.suppress(paymux.OutcomeUnknown):  # left open in the ledger
                provider.create(
                    paymux.PaymentRequest(
                        order_id=order_id(number),
                        amount=Decimal("150.00"),
                        customer=paymux.Customer(ip="203.0.113.7", user_agent="Mozilla/5.0"),
                        options={"service": "payment_card_rub_hpp"},
                    )
                )
    print("done", flush=True)


if __name__ == "__main__":
    main()
