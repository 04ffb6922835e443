"""YooKassa passes paymux's conformance kit, against its emulator over loopback."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

import pytest
from yookassa_support import Webhooks, inject, payment_request, settings_of

import paymux
from paymux import PaymentStatus, Provider
from paymux.providers.base.testing import (
    CountPayments,
    LoseAnswers,
    NewRequest,
    Notified,
    ProviderConformance,
    Settle,
)

if TYPE_CHECKING:
    from paymux_yookassa.emulator import Emulator

REASONS = {"canceled": "expired_on_confirmation"}
"""The cancellation the kit's "canceled" stands for: the payer never paid (CANCELED, not
FAILED; test_yookassa_capture_and_refund reads every reason)."""


class TestYooKassa(ProviderConformance):
    statuses: ClassVar[Mapping[str, PaymentStatus]] = {
        "pending": PaymentStatus.PENDING,
        "waiting_for_capture": PaymentStatus.AUTHORIZED,
        "succeeded": PaymentStatus.PAID,
        "canceled": PaymentStatus.CANCELED,
    }
    initial_status = "pending"
    final_statuses = frozenset({"succeeded", "canceled"})
    unknown_payment_id = "2419a771-000f-5000-9000-1edaf29243f2"

    @pytest.fixture
    def provider(self, emulator: Emulator) -> Iterator[Provider]:
        with paymux.connect(settings_of(emulator)) as connected:
            yield connected

    @pytest.fixture
    def new_request(self) -> NewRequest:
        return payment_request

    @pytest.fixture
    def settle(self, emulator: Emulator, webhooks: Webhooks) -> Settle:
        def settled(payment: paymux.Payment, status: str) -> Notified:
            emulator.settle(payment.id, status, REASONS.get(status))
            return webhooks.about(payment.id, f"payment.{status}")[-1]

        return settled

    @pytest.fixture
    def provider_secrets(self, emulator: Emulator) -> list[str]:
        shop = emulator.shop
        basic = base64.b64encode(f"{shop.shop_id}:{shop.secret_key}".encode()).decode()
        return [shop.secret_key, basic]

    @pytest.fixture
    def refused_request(self) -> paymux.PaymentRequest:
        return payment_request(currency="XYZ")  # three capitals, but no currency YooKassa takes

    @pytest.fixture
    def lose_answers(self, emulator: Emulator) -> LoseAnswers:
        def lose(operation: str, count: int) -> None:
            inject(emulator, "drop_connection", on=operation, times=count)

        return lose

    @pytest.fixture
    def count_payments(self, emulator: Emulator) -> CountPayments:
        def count(order_id: str) -> int:
            return sum(1 for held in emulator.payments if held.metadata.get("order_id") == order_id)

        return count

    def invalid_requests(self, valid: paymux.PaymentRequest) -> dict[str, paymux.PaymentRequest]:
        return {
            **super().invalid_requests(valid),
            "amount has 3 decimal places": payment_request(amount=Decimal("10.001")),
            "description is over 128 characters": payment_request(description="d" * 129),
            "no URL to return the payer to": payment_request(success_url=None),
        }

    def forgeries(self, genuine: Notified) -> dict[str, Notified]:
        """The sender forgeries of the kit, and bodies from a genuine sender that the API, asked
        again, does not confirm (or that are not for this shop)."""
        forged = super().forgeries(genuine)
        assert isinstance(genuine, paymux.Incoming)
        body = json.loads(genuine.body)
        claims: dict[str, dict[str, Any]] = {
            "another status": {"status": "canceled", "paid": False},
            "another amount": {"amount": {"value": "1.00", "currency": "RUB"}},
            "another shop": {"recipient": {"account_id": "1", "gateway_id": "1"}},
        }
        for name, claim in claims.items():
            changed = {**body["object"], **claim}
            event = f"payment.{changed['status']}"
            text = json.dumps({**body, "event": event, "object": changed}).encode()
            forged[name] = paymux.Incoming(method="POST", body=text, sender=genuine.sender)
        return forged
