"""The sweeper: settles what the ledger holds open, so nothing in flight is ever forgotten.

    report = paymux.sweep(provider, handle=on_notification)   # from cron, a worker, a loop

An OPEN entry (sent, or about to be, when its process died or its answer was lost) is settled
by reconciling: its call is described again from the input the ledger kept and, when the bytes
are the same, looked up or sent again exactly as the gateway makes calls exactly once — never by
timing out to "failed". A PENDING payment (waiting for its payer) is asked its status on a
backoff schedule until it is final. A change found this way is handed to `handle` as a
notification (verified by REFETCH: it is what the API said), the same function the host's
notification endpoint runs through its guard, so the host acts on it once, whichever arrives
first. What the policy cannot settle goes to the operator queue, with the reason.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from paymux._inputs import decode
from paymux._recording import answered, refused, unknown_again
from paymux._steps import Blocking, Sleep, Steps
from paymux.errors import ConfigurationError, OutcomeUnknown, PaymuxError
from paymux.ledger import Entry, EntryState, Ledger, next_look
from paymux.models import Notification, Payment, Payout, Refund
from paymux.provider import Provider
from paymux.statuses import Authentication, NotificationKind, PaymentStatus

__all__ = ["SweepReport", "due", "settle", "sweep"]

MAX_ATTEMPTS = 40
"""Looks at one entry before it goes to the operator queue (about ten days of backoff)."""

Handle = Callable[[Notification], object]
"""What a sweep hands each change to (its result is not used)."""


@dataclass
class SweepReport:
    """What one sweep did, by the state each entry it looked at ended in."""

    looked: int = 0
    states: dict[str, int] = field(default_factory=dict)
    handled: int = 0
    """Changes handed to `handle`."""
    due: int = 0
    """Entries due when the sweep began (at most its limit): the backlog it found."""

    def count(self, state: EntryState) -> int:
        return self.states.get(state.value, 0)

    @classmethod
    def total(cls, reports: Iterable[SweepReport]) -> SweepReport:
        """One report adding up `reports`."""
        summed = cls()
        for report in reports:
            summed.looked += report.looked
            summed.handled += report.handled
            summed.due += report.due
            for state, count in report.states.items():
                summed.states[state] = summed.states.get(state, 0) + count
        return summed


def sweep(
    provider: Provider,
    *,
    handle: Handle | None = None,
    limit: int = 100,
    now: float | None = None,
    concurrency: int | None = None,
) -> SweepReport:
    """Settle up to `limit` due entries of `provider`'s instance, `concurrency` at a time (the
    instance's `sweep_concurrency` setting unless given); what happened to them.

    With a concurrency above one, `handle` is called from several threads at once.
    """
    at = time.time() if now is None else now
    workers = provider.connection.sweep.concurrency if concurrency is None else concurrency
    ids = due(provider, limit=limit, now=at)
    settle_one = partial(settle, provider, handle=handle, now=at)
    if workers <= 1 or len(ids) <= 1:
        reports = [settle_one(entry_id) for entry_id in ids]
    else:
        with ThreadPoolExecutor(min(workers, len(ids)), thread_name_prefix="paymux-sweep") as pool:
            reports = list(pool.map(settle_one, ids))
    return summed(provider, reports, due=len(ids))


def due(provider: Provider, *, limit: int = 100, now: float | None = None) -> list[str]:
    """The ids of `provider`'s due entries, for workers to `settle` one by one."""
    at = time.time() if now is None else now
    return [entry.id for entry in _ledger_of(provider).due(provider.instance, now=at, limit=limit)]


def settle(
    provider: Provider,
    entry_id: str,
    *,
    handle: Handle | None = None,
    now: float | None = None,
) -> SweepReport:
    """Settle one entry, if it is still due: safe to call twice, or from two workers at once
    (one claims it for `CLAIM` seconds; the other finds it not due and does nothing)."""
    return provider._run(settling(provider, entry_id, handle=handle, now=now))


def settling(
    provider: Provider, entry_id: str, *, handle: Handle | None, now: float | None
) -> Steps[SweepReport]:
    """`settle` as steps, for the blocking and the asyncio sweeper alike."""
    ledger = _ledger_of(provider)
    at = time.time() if now is None else now
    claimed: list[Entry] = []

    def claim(entry: Entry) -> Entry:
        if entry.state.is_closed or entry.state is EntryState.OPERATOR or entry.next_at > at:
            return entry  # settled, or being settled by another worker: nothing to do
        taken = dataclasses.replace(entry, next_at=time.time() + CLAIM)
        claimed.append(taken)
        return taken

    yield Blocking(partial(ledger.update, entry_id, claim))
    if not claimed:
        return SweepReport()
    delay = provider.connection.sweep.take_turn()
    if delay:
        yield Sleep(delay)
    settled, handled = yield from _settle(provider, ledger, claimed[0], handle, at)
    return SweepReport(looked=1, states={settled.state.value: 1}, handled=int(handled))


def summed(provider: Provider, reports: Iterable[SweepReport], *, due: int) -> SweepReport:
    """One sweep's report from its settlings' reports, told to the provider's observers."""
    report = dataclasses.replace(SweepReport.total(reports), due=due)
    provider._observers.publish_sweep(provider.name, provider.instance, report)
    return report


CLAIM = 300.0
"""Seconds an entry being settled is kept from other sweeps: longer than one settling takes;
a worker that dies meanwhile leaves it due again after that."""


def _ledger_of(provider: Provider) -> Ledger:
    if provider.connection.ledger is None:
        raise ConfigurationError(
            f"instance {provider.instance!r} keeps no ledger: set its `ledger` setting"
        )
    return provider.connection.ledger


