"""The ledger and the sweeper: nothing in flight is forgotten, over real HTTP to both gateways.

Each test gives the instance a `ledger` file, makes something go unfinished — an answer lost
with reconciling off, a process that died after writing its intent, a notification that never
came, an idempotency key the gateway forgot — and lets `paymux.sweep` settle it.
"""

from __future__ import annotations

import dataclasses
import getpass
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import structlog

import paymux
from paymux import EntryState, MemoryStore, NotificationGuard, Verdict
from paymux._inputs import encode
from paymux.cli import main
from paymux.ledger import new_entry
from paymux.providers.alikassa.sandbox import Fault, Merchant, Sandbox
from paymux_yookassa.emulator import Emulator
from paymux_yookassa.emulator import Fault as EmulatorFault
from support import payment_request

LATER = 10**10
"""A sweep's `now` far in the future: every entry is due."""


@pytest.fixture
def ledger_path(tmp_path: Path) -> Path:
    return tmp_path / "ledger.sqlite3"


@pytest.fixture
def alikassa(merchant: Merchant, ledger_path: Path) -> Iterator[paymux.Provider]:
    settings = {**merchant.settings, "name": "shop", "ledger": str(ledger_path), "backoff": 0.01}
    with paymux.connect(settings) as connected:
        yield connected


def entries(provider: paymux.Provider) -> list[paymux.Entry]:
    assert provider.connection.ledger is not None
    return provider.connection.ledger.entries()


class Host:
    """The host's notification path: its guard, then what it did, once per admitted change."""

    def __init__(self) -> None:
        self.guard = NotificationGuard(MemoryStore())
        self.verdicts: list[Verdict] = []
        self.handled: list[tuple[str, str]] = []

    def on_notification(self, notification: paymux.Notification) -> None:
        with self.guard.admitted(notification) as verdict:
            self.verdicts.append(verdict)
            if verdict.act:
                self.handled.append((notification.subject.id, notification.subject.status.value))


def test_every_money_moving_call_is_written_before_it_is_sent_and_closed_after(
    alikassa: paymux.Provider, sandbox: Sandbox
) -> None:
    created = alikassa.create(payment_request())

    [entry] = entries(alikassa)
    assert (entry.operation, entry.order_id, entry.subject_id) == (
        "create",
        created.order_id,
        created.id,
    )
    assert entry.state is EntryState.PENDING, "a payment waiting for its payer is swept"
    assert entry.body == sandbox.requests[-1].body, "the exact bytes sent"
    assert [event.state for event in entry.history] == [EntryState.OPEN, EntryState.PENDING]


def test_a_refused_create_is_closed_as_refused(alikassa: paymux.Provider) -> None:
    with pytest.raises(paymux.UnknownService):
        alikassa.create(payment_request(options={"service": "payment_card_nope"}))

    [entry] = entries(alikassa)
    assert entry.state is EntryState.REFUSED
    assert str(entry.reason).startswith("refused: ")


def test_an_unknown_create_left_open_is_settled_into_the_one_payment(
    merchant: Merchant, sandbox: Sandbox, ledger_path: Path
) -> None:
    sandbox.inject(Fault.INTERNAL_ERROR)
    settings = {**merchant.settings, "ledger": str(ledger_path), "reconcile": False}
    with paymux.connect(settings) as provider:
        request = payment_request()
        with pytest.raises(paymux.OutcomeUnknown):
            provider.create(request)
        [open_entry] = entries(provider)
        assert open_entry.state is EntryState.OPEN

        report = paymux.sweep(provider, now=LATER)

        [entry] = entries(provider)
    stored = sandbox.payment(request.order_id)
    assert report.looked == 1
    assert (entry.state, entry.subject_id) == (EntryState.PENDING, str(stored.id))
    assert [p.order_id for p in sandbox.payments()] == [request.order_id]


def test_a_create_whose_process_died_before_sending_is_sent_once_by_the_sweeper(
    alikassa: paymux.Provider, sandbox: Sandbox
) -> None:
    """The intent was written, then the process died: nothing reached the gateway."""
    request = paymux.PaymentRequest(**{**vars(payment_request()), "idempotency_key": "k-1"})
    call = alikassa.describe_create(request)
    ledger = alikassa.connection.ledger
    assert ledger is not None
    ledger.open(
        new_entry(
            provider="alikassa",
            instance=alikassa.instance,
            operation="create",
            input=_encoded(request),
            body=call.request.body,
            order_id=request.order_id,
            idempotency_key=None,
            key_expires_at=None,
        )
    )

    paymux.sweep(alikassa, now=LATER)
    paymux.sweep(alikassa, now=LATER * 2)

    assert [p.order_id for p in sandbox.payments()] == [request.order_id]
    [entry] = entries(alikassa)
    assert entry.state is EntryState.PENDING


