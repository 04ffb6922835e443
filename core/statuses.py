"""Where a payment, a refund or a payout stands, and what a notification is about.

Statuses only ever move forward (`progress`): the guard admits each change once, in an order
that makes sense, by that rule.
"""

from __future__ import annotations

import enum
from typing import Any

__all__ = [
    "Authentication",
    "NotificationKind",
    "PaymentStatus",
    "PayoutStatus",
    "RefundStatus",
    "Status",
    "progress",
]


class PaymentStatus(str, enum.Enum):
    """Where a payment stands. UNKNOWN means the provider has not confirmed an outcome."""

    PENDING = "pending"
    """Waiting for the payer."""
    AUTHORIZED = "authorized"
    """The payer's money is held for the shop: capture it (or cancel) before the hold ends."""
    PAID = "paid"
    CANCELED = "canceled"
    FAILED = "failed"
    UNKNOWN = "unknown"

    @property
    def is_final(self) -> bool:
        """True once the provider will not change the status any more."""
        return self in _FINAL

    def __str__(self) -> str:
        return self.value


_FINAL = frozenset({PaymentStatus.PAID, PaymentStatus.CANCELED, PaymentStatus.FAILED})


class RefundStatus(str, enum.Enum):
    """Where a refund stands: money going back to a payer."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    CANCELED = "canceled"
    UNKNOWN = "unknown"

    @property
    def is_final(self) -> bool:
        return self in (RefundStatus.SUCCEEDED, RefundStatus.CANCELED)

    def __str__(self) -> str:
        return self.value


class PayoutStatus(str, enum.Enum):
    """Where a payout stands: money the shop sends to someone (a seller, a winner, a customer)."""

    PENDING = "pending"
    PAID = "paid"
    FAILED = "failed"
    CANCELED = "canceled"
    UNKNOWN = "unknown"

    @property
    def is_final(self) -> bool:
        return self in (PayoutStatus.PAID, PayoutStatus.FAILED, PayoutStatus.CANCELED)

    def __str__(self) -> str:
        return self.value


Status = PaymentStatus | RefundStatus | PayoutStatus
"""The status of a notification's subject: a payment's, a refund's or a payout's."""

_PROGRESS: dict[type[Status], dict[Any, int]] = {
    PaymentStatus: {
        PaymentStatus.UNKNOWN: 0,
        PaymentStatus.PENDING: 1,
        PaymentStatus.AUTHORIZED: 2,
        PaymentStatus.CANCELED: 3,
        PaymentStatus.FAILED: 3,
        PaymentStatus.PAID: 4,
    },
    RefundStatus: {
        RefundStatus.UNKNOWN: 0,
        RefundStatus.PENDING: 1,
        RefundStatus.CANCELED: 2,
        RefundStatus.SUCCEEDED: 3,
    },
    PayoutStatus: {
        PayoutStatus.UNKNOWN: 0,
        PayoutStatus.PENDING: 1,
        PayoutStatus.CANCELED: 2,
        PayoutStatus.FAILED: 2,
        PayoutStatus.PAID: 3,
    },
}


def progress(status: Status) -> int:
    """How far along a payment, refund or payout is: statuses only ever climb (guards rely on
    it), and equal numbers are alternative ends (CANCELED, FAILED)."""
    return _PROGRESS[type(status)][status]


class NotificationKind(str, enum.Enum):
    """What a notification is about: each kind carries its own subject, never another's."""

    PAYMENT = "payment"
    REFUND = "refund"
    PAYOUT = "payout"

    def __str__(self) -> str:
        return self.value


class Authentication(str, enum.Enum):
    """How a notification was proven to come from the gateway."""

    SIGNATURE = "signature"
    """A signature over its fields verified with the gateway's key."""
    SENDER = "sender"
    """It came from an address in the gateway's published ranges."""
    REFETCH = "refetch"
    """Its object was fetched from the gateway's API, and only that answer is used."""

    def __str__(self) -> str:
        return self.value
