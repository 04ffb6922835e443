"""Writing a money-moving call into the ledger around its sending (when the instance has one)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from paymux._calls import Call, IdempotencyKey
from paymux._events import emit
from paymux._inputs import encode
from paymux._steps import Blocking, Steps
from paymux.errors import LedgerError, OutcomeUnknown, PaymuxError, TransportError
from paymux.ledger import BACKOFF, Entry, EntryState, new_entry
from paymux.models import Balance, Payment, Payout, Refund

if TYPE_CHECKING:
    from paymux.ledger import Ledger

T = TypeVar("T")


def recorded(
    ledger: Ledger | None,
    *,
    provider: str,
    instance: str,
    operation: str,
    input: Any,
    call: Call[T],
    sending: Steps[T],
) -> Steps[T]:
    """`sending` (the call's steps), with its intent written before and its outcome after.

    The entry is written before anything is sent (a failure to write it raises, and nothing is
    sent). After the answer a failure to update it is only logged: the gateway acted, and the
    sweeper finds the entry still open and settles it.
    """
    if ledger is None:
        return (yield from sending)
    mechanism = call.exactly_once
    key = mechanism if isinstance(mechanism, IdempotencyKey) else None
    written = new_entry(
        provider=provider,
        instance=instance,
        operation=operation,
        input=encode(operation, input),
        body=call.request.body,
        order_id=mechanism.order_id if mechanism is not None else None,
        idempotency_key=key.key if key else None,
        key_expires_at=time.time() + key.lifetime if key else None,
    )
    entry: Entry = yield Blocking(lambda: ledger.open(written))
    try:
        result = yield from sending
    except PaymuxError as error:
        change = _failed(error)
        yield Blocking(lambda: _update(ledger, entry, change))
        raise
    yield Blocking(lambda: _update(ledger, entry, lambda found: answered(found, result)))
    return result


def _failed(error: PaymuxError) -> Callable[[Entry], Entry]:
    """How an entry changes when its call raised `error`: REFUSED when the gateway certainly
    did nothing (a refusal, a request that never left), still OPEN when it may have acted."""
    if isinstance(error, OutcomeUnknown) or (
        isinstance(error, TransportError) and error.request_sent
    ):
        return lambda entry: unknown_again(entry, error.message)
    if isinstance(error, TransportError):
        return lambda entry: refused(entry, f"never sent: {error.message}")
    return lambda entry: refused(entry, f"refused: {error.message}")


def answered(entry: Entry, result: object, *, now: float | None = None) -> Entry:
    """`entry` once the gateway answered with `result`: PENDING while a payment or payout waits
    (its status is asked later), else SETTLED."""
    at = time.time() if now is None else now
    if isinstance(result, Balance) or not isinstance(result, (Payment, Refund, Payout)):
        return entry.moved(EntryState.SETTLED, "answered", at=at)
    state = EntryState.SETTLED if result.status.is_final else EntryState.PENDING
    moved = entry.moved(state, f"{result.status.value} ({result.id})", at=at)
    return dataclasses.replace(
        moved, subject_id=result.id, status=result.status.value, next_at=at + BACKOFF[0]
    )


def unknown_again(entry: Entry, why: str, *, now: float | None = None) -> Entry:
    at = time.time() if now is None else now
    return entry.moved(EntryState.OPEN, f"outcome unknown: {why}", at=at)


def refused(entry: Entry, why: str, *, now: float | None = None) -> Entry:
    return entry.moved(EntryState.REFUSED, why, at=time.time() if now is None else now)


def _update(ledger: Ledger, entry: Entry, change: Callable[[Entry], Entry]) -> None:
    try:
        ledger.update(entry.id, change)
    except LedgerError as error:
        emit("warning", "paymux.ledger.unwritten", entry=entry.id, error=error.message)