def test_payments_whose_notifications_never_came_are_handled_once_and_late_ones_change_nothing(
    alikassa: paymux.Provider, sandbox: Sandbox
) -> None:
    host = Host()
    created = [alikassa.create(payment_request()) for _ in range(20)]  # no notification URL
    for payment in created:
        sandbox.settle(payment.id, "paid")

    report = paymux.sweep(alikassa, handle=host.on_notification, now=LATER)
    again = paymux.sweep(alikassa, handle=host.on_notification, now=LATER * 2)
    late = [
        alikassa.parse_notification(sandbox.gateway.notification_params(sandbox.payment(p.id)))
        for p in created
    ]
    for notification in late:
        host.on_notification(notification)

    assert report.handled == 20
    assert report.count(EntryState.SETTLED) == 20
    assert again.looked == 0, "settled entries are not swept again"
    assert sorted(host.handled) == sorted((p.id, "paid") for p in created)
    assert host.verdicts == [Verdict.NEW] * 20 + [Verdict.DUPLICATE] * 20


def test_a_pending_payment_is_asked_again_on_a_schedule_until_it_is_final(
    alikassa: paymux.Provider, sandbox: Sandbox
) -> None:
    host = Host()
    payment = alikassa.create(payment_request())
    now = time.time()

    first = paymux.sweep(alikassa, handle=host.on_notification, now=now + 10)
    too_soon = paymux.sweep(alikassa, handle=host.on_notification, now=now + 11)
    sandbox.settle(payment.id, "cancel")
    [pending] = entries(alikassa)
    final = paymux.sweep(alikassa, handle=host.on_notification, now=pending.next_at)

    assert (first.looked, first.count(EntryState.PENDING)) == (1, 1)
    assert too_soon.looked == 0
    assert final.count(EntryState.SETTLED) == 1
    assert host.handled == [(payment.id, "canceled")]


def test_a_handler_that_fails_is_given_the_change_again_at_the_next_sweep(
    alikassa: paymux.Provider, sandbox: Sandbox
) -> None:
    host = Host()
    payment = alikassa.create(payment_request())
    sandbox.settle(payment.id, "paid")

    def failing(notification: paymux.Notification) -> None:
        raise RuntimeError("the shop's database is down")

    paymux.sweep(alikassa, handle=failing, now=LATER)
    [entry] = entries(alikassa)
    assert entry.state is EntryState.PENDING
    assert entry.reason == "the handler failed: RuntimeError: the shop's database is down"

    paymux.sweep(alikassa, handle=host.on_notification, now=entry.next_at)

    assert host.handled == [(payment.id, "paid")]


