"""AliKassa passes the conformance kit every provider author runs against their provider.

The kit's tests come from `ProviderConformance`; this module only says how AliKassa speaks
(its status words) and how to drive the sandbox: settle a payment, lose an answer after the
gateway acted, count what it holds for an order, send a payout.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from decimal import Decimal
from pathlib import Path
from typing import ClassVar

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from paymux import Payment, PaymentRequest, PaymentStatus, PayoutRequest
from paymux.providers.alikassa.sandbox import Fault, Merchant, Sandbox
from paymux.providers.base import ProviderConformance
from paymux.providers.base.testing import CountPayments, LoseAnswers, NewPayout, NewRequest, Settle
from support import Receiver, payment_request, unique_order_id


@pytest.fixture(scope="session")
def payout_key() -> rsa.RSAPrivateKey:
    """The merchant's payout key, generated once per run."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class TestAliKassaConformance(ProviderConformance):
    statuses: ClassVar[Mapping[str, PaymentStatus]] = {
        "wait": PaymentStatus.PENDING,
        "paid": PaymentStatus.PAID,
        "cancel": PaymentStatus.CANCELED,
        "fail": PaymentStatus.FAILED,
    }
    initial_status = "wait"
    final_statuses = frozenset({"paid", "cancel", "fail"})

    @pytest.fixture
    def merchant(
        self,
        sandbox: Sandbox,
        tmp_path: Path,
        payment_key: rsa.RSAPrivateKey,
        payout_key: rsa.RSAPrivateKey,
    ) -> Merchant:
        """A merchant with both certificates (payouts are signed with their own key)."""
        registered = sandbox.create_merchant(
            tmp_path / "payment",
            private_key=payment_key,
            payout_folder=tmp_path / "payout",
            payout_private_key=payout_key,
        )
        sandbox.set_balance(registered.account, balance="10000")
        return registered

    @pytest.fixture
    def new_request(self, receiver: Receiver) -> NewRequest:
        return lambda: payment_request(notification_url=receiver.url)

    @pytest.fixture
    def refused_request(self, new_request: NewRequest) -> PaymentRequest:
        """AliKassa adopts a repeated order, so the refusal is a service it lacks."""
        return dataclasses.replace(new_request(), options={"service": "payment_card_xyz_nope"})

    @pytest.fixture
    def settle(self, sandbox: Sandbox, receiver: Receiver) -> Settle:
        def settle(payment: Payment, provider_status: str) -> str:
            already = len(receiver.received)
            sandbox.settle(payment.id, provider_status)
            arrived = receiver.wait_for(already + 1)
            assert len(arrived) > already, "the sandbox sent no notification"
            return arrived[already]

        return settle

    @pytest.fixture
    def provider_secrets(self, merchant: Merchant) -> Collection[str]:
        secrets = []
        for certificate in (merchant.payment_certificate, merchant.payout_certificate):
            assert certificate is not None
            secrets.append(certificate.password_file.read_text().strip())
            key_text = certificate.private_key.read_text().splitlines()
            secrets += [line for line in key_text if line and "-----" not in line]
        return secrets

    @pytest.fixture
    def lose_answers(self, sandbox: Sandbox) -> LoseAnswers:
        """The sandbox stores a create or a payout, then closes the connection unanswered."""
        return lambda operation, count: sandbox.inject(
            Fault.DROP_CONNECTION, on=operation, times=count
        )

    @pytest.fixture
    def count_payments(self, sandbox: Sandbox) -> CountPayments:
        return lambda order_id: sum(p.order_id == order_id for p in sandbox.payments())

    @pytest.fixture
    def count_payouts(self, sandbox: Sandbox) -> CountPayments:
        return lambda order_id: sum(p.order_id == order_id for p in sandbox.payouts())

    @pytest.fixture
    def payout_request(self) -> NewPayout:
        return lambda: PayoutRequest(
            order_id=unique_order_id(),
            amount=Decimal("500.00"),
            number="4111111111111111",
            currency="RUB",
            recipient={"first_name": "Ivan", "last_name": "Petrov"},
            options={"service": "payment_card_rub"},
        )
