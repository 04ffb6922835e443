"""The conformance kit: the tests every paymux provider should pass, ready to subclass.

Subclass `ProviderConformance` in a test module (its name must start with `Test`), declare the
provider's status words, and supply four fixtures (here or in a conftest.py):

    class TestMyGateway(ProviderConformance):
        statuses = {"new": PaymentStatus.PENDING, "done": PaymentStatus.PAID, ...}
        initial_status = "new"
        final_statuses = frozenset({"done", ...})

        @pytest.fixture
        def provider(self, emulator): ...          # the Provider, connected to your emulator
        @pytest.fixture
        def new_request(self, receiver): ...       # () -> a valid PaymentRequest, new order_id
        @pytest.fixture
        def settle(self, emulator, receiver): ...  # (payment, status word) -> its notification
        @pytest.fixture
        def provider_secrets(self, emulator): ...  # the strings that must never leak

`settle` moves the payment to that status in the emulator and returns the genuine notification
as the shop's endpoint received it: a `paymux.Incoming`, or a URL, query string or mapping. A
status word meaning AUTHORIZED is reached from a payment created with `capture=False`.

The kit reads `provider.capabilities`. Status is tested by each declared lookup; every
undeclared operation (and lookup) must raise `paymux.Unsupported` without touching the network;
each declared one is tested. Some tests need more of the emulator; supply these optional
fixtures to run them (without one, they skip and say which fixture is missing):

- `refused_request`: a `PaymentRequest` that passes local validation but the gateway refuses
  (a repeated order id, where the gateway refuses those; an amount beyond its limit).
- `lose_answers`: `(operation, count) -> None`; the emulator acts on the next `count` calls of
  that operation ("create", "refund", "capture", "payout"; "status" for the lookup of an
  order-id gateway) but the answer never arrives. Each declared refund, capture and payout is
  then tested twice: answered, and with its answer lost.
- `count_payments`: `(order_id) -> int`, the payments the emulator holds for that order. With
  `lose_answers`, it proves a create happens exactly once under lost answers, and that
  `reconcile` settles an `OutcomeUnknown`, whichever way the provider makes creates exactly-once
  (the kit sets `provider.retry_policy` to give up after one attempt).
- `payout_request`: `() -> PayoutRequest` with a fresh order id, and `count_payouts`:
  `(order_id) -> int`, for PAYOUT. A refund is counted by the payment's `refunded_amount`.

Methods to override, extending `super()`'s: `invalid_requests(valid)` (refused before any
network call), `refund_request(payment)` (by default, all of a paid payment), and
`forgeries(genuine)`: notifications that must raise `SignatureError`, of any shape (`Incoming`
values too). Its defaults apply to SIGNATURE notifications sent as query strings (every signed
field missing, emptied or altered; `unsigned_fields` are spared) and to SENDER checks (the same
`Incoming` from another address); `self.capabilities` is the provider's declaration.

This module imports pytest: import it from tests only (`paymux.providers.base` loads it lazily).
`no_network()` is there for your own tests too.
"""

from __future__ import annotations

from paymux.providers.base.testing._money import MoneyTests
from paymux.providers.base.testing._notifications import NotificationTests
from paymux.providers.base.testing._payments import PaymentTests
from paymux.providers.base.testing._support import (
    CountPayments,
    LoseAnswers,
    NetworkUse,
    NewPayout,
    NewRequest,
    Notified,
    Settle,
    no_network,
)

__all__ = [
    "CountPayments",
    "LoseAnswers",
    "NetworkUse",
    "NewPayout",
    "NewRequest",
    "Notified",
    "ProviderConformance",
    "Settle",
    "no_network",
]


class ProviderConformance(PaymentTests, MoneyTests, NotificationTests):
    """The tests every paymux provider should pass; see the module docstring for how to use it."""
