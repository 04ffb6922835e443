"""The notification guard's store in the project's database: shared by every worker and host
that uses the database, with nothing else to run."""

from __future__ import annotations

from collections.abc import Callable

from django.db import DatabaseError, IntegrityError, transaction

from paymux.contrib.django.models import GuardRecord
from paymux.errors import GuardStoreError

ATTEMPTS = 3
"""Tries of one `update`: a try fails only when another worker inserts the same new key."""


class DatabaseStore:
    """`paymux.GuardStore` over the `GuardRecord` table: one row per key, locked while it
    changes (`select_for_update` in `transaction.atomic`).

    A key that does not exist yet cannot be locked: of two workers inserting it at once, the
    second fails on the primary key and runs `change` again on the value the first wrote. On
    SQLite, which has no row locks, set the database's `"transaction_mode": "IMMEDIATE"`.
    """

    def update(self, key: str, change: Callable[[str | None], str | None]) -> str | None:
        try:
            for _ in range(ATTEMPTS):
                try:
                    return self._update(key, change)
                except IntegrityError:
                    continue
        except DatabaseError as error:
            raise GuardStoreError(f"guard store in the database: {error}") from error
        raise GuardStoreError(f"guard store in the database: key {key!r} kept changing")

    @staticmethod
    def _update(key: str, change: Callable[[str | None], str | None]) -> str | None:
        with transaction.atomic():
            row = GuardRecord.objects.select_for_update().filter(key=key).first()
            current = None if row is None else row.value
            new = change(current)
            if row is None:
                if new is not None:
                    GuardRecord.objects.create(key=key, value=new)
            elif new is None:
                GuardRecord.objects.filter(key=key).delete()
            elif new != current:
                GuardRecord.objects.filter(key=key).update(value=new)
            return current
