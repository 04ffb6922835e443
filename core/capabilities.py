"""What a provider offers, declared once so that hosts, the CLI and the conformance kit read it
instead of guessing.

    class MyGateway(Provider):
        capabilities = Capabilities(
            operations={Operation.REFUND, Operation.CAPTURE, Operation.CANCEL},
            status_by={Lookup.PAYMENT_ID},
            notifications={Authentication.SENDER, Authentication.REFETCH},
        )

`create`, `status` and `parse_notification` are always offered; an operation not declared
raises `Unsupported` before anything is sent.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from paymux.statuses import Authentication

__all__ = ["Capabilities", "Lookup", "Operation"]


class Operation(str, enum.Enum):
    """An operation of the provider contract."""

    CREATE = "create"
    STATUS = "status"
    REFUND = "refund"
    REFUND_STATUS = "refund_status"
    CAPTURE = "capture"
    CANCEL = "cancel"
    PAYOUT = "payout"
    PAYOUT_STATUS = "payout_status"
    BALANCE = "balance"

    def __str__(self) -> str:
        return self.value


class Lookup(str, enum.Enum):
    """What `status` can find a payment by."""

    PAYMENT_ID = "payment_id"
    ORDER_ID = "order_id"

    def __str__(self) -> str:
        return self.value


ALWAYS = frozenset({Operation.CREATE, Operation.STATUS})


@dataclass(frozen=True, init=False)
class Capabilities:
    """The operations a provider offers, how `status` finds a payment, how notifications are
    authenticated (checked in the order: sender, signature, re-fetch)."""

    operations: frozenset[Operation]
    status_by: frozenset[Lookup]
    notifications: frozenset[Authentication]

    def __init__(
        self,
        *,
        operations: Iterable[Operation] = (),
        status_by: Iterable[Lookup] = (Lookup.PAYMENT_ID,),
        notifications: Iterable[Authentication] = (Authentication.SIGNATURE,),
    ) -> None:
        object.__setattr__(self, "operations", ALWAYS | frozenset(operations))
        object.__setattr__(self, "status_by", frozenset(status_by))
        object.__setattr__(self, "notifications", frozenset(notifications))
        if not self.status_by:
            raise ValueError("status must work by payment_id, order_id or both")
        if not self.notifications:
            raise ValueError("a provider must say how its notifications are authenticated")

    def offers(self, operation: Operation) -> bool:
        return operation in self.operations

    def describe(self) -> str:
        """One line for `paymux providers`."""
        operations = ", ".join(sorted(op.value for op in self.operations))
        status_by = " or ".join(sorted(lookup.value for lookup in self.status_by))
        notifications = " + ".join(sorted(auth.value for auth in self.notifications))
        return f"{operations}; status by {status_by}; notifications by {notifications}"
