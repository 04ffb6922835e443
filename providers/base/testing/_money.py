"""The kit's tests of what a provider may offer: refunds, capture, cancel, payouts, balance."""

from __future__ import annotations

from decimal import Decimal

import pytest

from paymux import (
    Lookup,
    Operation,
    PaymentNotFound,
    PaymentStatus,
    Provider,
    RefundStatus,
    Unsupported,
)
from paymux.providers.base.testing._support import (
    CountPayments,
    KitBase,
    NewPayout,
    NewRequest,
    Settle,
    _optional,
    no_network,
)


class MoneyTests(KitBase):
    """The kit's tests of what a provider may offer: refunds, capture, cancel, payouts, balance."""

    # -- what a provider may offer ----------------------------------------------------------

    def test_each_status_lookup_is_declared_or_unsupported_before_any_network_call(
        self, provider: Provider
    ) -> None:
        declared = provider.capabilities.status_by
        for lookup in Lookup:
            if lookup in declared:
                with pytest.raises(PaymentNotFound):
                    self._status(provider, None, lookup)
                continue
            with no_network() as network, pytest.raises(Unsupported):
                self._status(provider, None, lookup)
            assert network.attempts == [], f"status by {lookup} touched the network"

    def test_a_paid_payment_is_refunded_once(
        self,
        provider: Provider,
        new_request: NewRequest,
        settle: Settle,
        answer: str,
        request: pytest.FixtureRequest,
    ) -> None:
        if not self._offers(provider, Operation.REFUND):
            return
        self._lose_if(answer, request, provider, "refund")
        paid = self._paid(provider, new_request, settle)
        asked = self.refund_request(paid)

        refund = provider.refund(asked)
        after = self._status(provider, paid)

        assert (refund.provider, refund.payment_id) == (provider.name, paid.id)
        assert type(refund.amount) is Decimal
        assert refund.amount == (asked.amount or paid.amount)
        assert refund.status is not RefundStatus.UNKNOWN
        assert after.refunded_amount in (None, refund.amount)
        if provider.capabilities.offers(Operation.REFUND_STATUS):
            found = provider.refund_status(refund.id)
            assert (found.id, found.payment_id, found.amount) == (refund.id, paid.id, refund.amount)

    def test_an_authorized_payment_is_captured_once(
        self,
        provider: Provider,
        new_request: NewRequest,
        settle: Settle,
        answer: str,
        request: pytest.FixtureRequest,
    ) -> None:
        if not self._offers(provider, Operation.CAPTURE):
            return
        self._lose_if(answer, request, provider, "capture")
        held = self._authorized(provider, new_request, settle)

        captured = provider.capture(held.id)

        assert (captured.id, captured.status) == (held.id, PaymentStatus.PAID)
        assert self._status(provider, held).status is PaymentStatus.PAID

    def test_a_held_or_pending_payment_is_canceled(
        self, provider: Provider, new_request: NewRequest, settle: Settle
    ) -> None:
        if not self._offers(provider, Operation.CANCEL):
            return
        if PaymentStatus.AUTHORIZED in self.statuses.values():
            payment = self._authorized(provider, new_request, settle)
        else:
            payment = provider.create(new_request())

        canceled = provider.cancel(payment.id)

        assert (canceled.id, canceled.status) == (payment.id, PaymentStatus.CANCELED)
        assert self._status(provider, payment).status is PaymentStatus.CANCELED

    def test_a_payout_is_sent_once_and_found(
        self, provider: Provider, answer: str, request: pytest.FixtureRequest
    ) -> None:
        if not self._offers(provider, Operation.PAYOUT):
            return
        new_payout: NewPayout = _optional(request, "payout_request", "payouts")
        count: CountPayments = _optional(request, "count_payouts", "payouts")
        self._lose_if(answer, request, provider, "payout")
        asked = new_payout()

        payout = provider.payout(asked)

        assert (payout.provider, payout.order_id) == (provider.name, asked.order_id)
        assert type(payout.amount) is Decimal
        assert payout.amount == asked.amount
        assert count(asked.order_id) == 1
        if provider.capabilities.offers(Operation.PAYOUT_STATUS):
            found = []
            for lookup in ({"payout_id": payout.id}, {"order_id": asked.order_id}):
                try:
                    found.append(provider.payout_status(**lookup))
                except Unsupported:  # payouts may be found one way only
                    continue
            assert found, "payout_status finds payouts neither by payout_id nor by order_id"
            assert {(p.id, p.order_id) for p in found} == {(payout.id, asked.order_id)}

    def test_the_balance_is_exact_money(self, provider: Provider) -> None:
        if not self._offers(provider, Operation.BALANCE):
            return

        balance = provider.balance()

        assert (balance.provider, balance.instance) == (provider.name, provider.instance)
        for amount in (balance.available, balance.held, balance.reserve):
            assert type(amount) is Decimal, f"{amount!r} is not a Decimal"
