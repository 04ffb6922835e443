"""The kit's tests of notifications and of secrets."""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable, Collection
from decimal import Decimal

import pytest

import paymux
from paymux import (
    PaymentStatus,
    PaymuxError,
    Provider,
    SignatureError,
)
from paymux.providers.base.testing._support import (
    KitBase,
    NewRequest,
    Settle,
    _fixture_or_none,
    _outcomes,
)


class NotificationTests(KitBase):
    """The kit's tests of notifications and of secrets."""

    # -- notifications --------------------------------------------------------------------

    def test_a_genuine_notification_is_accepted(
        self, provider: Provider, new_request: NewRequest, settle: Settle
    ) -> None:
        created = provider.create(new_request())
        genuine = settle(created, self._word_for(PaymentStatus.PAID))

        first = provider.parse_notification(genuine)
        again = provider.parse_notification(genuine)

        assert first.kind is paymux.NotificationKind.PAYMENT
        assert first.payment.id == created.id
        assert first.payment.status is PaymentStatus.PAID
        assert (first.instance, first.payment.instance) == (provider.instance, provider.instance)
        assert set(first.verified_by) == set(provider.capabilities.notifications)
        assert first.fields
        assert again.payment == first.payment
        with pytest.raises(TypeError):
            _ = first.refund

    def test_forged_notifications_are_rejected(
        self, provider: Provider, new_request: NewRequest, settle: Settle
    ) -> None:
        created = provider.create(new_request())
        genuine = settle(created, self._word_for(PaymentStatus.PAID))
        self.capabilities = provider.capabilities
        forged = self.forgeries(genuine)
        if not forged:
            pytest.skip(
                f"no default forgeries for {type(genuine).__name__} notifications of "
                f"{provider.name}: override forgeries(genuine)"
            )

        outcomes = _outcomes(
            {name: functools.partial(provider.parse_notification, f) for name, f in forged.items()},
            SignatureError,
        )

        assert outcomes == dict.fromkeys(forged, "SignatureError")

    # -- secrets --------------------------------------------------------------------------

    def test_secrets_never_reach_logs_reprs_or_errors(
        self,
        provider: Provider,
        new_request: NewRequest,
        settle: Settle,
        provider_secrets: Collection[str],
        caplog: pytest.LogCaptureFixture,
        request: pytest.FixtureRequest,
    ) -> None:
        secrets = [secret for secret in provider_secrets if secret]
        assert secrets, "provider_secrets must name at least one secret setting value"
        shown: list[str] = [repr(provider), str(provider)]
        self.capabilities = provider.capabilities
        failures: list[Callable[[], object]] = [
            lambda: self._status(provider, None),
            lambda: provider.create(dataclasses.replace(new_request(), amount=Decimal(-1))),
        ]
        refused = _fixture_or_none(request, "refused_request")
        if refused is not None:
            failures.append(lambda: provider.create(refused))

        with caplog.at_level(logging.DEBUG, logger="paymux"):
            created = provider.create(new_request())
            genuine = settle(created, self._word_for(PaymentStatus.PAID))
            notification = provider.parse_notification(genuine)
            found = self._status(provider, created)
            shown += [repr(created), repr(notification), repr(found)]
            failures += [
                functools.partial(provider.parse_notification, forgery)
                for forgery in list(self.forgeries(genuine).values())[:3]
            ]
            for fails in failures:
                with pytest.raises(PaymuxError) as raised:
                    fails()
                shown += [str(raised.value), repr(raised.value), repr(raised.value.body)]

        records = [r for r in caplog.records if r.name.split(".")[0] == "paymux"]
        assert records, "the provider emitted no paymux log events at DEBUG during a round trip"
        shown += [record.getMessage() for record in records]
        leaks = [
            (secret[:4] + "...", text[:200])
            for secret in secrets
            for text in shown
            if secret in text
        ]
        assert not leaks, f"secrets leaked: {leaks}"
