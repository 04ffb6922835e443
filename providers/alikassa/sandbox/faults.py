"""Misbehaviour on purpose, so a shop can rehearse every failure before production shows it.

Faults are chosen three ways, checked in this order for each request:

1. per request: the header `X-Sandbox-Fault: <fault>` on any merchant API call, or an order_id
   starting with `fault-<fault>-` on a payment or payout create (underscores in the name written
   as dashes, e.g. `fault-internal-error-1001`), which also applies notification faults to it;
2. once: `sandbox.inject(fault, on=<operation>, times=1)`, the operation one of `OPERATIONS`:
   "create" and "status" (payments), "payout" and "payout_status", "balance", "notification";
3. by rate: `Sandbox(fault_rates={Fault.INTERNAL_ERROR: 0.3}, fault_seed=1)` for creates (and
   notifications), `Sandbox(status_fault_rates=...)` for status calls, or
   `sandbox.faults.set_rate(fault, rate, on=...)` for any operation: each request draws once,
   with the given probabilities side by side (0.3 and 0.1 mean 30 % one, 10 % the other, 60 %
   none).

Request faults on a payment or payout create happen *after* it is stored, as on the real
gateway: the payment or payout exists although the client hears no proper answer.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from paymux.providers.base.faults import FaultPlan


class Fault(enum.Enum):
    """What the sandbox can get wrong."""

    INTERNAL_ERROR = "internal_error"
    """Answer 500 {"message": "Internal server error"} (on a create or payout: after storing)."""
    DROP_CONNECTION = "drop_connection"
    """Close the connection without answering (on a create or payout: after storing)."""
    STALL = "stall"
    """Answer only after `stall_seconds` (5 s by default): beyond a client's read timeout."""
    HTML_ANSWER = "html_answer"
    """Answer 200 with an HTML error page instead of the JSON body."""
    TRUNCATED_JSON = "truncated_json"
    """Answer 200 with the JSON body cut in half."""
    DUPLICATE_NOTIFICATION = "duplicate_notification"
    """Deliver each notification twice."""
    STALE_NOTIFICATION = "stale_notification"
    """After a final notification, deliver an older (genuinely signed) `wait` one: out of order."""
    FORGED_NOTIFICATION = "forged_notification"
    """Before each notification, deliver a copy whose signature does not verify."""

    @property
    def is_notification_fault(self) -> bool:
        return self in NOTIFICATION_FAULTS

    @property
    def prefix(self) -> str:
        """The order_id prefix that asks for this fault on one payment."""
        return f"fault-{self.value.replace('_', '-')}-"


NOTIFICATION_FAULTS = frozenset(
    {Fault.DUPLICATE_NOTIFICATION, Fault.STALE_NOTIFICATION, Fault.FORGED_NOTIFICATION}
)
OPERATIONS = ("create", "status", "payout", "payout_status", "balance", "notification")
HEADER = "x-sandbox-fault"


def fault_plan(
    rates: Mapping[Fault, float] | None = None,
    *,
    status_rates: Mapping[Fault, float] | None = None,
    seed: int | None = None,
) -> FaultPlan[Fault]:
    """The sandbox's plan: `rates` spoil creates (notifications, for notification faults),
    `status_rates` status calls."""
    plan = FaultPlan(OPERATIONS, fits=_fits, default_operation=_default_operation, seed=seed)
    for fault, rate in (rates or {}).items():
        plan.set_rate(fault, rate)
    for fault, rate in (status_rates or {}).items():
        plan.set_rate(fault, rate, on="status")
    return plan


def asked_for(header: str | None = None, order_id: str = "") -> set[Fault]:
    """The faults a request asks for itself: by its `X-Sandbox-Fault` header, or by an order id
    starting with a fault's prefix."""
    asked = {fault for fault in Fault if order_id.startswith(fault.prefix)}
    if header:
        asked |= {fault for fault in Fault if fault.value == header.strip().lower()}
    return asked


def _fits(fault: Fault, operation: str) -> bool:
    return (operation == "notification") == fault.is_notification_fault


def _default_operation(fault: Fault) -> str:
    return "notification" if fault.is_notification_fault else "create"
