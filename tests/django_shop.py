"""The shop app of the Django project tests/test_django_app.py makes: what a shop adds to
`paymux.contrib.django`, run inside the project's own processes (never pytest's, whose Django
settings are the framework recipe's).

- `ShopConfig` connects `record` to `payment_decided`: each decision is appended as one JSON
  line to the file `$SHOP_DECISIONS`, which the test reads. For an order whose id starts with
  `crash-` it raises the first time (the shop's database "is down"), so the notification is
  answered 500 and the gateway repeats it.
- `checkouts(...)`, run by `manage.py shell -c`, creates payments with the app's `checkout`
  and prints what the test needs to pay them.
"""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.apps import AppConfig
from django.urls import reverse

from paymux import Customer, Decision, Notification
from paymux.contrib.django.signals import payment_decided

CUSTOMER = Customer(ip="203.0.113.7", user_agent="Mozilla/5.0 (X11; Linux x86_64)")
CRASH = "crash-"


class ShopConfig(AppConfig):
    name = "django_shop"
    label = "shop"

    def ready(self) -> None:
        payment_decided.connect(record, dispatch_uid="django_shop.record")


def record(
    sender: object, *, decision: Decision, notification: Notification, payment: Any, **_: Any
) -> None:
    """Keep the decision, as a shop ships an order: raise once for a `crash-` order."""
    order_id = notification.order_id or ""
    log = Path(os.environ["SHOP_DECISIONS"])
    crashed = log.with_name(f"{log.name}.{order_id}.crashed")
    if order_id.startswith(CRASH) and not crashed.exists():
        crashed.touch()
        raise RuntimeError("the shop's database is down")
    line = {
        "order_id": order_id,
        "kind": notification.kind.value,
        "action": decision.action.value,
        "verdict": None if decision.verdict is None else decision.verdict.value,
        "payment": None if payment is None else payment.pk,
    }
    with log.open("a", encoding="utf-8") as file:
        file.write(json.dumps(line) + "\n")


def checkouts(orders: str) -> None:
    """Check out each of `orders` (JSON: a list of [instance, order_id, amount]) and print,
    as one JSON line, each payment's id, redirect URL and return page."""
    # Imported once the apps are ready: these modules import the app's models.
    from paymux.contrib.django.checkout import checkout
    from paymux.contrib.django.instances import configured

    made = []
    for instance, order_id, amount in json.loads(orders):
        payment = checkout(instance, order_id, Decimal(amount), customer=CUSTOMER)
        back = reverse("paymux:return", kwargs={"token": payment.return_token})
        made.append(
            {
                "order_id": order_id,
                "payment_id": payment.payment_id,
                "status": payment.status,
                "redirect_url": payment.redirect_url,
                "return_url": configured()["site_url"] + back,
            }
        )
    print(json.dumps(made))
