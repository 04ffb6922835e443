"""Misbehaviour on purpose, so a provider can rehearse every failure YooKassa can show it.

Faults are chosen three ways, checked in this order for each request:

1. per request: the header `X-Emulator-Fault: <fault>` (one name, or several separated by
   commas) on any `/v3` call. On `POST /v3/payments` a notification fault in the header sticks
   to the payment it creates: every notification about that payment shows it;
2. once: `emulator.inject(fault, on="create" | "status" | "capture" | "cancel" | "refund" |
   "notification", times=1)`;
3. by rate: `Emulator(fault_rates={Fault.INTERNAL_ERROR: 0.3}, fault_seed=1)` for creates (and
   notifications, for notification faults), or `emulator.faults.set_rate(fault, rate, on=...)`:
   each request draws once, with the given probabilities side by side.

Request faults that spoil an answer (INTERNAL_ERROR, DROP_CONNECTION, STALL) strike *after* the
request acted, as on the real API: the payment exists although the client heard no proper
answer, and a repeat with the same Idempotence-Key returns the original result.
TOO_MANY_REQUESTS and PROCESSING strike before acting (see `Fault`).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from paymux.providers.base.faults import FaultPlan


class Fault(enum.Enum):
    """What the emulator can get wrong."""

    INTERNAL_ERROR = "internal_error"
    """Act, then answer 500 {"type": "error", "code": "internal_server_error", ...}."""
    DROP_CONNECTION = "drop_connection"
    """Act, then close the connection without answering."""
    STALL = "stall"
    """Act, then answer only after `stall_seconds` (5 s by default): past a client's timeout."""
    PROCESSING = "processing"
    """Do not act: answer 202 {"type": "processing", "retry_after": <ms>}. The repeat with the
    same key and body acts (YooKassa's SDKs repeat a 202 the same way)."""
    TOO_MANY_REQUESTS = "too_many_requests"
    """Do not act: answer 429 {"type": "error", "code": "too_many_requests", ...}."""
    DUPLICATE_NOTIFICATION = "duplicate_notification"
    """Deliver the notification twice."""
    STALE_NOTIFICATION = "stale_notification"
    """After the notification, deliver again the payment's previous genuine notification (an
    older state, out of order). Nothing is added when there was no earlier one."""
    FORGED_NOTIFICATION = "forged_notification"
    """Before the notification, deliver a copy from `forged_sender_address` (outside the allowed
    senders) and, for payments, one from the genuine sender claiming a status the API does not
    confirm (payment.succeeded for a payment that did not succeed, else payment.canceled)."""

    @property
    def is_notification_fault(self) -> bool:
        return self in NOTIFICATION_FAULTS


NOTIFICATION_FAULTS = frozenset(
    {Fault.DUPLICATE_NOTIFICATION, Fault.STALE_NOTIFICATION, Fault.FORGED_NOTIFICATION}
)
FAULT_OPERATIONS = ("create", "status", "capture", "cancel", "refund", "notification")
"""Where a fault can strike: the five kinds of API call, and notification delivery."""
HEADER = "x-emulator-fault"


def faults_named(header: str | None) -> set[Fault]:
    """The faults a `X-Emulator-Fault` header names; unknown names are ignored."""
    names = {name.strip().lower() for name in (header or "").split(",")}
    return {fault for fault in Fault if fault.value in names}


def fault_plan(
    rates: Mapping[Fault, float] | None = None, *, seed: int | None = None
) -> FaultPlan[Fault]:
    """The emulator's plan: `rates` spoil creates (notifications, for notification faults)."""
    return FaultPlan(
        FAULT_OPERATIONS, fits=_fits, default_operation=_default_operation, rates=rates, seed=seed
    )


def _fits(fault: Fault, operation: str) -> bool:
    if operation == "notification":
        return fault.is_notification_fault
    if fault.is_notification_fault:
        return False
    return not (fault is Fault.PROCESSING and operation == "status")


def _default_operation(fault: Fault) -> str:
    return "notification" if fault.is_notification_fault else "create"
