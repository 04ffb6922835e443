"""The generic payment model every provider speaks.

Money is always `Decimal`. Reprs mask personal data so that a model printed into a log or a
traceback leaks nothing; `Payment.raw` keeps the provider's full payload for the host's storage
and is left out of the repr.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from paymux._redaction import mask_email, mask_text, redact
from paymux.errors import PaymuxError
from paymux.statuses import (
    Authentication,
    NotificationKind,
    PaymentStatus,
    PayoutStatus,
    RefundStatus,
)


@dataclass(frozen=True)
class Customer:
    """The payer, as far as the shop knows them. `ip` and `user_agent` come from their browser.

    Every field is optional here: each provider requires what its gateway requires, and says so
    with a `ValidationError` before anything is sent.
    """

    ip: str | None = None
    user_agent: str | None = None
    account: str | None = None
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    address: str | None = None
    city: str | None = None
    state: str | None = None
    post_code: str | None = None
    birth_date: date | None = None

    def __repr__(self) -> str:
        shown = {
            "ip": self.ip,
            "account": self.account,
            "email": mask_email(self.email) if self.email else None,
            "phone": mask_text(self.phone) if self.phone else None,
            "first_name": mask_text(self.first_name) if self.first_name else None,
            "last_name": mask_text(self.last_name) if self.last_name else None,
        }
        inner = ", ".join(f"{key}={value!r}" for key, value in shown.items() if value is not None)
        return f"Customer({inner})"


@dataclass(frozen=True)
class PaymentRequest:
    """What the shop asks a provider to charge.

    `options` holds provider-specific settings (each provider's guide lists its own, such as a
    payment method `service`).
    `lifetime` is how long the customer may take to pay, in seconds.
    """

    order_id: str
    amount: Decimal
    customer: Customer = field(default_factory=Customer)
    currency: str | None = None
    description: str | None = None
    success_url: str | None = None
    fail_url: str | None = None
    notification_url: str | None = None
    lifetime: int | None = None
    capture: bool = True
    """False asks for a two-phase payment: the money is held (AUTHORIZED) until `capture`."""
    idempotency_key: str | None = None
    """The key a gateway with idempotency keys gets; paymux makes one when it is left out."""
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PaymentDestination:
    """Where the payer sends the money themselves, when there is no payment page to send them to.

    Gateways that take card-to-card transfers answer a create with the card to pay to, its
    holder and the bank; the shop shows these to the payer. The repr keeps the card number's
    first 6 and last 4 digits and masks the holder's name.
    """

    card_number: str | None = None
    holder_name: str | None = None
    bank: str | None = None

    def __repr__(self) -> str:
        shown = redact(
            {"card_number": self.card_number, "holder_name": self.holder_name, "bank": self.bank}
        )
        inner = ", ".join(f"{key}={value!r}" for key, value in shown.items() if value is not None)
        return f"PaymentDestination({inner})"


@dataclass(frozen=True)
class Payment:
    """A snapshot of a payment as the provider last reported it."""

    provider: str
    """The provider's registered name, as in the configuration."""
    id: str
    """The gateway's id of the payment: what `status(payment_id=...)` takes."""
    order_id: str | None
    """The shop's order id, as the gateway keeps it (None when it keeps none)."""
    status: PaymentStatus
    amount: Decimal | None = None
    """The sum asked for; None when the gateway's answer did not say."""
    paid_amount: Decimal | None = None
    """The sum the payer actually paid, where the gateway reports it."""
    fee: Decimal | None = None
    """The gateway's commission, where reported."""
    currency: str | None = None
    """ISO 4217 code."""
    is_partial: bool = False
    """The gateway's own flag for a part payment (see `is_short_paid`, which weighs sums first)."""
    redirect_url: str | None = None
    """The payment page to send the customer to."""
    hold_amount: Decimal | None = None
    """Money held: for an AUTHORIZED payment, the sum that `capture` can take."""
    hold_until: str | None = None
    """When a hold ends (ISO 8601 or the gateway's own text): capture or cancel before."""
    refunded_amount: Decimal | None = None
    """The sum refunded so far, where the gateway reports it."""
    destination: PaymentDestination | None = None
    """Where the payer transfers the money when the gateway has no page for them."""
    instance: str | None = None
    """The configured instance that reported it."""
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    """The gateway's full payload, for the host's records."""

    def matches(
        self,
        order_id: str | None = None,
        amount: Decimal | None = None,
        *,
        accept_partial: bool = False,
    ) -> bool:
        """True when this payment is the one the host expects (`None` skips a check).

        Hosts should call this before fulfilling: a genuine, signed notification can still
        be for another order or a smaller sum. A PAID payment that was paid only in part does
        not match `amount` unless `accept_partial` is given.
        """
        return not self.mismatches(order_id, amount, accept_partial=accept_partial)

    def check(
        self,
        order_id: str | None = None,
        amount: Decimal | None = None,
        *,
        accept_partial: bool = False,
    ) -> Payment:
        """`matches`, raising `PaymentMismatch` (with every reason) instead of returning False.

        Returns the payment itself, so a check reads as one line:
        `payment = notification.payment.check(order_id=order.id, amount=order.total)`.
        """
        reasons = self.mismatches(order_id, amount, accept_partial=accept_partial)
        if reasons:
            raise PaymentMismatch(self, reasons)
        return self

    def mismatches(
        self,
        order_id: str | None = None,
        amount: Decimal | None = None,
        *,
        accept_partial: bool = False,
    ) -> tuple[str, ...]:
        """Why this payment is not the one expected; empty when it is (see `matches`)."""
        reasons: list[str] = []
        if order_id is not None and self.order_id != order_id:
            reasons.append(f"order_id is {self.order_id!r}, expected {order_id!r}")
        if amount is not None:
            if self.amount is None:
                reasons.append(f"amount is unknown, expected {amount}")
            elif self.amount != amount:
                reasons.append(
                    f"amount is {show_money(self.amount)}, expected {show_money(amount)}"
                )
            elif self.is_short_paid(amount) and not accept_partial:
                paid = (
                    "an unknown part" if self.paid_amount is None else show_money(self.paid_amount)
                )
                reasons.append(f"paid only in part: {paid} of {show_money(amount)}")
        return tuple(reasons)

    def is_short_paid(self, amount: Decimal | None = None) -> bool:
        """True for a PAID payment that received less than `amount` (default: its own amount).

        The gateway's `is_partial` flag counts only when the paid sum is unknown: money that
        covers the amount is a full payment, whatever the flag says.
        """
        if self.status is not PaymentStatus.PAID:
            return False
        expected = self.amount if amount is None else amount
        if self.paid_amount is None or expected is None:
            return self.is_partial
        return self.paid_amount < expected


