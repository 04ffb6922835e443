"""The ledger in the project's database, so that the admin lists open operations.

`PAYMUX["ledger"] = True` gives every instance this ledger: each money-moving call is written
as a `LedgerEntry` row before it is sent, and `paymux.sweep(provider)` settles it later.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils.timezone import make_naive

from paymux.contrib.django.models import LedgerEntry
from paymux.errors import LedgerError
from paymux.ledger import Entry, EntryState, Ledger, from_document, to_document

UNSETTLED = (EntryState.OPEN.value, EntryState.PENDING.value)
"""The states the sweeper looks at."""


class DatabaseLedger(Ledger):
    """`paymux.Ledger` over the `LedgerEntry` table of Django's default database.

    Each `update` locks its row (`select_for_update`) in a transaction of its own; on SQLite,
    where there is no row lock, set the database's `"transaction_mode": "IMMEDIATE"` option.
    Call money-moving operations outside `transaction.atomic` (and `ATOMIC_REQUESTS`): an
    entry rolled back with the caller's transaction would forget a call that was sent.
    """

    def open(self, entry: Entry) -> Entry:
        with _failures():
            LedgerEntry.objects.create(**_columns(entry))
        return entry

    def update(self, entry_id: str, change: Callable[[Entry], Entry]) -> Entry:
        with _failures(), transaction.atomic():
            row = LedgerEntry.objects.select_for_update().filter(pk=entry_id).first()
            if row is None:
                raise LedgerError(f"no ledger entry {entry_id!r}")
            changed = change(from_document(row.document))
            LedgerEntry.objects.filter(pk=entry_id).update(**_columns(changed))
        return changed

    def get(self, entry_id: str) -> Entry:
        with _failures():
            row = LedgerEntry.objects.filter(pk=entry_id).first()
        if row is None:
            raise LedgerError(f"no ledger entry {entry_id!r}")
        return from_document(row.document)

    def due(self, instance: str, *, now: float, limit: int = 100) -> list[Entry]:
        with _failures():
            rows = LedgerEntry.objects.filter(
                instance=instance, state__in=UNSETTLED, next_at__lte=now
            ).order_by("next_at")[:limit]
            return [from_document(row.document) for row in rows]

    def entries(self, states: Sequence[EntryState] = tuple(EntryState)) -> list[Entry]:
        with _failures():
            rows = LedgerEntry.objects.filter(state__in=[state.value for state in states])
            return [from_document(row.document) for row in rows]

    def close(self) -> None:
        """Nothing to do: Django manages the database connections."""


@contextmanager
def _failures() -> Iterator[None]:
    """Database failures as `LedgerError`, as the `Ledger` protocol promises."""
    try:
        yield
    except DatabaseError as error:
        raise LedgerError(f"ledger in the database: {error}") from error


def _columns(entry: Entry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "provider": entry.provider,
        "instance": entry.instance,
        "operation": entry.operation,
        "state": entry.state.value,
        "order_id": entry.order_id,
        "subject_id": entry.subject_id,
        "status": entry.status,
        "reason": entry.reason,
        "attempts": entry.attempts,
        "next_at": entry.next_at,
        "opened_at": _moment(entry.history[0].at if entry.history else entry.next_at),
        "document": to_document(entry),
    }


def _moment(at: float) -> datetime:
    moment = datetime.fromtimestamp(at, tz=timezone.utc)
    return moment if settings.USE_TZ else make_naive(moment)
