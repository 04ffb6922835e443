"""The kit's tests of payments: the vocabulary, create and status, exactly once, errors."""

from __future__ import annotations

import dataclasses
import functools
import uuid
from collections.abc import Callable
from decimal import Decimal

import pytest

import paymux
from paymux import (
    Capabilities,
    Lookup,
    Operation,
    OutcomeUnknown,
    Payment,
    PaymentNotFound,
    PaymentRequest,
    PaymentStatus,
    PaymuxError,
    Provider,
    ProviderError,
    ValidationError,
)
from paymux.providers.base import OrderLookup
from paymux.providers.base.testing._support import (
    CountPayments,
    KitBase,
    LoseAnswers,
    NewRequest,
    Settle,
    _fast,
    _optional,
    _outcomes,
    _unique_order_id,
    no_network,
)


class PaymentTests(KitBase):
    """The kit's tests of payments: the vocabulary, create and status, exactly once, errors."""

    # -- the status vocabulary and the declaration ------------------------------------------

    def test_every_provider_status_means_a_known_payment_status(self) -> None:
        assert self.statuses, "declare the provider's status words in `statuses`"
        for word, status in self.statuses.items():
            assert isinstance(status, PaymentStatus), f"{word!r} maps to {status!r}"
            assert status is not PaymentStatus.UNKNOWN, (
                f"{word!r} maps to UNKNOWN, which is for outcomes the provider has not confirmed"
            )

    def test_final_provider_statuses_are_final_payment_statuses(self) -> None:
        assert set(self.final_statuses) <= set(self.statuses)
        for word, status in self.statuses.items():
            assert status.is_final == (word in self.final_statuses), (
                f"{word!r} is {'' if word in self.final_statuses else 'not '}final for the "
                f"provider but maps to {status.name}"
            )

    def test_a_new_payment_is_pending(self) -> None:
        assert self.initial_status in self.statuses
        assert not self.statuses[self.initial_status].is_final

    def test_the_provider_is_installed_under_its_name(self, provider: Provider) -> None:
        registry = paymux.default_registry()

        assert provider.name in {info.name for info in registry.installed()}
        assert registry.provider_class(provider.name) is type(provider)

    def test_the_capabilities_are_declared_on_the_class(self, provider: Provider) -> None:
        declared = type(provider).capabilities

        assert isinstance(declared, Capabilities)
        assert declared.describe()
        if Operation.REFUND_STATUS in declared.operations:
            assert Operation.REFUND in declared.operations, "refund_status without refund"
        if Operation.PAYOUT_STATUS in declared.operations:
            assert Operation.PAYOUT in declared.operations, "payout_status without payout"

    # -- create and status ----------------------------------------------------------------

    def test_create_then_status_round_trip(
        self, provider: Provider, new_request: NewRequest
    ) -> None:
        request = new_request()

        created = provider.create(request)
        found = [self._status(provider, created, by) for by in provider.capabilities.status_by]

        assert created.provider == provider.name
        assert isinstance(created.id, str)
        assert created.id
        assert created.order_id == request.order_id
        assert created.instance == provider.instance
        assert created.status is self.statuses[self.initial_status]
        for payment in found:
            assert (payment.provider, payment.id, payment.order_id) == (
                provider.name,
                created.id,
                request.order_id,
            )
            assert payment.status is created.status

    def test_amounts_stay_exact_decimals(
        self, provider: Provider, new_request: NewRequest, settle: Settle, exact_amount: Decimal
    ) -> None:
        request = dataclasses.replace(new_request(), amount=exact_amount)

        created = provider.create(request)
        found = self._status(provider, created)
        notified = provider.parse_notification(settle(created, self._word_for(PaymentStatus.PAID)))
        paid = self._status(provider, created)

        for payment in (created, found, notified.payment, paid):
            assert type(payment.amount) is Decimal, f"{payment.amount!r} is not a Decimal"
            assert payment.amount == exact_amount
        for payment in (notified.payment, paid):
            assert type(payment.paid_amount) in (Decimal, type(None))
            assert payment.paid_amount in (None, exact_amount)

    def test_settling_reaches_each_provider_status(
        self, provider: Provider, new_request: NewRequest, settle: Settle, provider_status: str
    ) -> None:
        expected = self.statuses[provider_status]
        two_phase = expected is PaymentStatus.AUTHORIZED
        created = provider.create(dataclasses.replace(new_request(), capture=not two_phase))

        notification = provider.parse_notification(settle(created, provider_status))
        found = self._status(provider, created)

        assert notification.provider == provider.name
        assert notification.payment.id == created.id
        assert notification.payment.order_id == created.order_id
        assert notification.payment.status is expected
        assert found.status is expected
        assert found.status.is_final == (provider_status in self.final_statuses)

    # -- exactly once ---------------------------------------------------------------------

    def test_a_create_whose_answer_is_lost_happens_exactly_once(
        self, provider: Provider, new_request: NewRequest, request: pytest.FixtureRequest
    ) -> None:
        lose: LoseAnswers = _optional(request, "lose_answers", "creates under lost answers")
        count: CountPayments = _optional(request, "count_payments", "creates under lost answers")
        _fast(provider)
        order = new_request()
        lose("create", 1)

        payment = provider.create(order)

        assert payment.order_id == order.order_id
        assert count(order.order_id) == 1
        assert self._status(provider, payment).id == payment.id

    def test_reconcile_settles_an_unknown_create_exactly_once(
        self, provider: Provider, new_request: NewRequest, request: pytest.FixtureRequest
    ) -> None:
        lose: LoseAnswers = _optional(request, "lose_answers", "reconcile")
        count: CountPayments = _optional(request, "count_payments", "reconcile")
        _fast(provider, max_attempts=1)
        order = dataclasses.replace(new_request(), idempotency_key=str(uuid.uuid4()))
        by_order = isinstance(provider.describe_create(order).exactly_once, OrderLookup)
        lose("create", 1)
        if by_order:
            lose("status", 1)  # and the lookup that would have found it

        with pytest.raises(OutcomeUnknown) as raised:
            provider.create(order)
        unknown = raised.value
        settled = provider.reconcile(unknown)
        again = provider.reconcile(unknown)

        assert unknown.operation == "create"
        assert (
            unknown.order_id == order.order_id or unknown.idempotency_key == order.idempotency_key
        )
        assert isinstance(settled, Payment)
        assert settled.order_id == order.order_id
        assert again.id == settled.id
        assert count(order.order_id) == 1
        if Lookup.ORDER_ID in provider.capabilities.status_by:
            assert provider.reconcile(order.order_id, order.amount).id == settled.id

    # -- errors ---------------------------------------------------------------------------

    def test_a_refused_create_raises_a_typed_provider_error(
        self, provider: Provider, request: pytest.FixtureRequest
    ) -> None:
        refused: PaymentRequest = _optional(request, "refused_request", "a refused create")

        with pytest.raises(PaymuxError) as raised:
            provider.create(refused)

        assert isinstance(raised.value, ProviderError), repr(raised.value)
        assert not isinstance(raised.value, OutcomeUnknown)
        assert str(raised.value)

    def test_an_unknown_payment_raises_payment_not_found(self, provider: Provider) -> None:
        lookups = {
            Lookup.PAYMENT_ID: {"payment_id": self.unknown_payment_id},
            Lookup.ORDER_ID: {"order_id": _unique_order_id()},
        }
        for lookup in provider.capabilities.status_by:
            with pytest.raises(PaymentNotFound):
                provider.status(**lookups[lookup])

    def test_bad_input_is_refused_before_any_network_call(
        self, provider: Provider, new_request: NewRequest
    ) -> None:
        valid = new_request()
        calls: dict[str, Callable[[], object]] = {
            name: functools.partial(provider.create, request)
            for name, request in self.invalid_requests(valid).items()
        }
        calls["status with neither id"] = lambda: provider.status()
        calls["status with both ids"] = lambda: provider.status(
            payment_id=self.unknown_payment_id, order_id=valid.order_id
        )

        with no_network() as network:
            outcomes = _outcomes(calls, ValidationError)

        assert outcomes == dict.fromkeys(calls, "ValidationError")
        assert network.attempts == []