def show_money(value: Decimal) -> str:
    """`value` for a message: cents always shown, trailing zeros beyond them dropped."""
    text = f"{value.normalize():f}"
    whole, _, cents = text.partition(".")
    return f"{whole}.{cents.ljust(2, '0')}"


class PaymentMismatch(PaymuxError):
    """A payment is not what the host expected: another order, another sum, or paid in part.

    `payment` is the payment as reported; `reasons` says every way it differs.
    """

    def __init__(self, payment: Payment, reasons: tuple[str, ...] | list[str]) -> None:
        self.payment = payment
        self.reasons = tuple(reasons)
        super().__init__(f"payment {payment.provider}:{payment.id}: " + "; ".join(self.reasons))


@dataclass(frozen=True)
class RefundRequest:
    """What the shop asks to give back: `amount` of payment `payment_id` (None: what is left).

    `idempotency_key` is made by paymux when left out, for gateways that take one.
    """

    payment_id: str
    amount: Decimal | None = None
    currency: str | None = None
    description: str | None = None
    idempotency_key: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Refund:
    """A refund as the provider last reported it."""

    provider: str
    id: str
    payment_id: str
    """The payment the money goes back from."""
    status: RefundStatus
    amount: Decimal | None = None
    currency: str | None = None
    instance: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class PayoutRequest:
    """Money the shop sends out: to a card `number` (or, for some methods, a phone).

    `order_id` is the shop's unique id of the payout; `recipient` the payee's details as the
    provider documents them (names, bank code, card expiry...). The card number is masked in
    every repr.
    """

    order_id: str
    amount: Decimal
    number: str = field(repr=False)
    currency: str | None = None
    recipient: Mapping[str, Any] = field(default_factory=dict, repr=False)
    notification_url: str | None = None
    idempotency_key: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Payout:
    """A payout as the provider last reported it."""

    provider: str
    id: str
    order_id: str | None
    status: PayoutStatus
    amount: Decimal | None = None
    fee: Decimal | None = None
    currency: str | None = None
    instance: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class Balance:
    """What the account holds: `available` to pay out, `held` (reserved for payouts or
    disputes) and `reserve` (kept back by the gateway), in `currency` where reported."""

    provider: str
    available: Decimal
    held: Decimal = Decimal(0)
    reserve: Decimal = Decimal(0)
    currency: str | None = None
    instance: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


Subject = Payment | Refund | Payout
"""What a notification is about."""


@dataclass(frozen=True)
class Notification:
    """A verified notification from a provider: what changed, and the fields it came with.

    `subject` is a `Payment`, a `Refund` or a `Payout`, as `kind` says; `payment` gives the
    payment and refuses any other kind, so no payment handler can take a refund or a payout
    for a payment. `instance` and `account` say which configured account it was verified for,
    so that two accounts (or a restarted sandbox) reusing one id never share a guard record.
    `verified_by` says how it was authenticated.
    """

    provider: str
    instance: str
    account: str
    kind: NotificationKind
    subject: Subject
    fields: Mapping[str, Any] = field(repr=False)
    verified_by: tuple[Authentication, ...] = ()

    def __post_init__(self) -> None:
        expected = {
            NotificationKind.PAYMENT: Payment,
            NotificationKind.REFUND: Refund,
            NotificationKind.PAYOUT: Payout,
        }[self.kind]
        if not isinstance(self.subject, expected):
            raise TypeError(f"a {self.kind.value} notification carries a {expected.__name__}")

    @property
    def order_id(self) -> str | None:
        """The shop's order id of a payment or payout; None for a refund (it names a payment)."""
        return None if isinstance(self.subject, Refund) else self.subject.order_id

    @property
    def payment(self) -> Payment:
        """The payment; TypeError for a refund or payout notification (see `subject`)."""
        if not isinstance(self.subject, Payment):
            raise TypeError(
                f"a {self.kind.value} notification is not about a payment: read .{self.kind.value}"
            )
        return self.subject

    @property
    def refund(self) -> Refund:
        """The refund; TypeError for any other kind."""
        if not isinstance(self.subject, Refund):
            raise TypeError(f"a {self.kind.value} notification is not about a refund")
        return self.subject

    @property
    def payout(self) -> Payout:
        """The payout; TypeError for any other kind."""
        if not isinstance(self.subject, Payout):
            raise TypeError(f"a {self.kind.value} notification is not about a payout")
        return self.subject


@dataclass(frozen=True)
class Redirect:
    """A verified redirect of the customer back to the shop."""

    provider: str
    order_id: str
    payment_uuid: str
