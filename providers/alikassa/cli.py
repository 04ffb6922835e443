"""AliKassa's `paymux` commands: `sandbox` runs the emulator, `demo` runs a whole payment on it."""

from __future__ import annotations

import argparse
import tempfile
import threading
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import requests

import paymux
from paymux.providers.alikassa.keys import DIGESTS
from paymux.providers.alikassa.sandbox import NotificationReceiver, Sandbox

Out = Callable[[str], None]


def add_commands(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = subcommands.add_parser(
        "demo",
        help="pay once, end to end, on a local AliKassa sandbox (nothing leaves this machine)",
        description="Generates throw-away certificates, starts the AliKassa sandbox and a shop "
        "notification endpoint on loopback, creates a payment, pays it, verifies the signed "
        "notification and reads the final status.",
    )
    demo.add_argument(
        "--digest",
        choices=sorted(DIGESTS),
        default="sha1",
        help="signature digest (default: sha1, as AliKassa's samples)",
    )
    demo.set_defaults(handler=lambda args: run_demo(print, digest=args.digest))

    sandbox = subcommands.add_parser(
        "sandbox",
        help="run the AliKassa sandbox (emulator) until interrupted",
        description="Runs the AliKassa merchant API emulator on loopback. Registers one merchant "
        "with fresh certificates and prints the settings to connect to it.",
    )
    sandbox.add_argument("--host", default="127.0.0.1", help="address to listen on")
    sandbox.add_argument("--port", type=int, default=8765, help="port (0: any free port)")
    sandbox.add_argument(
        "--digest",
        choices=sorted(DIGESTS),
        default="sha1",
        help="signature digest for requests and notifications",
    )
    sandbox.add_argument(
        "--certificates",
        type=Path,
        default=None,
        help="folder for the merchant's certificate (default: a temporary one)",
    )
    sandbox.set_defaults(handler=lambda args: run_sandbox(print, args))


def run_demo(out: Out, *, digest: str = "sha1") -> int:
    """Create, pay and verify one payment on the embedded sandbox; print each step."""
    out("paymux demo: one AliKassa payment, end to end, on a local sandbox\n")
    with (
        tempfile.TemporaryDirectory(prefix="paymux-demo-") as workdir,
        Sandbox(digest=digest) as sandbox,
        NotificationReceiver() as shop,
    ):
        merchant = sandbox.create_merchant(Path(workdir) / "payment")
        out(
            f"1. certificates  payment: {merchant.payment_certificate.path} "
            "(private.pem encrypted, password.txt, public.pem)"
        )
        notification_key = sandbox.notification_certificate.public_key
        out(f"                 notification public key: {notification_key}")
        out(f"2. sandbox       {sandbox.url}  (account {merchant.account}, digest {digest})")
        out(f"3. shop endpoint {shop.url}")

        with paymux.connect(merchant.settings) as provider:
            out(f"4. connected     {provider!r}")
            order_id = f"demo-{uuid.uuid4().hex[:8]}"
            created = provider.create(
                paymux.PaymentRequest(
                    order_id=order_id,
                    amount=Decimal("500.00"),
                    currency="RUB",
                    description="Order #1 / demo",
                    customer=paymux.Customer(ip="203.0.113.7", user_agent="Mozilla/5.0 (demo)"),
                    notification_url=shop.url,
                    options={"service": "payment_card_rub_hpp"},
                )
            )
            out(f"5. create        order {order_id}: payment {created.id} is {_state(created)}")
            out(f"                 the customer pays at {created.redirect_url}")
            out(f"6. status        {_state(provider.status(order_id=order_id))}")

            answer = requests.post(
                f"{sandbox.url}/sandbox/payments/{created.id}/settle",
                json={"status": "paid"},
                timeout=10,
            )
            answer.raise_for_status()
            delivered = answer.json()["notification"]
            out(
                f"7. customer pays the sandbox sends a signed notification: "
                f"shop answered HTTP {delivered['http_status']}"
            )

            received = shop.wait_for(1)
            if not received:
                out("   no notification arrived")
                return 1
            notification = provider.parse_notification(received[0])
            paid = notification.payment
            out(
                f"8. notification  signature verified: payment {paid.id} is {_state(paid)}, "
                f"paid {_money(paid.paid_amount)}, fee {_money(paid.fee)}"
            )

            final = provider.status(payment_id=created.id)
            out(f"9. status        {_state(final)}, {_money(final.paid_amount)} {final.currency}")
            ok = (
                created.status is paymux.PaymentStatus.PENDING
                and final.status is paymux.PaymentStatus.PAID
            )
            out(
                f"\n{'done' if ok else 'FAILED'}: {created.raw['payment_status']} -> "
                f"{final.raw['payment_status']}, notification verified"
            )
            return 0 if ok else 1


def _state(payment: paymux.Payment) -> str:
    """paymux's status with AliKassa's own word for it."""
    return f"{payment.status} (AliKassa: {payment.raw.get('payment_status')})"


def _money(amount: Decimal | None) -> str:
    return "-" if amount is None else str(amount.quantize(Decimal("0.01")))


def run_sandbox(out: Out, args: argparse.Namespace) -> int:
    """Serve the sandbox until interrupted."""
    with (
        tempfile.TemporaryDirectory(prefix="paymux-sandbox-") as workdir,
        Sandbox(host=args.host, port=args.port, digest=args.digest) as sandbox,
    ):
        folder = args.certificates or Path(workdir) / "payment"
        merchant = sandbox.create_merchant(folder)
        out(f"AliKassa sandbox listening on {sandbox.url}")
        out(
            f"  merchant API:     POST {sandbox.url}/v1/payment, "
            f"POST {sandbox.url}/v1/payment/status"
        )
        out(
            f"  control API:      GET {sandbox.url}/sandbox/payments, "
            f"POST {sandbox.url}/sandbox/payments/<id>/settle"
        )
        out(f"  account:          {merchant.account}")
        out(f"  payment cert:     {merchant.payment_certificate.path}")
        out(f"  notification key: {sandbox.notification_certificate.public_key}")
        out("connect with:")
        for key, value in merchant.settings.items():
            out(f"  {key} = {value!r}")
        out("Ctrl-C stops it.")
        threading.Event().wait()
    return 0
