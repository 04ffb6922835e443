"""A sandbox's state folder, so that a restarted sandbox carries on where the last one stopped.

A shop under development keeps its configuration while the sandbox restarts: the same accounts
must still be known, the same notification key must still sign, and the payments and payouts
made before must still answer a status call. The folder holds:

- `state.json`: the accounts (id, registered public keys for payments and payouts, allowed),
  the payments, the payouts and the balances, rewritten whole and atomically (a temporary file,
  then a rename) after each change, mode 0600; a file from before payouts reads as none;
- `notification/`: the notification certificate (`private.pem` and `password.txt` 0600);
- `payment/`: where `paymux sandbox --state` keeps the merchant's payment certificate;
- `payout/`: where a merchant's payout certificate can be kept the same way.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from paymux import CertificateError, ConfigurationError
from paymux.providers.alikassa.keys import load_public_key
from paymux.providers.alikassa.sandbox.balances import Balance
from paymux.providers.alikassa.sandbox.payments import Service, StoredPayment
from paymux.providers.alikassa.sandbox.payouts import PayoutService, StoredPayout

STATE_FILE = "state.json"
NOTIFICATION_FOLDER = "notification"
PAYMENT_FOLDER = "payment"
PAYOUT_FOLDER = "payout"
VERSION = 1
_DECIMAL = "$decimal"


@dataclass(frozen=True)
class StoredAccount:
    """A registered merchant account as the state folder keeps it."""

    account: str
    public_key_pem: str
    allowed: bool = True
    payout_public_key_pem: str | None = None


@dataclass(frozen=True)
class SavedState:
    accounts: list[StoredAccount]
    payments: list[StoredPayment]
    payouts: list[StoredPayout] = field(default_factory=list)
    balances: dict[str, Balance] = field(default_factory=dict)


class StateFolder:
    """Reads and writes one sandbox state folder (made, mode 0700, if it does not exist)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigurationError(
                f"cannot use {self.path} as the sandbox state folder: {error.strerror or error}"
            ) from None

    @property
    def file(self) -> Path:
        return self.path / STATE_FILE

    @property
    def notification_folder(self) -> Path:
        return self.path / NOTIFICATION_FOLDER

    @property
    def payment_folder(self) -> Path:
        return self.path / PAYMENT_FOLDER

    @property
    def payout_folder(self) -> Path:
        return self.path / PAYOUT_FOLDER

    def load(self) -> SavedState:
        """What the folder holds; nothing for a new folder. A damaged file is a plain error."""
        try:
            text = self.file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return SavedState([], [])
        except (OSError, UnicodeDecodeError) as error:
            raise self._unreadable(error) from None
        try:
            saved = json.loads(text, object_hook=_decoded)
            return SavedState(
                accounts=[_account(record) for record in saved["accounts"]],
                payments=[_payment(record) for record in saved["payments"]],
                payouts=[_payout(record) for record in saved.get("payouts", [])],
                balances={
                    account: Balance(**record)
                    for account, record in saved.get("balances", {}).items()
                },
            )
        except (ValueError, TypeError, KeyError, ArithmeticError, CertificateError) as error:
            raise self._unreadable(error) from None

    def save(
        self,
        accounts: list[StoredAccount],
        payments: list[StoredPayment],
        payouts: list[StoredPayout] | None = None,
        balances: dict[str, Balance] | None = None,
    ) -> None:
        """Replace the state file at once: a reader sees the old state or the new, never half."""
        state = {
            "version": VERSION,
            "accounts": [dataclasses.asdict(account) for account in accounts],
            "payments": [_record(payment) for payment in payments],
            "payouts": [dataclasses.asdict(payout) for payout in payouts or []],
            "balances": {
                account: dataclasses.asdict(balance)
                for account, balance in (balances or {}).items()
            },
        }
        text = json.dumps(state, default=_encoded, indent=1)
        handle, temporary = tempfile.mkstemp(prefix=".state-", dir=self.path)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as file:  # mkstemp makes it 0600
                file.write(text)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.file)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def _unreadable(self, error: Exception) -> ConfigurationError:
        return ConfigurationError(
            f"cannot read the sandbox state in {self.file}: {error} "
            "(remove the folder to start afresh)"
        )


def _record(payment: StoredPayment) -> dict[str, Any]:
    record = {field.name: getattr(payment, field.name) for field in dataclasses.fields(payment)}
    record["service"] = dataclasses.asdict(payment.service)
    return record


def _account(record: dict[str, Any]) -> StoredAccount:
    account = StoredAccount(**record)
    load_public_key(account.public_key_pem.encode("ascii"))  # fails here, not after starting
    if account.payout_public_key_pem is not None:
        load_public_key(account.payout_public_key_pem.encode("ascii"))
    return account


def _payment(record: dict[str, Any]) -> StoredPayment:
    service = record["service"]
    required = tuple(service.get("required", ()))
    return StoredPayment(**{**record, "service": Service(**{**service, "required": required})})


def _payout(record: dict[str, Any]) -> StoredPayout:
    return StoredPayout(**{**record, "service": PayoutService(**record["service"])})


def _encoded(value: object) -> object:
    """Decimals keep every digit: written as text, marked so they come back as Decimals."""
    if isinstance(value, Decimal):
        return {_DECIMAL: str(value)}
    raise TypeError(f"cannot save {type(value).__name__}")


def _decoded(value: dict[str, Any]) -> object:
    if value.keys() == {_DECIMAL}:
        return Decimal(value[_DECIMAL])
    return value
