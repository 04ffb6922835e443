"""What a provider declares it offers, and what happens when a host asks for anything else.

`Unsupported` is raised before anything is sent: the provider below points at a port where
nothing listens, and every call is made inside `no_network()`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import paymux
from paymux import Authentication, Unsupported
from paymux.providers.base import (
    Answer,
    Call,
    Capabilities,
    Connection,
    Incoming,
    Lookup,
    Observers,
    Operation,
    Provider,
    Request,
)
from paymux.providers.base.testing import no_network

# -- the declaration ----------------------------------------------------------------------------


def test_create_and_status_are_always_offered_and_nothing_else_by_default() -> None:
    declared = Capabilities()

    assert declared.operations == {Operation.CREATE, Operation.STATUS}
    assert declared.status_by == {Lookup.PAYMENT_ID}
    assert declared.notifications == {Authentication.SIGNATURE}


def test_declared_operations_are_offered_besides_create_and_status() -> None:
    declared = Capabilities(operations=[Operation.REFUND, Operation.REFUND_STATUS])

    assert declared.offers(Operation.REFUND)
    assert declared.offers(Operation.CREATE)
    assert not declared.offers(Operation.CAPTURE)


def test_a_status_that_finds_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match="payment_id, order_id or both"):
        Capabilities(status_by=())


def test_notifications_that_nothing_authenticates_are_refused() -> None:
    with pytest.raises(ValueError, match="how its notifications are authenticated"):
        Capabilities(notifications=())


def test_a_declaration_is_frozen_and_compares_by_value() -> None:
    declared = Capabilities(operations={Operation.CAPTURE, Operation.CANCEL})

    assert declared == Capabilities(operations=[Operation.CANCEL, Operation.CAPTURE])
    assert hash(declared) == hash(Capabilities(operations=[Operation.CANCEL, Operation.CAPTURE]))
    with pytest.raises(dataclasses.FrozenInstanceError):
        declared.operations = frozenset()  # type: ignore[misc]


def test_the_one_line_description_names_everything_declared_in_a_stable_order() -> None:
    declared = Capabilities(
        operations={Operation.REFUND, Operation.BALANCE},
        status_by={Lookup.ORDER_ID, Lookup.PAYMENT_ID},
        notifications={Authentication.SENDER, Authentication.REFETCH},
    )

    assert declared.describe() == (
        "balance, create, refund, status; status by order_id or payment_id; "
        "notifications by refetch + sender"
    )


def test_operations_and_lookups_read_as_their_wire_names() -> None:
    assert [str(op) for op in (Operation.PAYOUT_STATUS, Lookup.ORDER_ID)] == [
        "payout_status",
        "order_id",
    ]
    assert Operation("refund") is Operation.REFUND


# -- a provider that declares nothing beyond the minimum ----------------------------------------


class Minimal(Provider):
    """Creates and finds payments by id; describes nothing else."""

    name = "minimal"

    @classmethod
    def from_settings(
        cls,
        settings: Mapping[str, Any],
        *,
        instance: str,
        base_dir: Path | None = None,
        observers: Observers | None = None,
    ) -> Minimal:
        return cls(instance=instance, connection=Connection(base_url=settings["base_url"]))

    def authenticate(self, request: Request) -> Mapping[str, str]:
        return {}

    def read_error(self, request: Request, answer: Answer) -> paymux.PaymuxError:
        return paymux.ProviderError(f"HTTP {answer.status}")

    def describe_create(self, request: paymux.PaymentRequest) -> Call[paymux.Payment]:
        return Call(Request("create", "POST", "payments"), read=self._payment)

    def describe_status(
        self, *, payment_id: str | None = None, order_id: str | None = None
    ) -> Call[paymux.Payment]:
        return Call(Request("status", "GET", f"payments/{payment_id}"), read=self._payment)

    def read_notification(self, incoming: Incoming) -> paymux.Notification:
        raise paymux.SignatureError("Minimal sends no notifications")

    def _payment(self, answer: Answer) -> paymux.Payment:
        raise paymux.InvalidResponse("never read in these tests")


class Overclaiming(Minimal):
    """Declares refunds and balances but describes neither: still nothing is sent."""

    name = "overclaiming"
    capabilities = Capabilities(operations={Operation.REFUND, Operation.BALANCE})


@pytest.fixture
def minimal() -> Minimal:
    return Minimal.from_settings({"base_url": "http://127.0.0.1:9"}, instance="test")


UNDECLARED: dict[str, Callable[[Provider], object]] = {
    "refund": lambda p: p.refund(paymux.RefundRequest(payment_id="p-1", amount=Decimal("1.00"))),
    "refund_status": lambda p: p.refund_status("r-1"),
    "capture": lambda p: p.capture("p-1"),
    "cancel": lambda p: p.cancel("p-1"),
    "payout": lambda p: p.payout(
        paymux.PayoutRequest(order_id="w-1", amount=Decimal("5.00"), number="4111111111111111")
    ),
    "payout_status": lambda p: p.payout_status(order_id="w-1"),
    "balance": lambda p: p.balance(),
}


@pytest.mark.parametrize("operation", UNDECLARED)
def test_an_undeclared_operation_is_unsupported_before_anything_is_sent(
    minimal: Minimal, operation: str
) -> None:
    with no_network() as network, pytest.raises(Unsupported) as raised:
        UNDECLARED[operation](minimal)

    assert raised.value.operation == operation
    assert str(raised.value) == f"minimal does not offer {operation}"
    assert isinstance(raised.value, paymux.PaymuxError)
    assert network.attempts == []


def test_a_status_by_an_undeclared_lookup_is_unsupported_before_anything_is_sent(
    minimal: Minimal,
) -> None:
    with no_network() as network, pytest.raises(Unsupported, match="payment_id only") as raised:
        minimal.status(order_id="o-1")

    assert raised.value.operation == "status"
    assert network.attempts == []


def test_reconcile_by_order_id_needs_a_status_by_order_id(minimal: Minimal) -> None:
    with no_network() as network, pytest.raises(Unsupported):
        minimal.reconcile("o-1")

    assert network.attempts == []


@pytest.mark.parametrize("operation", ["refund", "balance"])
def test_a_declared_operation_the_provider_does_not_describe_is_unsupported_too(
    operation: str,
) -> None:
    provider = Overclaiming.from_settings({"base_url": "http://127.0.0.1:9"}, instance="test")

    with no_network() as network, pytest.raises(Unsupported) as raised:
        UNDECLARED[operation](provider)

    assert raised.value.operation == operation
    assert network.attempts == []
