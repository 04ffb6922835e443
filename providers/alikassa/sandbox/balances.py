"""Account balances, as `v1/account/balance` answers them.

The sandbox keeps one balance per account, whatever the currency (the answer seen in production
has one number each). Its meaning, our choice:

- `balance` is what the account can pay out: a paid payment adds what it brings the account
  (`payment_amount - commission_amount`);
- `hold` is what waiting payouts have taken from `balance`: a payout moves its amount (and its
  commission) there when it is created, out of the account when it is paid, and back to
  `balance` when it fails or is canceled;
- `rolling_reserve` is set aside apart from both; it is 0 unless a test sets it.

Not locked: the gateway calls it under its own lock.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from decimal import Decimal

from paymux.providers.alikassa.sandbox.answers import Answer

ZERO = Decimal("0")


@dataclass
class Balance:
    """One account's money, in the account's units."""

    balance: Decimal = ZERO
    hold: Decimal = ZERO
    rolling_reserve: Decimal = ZERO

    def answer(self) -> Answer:
        """The `v1/account/balance` answer: JSON numbers, written from the Decimals so that
        no float rounding shows (`1234.5`, never `1234.4999999`)."""
        numbers = {
            "balance": self.balance,
            "hold": self.hold,
            "rolling_reserve": self.rolling_reserve,
        }
        text = ",".join(f'"{name}":{_number(value)}' for name, value in numbers.items())
        return Answer(200, dict(numbers), raw=f"{{{text}}}".encode())


def _number(value: Decimal) -> str:
    """A JSON number with the Decimal's exact value and no trailing zeros."""
    return format(value.normalize(), "f")


def checked_money(value: object, name: str) -> Decimal:
    """A balance a test sets: a finite Decimal at or above 0 (from text, a whole number or a
    Decimal), else ValueError."""
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, str)):
        raise ValueError(f"{name} must be a Decimal, a whole number or decimal text")
    try:
        amount = Decimal(value)
    except ArithmeticError:
        raise ValueError(f"{name} must be a decimal amount, not {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"{name} must be a finite amount at or above 0, not {value!r}")
    return amount


class Ledger:
    """Every account's `Balance`; an account the ledger has not seen has nothing."""

    def __init__(self) -> None:
        self._balances: dict[str, Balance] = {}

    def of(self, account: str) -> Balance:
        """A copy of `account`'s balance."""
        return dataclasses.replace(self._balances.get(account, Balance()))

    def _own(self, account: str) -> Balance:
        return self._balances.setdefault(account, Balance())

    def set(
        self,
        account: str,
        *,
        balance: Decimal | None = None,
        hold: Decimal | None = None,
        rolling_reserve: Decimal | None = None,
    ) -> Balance:
        """Set the parts given; the others stay as they are."""
        own = self._own(account)
        own.balance = own.balance if balance is None else balance
        own.hold = own.hold if hold is None else hold
        own.rolling_reserve = own.rolling_reserve if rolling_reserve is None else rolling_reserve
        return self.of(account)

    def credit(self, account: str, amount: Decimal) -> None:
        """A paid payment brings `amount`."""
        self._own(account).balance += amount

    def hold(self, account: str, amount: Decimal) -> bool:
        """Move `amount` from balance to hold for a new payout; False, changing nothing, when the
        balance is short of it."""
        own = self._own(account)
        if own.balance < amount:
            return False
        own.balance -= amount
        own.hold += amount
        return True

    def release(self, account: str, amount: Decimal) -> None:
        """A payout failed or was canceled: its `amount` goes back from hold to balance."""
        own = self._own(account)
        own.hold -= amount
        own.balance += amount

    def pay_out(self, account: str, amount: Decimal) -> None:
        """A payout was paid: its held `amount` leaves the account."""
        self._own(account).hold -= amount

    def snapshot(self) -> dict[str, Balance]:
        """Copies of every balance, for saving state."""
        return {account: dataclasses.replace(each) for account, each in self._balances.items()}

    def restore(self, balances: dict[str, Balance]) -> None:
        self._balances.update(
            {account: dataclasses.replace(each) for account, each in balances.items()}
        )
