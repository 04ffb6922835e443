"""paymux's pytest plugin, used the way a shop uses it.

The first part is a shop's own test module: its checkout code and its notification handler
(which would live in the shop's package), tested with nothing but the `alikassa_*` fixtures
that come with paymux — no conftest, no helpers of paymux's own test suite.
The second part checks how the plugin ships: a fresh project gets the fixtures through the
`pytest11` entry point, and loading the plugin costs a project that never uses it little.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

import paymux
from paymux.providers.alikassa import AliKassaProvider
from paymux.providers.alikassa.pytest_plugin import Settle
from paymux.providers.alikassa.sandbox import Merchant, NotificationReceiver, Sandbox

pytest_plugins = ["pytester"]

# -- the shop's code ----------------------------------------------------------------------------


@dataclass
class Order:
    id: str
    total: Decimal
    state: str = "new"
    paid: Decimal = Decimal("0")
    history: list[str] = field(default_factory=list)


class Shop:
    """A shop's payment glue: checkout sends the customer to pay, the endpoint records results."""

    def __init__(self, provider: paymux.Provider, notification_url: str) -> None:
        self.provider = provider
        self.notification_url = notification_url
        self.orders: dict[str, Order] = {}

    def checkout(self, order: Order, customer: paymux.Customer) -> str:
        """Start paying for `order`; returns where to redirect the customer."""
        self.orders[order.id] = order
        payment = self.provider.create(
            paymux.PaymentRequest(
                order_id=order.id,
                amount=order.total,
                description=f"Order {order.id}",
                customer=customer,
                notification_url=self.notification_url,
                options={"service": "payment_card_rub_hpp"},
            )
        )
        order.state = "awaiting payment"
        assert payment.redirect_url is not None
        return payment.redirect_url

    def notification_endpoint(self, url: str) -> int:
        """The shop's GET handler for notifications; returns the HTTP status to answer."""
        try:
            notification = self.provider.parse_notification(url)
        except paymux.SignatureError:
            return 400
        payment = notification.payment
        order = self.orders[str(payment.order_id)]
        order.history.append(payment.status.value)
        if payment.status is paymux.PaymentStatus.PAID:
            order.paid = payment.paid_amount or Decimal("0")
            order.state = "paid" if order.paid >= order.total else "partly paid"
        elif payment.status.is_final:
            order.state = "not paid"
        return 200


# -- the shop's tests -------------------------------------------------------------------------

BUYER = paymux.Customer(ip="198.51.100.23", user_agent="Mozilla/5.0 (X11; Linux x86_64)")


@pytest.fixture
def shop(alikassa_provider: AliKassaProvider, alikassa_notifications: NotificationReceiver) -> Shop:
    return Shop(alikassa_provider, alikassa_notifications.url)


def test_checkout_sends_the_customer_to_the_payment_page(
    shop: Shop, alikassa_sandbox: Sandbox
) -> None:
    order = Order("A-1001", Decimal("1499.00"))

    redirect = shop.checkout(order, BUYER)

    assert redirect.startswith(f"{alikassa_sandbox.url}/pay/")
    assert order.state == "awaiting payment"
    created = alikassa_sandbox.payment("A-1001")
    assert created.amount == Decimal("1499.00")
    assert created.request["desc"] == "Order A-1001"


def test_a_paid_notification_marks_the_order_paid(shop: Shop, alikassa_settle: Settle) -> None:
    order = Order("A-1002", Decimal("1499.00"))
    shop.checkout(order, BUYER)

    notification = alikassa_settle("A-1002", "paid")

    assert shop.notification_endpoint(notification) == 200
    assert order.state == "paid"
    assert order.paid == Decimal("1499.00")


def test_a_partial_payment_leaves_the_order_partly_paid(
    shop: Shop, alikassa_settle: Settle
) -> None:
    order = Order("A-1003", Decimal("1499.00"))
    shop.checkout(order, BUYER)

    notification = alikassa_settle("A-1003", paymux.PaymentStatus.PAID, paid_amount="1000.00")

    assert shop.notification_endpoint(notification) == 200
    assert (order.state, order.paid) == ("partly paid", Decimal("1000.00"))


