"""What a host should do about an order, from a verified notification or a polled status.

A signed notification proves who sent it, not that the order is paid: it may report a failure,
a cancellation, a part payment, a payout, another order or another sum. `decide` weighs all of
it in one call, so the host's code is one branch:

    decision = paymux.decide(notification, order_id=order.id, amount=order.total, verdict=verdict)
    if decision.fulfil:
        ship(order)

The rules run in this order, the first that applies wins (see docs/guards.md for the table):
not a payment (a refund, a payout) IGNORE; a DUPLICATE or STALE verdict IGNORE (handled
before); no such order, another order or another sum REJECT; AUTHORIZED CAPTURE; not final,
FAILED or CANCELED IGNORE; PAID after a failure REVIEW; PAID in part HOLD (unless accepted);
PAID in full FULFIL. Whatever is not a proven full payment for this order is never FULFIL.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal

from paymux.guards import Verdict
from paymux.models import Notification, Payment, show_money
from paymux.statuses import NotificationKind, PaymentStatus

__all__ = ["Action", "Decision", "decide"]


class Action(str, enum.Enum):
    """What the host should do with the order."""

    FULFIL = "fulfil"
    """Paid in full, for this order: ship it."""
    CAPTURE = "capture"
    """The full sum is held for this order (a two-phase payment): capture it, or cancel it;
    ship once the capture makes it PAID."""
    HOLD = "hold"
    """Paid in part: keep the order and the money, ask for the rest or refund it."""
    IGNORE = "ignore"
    """Nothing to do: not final, failed, canceled, a payout, or handled before."""
    REVIEW = "review"
    """Money arrived after the payment had failed or been canceled: a person decides."""
    REJECT = "reject"
    """Not the payment this order expects (another order, another sum): alert, never ship."""

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Decision:
    """The action for an order, the payment it was decided on, and why (worded for a log)."""

    action: Action
    payment: Payment | None
    """The payment decided on; None for a refund or payout notification (always IGNORE)."""
    reasons: tuple[str, ...]
    verdict: Verdict | None = None

    @property
    def fulfil(self) -> bool:
        """True only when the order may be shipped."""
        return self.action is Action.FULFIL


def decide(
    subject: Notification | Payment,
    *,
    order_id: str,
    amount: Decimal | None,
    verdict: Verdict | None = None,
    accept_partial: bool = False,
) -> Decision:
    """What to do about order `order_id`, due `amount`, given a notification or a polled status.

    `amount` is None when the host has no such order: a payment for it is a REJECT. `verdict`
    is the guard's verdict for the notification, if the host has a guard. BUSY must be answered
    with a retryable status before deciding, so it raises ValueError, as does an `amount` that
    is not a finite Decimal.
    """
    if verdict is Verdict.BUSY:
        raise ValueError("a BUSY notification is answered 503 first, never decided on")
    if amount is not None and (not isinstance(amount, Decimal) or not amount.is_finite()):
        raise ValueError(f"amount must be a finite Decimal, not {amount!r}")
    if isinstance(subject, Notification):
        if subject.kind is not NotificationKind.PAYMENT:
            reason = f"a {subject.kind.value} notification, not a payment"
            return Decision(Action.IGNORE, None, (reason,), verdict)
        payment = subject.payment
    else:
        payment = subject
    action, reasons = _rule(payment, order_id, amount, verdict, accept_partial)
    return Decision(action, payment, reasons, verdict)


def _rule(
    payment: Payment,
    order_id: str,
    amount: Decimal | None,
    verdict: Verdict | None,
    accept_partial: bool,
) -> tuple[Action, tuple[str, ...]]:
    """The first rule that applies, in the order of the module's docstring."""
    if verdict in (Verdict.DUPLICATE, Verdict.STALE):
        return Action.IGNORE, (f"{verdict} notification: handled before",)
    if amount is None:
        return Action.REJECT, (f"no order {order_id!r}",)
    mismatches = payment.mismatches(order_id, amount, accept_partial=True)
    if mismatches:
        return Action.REJECT, mismatches
    if payment.status is PaymentStatus.AUTHORIZED:
        return Action.CAPTURE, (f"{show_money(amount)} held for this order: capture or cancel",)
    if not payment.status.is_final:
        return Action.IGNORE, (f"status is {payment.status}: not final yet",)
    if payment.status is not PaymentStatus.PAID:
        return Action.IGNORE, (f"status is {payment.status}: not paid",)
    part = _part_paid(payment, amount)
    if verdict is Verdict.REOPENED:
        return Action.REVIEW, ("paid after the payment had failed or been canceled", *part)
    if part and not accept_partial:
        return Action.HOLD, part
    if part:
        return Action.FULFIL, (*part, "part payments are accepted")
    return Action.FULFIL, (f"paid in full: {show_money(amount)}",)


def _part_paid(payment: Payment, amount: Decimal) -> tuple[str, ...]:
    """Why a PAID payment counts as paid only in part; empty when it is paid in full."""
    if not payment.is_short_paid(amount):
        return ()
    paid = "an unknown part" if payment.paid_amount is None else show_money(payment.paid_amount)
    return (f"paid only in part: {paid} of {show_money(amount)}",)
