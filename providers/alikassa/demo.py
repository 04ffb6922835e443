"""`paymux demo`: one AliKassa payment, end to end, on a local sandbox.

The customer is played by plain HTTP (a browser's requests, no browser), so the demo runs
anywhere Python does and every step it prints is one real exchange on loopback.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import requests

import paymux
from paymux.providers.alikassa.provider import AliKassaProvider
from paymux.providers.alikassa.sandbox import (
    NotificationReceiver,
    Sandbox,
    button_form,
    read_forms,
)

Out = Callable[[str], None]


def run_demo(out: Out, *, digest: str = "sha1") -> int:
    """Create a payment, pay it on the sandbox's payment page, verify what the shop gets.

    The customer is played by plain HTTP: it opens the page, posts the Pay button's form and
    follows the signed form back to the shop, as a browser would. Each step is printed.
    """
    out("paymux demo: one AliKassa payment, end to end, on a local sandbox\n")
    with (
        tempfile.TemporaryDirectory(prefix="paymux-demo-") as workdir,
        Sandbox(digest=digest) as sandbox,
        NotificationReceiver() as shop,
        requests.Session() as browser,
    ):
        merchant = sandbox.create_merchant(Path(workdir) / "payment")
        _step(
            out,
            1,
            "certificates",
            f"payment: {merchant.payment_certificate.path} "
            "(private.pem encrypted, password.txt, public.pem)",
            f"notification public key: {sandbox.notification_certificate.public_key}",
        )
        _step(out, 2, "sandbox", f"{sandbox.url}  (account {merchant.account}, digest {digest})")
        _step(
            out,
            3,
            "shop",
            f"notifications to {shop.url}",
            f"customers come back to {shop.success_url} (or {shop.fail_url})",
        )

        with paymux.connect(merchant.settings) as provider:
            if not isinstance(provider, AliKassaProvider):
                raise TypeError(f"expected the AliKassa provider, got {provider!r}")
            _step(out, 4, "connected", repr(provider))
            order_id = f"demo-{uuid.uuid4().hex[:8]}"
            created = provider.create(
                paymux.PaymentRequest(
                    order_id=order_id,
                    amount=DEMO_AMOUNT,
                    currency="RUB",
                    description="Order #1 / demo",
                    customer=paymux.Customer(ip="203.0.113.7", user_agent="Mozilla/5.0 (demo)"),
                    notification_url=shop.url,
                    success_url=shop.success_url,
                    fail_url=shop.fail_url,
                    options={"service": "payment_card_rub_hpp"},
                )
            )
            _step(
                out,
                5,
                "create",
                f"order {order_id}: payment {created.id} is {_state(created)}",
                f"the shop sends the customer to {created.redirect_url}",
            )
            _step(out, 6, "status", _state(provider.status(order_id=order_id)))

            if created.redirect_url is None:
                out("   the gateway gave no payment page")
                return 1
            page = browser.get(created.redirect_url, timeout=10)
            forms = read_forms(page.text, page.url)
            buttons = ", ".join(button.text for form in forms for button in form.buttons)
            _step(
                out,
                7,
                "payment page",
                f"GET {created.redirect_url} -> HTTP {page.status_code}",
                f"the customer sees the amount and the buttons {buttons}",
            )

            pay = button_form(forms, "Pay")
            sent = pay.submission("Pay")
            answer = browser.post(pay.action, data=sent, timeout=10)
            back = read_forms(answer.text, answer.url)
            _step(
                out,
                8,
                "customer pays",
                f"POST {pay.action} ({_form_text(sent)}) -> HTTP {answer.status_code}",
                "the page answers with a signed form back to the shop",
            )
            if answer.status_code != 200 or not back:
                out("   the payment page did not send the customer back to the shop")
                return 1

            returned = back[0]
            fields = returned.submission()
            landed = browser.post(returned.action, data=fields, timeout=10)
            posted = shop.wait_for_forms(1)
            if landed.status_code != 200 or not posted:
                out("   the shop did not receive the customer's return")
                return 1
            redirect = provider.verify_redirect(posted[0].fields, order_id=order_id)
            _step(
                out,
                9,
                "back at shop",
                f"POST {returned.action} ({', '.join(fields)}) -> HTTP {landed.status_code}",
                f"redirect signature verified: order {redirect.order_id}, "
                f"payment uuid {redirect.payment_uuid}",
            )

            received = shop.wait_for(1, timeout=10)
            if not received:
                out("   no notification arrived")
                return 1
            notification = provider.parse_notification(received[0])
            decision = paymux.decide(notification, order_id=order_id, amount=DEMO_AMOUNT)
            paid = notification.payment
            _step(
                out,
                10,
                "notification",
                f"GET {shop.url}?... arrived from the sandbox",
                f"signature verified: payment {paid.id} is {_state(paid)}, "
                f"paid {_money(paid.paid_amount)}, fee {_money(paid.fee)}",
                f"decision: {decision.action} ({'; '.join(decision.reasons)})",
            )

            final = provider.status(payment_id=created.id)
            _step(
                out, 11, "status", f"{_state(final)}, {_money(final.paid_amount)} {final.currency}"
            )
            ok = (
                created.status is paymux.PaymentStatus.PENDING
                and final.status is paymux.PaymentStatus.PAID
                and decision.fulfil
            )
            out(
                f"\n{'done' if ok else 'FAILED'}: {created.raw['payment_status']} -> "
                f"{final.raw['payment_status']}, notification verified, "
                f"decision {decision.action}, redirect verified"
            )
            return 0 if ok else 1


DEMO_AMOUNT = Decimal("500.00")


def _step(out: Out, number: int, name: str, text: str, *more: str) -> None:
    """One numbered step, and its further lines indented under its text."""
    out(f"{number:>2}. {name:<14} {text}")
    for line in more:
        out(f"{'':>19}{line}")


def _form_text(fields: dict[str, str]) -> str:
    return "&".join(f"{name}={value}" for name, value in fields.items())


def _state(payment: paymux.Payment) -> str:
    """paymux's status with AliKassa's own word for it."""
    return f"{payment.status} (AliKassa: {payment.raw.get('payment_status')})"


def _money(amount: Decimal | None) -> str:
    return "-" if amount is None else str(amount.quantize(Decimal("0.01")))
