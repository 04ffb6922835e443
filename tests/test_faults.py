"""Each sandbox fault: what the client sees, and the sandbox state the fault claims."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal

import pytest
import requests

import paymux
from paymux import PaymentStatus
from paymux.providers.alikassa import AliKassaProvider, Signer
from paymux.providers.alikassa.keys import CertificateFolder
from paymux.providers.alikassa.sandbox import Fault, Merchant, Sandbox, Service, fault_plan
from support import Receiver, payment_request

# -- faults on create: the payment is stored, the client cannot know ---------------------------
# paymux reconciles such a create by default (test_reconcile.py); `unreconciled` shows what the
# fault itself does to a client that does not.


@pytest.fixture
def unreconciled(merchant: Merchant) -> Iterator[AliKassaProvider]:
    """A provider with reconciliation switched off: one create, one answer."""
    with paymux.connect({**merchant.settings, "reconcile": False}) as connected:
        assert isinstance(connected, AliKassaProvider)
        yield connected


@pytest.mark.parametrize(
    "fault",
    [Fault.INTERNAL_ERROR, Fault.DROP_CONNECTION, Fault.HTML_ANSWER, Fault.TRUNCATED_JSON],
)
def test_a_create_fault_leaves_the_outcome_unknown_while_the_payment_exists(
    unreconciled: AliKassaProvider, provider: AliKassaProvider, sandbox: Sandbox, fault: Fault
) -> None:
    sandbox.inject(fault)
    request = payment_request()

    with pytest.raises(paymux.OutcomeUnknown) as raised:
        unreconciled.create(request)

    assert raised.value.order_id == request.order_id
    assert sandbox.payment(request.order_id).status == "wait"
    assert provider.status(order_id=request.order_id).status is PaymentStatus.PENDING


def test_a_stall_past_the_read_timeout_leaves_the_outcome_unknown(
    merchant: Merchant, sandbox: Sandbox
) -> None:
    sandbox.gateway.stall_seconds = 0.5
    sandbox.inject(Fault.STALL)
    request = payment_request()

    with (
        paymux.connect(
            {**merchant.settings, "read_timeout": "0.1", "reconcile": False}
        ) as impatient,
        pytest.raises(paymux.OutcomeUnknown),
    ):
        impatient.create(request)

    assert sandbox.payment(request.order_id).order_id == request.order_id


def test_an_order_id_prefix_asks_for_a_fault_on_that_payment_only(
    unreconciled: AliKassaProvider, sandbox: Sandbox
) -> None:
    faulty = payment_request(order_id=f"{Fault.INTERNAL_ERROR.prefix}1001")

    with pytest.raises(paymux.OutcomeUnknown):
        unreconciled.create(faulty)
    healthy = unreconciled.create(payment_request())

    assert faulty.order_id == "fault-internal-error-1001"
    assert {payment.order_id for payment in sandbox.payments()} == {
        faulty.order_id,
        healthy.order_id,
    }


def test_an_injected_fault_shows_only_as_many_times_as_asked(
    unreconciled: AliKassaProvider, sandbox: Sandbox
) -> None:
    sandbox.inject(Fault.INTERNAL_ERROR, times=2)
    outcomes = []
    for _ in range(3):
        try:
            unreconciled.create(payment_request())
            outcomes.append("created")
        except paymux.OutcomeUnknown:
            outcomes.append("unknown")

    assert outcomes == ["unknown", "unknown", "created"]
    assert len(sandbox.payments()) == 3


# -- faults on status ---------------------------------------------------------------------------


def test_a_status_fault_is_a_server_error_and_the_next_call_succeeds(
    merchant: Merchant, sandbox: Sandbox
) -> None:
    """With one attempt per call; by default paymux repeats the status itself (test_retry.py)."""
    with paymux.connect({**merchant.settings, "max_attempts": 1}) as provider:
        created = provider.create(payment_request())
        sandbox.inject(Fault.INTERNAL_ERROR, on="status")

        with pytest.raises(paymux.ProviderServerError) as raised:
            provider.status(payment_id=created.id)

        assert raised.value.http_status == 500
        assert provider.status(payment_id=created.id).status is PaymentStatus.PENDING


@pytest.mark.parametrize("fault", [Fault.HTML_ANSWER, Fault.TRUNCATED_JSON])
def test_a_broken_status_answer_is_an_invalid_response(
    provider: AliKassaProvider, sandbox: Sandbox, fault: Fault
) -> None:
    created = provider.create(payment_request())
    sandbox.inject(fault, on="status")

    with pytest.raises(paymux.InvalidResponse) as raised:
        provider.status(payment_id=created.id)

    assert raised.value.http_status == 200


def test_the_fault_header_spoils_one_request_of_any_client(
    sandbox: Sandbox, merchant: Merchant, provider: AliKassaProvider
) -> None:
    """A client other than paymux asks for a fault with `X-Sandbox-Fault`."""
    created = provider.create(payment_request())
    body = json.dumps({"id": created.id}).encode()
    signer = Signer.from_certificate_dir(merchant.payment_certificate.path)
    headers = {"Account": merchant.account, "Sign": signer.sign(body)}

    spoiled = requests.post(
        f"{sandbox.url}/v1/payment/status",
        data=body,
        headers={**headers, "X-Sandbox-Fault": "internal_error"},
        timeout=5,
    )
    healthy = requests.post(
        f"{sandbox.url}/v1/payment/status", data=body, headers=headers, timeout=5
    )

    assert (spoiled.status_code, spoiled.json()) == (500, {"message": "Internal server error"})
    assert healthy.status_code == 200


# -- the gateway's own refusals -----------------------------------------------------------------


def test_maintenance_refuses_every_create_and_stores_nothing(
    provider: AliKassaProvider, sandbox: Sandbox
) -> None:
    sandbox.maintenance = True

    with pytest.raises(paymux.ProviderUnavailable):
        provider.create(payment_request())

    assert sandbox.payments() == []


def test_services_carry_their_own_limits_and_unknown_ones_are_refused(
    notification_certificate: CertificateFolder, tmp_path_factory: pytest.TempPathFactory
) -> None:
    tickets = Service("payment_card_eur_tickets", "EUR", Decimal("5.00"), Decimal("250.00"))
    with Sandbox(services=(tickets,), notification_certificate=notification_certificate.path) as sb:
        merchant = sb.create_merchant(tmp_path_factory.mktemp("payment"))
        with paymux.connect(merchant.settings) as provider:
            options = {"service": tickets.code}
            with pytest.raises(paymux.AmountOutOfRange) as low:
                provider.create(payment_request(amount=Decimal("4.99"), options=options))
            with pytest.raises(paymux.AmountOutOfRange) as high:
                provider.create(payment_request(amount=Decimal("250.01"), options=options))
            with pytest.raises(paymux.UnknownService):
                provider.create(payment_request())  # payment_card_rub_hpp is not offered here
            fine = provider.create(payment_request(amount=Decimal("250.00"), options=options))

        assert (low.value.bound, low.value.limit) == ("minimum", Decimal("5"))
        assert (high.value.bound, high.value.limit) == ("maximum", Decimal("250"))
        assert [payment.id for payment in sb.payments()] == [int(fine.id)]


# -- faults on notifications ------------------------------------------------------------------


def _pay(provider: AliKassaProvider, sandbox: Sandbox, receiver: Receiver, order_id: str) -> None:
    created = provider.create(payment_request(order_id=order_id, notification_url=receiver.url))
    sandbox.settle(created.id, "paid")


def test_a_duplicated_notification_arrives_twice_and_both_verify(
    provider: AliKassaProvider, sandbox: Sandbox, receiver: Receiver
) -> None:
    _pay(provider, sandbox, receiver, f"{Fault.DUPLICATE_NOTIFICATION.prefix}1")

    first, second = receiver.wait_for(2)
    assert first == second
    assert provider.parse_notification(second).payment.status is PaymentStatus.PAID
    assert [delivery.fault for delivery in sandbox.deliveries] == [None, "duplicate"]


def test_a_stale_notification_arrives_after_the_final_one(
    provider: AliKassaProvider, sandbox: Sandbox, receiver: Receiver
) -> None:
    sandbox.inject(Fault.STALE_NOTIFICATION)
    _pay(provider, sandbox, receiver, "stale-1")

    final, stale = (provider.parse_notification(path) for path in receiver.wait_for(2))

    assert final.payment.status is PaymentStatus.PAID
    assert stale.payment.status is PaymentStatus.PENDING
    assert stale.payment.id == final.payment.id


def test_a_forged_notification_comes_first_and_is_rejected(
    provider: AliKassaProvider, sandbox: Sandbox, receiver: Receiver
) -> None:
    sandbox.inject(Fault.FORGED_NOTIFICATION)
    _pay(provider, sandbox, receiver, "forged-1")

    forged, genuine = receiver.wait_for(2)

    with pytest.raises(paymux.SignatureError):
        provider.parse_notification(forged)
    assert provider.parse_notification(genuine).payment.status is PaymentStatus.PAID
    assert [delivery.fault for delivery in sandbox.deliveries] == ["forged", None]


# -- the plan itself -----------------------------------------------------------------------------


def test_rates_are_drawn_side_by_side_and_repeat_with_the_same_seed() -> None:
    rates = {Fault.INTERNAL_ERROR: 0.3, Fault.DROP_CONNECTION: 0.1}

    def draws() -> list[set[Fault]]:
        plan = fault_plan(rates, seed=7)
        return [plan.draw("create") for _ in range(1000)]

    first = draws()
    errors = sum(Fault.INTERNAL_ERROR in drawn for drawn in first)
    drops = sum(Fault.DROP_CONNECTION in drawn for drawn in first)

    assert first == draws()
    assert 250 <= errors <= 350
    assert 60 <= drops <= 140
    assert all(len(drawn) <= 1 for drawn in first)


def test_rates_that_add_up_to_more_than_one_are_refused() -> None:
    plan = fault_plan({Fault.INTERNAL_ERROR: 0.7})

    with pytest.raises(ValueError, match="at most 1"):
        plan.set_rate(Fault.STALL, 0.5)


def test_a_fault_cannot_be_asked_of_an_operation_it_does_not_belong_to() -> None:
    with pytest.raises(ValueError, match="not a fault of"):
        fault_plan().inject(Fault.INTERNAL_ERROR, on="notification")


def test_fault_rates_given_to_the_sandbox_apply_to_every_create(
    notification_certificate: CertificateFolder, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with Sandbox(
        fault_rates={Fault.INTERNAL_ERROR: 1.0},
        notification_certificate=notification_certificate.path,
    ) as sb:
        merchant = sb.create_merchant(tmp_path_factory.mktemp("payment"))
        with paymux.connect({**merchant.settings, "reconcile": False}) as provider:
            for _ in range(3):
                with pytest.raises(paymux.OutcomeUnknown):
                    provider.create(payment_request())
            sb.faults.clear()
            provider.create(payment_request())

        assert len(sb.payments()) == 4


def test_status_fault_rates_spoil_status_calls_and_leave_creates_alone(
    notification_certificate: CertificateFolder, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with Sandbox(
        status_fault_rates={Fault.INTERNAL_ERROR: 1.0},
        notification_certificate=notification_certificate.path,
    ) as sb:
        merchant = sb.create_merchant(tmp_path_factory.mktemp("payment"))
        settings = {**merchant.settings, "reconcile": False, "max_attempts": 1}
        with paymux.connect(settings) as provider:
            created = [provider.create(payment_request()) for _ in range(3)]
            for payment in created:
                with pytest.raises(paymux.ProviderServerError):
                    provider.status(payment_id=payment.id)
            sb.faults.clear()
            assert provider.status(payment_id=created[0].id).status is PaymentStatus.PENDING


def test_a_status_rate_is_drawn_for_status_calls_only() -> None:
    plan = fault_plan({Fault.DROP_CONNECTION: 1.0}, status_rates={Fault.STALL: 1.0}, seed=3)

    assert plan.draw("status") == {Fault.STALL}
    assert plan.draw("create") == {Fault.DROP_CONNECTION}
    assert plan.draw("notification") == set()


def test_status_rates_that_add_up_to_more_than_one_are_refused() -> None:
    with pytest.raises(ValueError, match="status fault rates must add up to at most 1"):
        fault_plan(status_rates={Fault.INTERNAL_ERROR: 0.7, Fault.STALL: 0.5})