@pytest.mark.parametrize("outcome", [paymux.PaymentStatus.CANCELED, paymux.PaymentStatus.FAILED])
def test_a_payment_that_ends_unpaid_leaves_the_order_unpaid(
    shop: Shop, alikassa_settle: Settle, outcome: paymux.PaymentStatus
) -> None:
    order = Order("A-1004", Decimal("1499.00"))
    shop.checkout(order, BUYER)

    assert shop.notification_endpoint(alikassa_settle("A-1004", outcome)) == 200
    assert order.state == "not paid"
    assert order.history == [outcome.value]


def test_a_forged_notification_is_refused_and_changes_nothing(
    shop: Shop, alikassa_settle: Settle
) -> None:
    order = Order("A-1005", Decimal("1499.00"))
    shop.checkout(order, BUYER)
    genuine = dict(
        parse_qsl(urlsplit(alikassa_settle("A-1005", "fail")).query, keep_blank_values=True)
    )

    forged = urlencode({**genuine, "payment_status": "paid", "payment_amount": "1499.000000000"})

    assert shop.notification_endpoint(f"/notify?{forged}") == 400
    assert order.state == "awaiting payment"


def test_the_shop_can_ask_for_the_status_when_a_notification_is_lost(
    shop: Shop, alikassa_sandbox: Sandbox, alikassa_provider: AliKassaProvider
) -> None:
    order = Order("A-1006", Decimal("1499.00"))
    shop.checkout(order, BUYER)
    alikassa_sandbox.settle("A-1006", "paid")

    payment = alikassa_provider.status(order_id="A-1006")

    assert payment.status is paymux.PaymentStatus.PAID
    assert payment.paid_amount == Decimal("1499.00")


def test_the_merchant_settings_fit_the_shops_own_configuration(
    alikassa_merchant: Merchant, alikassa_sandbox: Sandbox
) -> None:
    settings = dict(alikassa_merchant.settings)

    with paymux.connect({**settings, "read_timeout": "2"}) as provider:
        payment = provider.create(
            paymux.PaymentRequest(
                order_id="A-1007",
                amount=Decimal("150"),
                customer=BUYER,
                options={"service": "payment_card_rub_hpp"},
            )
        )

    assert settings["base_url"] == alikassa_sandbox.url
    assert settings["account"] == alikassa_merchant.account
    assert alikassa_sandbox.payment(payment.id).order_id == "A-1007"


def test_settling_a_payment_created_without_the_endpoint_says_what_to_fix(
    alikassa_provider: AliKassaProvider, alikassa_settle: Settle
) -> None:
    alikassa_provider.create(
        paymux.PaymentRequest(
            order_id="A-1008",
            amount=Decimal("150"),
            customer=BUYER,
            options={"service": "payment_card_rub_hpp"},
        )
    )

    with pytest.raises(pytest.fail.Exception) as failed:
        alikassa_settle("A-1008", "paid", timeout=0.2)

    assert "created without a notification_url" in str(failed.value)
    assert "notification_url=alikassa_notifications.url" in str(failed.value)


# -- how the plugin ships -----------------------------------------------------------------------

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "pytest-plugin.md"


def documented_example() -> str:
    """The test module under "A shop's test module" in docs/pytest-plugin.md."""
    section = GUIDE.read_text(encoding="utf-8").split("## A shop's test module", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_documented_example_passes_in_a_fresh_project_via_the_entry_point(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    pytester.makepyfile(test_shop=documented_example())

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "error")

    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) >= 3, result.stdout.str()
    assert set(outcomes) == {"passed"}, result.stdout.str()


def test_the_fixtures_are_listed_with_what_they_give(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)

    result = pytester.runpytest_subprocess("--fixtures")

    listed = result.stdout.str()
    for name in (
        "alikassa_sandbox",
        "alikassa_merchant",
        "alikassa_provider",
        "alikassa_notifications",
        "alikassa_settle",
    ):
        assert f"{name} -- " in listed
    assert "A fresh AliKassa sandbox on a free loopback port" in listed


def test_loading_the_plugin_imports_neither_the_sandbox_nor_the_provider() -> None:
    heavy = [
        "paymux.providers.alikassa.sandbox",
        "paymux.providers.alikassa.provider",
        "paymux.providers.alikassa.keys",
        "http.server",
        "marshmallow",
        "cryptography",
    ]
    probe = (
        "import json, sys\n"
        "import paymux.providers.alikassa.pytest_plugin\n"
        f"print(json.dumps([name for name in {heavy!r} if name in sys.modules]))\n"
    )

    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )

    assert json.loads(done.stdout) == []
