"""AliKassa passes the conformance kit every provider author runs against their provider.

The kit's tests come from `ProviderConformance`; this module only says how AliKassa speaks
(its status words, its signature field) and how to drive the sandbox.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from typing import ClassVar

import pytest

from paymux import Payment, PaymentRequest, PaymentStatus
from paymux.providers.alikassa.sandbox import Merchant, Sandbox
from paymux.providers.base import ProviderConformance
from paymux.providers.base.testing import NewRequest, Settle
from support import Receiver, payment_request


class TestAliKassaConformance(ProviderConformance):
    statuses: ClassVar[Mapping[str, PaymentStatus]] = {
        "wait": PaymentStatus.PENDING,
        "paid": PaymentStatus.PAID,
        "cancel": PaymentStatus.CANCELED,
        "fail": PaymentStatus.FAILED,
    }
    initial_status = "wait"
    final_statuses = frozenset({"paid", "cancel", "fail"})
    signature_field = "sign"

    @pytest.fixture
    def new_request(self, receiver: Receiver) -> NewRequest:
        return lambda: payment_request(notification_url=receiver.url)

    @pytest.fixture
    def refused_request(self, new_request: NewRequest) -> PaymentRequest:
        """AliKassa's create is idempotent per order, so the refusal is a service it lacks."""
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
        certificate = merchant.payment_certificate
        password = certificate.password_file.read_text().strip()
        key_text = certificate.private_key.read_text().splitlines()
        return [password, *(line for line in key_text if line and "-----" not in line)]