def test_yookassa_settles_an_unknown_create_by_its_key_and_a_forgotten_key_goes_to_a_person(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    with Emulator(clock=clock) as emulator:
        settings = {
            **emulator.settings(),
            "ledger": str(tmp_path / "ledger.sqlite3"),
            "reconcile": False,
        }
        with paymux.connect(settings) as provider:
            emulator.inject(EmulatorFault.INTERNAL_ERROR, on="create", times=2)
            kept = yookassa_request("kept")
            forgotten = yookassa_request("forgotten")
            for request in (kept, forgotten):
                with pytest.raises(paymux.OutcomeUnknown):
                    provider.create(request)
            ledger = provider.connection.ledger
            assert ledger is not None
            [forgotten_entry] = [e for e in ledger.entries() if e.order_id == "forgotten"]
            ledger.update(forgotten_entry.id, lambda entry: _expired(entry))

            report = paymux.sweep(provider, now=LATER)

            by_order = {entry.order_id: entry for entry in ledger.entries()}
        held = [str(payment.metadata.get("order_id")) for payment in emulator.payments]
    assert sorted(held) == ["forgotten", "kept"], "each created once, by the first send"
    assert by_order["kept"].state is EntryState.PENDING
    assert by_order["forgotten"].state is EntryState.OPERATOR
    assert "forgotten idempotency key" in str(by_order["forgotten"].reason)
    assert report.count(EntryState.OPERATOR) == 1


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def yookassa_request(order_id: str) -> paymux.PaymentRequest:
    return paymux.PaymentRequest(
        order_id=order_id, amount=Decimal("150.00"), success_url="https://shop.example/back"
    )


def _expired(entry: paymux.Entry) -> paymux.Entry:
    return dataclasses.replace(entry, key_expires_at=time.time() - 1)


def _encoded(request: paymux.PaymentRequest) -> dict[str, Any]:
    return encode("create", request)


# -- the operator's commands --------------------------------------------------------------------


@pytest.fixture
def cli_logging() -> Iterator[None]:
    """`paymux.cli.main` configures structlog for the process, as a command line does: undo it."""
    yield
    structlog.reset_defaults()


@pytest.mark.usefixtures("cli_logging")
def test_an_operator_lists_shows_and_resolves_what_the_sweeper_could_not_settle(
    alikassa: paymux.Provider,
    merchant: Merchant,
    ledger_path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ledger = alikassa.connection.ledger
    assert ledger is not None
    stuck = ledger.open(
        new_entry(
            provider="alikassa",
            instance="shop",
            operation="refund",
            input=encode("refund", {"payment_id": "1"}),
            body=b"{}",
            order_id=None,
            idempotency_key=None,
            key_expires_at=None,
        )
    )
    ledger.update(stuck.id, lambda entry: entry.moved(EntryState.OPERATOR, "no refunds", at=1.0))
    config = tmp_path / "paymux.toml"
    lines = ["[providers.shop]"] + [
        f"{key} = {json.dumps(str(value))}"
        for key, value in {**merchant.settings, "ledger": str(ledger_path)}.items()
    ]
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    given = ["--config", str(config)]

    assert main(["ops", "list", "--state", "operator", "--json", *given]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert (
        main(["ops", "resolve", stuck.id, "--as", "not-created", "--note", "checked", *given]) == 0
    )
    resolved = ledger.get(stuck.id)
    again = main(["ops", "resolve", stuck.id, "--as", "paid", "--note", "twice", *given])
    assert main(["ops", "show", stuck.id, *given]) == 0
    shown = capsys.readouterr()

    assert [item["id"] for item in listed] == [stuck.id]
    assert listed[0]["reason"] == "no refunds"
    assert resolved.state is EntryState.REFUSED
    assert resolved.history[-1].note == "resolved as not-created: checked"
    assert resolved.history[-1].by == getpass.getuser()
    assert again == 1
    assert "is refused already" in shown.err
    assert "resolved as not-created: checked" in shown.out


def test_paymux_sweep_settles_due_entries_from_the_command_line(
    alikassa: paymux.Provider, sandbox: Sandbox, merchant: Merchant, ledger_path: Path
) -> None:
    payment = alikassa.create(payment_request())
    sandbox.settle(payment.id, "paid")
    ledger = alikassa.connection.ledger
    assert ledger is not None
    [entry] = ledger.entries()
    ledger.update(entry.id, lambda found: dataclasses.replace(found, next_at=0.0))
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("PAYMUX")},
        **{f"PAYMUX__SHOP__{k.upper()}": str(v) for k, v in merchant.settings.items()},
        "PAYMUX__SHOP__LEDGER": str(ledger_path),
    }

    swept = subprocess.run(
        [sys.executable, "-m", "paymux.cli", "sweep"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )

    assert swept.returncode == 0, swept.stderr
    assert swept.stdout.strip() == "swept 1 entries of shop: 1 settled"
    assert ledger.get(entry.id).status == "paid"


def test_a_sweep_settles_entries_concurrently_and_hands_each_change_over_once(
    merchant: Merchant, sandbox: Sandbox, ledger_path: Path
) -> None:
    settings = {**merchant.settings, "ledger": str(ledger_path), "sweep_concurrency": 8}
    host = Host()
    with paymux.connect(settings) as provider:
        created = [provider.create(payment_request()) for _ in range(40)]
        for payment in created:
            sandbox.settle(payment.id, "paid")

        report = paymux.sweep(provider, handle=host.on_notification, now=LATER)

    assert provider.connection.sweep.concurrency == 8
    assert (report.looked, report.handled, report.count(EntryState.SETTLED)) == (40, 40, 40)
    assert sorted(host.handled) == sorted((p.id, "paid") for p in created)


def test_the_rate_limit_spaces_the_settlings_of_an_instance(
    merchant: Merchant, sandbox: Sandbox, ledger_path: Path
) -> None:
    settings = {**merchant.settings, "ledger": str(ledger_path), "sweep_rate": 20}
    with paymux.connect(settings) as provider:
        for _ in range(6):
            provider.create(payment_request())
        started = time.monotonic()
        report = paymux.sweep(provider, now=LATER, concurrency=6)
        took = time.monotonic() - started

    assert report.looked == 6
    assert took >= 5 / 20, "six settlings at 20 a second start over at least a quarter second"


@pytest.mark.parametrize(
    ("setting", "value"), [("sweep_concurrency", 0), ("sweep_rate", 0), ("sweep_rate", -1)]
)
def test_sweep_settings_out_of_range_are_configuration_errors(
    merchant: Merchant, setting: str, value: int
) -> None:
    with pytest.raises(paymux.ConfigurationError, match=setting):
        paymux.connect({**merchant.settings, setting: value})
