"""`paymux.decide`: what a host does about an order, from a notification or a polled status.

Only a full payment for the order's own id and sum, reported in a payment notification or a
status, is FULFIL; each other case has its own action and says why. When several rules apply,
the earlier one in the module docstring of paymux.decisions wins; the tests of that order are
at the end.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

import paymux
from paymux import (
    Action,
    Decision,
    Notification,
    NotificationKind,
    Payment,
    PaymentStatus,
    Payout,
    PayoutStatus,
    Refund,
    RefundStatus,
    Verdict,
    decide,
)
from paymux.providers.alikassa import AliKassaProvider, CertificateFolder
from paymux.providers.alikassa.sandbox import Merchant, Sandbox
from support import Receiver, payment_request, payout_notification

ORDER = "1001"
TOTAL = Decimal("500.00")


def payment(**changes: object) -> Payment:
    """A payment of 500.00 for order 1001, paid in full; keyword arguments replace fields."""
    paid = Payment(
        provider="alikassa",
        id="42",
        order_id=ORDER,
        status=PaymentStatus.PAID,
        amount=TOTAL,
        paid_amount=TOTAL,
    )
    return dataclasses.replace(paid, **changes)  # type: ignore[arg-type]


def notification(
    kind: NotificationKind = NotificationKind.PAYMENT, **changes: object
) -> Notification:
    subject: Payment | Payout | Refund = payment(**changes)
    if kind is NotificationKind.PAYOUT:
        subject = Payout(
            provider="alikassa",
            id="7",
            order_id=str(changes.get("order_id", ORDER)),
            status=PayoutStatus.PAID,
            amount=changes.get("amount", TOTAL),  # type: ignore[arg-type]
        )
    if kind is NotificationKind.REFUND:
        subject = Refund(
            provider="alikassa", id="r-1", payment_id="42", status=RefundStatus.SUCCEEDED
        )
    return Notification(
        provider="alikassa",
        instance="shop",
        account="93d5df06-996c-48c3-9847-348d6b580b80",
        kind=kind,
        subject=subject,
        fields={},
    )


def decided(
    subject: Notification | Payment,
    *,
    verdict: Verdict | None = None,
    accept_partial: bool = False,
) -> Decision:
    """`decide` for order 1001 of 500.00."""
    return decide(
        subject, order_id=ORDER, amount=TOTAL, verdict=verdict, accept_partial=accept_partial
    )


# -- FULFIL: paid in full, for this order ------------------------------------------------------


def test_a_notification_of_a_full_payment_for_this_order_is_fulfilled() -> None:
    subject = notification()

    decision = decided(subject, verdict=Verdict.NEW)

    assert decision == Decision(
        Action.FULFIL, subject.payment, ("paid in full: 500.00",), Verdict.NEW
    )
    assert decision.fulfil


def test_a_polled_status_of_a_full_payment_is_fulfilled_without_a_verdict() -> None:
    decision = decided(payment())

    assert (decision.action, decision.verdict) == (Action.FULFIL, None)


def test_money_compares_as_money() -> None:
    assert decide(payment(), order_id=ORDER, amount=Decimal("500")).fulfil
    assert decided(payment(amount=Decimal("500.000000000"), paid_amount=Decimal("500"))).fulfil


def test_money_that_covers_the_amount_is_a_full_payment_whatever_the_flag_says() -> None:
    assert decided(payment(is_partial=True)).fulfil
    assert decided(payment(paid_amount=Decimal("510.00"))).fulfil


def test_only_fulfil_fulfils() -> None:
    for action in Action:
        decision = Decision(action, payment(), ("why",), None)
        assert decision.fulfil is (action is Action.FULFIL)


# -- IGNORE -----------------------------------------------------------------------------------


def test_a_payout_is_ignored_even_when_it_names_this_order_and_sum() -> None:
    decision = decided(notification(NotificationKind.PAYOUT), verdict=Verdict.NEW)

    assert decision.action is Action.IGNORE
    assert decision.reasons == ("a payout notification, not a payment",)


def test_a_refund_is_ignored_and_carries_no_payment_to_mistake_for_one() -> None:
    decision = decided(notification(NotificationKind.REFUND), verdict=Verdict.NEW)

    assert decision.action is Action.IGNORE
    assert decision.payment is None
    assert decision.reasons == ("a refund notification, not a payment",)


def test_a_refund_or_payout_notification_refuses_to_be_read_as_a_payment() -> None:
    for kind in (NotificationKind.REFUND, NotificationKind.PAYOUT):
        with pytest.raises(TypeError, match=f"a {kind.value} notification is not about a payment"):
            _ = notification(kind).payment


def test_a_notification_cannot_carry_a_subject_of_another_kind() -> None:
    with pytest.raises(TypeError, match="a payout notification carries a Payout"):
        Notification(
            provider="alikassa",
            instance="shop",
            account="a",
            kind=NotificationKind.PAYOUT,
            subject=payment(),
            fields={},
        )


@pytest.mark.parametrize("verdict", [Verdict.DUPLICATE, Verdict.STALE])
def test_a_notification_handled_before_is_ignored(verdict: Verdict) -> None:
    decision = decided(notification(), verdict=verdict)

    assert decision.action is Action.IGNORE
    assert decision.reasons == (f"{verdict.value} notification: handled before",)


@pytest.mark.parametrize("status", [PaymentStatus.PENDING, PaymentStatus.UNKNOWN])
def test_a_payment_that_is_not_final_is_ignored(status: PaymentStatus) -> None:
    decision = decided(payment(status=status, paid_amount=None))

    assert decision.action is Action.IGNORE
    assert decision.reasons == (f"status is {status.value}: not final yet",)


@pytest.mark.parametrize("status", [PaymentStatus.FAILED, PaymentStatus.CANCELED])
def test_a_failed_or_canceled_payment_is_ignored(status: PaymentStatus) -> None:
    decision = decided(notification(status=status, paid_amount=None), verdict=Verdict.NEW)

    assert decision.action is Action.IGNORE
    assert decision.reasons == (f"status is {status.value}: not paid",)


# -- CAPTURE: held in full, for this order ------------------------------------------------------


def test_money_held_in_full_for_this_order_is_to_be_captured() -> None:
    held = notification(status=PaymentStatus.AUTHORIZED, paid_amount=None, hold_amount=TOTAL)

    decision = decided(held, verdict=Verdict.NEW)

    assert decision.action is Action.CAPTURE
    assert not decision.fulfil
    assert decision.reasons == ("500.00 held for this order: capture or cancel",)


def test_money_held_for_another_sum_is_rejected_not_captured() -> None:
    held = payment(status=PaymentStatus.AUTHORIZED, amount=Decimal("5.00"), paid_amount=None)

    assert decided(held).action is Action.REJECT


# -- REJECT: not this order, or not this sum ----------------------------------------------------


def test_a_payment_for_another_order_is_rejected() -> None:
    decision = decided(notification(order_id="1002"), verdict=Verdict.NEW)

    assert decision.action is Action.REJECT
    assert decision.reasons == ("order_id is '1002', expected '1001'",)


@pytest.mark.parametrize("amount", ["499.99", "500.01", "5000.00"])
def test_a_payment_of_another_sum_is_rejected(amount: str) -> None:
    decision = decided(payment(amount=Decimal(amount), paid_amount=Decimal(amount)))

    assert decision.action is Action.REJECT
    assert decision.reasons == (f"amount is {amount}, expected 500.00",)


def test_a_payment_of_an_unknown_sum_is_rejected() -> None:
    decision = decided(payment(amount=None))

    assert decision.action is Action.REJECT
    assert decision.reasons == ("amount is unknown, expected 500.00",)


def test_a_payment_for_an_order_the_shop_does_not_have_is_rejected() -> None:
    decision = decide(notification(), order_id=ORDER, amount=None, verdict=Verdict.NEW)

    assert decision.action is Action.REJECT
    assert decision.reasons == ("no order '1001'",)


def test_a_payout_naming_no_order_of_the_shop_is_ignored_not_rejected() -> None:
    payout = notification(NotificationKind.PAYOUT, order_id="payout-7")

    assert decide(payout, order_id="payout-7", amount=None).action is Action.IGNORE


def test_a_rejection_gives_every_reason() -> None:
    decision = decided(payment(order_id="1002", amount=Decimal("1.00")))

    assert decision.reasons == (
        "order_id is '1002', expected '1001'",
        "amount is 1.00, expected 500.00",
    )


# -- HOLD: paid in part -----------------------------------------------------------------------


def test_a_part_payment_is_held() -> None:
    decision = decided(payment(paid_amount=Decimal("1.00"), is_partial=True))

    assert decision.action is Action.HOLD
    assert not decision.fulfil
    assert decision.reasons == ("paid only in part: 1.00 of 500.00",)


def test_a_payment_flagged_partial_with_no_paid_sum_is_held() -> None:
    decision = decided(payment(paid_amount=None, is_partial=True))

    assert decision.action is Action.HOLD
    assert decision.reasons == ("paid only in part: an unknown part of 500.00",)


def test_a_part_payment_is_fulfilled_when_the_host_accepts_part_payments() -> None:
    decision = decided(payment(paid_amount=Decimal("1.00")), accept_partial=True)

    assert decision.action is Action.FULFIL
    assert decision.reasons == ("paid only in part: 1.00 of 500.00", "part payments are accepted")


# -- REVIEW: money after a failure --------------------------------------------------------------


def test_money_after_a_failure_or_a_cancellation_is_reviewed() -> None:
    decision = decided(notification(), verdict=Verdict.REOPENED)

    assert decision.action is Action.REVIEW
    assert decision.reasons == ("paid after the payment had failed or been canceled",)


# -- what the host must not hand to decide --------------------------------------------------------


def test_a_busy_notification_is_never_decided_on() -> None:
    with pytest.raises(ValueError, match="503"):
        decided(notification(), verdict=Verdict.BUSY)


@pytest.mark.parametrize(
    "amount", [500.0, "500.00", Decimal("NaN"), Decimal("sNaN"), Decimal("Infinity")]
)
def test_an_expected_amount_that_is_not_a_sum_of_money_is_refused(amount: object) -> None:
    with pytest.raises(ValueError, match="finite Decimal"):
        decide(payment(), order_id=ORDER, amount=amount)  # type: ignore[arg-type]


# -- when several rules apply: money safety first -----------------------------------------------


def test_a_payout_is_ignored_before_anything_else_is_looked_at() -> None:
    payout = notification(NotificationKind.PAYOUT, order_id="payout-7", amount=Decimal("1.00"))

    assert decided(payout, verdict=Verdict.REOPENED).action is Action.IGNORE


def test_a_repeat_is_ignored_even_for_another_order() -> None:
    """It was decided on when it was admitted; a repeat must not raise a second alert."""
    assert decided(notification(order_id="1002"), verdict=Verdict.DUPLICATE).action is (
        Action.IGNORE
    )


@pytest.mark.parametrize(
    "status", [PaymentStatus.PENDING, PaymentStatus.FAILED, PaymentStatus.CANCELED]
)
def test_another_order_or_sum_is_rejected_whatever_the_status(status: PaymentStatus) -> None:
    """A signed notification naming the wrong order or sum is an alarm even when it fails."""
    wrong = payment(status=status, amount=Decimal("1.00"), paid_amount=None)

    assert decided(wrong).action is Action.REJECT


def test_a_part_payment_after_a_failure_is_reviewed_and_says_both() -> None:
    late = notification(paid_amount=Decimal("1.00"), is_partial=True)

    decision = decided(late, verdict=Verdict.REOPENED, accept_partial=True)

    assert decision.action is Action.REVIEW
    assert decision.reasons == (
        "paid after the payment had failed or been canceled",
        "paid only in part: 1.00 of 500.00",
    )


# -- payouts never reach the host as payment updates ------------------------------------------


class Updates:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None, str]] = []

    @paymux.hookimpl
    def paymux_payment_update(self, payment: Payment, source: str) -> None:
        self.seen.append((source, payment.order_id, payment.status.value))


def test_a_payout_notification_is_not_published_as_a_payment_update(
    provider: AliKassaProvider,
    sandbox: Sandbox,
    merchant: Merchant,
    receiver: Receiver,
    notification_certificate: CertificateFolder,
) -> None:
    created = provider.create(payment_request(notification_url=receiver.url))
    sandbox.settle(created.id, "paid")
    payout = payout_notification(
        notification_certificate, account=merchant.account, order_id="payout-1", amount=TOTAL
    )
    updates = Updates()
    paymux.register_plugin(updates)
    try:
        paid = provider.parse_notification(receiver.wait_for(1)[0])
        parsed_payout = provider.parse_notification(payout)
    finally:
        paymux.unregister_plugin(updates)

    assert parsed_payout.kind is NotificationKind.PAYOUT, "the payout still verifies"
    assert updates.seen == [("notification", paid.payment.order_id, "paid")]
