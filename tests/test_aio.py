"""The async API: every provider, unchanged, over httpx on an event loop — the same operations,
exactly-once creates and errors as the blocking API, and no payment lost to a cancelled task.

Each test runs its coroutine with `asyncio.run` against the real sandboxes on loopback.
"""

from __future__ import annotations

import ast
import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

pytest.importorskip("httpx", reason="no httpx: pip install 'paymux[async]'")

import yookassa_support

import paymux
from paymux.aio import AsyncProvider, connect_async
from paymux.providers.alikassa import CertificateFolder
from paymux.providers.alikassa.sandbox import Fault, Merchant, Sandbox
from paymux_yookassa.emulator import Emulator
from support import payment_request, serve_uvicorn

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent


def run(coroutine: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await coroutine()

    return asyncio.run(main())


def test_an_alikassa_payment_is_created_looked_up_and_notified_asynchronously(
    merchant: Merchant, sandbox: Sandbox
) -> None:
    async def flow() -> tuple[paymux.Payment, paymux.Payment, paymux.Notification]:
        async with await connect_async(merchant.settings) as provider:
            created = await provider.create(payment_request())
            looked_up = await provider.status(payment_id=created.id)
            sandbox.settle(created.id, "paid", notify=False)
            params = sandbox.gateway.notification_params(sandbox.payment(created.id))
            return created, looked_up, await provider.parse_notification(params)

    created, looked_up, notification = run(flow)

    assert looked_up.id == created.id
    assert looked_up.status is paymux.PaymentStatus.PENDING
    assert notification.payment.status is paymux.PaymentStatus.PAID
    assert notification.payment.instance == created.instance


def test_a_yookassa_payment_is_held_captured_and_refunded_asynchronously(
    emulator: Emulator,
) -> None:
    async def flow() -> tuple[paymux.Payment, paymux.Refund, paymux.Refund]:
        async with await connect_async(yookassa_support.settings_of(emulator)) as provider:
            held = await provider.create(yookassa_support.payment_request(capture=False))
            emulator.settle(held.id, "waiting_for_capture")
            captured = await provider.capture(held.id)
            refund = await provider.refund(
                paymux.RefundRequest(payment_id=captured.id, amount=Decimal("500.00"))
            )
            return captured, refund, await provider.refund_status(refund.id)

    captured, refund, refund_again = run(flow)

    assert captured.status is paymux.PaymentStatus.PAID
    assert refund_again.id == refund.id
    assert refund.amount == Decimal("500.00")


def test_a_held_yookassa_payment_can_be_canceled_asynchronously(emulator: Emulator) -> None:
    async def flow() -> paymux.Payment:
        async with await connect_async(yookassa_support.settings_of(emulator)) as provider:
            held = await provider.create(yookassa_support.payment_request(capture=False))
            emulator.settle(held.id, "waiting_for_capture")
            return await provider.cancel(held.id)

    assert run(flow).status is paymux.PaymentStatus.CANCELED


def test_payouts_and_the_balance_work_asynchronously(
    sandbox: Sandbox, tmp_path: Path, payment_key: rsa.RSAPrivateKey
) -> None:
    registered = sandbox.create_merchant(
        tmp_path / "payment",
        private_key=payment_key,
        payout_folder=tmp_path / "payout",
        payout_private_key=payment_key,
    )
    sandbox.set_balance(registered.account, balance="10000")

    async def flow() -> tuple[paymux.Balance, paymux.Payout, paymux.Payout]:
        async with await connect_async(registered.settings) as provider:
            balance = await provider.balance()
            payout = await provider.payout(
                paymux.PayoutRequest(
                    order_id=f"payout-{random.getrandbits(32)}",
                    amount=Decimal("500.00"),
                    number="4111111111111111",
                    currency="RUB",
                    recipient={
                        "first_name": "Ivan",
                        "last_name": "Petrov",
                        "card_exp_month": "07",
                        "card_exp_year": "2030",
                    },
                    options={"service": "payment_card_rub"},
                )
            )
            return balance, payout, await provider.payout_status(payout_id=payout.id)

    balance, payout, again = run(flow)

    assert balance.available == Decimal("10000")
    assert again.id == payout.id


def test_bad_input_is_refused_before_any_network_call(merchant: Merchant, sandbox: Sandbox) -> None:
    async def flow() -> None:
        async with await connect_async(merchant.settings) as provider:
            await provider.create(payment_request(amount=Decimal("0")))

    with pytest.raises(paymux.ValidationError):
        run(flow)
    assert sandbox.requests == []


def test_the_errors_are_the_blocking_apis_own(merchant: Merchant) -> None:
    async def flow() -> None:
        async with await connect_async(merchant.settings) as provider:
            await provider.status(payment_id="999999999")

    with pytest.raises(paymux.PaymentNotFound):
        run(flow)


def test_a_thousand_concurrent_creates_under_faults_make_exactly_a_thousand_payments(
    notification_certificate: CertificateFolder,
    payment_key: rsa.RSAPrivateKey,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    faults = {Fault.INTERNAL_ERROR: 0.2, Fault.DROP_CONNECTION: 0.1, Fault.STALL: 0.05}
    with Sandbox(
        notification_certificate=notification_certificate.path,
        fault_rates=faults,
        fault_seed=11,
        max_connections=256,
    ) as sandbox:
        sandbox.gateway.stall_seconds = 2.0
        merchant = sandbox.create_merchant(tmp_path / "payment", private_key=payment_key)
        settings = {**merchant.settings, "read_timeout": 1.0, "backoff": 0.01, "max_attempts": 6}
        orders = [f"async-{number:04d}" for number in range(1000)]

        async def flow() -> tuple[int, int]:
            async with await connect_async(settings) as provider:
                outcomes = await asyncio.gather(
                    *(provider.create(payment_request(order_id=order)) for order in orders),
                    return_exceptions=True,
                )
                unknown = [error for error in outcomes if isinstance(error, paymux.OutcomeUnknown)]
                assert all(
                    isinstance(outcome, (paymux.Payment, paymux.OutcomeUnknown))
                    for outcome in outcomes
                ), [
                    o
                    for o in outcomes
                    if not isinstance(o, (paymux.Payment, paymux.OutcomeUnknown))
                ]
                for error in unknown:
                    await provider.reconcile(error)
                return len(outcomes) - len(unknown), len(unknown)

        returned, reconciled = run(flow)
        stored = Counter(payment.order_id for payment in sandbox.payments())

    with capsys.disabled():
        print(
            f"\nasync soak: 1000 concurrent creates, {returned} returned, {reconciled} settled by"
            f" reconcile; at the gateway {sum(stored.values())} payments,"
            f" {sum(c - 1 for c in stored.values())} duplicates, {1000 - len(stored)} lost"
        )
    assert set(stored) == set(orders), "no order lost"
    assert set(stored.values()) == {1}, "no order paid for twice"


def test_creates_cancelled_at_random_points_are_settled_by_reconcile_and_none_is_lost(
    merchant: Merchant, sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    chance = random.Random(13)  # noqa: S311 - picks moments to cancel, guards nothing
    sandbox.latency = 0.02
    orders = [f"cancel-{number:04d}" for number in range(1000)]

    async def flow() -> tuple[set[str], set[str], int]:
        async with await connect_async(merchant.settings) as provider:
            tasks = {}
            for order in orders:  # a shop's checkouts, each abandoned at a random moment
                task = asyncio.create_task(provider.create(payment_request(order_id=order)))
                asyncio.get_running_loop().call_later(chance.uniform(0, 0.06), task.cancel)
                tasks[order] = task
                await asyncio.sleep(0.002)
            await asyncio.gather(*tasks.values(), return_exceptions=True)
            completed = {order for order, task in tasks.items() if not task.cancelled()}
            unsettled = provider.take_unsettled()
            for unknown in unsettled:
                await provider.reconcile(unknown)
            return completed, {unknown.order_id or "" for unknown in unsettled}, len(tasks)

    completed, reconciled, started = run(flow)
    stored = Counter(payment.order_id for payment in sandbox.payments())
    never_sent = set(orders) - completed - reconciled

    with capsys.disabled():
        print(
            f"\nasync cancel: {started} creates, {len(completed)} completed, {len(reconciled)}"
            f" cancelled after sending and reconciled, {len(never_sent)} cancelled before"
            f" sending; at the gateway {sum(stored.values())} payments"
        )
    assert completed, "some creates completed"
    assert reconciled, "some creates were cancelled mid-call"
    assert not completed & reconciled
    assert set(stored) == completed | reconciled, "a payment for every order that may have left"
    assert set(stored.values()) == {1}, "and only one"
    assert not never_sent & set(stored)


def test_no_provider_contains_async_code_of_its_own() -> None:
    sources = [
        *(ROOT / "providers" / "alikassa").rglob("*.py"),
        *(ROOT / "yookassa" / "src").rglob("*.py"),
        *(ROOT / "docs" / "examples" / "hmacpay").rglob("*.py"),
    ]
    assert len(sources) > 20
    for source in sources:
        tree = ast.parse(source.read_text(encoding="utf-8"))
        asynchronous = [
            node
            for node in ast.walk(tree)
            if isinstance(node, (ast.AsyncFunctionDef, ast.Await, ast.AsyncWith, ast.AsyncFor))
        ]
        assert not asynchronous, f"{source} has async code"


def test_an_async_provider_is_the_blocking_one_driven_differently(merchant: Merchant) -> None:
    async def flow() -> tuple[AsyncProvider, paymux.Provider, str]:
        async with await connect_async(merchant.settings) as provider:
            return provider, provider.provider, repr(provider)

    asynchronous, blocking, shown = run(flow)

    assert (asynchronous.name, asynchronous.instance) == (blocking.name, blocking.instance)
    assert asynchronous.capabilities is blocking.capabilities
    assert "AsyncProvider(" in shown
    assert merchant.settings.get("password", "no password here") not in shown


def test_an_asgi_endpoint_verifies_guards_and_acts_on_each_notification_once(
    merchant: Merchant, sandbox: Sandbox, tmp_path: Path
) -> None:
    pytest.importorskip("uvicorn", reason="no uvicorn: pip install 'paymux[fastapi]'")
    guard = paymux.NotificationGuard(paymux.SQLiteStore(tmp_path / "guard.sqlite3"))
    acted: list[tuple[str, str]] = []
    verdicts: list[str] = []
    connected: list[AsyncProvider] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        """The shop's notification endpoint, as a bare ASGI app."""
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if not connected:  # made on the server's loop, its httpx client bound to it
            connected.append(AsyncProvider(paymux.connect(merchant.settings)))
        try:
            notification = await connected[0].parse_notification(
                paymux.Incoming.from_asgi(scope, body)
            )
        except paymux.SignatureError:
            status = 400
        else:
            async with guard.admitted_async(notification) as verdict:
                verdicts.append(verdict.value)
                if verdict.act:
                    acted.append((notification.payment.id, notification.payment.status.value))
            status = 200
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"OK"})

    with serve_uvicorn(app) as origin:
        with paymux.connect(merchant.settings) as provider:
            payment = provider.create(payment_request(notification_url=f"{origin}/notify"))
        first = sandbox.settle(payment.id, "paid")
        again = sandbox.gateway.notify(sandbox.payment(payment.id))
        forged = dict(sandbox.gateway.notification_params(sandbox.payment(payment.id)))
        forged["payment_amount"] = "1.00"
        refused = requests.get(f"{origin}/notify", params=forged, timeout=10)

    assert first is not None
    assert first.http_status == 200
    assert again is not None
    assert again.http_status == 200
    assert refused.status_code == 400
    assert acted == [(payment.id, "paid")]
    assert verdicts == ["new", "duplicate"]


def test_the_sweeper_on_the_event_loop_settles_what_was_left_open_and_hands_each_change_once(
    notification_certificate: CertificateFolder, payment_key: rsa.RSAPrivateKey, tmp_path: Path
) -> None:
    with Sandbox(
        notification_certificate=notification_certificate.path, max_connections=256
    ) as sandbox:
        merchant = sandbox.create_merchant(tmp_path / "payment", private_key=payment_key)
        settings = {**merchant.settings, "ledger": str(tmp_path / "ledger.sqlite3")}
        guard = paymux.NotificationGuard(paymux.MemoryStore())
        handled: list[tuple[str, str]] = []
        verdicts: list[paymux.Verdict] = []

        def on_notification(notification: paymux.Notification) -> None:
            with guard.admitted(notification) as verdict:
                verdicts.append(verdict)
                if verdict.act:
                    handled.append((notification.subject.id, notification.subject.status.value))

        with (
            paymux.connect(settings) as blocking,
            paymux.connect({**settings, "reconcile": False}) as hasty,
        ):
            created = [blocking.create(payment_request()) for _ in range(120)]
            for _ in range(10):  # stored at the gateway, the answer lost, nothing reconciled
                sandbox.inject(Fault.DROP_CONNECTION, on="create")
                with pytest.raises(paymux.OutcomeUnknown):
                    hasty.create(payment_request())
            outcomes = ["paid"] * 80 + ["cancel"] * 20 + [None] * 20  # the last 20 stay pending
            for payment, outcome in zip(created, outcomes, strict=True):
                if outcome is not None:
                    sandbox.settle(payment.id, outcome, notify=False)
            sandbox.latency = 0.1

            async def sweep() -> paymux.SweepReport:
                async with AsyncProvider(blocking) as provider:
                    return await provider.sweep(
                        handle=on_notification, limit=1000, now=1e12, concurrency=64
                    )

            report = run(sweep)
            again = paymux.sweep(blocking, handle=on_notification, limit=1000, now=2e12)

    status = {"paid": "paid", "cancel": "canceled"}
    settled = {
        p.id: status[outcome] for p, outcome in zip(created, outcomes, strict=True) if outcome
    }
    assert report.due == report.looked == 130
    assert report.count(paymux.EntryState.SETTLED) == 100
    assert report.count(paymux.EntryState.PENDING) == 20 + 10, "the open creates found, unpaid"
    assert sorted(handled) == sorted(settled.items()), "each final payment handed over once"
    assert verdicts == [paymux.Verdict.NEW] * 100
    assert again.handled == 0, "what the async sweep settled is not handed over again"
