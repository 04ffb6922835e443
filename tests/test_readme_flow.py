"""The README's quick start, run against the sandbox: only a full payment ships the order.

The customer clicks one of the payment page's four buttons — Pay, Pay partially, Cancel,
Fail — with real form posts; the shop then decides with `paymux.decide`, from the polled
status and from the signed notification, exactly as the README shows.
"""

from __future__ import annotations

from decimal import Decimal

import requests

import paymux
from paymux import Action, Payment
from paymux.providers.alikassa import AliKassaProvider
from paymux.providers.alikassa.sandbox import Sandbox, button_form, read_forms
from support import Receiver, payment_request

TOTAL = Decimal("500.00")
CLICKS = {
    "Pay": Action.FULFIL,
    "Pay partially": Action.HOLD,
    "Cancel": Action.IGNORE,
    "Fail": Action.IGNORE,
}


def click(payment: Payment, button: str) -> None:
    """The customer opens the payment page and clicks `button` (a part payment of 1.00)."""
    assert payment.redirect_url is not None
    page = requests.get(payment.redirect_url, timeout=5)
    form = button_form(read_forms(page.text, page.url), button)
    typed = {"amount": "1.00"} if button == "Pay partially" else {}
    answer = requests.post(form.action, data=form.submission(button, **typed), timeout=5)
    assert answer.status_code == 200, answer.text


def checkout(provider: AliKassaProvider, receiver: Receiver) -> Payment:
    created = provider.create(payment_request(amount=TOTAL, notification_url=receiver.url))
    assert created.order_id is not None
    return created


def test_of_the_four_buttons_only_pay_fulfils_the_order_when_the_shop_polls(
    provider: AliKassaProvider, sandbox: Sandbox, receiver: Receiver
) -> None:
    payments = {button: checkout(provider, receiver) for button in CLICKS}

    for button, payment in payments.items():
        click(payment, button)

    decisions = {
        button: paymux.decide(
            provider.status(order_id=str(payment.order_id)),
            order_id=str(payment.order_id),
            amount=TOTAL,
        )
        for button, payment in payments.items()
    }
    assert {button: decision.action for button, decision in decisions.items()} == CLICKS
    assert [button for button, decision in decisions.items() if decision.fulfil] == ["Pay"]
    assert decisions["Pay partially"].reasons == ("paid only in part: 1.00 of 500.00",)


def test_the_notifications_of_the_four_buttons_decide_the_same(
    provider: AliKassaProvider, sandbox: Sandbox, receiver: Receiver
) -> None:
    payments = {button: checkout(provider, receiver) for button in CLICKS}

    for button, payment in payments.items():
        click(payment, button)

    assert sandbox.wait_idle()
    notifications = [provider.parse_notification(url) for url in receiver.wait_for(4)]
    by_order = {item.payment.order_id: item for item in notifications}
    actions = {
        button: paymux.decide(
            by_order[payment.order_id], order_id=str(payment.order_id), amount=TOTAL
        ).action
        for button, payment in payments.items()
    }
    assert actions == CLICKS


def test_a_payment_the_customer_has_not_paid_yet_is_not_fulfilled(
    provider: AliKassaProvider, receiver: Receiver
) -> None:
    created = checkout(provider, receiver)

    polled = provider.status(order_id=str(created.order_id))
    decision = paymux.decide(polled, order_id=str(created.order_id), amount=TOTAL)

    assert decision.action is Action.IGNORE
    assert decision.reasons == ("status is pending: not final yet",)