def _settle(
    provider: Provider,
    ledger: Ledger,
    entry: Entry,
    handle: Handle | None,
    now: float,
) -> Steps[tuple[Entry, bool]]:
    """Settle a claimed entry; the entry as it ends, and whether `handle` took a change."""
    if entry.attempts >= MAX_ATTEMPTS:
        moved: Entry = yield Blocking(
            partial(
                ledger.update,
                entry.id,
                lambda found: found.moved(
                    EntryState.OPERATOR, f"still {found.state} after {found.attempts} looks", at=now
                ),
            )
        )
        return moved, False
    try:
        subject = (yield from _poll(provider, entry)) if entry.state is EntryState.PENDING else None
        if subject is None:
            subject = yield from _reconcile(provider, entry)
    except (_ForOperator, PaymuxError) as error:
        failed: Entry = yield Blocking(
            partial(ledger.update, entry.id, _after_failure(entry, error, now))
        )
        return failed, False
    changed = isinstance(subject, (Payment, Refund, Payout)) and _changed(entry, subject)
    if handle is not None and changed:
        try:
            yield Blocking(partial(handle, _as_notification(provider, subject)))
        except Exception as error:  # the host's write failed: tell it again next sweep
            note = f"the handler failed: {type(error).__name__}: {error}"
            unhandled: Entry = yield Blocking(
                partial(
                    ledger.update,
                    entry.id,
                    lambda found: _later(found.moved(found.state, note, at=now), now),
                )
            )
            return unhandled, False
    settled: Entry = yield Blocking(
        partial(
            ledger.update, entry.id, lambda found: _later(answered(found, subject, now=now), now)
        )
    )
    return settled, handle is not None and changed


def _after_failure(entry: Entry, error: Exception, now: float) -> Callable[[Entry], Entry]:
    """How an entry changes when settling it failed: to the operator queue when the policy
    cannot settle it; due again later while the outcome stays unknown or the status call fails;
    REFUSED when the gateway refused the repeated call (it certainly did nothing)."""
    note = error.message if isinstance(error, PaymuxError) else str(error)
    if isinstance(error, _ForOperator):
        return lambda found: found.moved(EntryState.OPERATOR, note, at=now)
    if isinstance(error, OutcomeUnknown):
        return lambda found: _later(unknown_again(found, note, now=now), now)
    if entry.state is EntryState.PENDING:
        return lambda found: _later(found.moved(found.state, note, at=now), now)
    return lambda found: refused(found, f"refused: {note}", now=now)


def _poll(provider: Provider, entry: Entry) -> Steps[Payment | Refund | Payout]:
    """The subject of a PENDING entry, as its status call reports it now."""
    assert entry.subject_id is not None
    if entry.operation == "payout":
        return (yield from provider._payout_status_steps(entry.subject_id, None))
    if entry.operation == "refund":
        return (yield from provider._refund_status_steps(entry.subject_id))
    return (yield from provider._status_steps(entry.subject_id, None))


def _reconcile(provider: Provider, entry: Entry) -> Steps[Any]:
    """What an OPEN entry's call made, settled as the gateway makes it exactly once."""
    call = _described_again(provider, entry)
    if call.request.body != entry.body:
        raise _ForOperator(
            f"the provider now describes this {entry.operation} with other bytes than were sent"
        )
    unknown = OutcomeUnknown(
        f"{entry.operation}: left open in the ledger",
        operation=entry.operation,
        order_id=entry.order_id,
        idempotency_key=entry.idempotency_key,
        key_expires_at=entry.key_expires_at,
        call=call,
    )
    try:
        return (yield from provider._reconcile_steps(unknown, None))
    except OutcomeUnknown as again:
        if entry.key_expires_at is not None and time.time() >= entry.key_expires_at:
            raise _ForOperator(again.message) from None
        raise


def _described_again(provider: Provider, entry: Entry) -> Any:
    value = decode(entry.input)
    if entry.operation == "create":
        return provider.describe_create(value)
    if entry.operation == "refund":
        return provider.describe_refund(value)
    if entry.operation == "payout":
        return provider.describe_payout(value)
    if entry.operation == "capture":
        return provider.describe_capture(
            value["payment_id"], value["amount"], value["currency"], value["key"]
        )
    if entry.operation == "cancel":
        return provider.describe_cancel(value["payment_id"], value["key"])
    raise _ForOperator(f"the sweeper cannot repeat a {entry.operation}")


def _changed(entry: Entry, subject: Payment | Refund | Payout) -> bool:
    """Whether `subject` says something the host has to hear: a status other than the known
    one, or a hold to capture."""
    return subject.status.value != entry.status and (
        subject.status.is_final or subject.status is PaymentStatus.AUTHORIZED
    )


def _as_notification(provider: Provider, subject: Payment | Refund | Payout) -> Notification:
    kind = {
        Payment: NotificationKind.PAYMENT,
        Refund: NotificationKind.REFUND,
        Payout: NotificationKind.PAYOUT,
    }[type(subject)]
    return Notification(
        provider=provider.name,
        instance=provider.instance,
        account=provider.account,
        kind=kind,
        subject=subject,
        fields={},
        verified_by=(Authentication.REFETCH,),
    )


def _later(entry: Entry, now: float) -> Entry:
    """`entry` counted as looked at, due again a backoff step later (if still open)."""
    return dataclasses.replace(entry, attempts=entry.attempts + 1, next_at=next_look(entry, now))


class _ForOperator(Exception):
    """The policy cannot settle this entry: a person must."""
