"""The conformance kit: the tests every paymux provider should pass, ready to subclass.

A provider author runs it against their own provider and its emulator. Subclass
`ProviderConformance` in a test module (the name must start with `Test` for pytest to
collect it), declare the provider's status vocabulary, and supply five fixtures:

    from paymux import PaymentStatus
    from paymux.providers.base.testing import ProviderConformance

    class TestMyGateway(ProviderConformance):
        statuses = {
            "new": PaymentStatus.PENDING,
            "succeeded": PaymentStatus.PAID,
            "declined": PaymentStatus.FAILED,
        }
        initial_status = "new"
        final_statuses = frozenset({"succeeded", "declined"})
        signature_field = "signature"

        @pytest.fixture
        def provider(self, emulator): ...          # a connected Provider (may live in conftest)

        @pytest.fixture
        def new_request(self, receiver): ...       # () -> a valid PaymentRequest, new order_id

        @pytest.fixture
        def settle(self, emulator, receiver): ...  # (payment, provider_status) -> notification

        @pytest.fixture
        def provider_secrets(self, emulator): ...  # the strings that must never leak

The fixtures may also come from a conftest.py; the kit defines none of them itself, so it never
hides yours. What each must do:

- `provider`: the `Provider` under test, connected to the emulator.
- `new_request`: a callable returning a valid `PaymentRequest` with a fresh `order_id`, that
  the emulator accepts, with a `notification_url` where `settle` can pick notifications up.
- `settle`: a callable `(payment, provider_status)` that moves the payment to that status in the
  emulator (its own word, e.g. "succeeded") and returns the genuine notification the emulator
  sent for it, as the shop's endpoint received it (a URL, a query string or a mapping).
- `provider_secrets`: the secret strings of the provider's configuration (API keys, passwords,
  private-key text). They must appear in no log record, repr or error message.

Optional fixture: `refused_request` (a request that passes local validation but the gateway
refuses; by default a second payment with an order_id already used). Optional methods:
`invalid_requests` (inputs to refuse before any network call) and `forgeries` (notifications
that must be rejected); extend them with `super()`.

This module imports pytest: import it from tests only. `paymux.providers.base` re-exports
`ProviderConformance` lazily, so importing that package never needs pytest.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import socket
import threading
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import urlencode

import pytest

import paymux
from paymux.errors import (
    PaymentNotFound,
    PaymuxError,
    ProviderError,
    SignatureError,
    ValidationError,
)
from paymux.models import Payment, PaymentRequest, PaymentStatus
from paymux.provider import NotificationInput, Provider
from paymux.providers.base.notifications import notification_params

__all__ = [
    "NetworkUse",
    "NewRequest",
    "ProviderConformance",
    "Settle",
    "no_network",
]

NewRequest = Callable[[], PaymentRequest]
"""The `new_request` fixture's type: a fresh valid request on each call."""

Settle = Callable[[Payment, str], NotificationInput]
"""The `settle` fixture's type: `(payment, provider_status) -> the notification it caused`."""


class NetworkUse:
    """Sockets the current thread tried to use inside `no_network()`."""

    def __init__(self) -> None:
        self.attempts: list[str] = []


_SOCKET_METHODS = ("connect", "connect_ex", "send", "sendall", "sendto", "sendmsg")


@contextmanager
def no_network() -> Iterator[NetworkUse]:
    """Refuse (and record) every socket connect or send made by this thread.

    Other threads (an emulator serving on loopback) are left alone.
    """
    use = NetworkUse()
    owner = threading.get_ident()
    originals = {name: getattr(socket.socket, name) for name in _SOCKET_METHODS}

    def guard(name: str) -> Callable[..., Any]:
        original = originals[name]

        def guarded(self: socket.socket, *args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() != owner:
                return original(self, *args, **kwargs)
            use.attempts.append(name)
            raise ConnectionRefusedError("paymux conformance kit: no network allowed here")

        return guarded

    with pytest.MonkeyPatch.context() as patch:
        for name in _SOCKET_METHODS:
            patch.setattr(socket.socket, name, guard(name))
        yield use


def _unique_order_id() -> str:
    return f"conformance-{uuid.uuid4().hex[:12]}"


class ProviderConformance:
    """The tests every paymux provider should pass; see the module docstring for how to use it."""

    statuses: ClassVar[Mapping[str, PaymentStatus]]
    """Every status word the provider's API uses, and the `PaymentStatus` it means."""

    initial_status: ClassVar[str]
    """The word a newly created payment has."""

    final_statuses: ClassVar[Collection[str]]
    """The words the provider documents as final: the payment never changes after them."""

    signature_field: ClassVar[str]
    """The notification field that carries the signature."""

    unsigned_fields: ClassVar[Collection[str]] = ()
    """Notification fields the signature does not cover (changing them need not be noticed)."""

    exact_amounts: ClassVar[tuple[Decimal, ...]] = (
        Decimal("100.10"),
        Decimal("1234.57"),
        Decimal("4999.99"),
    )
    """Amounts (valid for `new_request`'s payment method) that floats would not keep exact."""

    unknown_payment_id: ClassVar[str] = "999999999"
    """A well-formed payment id that the emulator never issued."""

    # -- parametrization ------------------------------------------------------------------

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """Run the per-status and per-amount tests once for each declared value."""
        if "provider_status" in metafunc.fixturenames:
            reachable = [word for word in self.statuses if word != self.initial_status]
            metafunc.parametrize("provider_status", reachable)
        if "exact_amount" in metafunc.fixturenames:
            metafunc.parametrize("exact_amount", self.exact_amounts, ids=str)

    # -- hooks an author may override --------------------------------------------------

    @pytest.fixture
    def refused_request(self, provider: Provider, new_request: NewRequest) -> PaymentRequest:
        """A request that passes local validation and the gateway refuses: a repeated order_id.

        Override it when your gateway accepts a repeated order_id (idempotent creates).
        """
        first = new_request()
        provider.create(first)
        return dataclasses.replace(new_request(), order_id=first.order_id)

    def invalid_requests(self, valid: PaymentRequest) -> dict[str, PaymentRequest]:
        """Requests every provider must refuse with `ValidationError` before any network call."""
        return {
            "amount is zero": dataclasses.replace(valid, amount=Decimal("0")),
            "amount is negative": dataclasses.replace(valid, amount=Decimal("-1.00")),
            "amount is a float": dataclasses.replace(valid, amount=float(valid.amount)),  # type: ignore[arg-type]
            "amount is NaN": dataclasses.replace(valid, amount=Decimal("NaN")),
            "amount is infinite": dataclasses.replace(valid, amount=Decimal("Infinity")),
            "order_id is empty": dataclasses.replace(valid, order_id=""),
        }

    def forgeries(self, genuine: NotificationInput) -> dict[str, NotificationInput]:
        """Notifications derived from a genuine one that must all raise `SignatureError`.

        The default reads `genuine` as query parameters; override it for other formats.
        """
        params = notification_params(genuine)
        signature = params.get(self.signature_field)
        assert signature, (
            f"the genuine notification has no {self.signature_field!r} field; "
            f"set signature_field to the name of the field that carries the signature"
        )
        flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
        unsigned = {self.signature_field, *self.unsigned_fields}
        forged: dict[str, NotificationInput] = {
            "empty": "",
            "not a notification": "hello",
            "signature missing": urlencode(
                {k: v for k, v in params.items() if k != self.signature_field}
            ),
            "signature empty": urlencode({**params, self.signature_field: ""}),
            "signature altered": urlencode({**params, self.signature_field: flipped}),
        }
        for name, value in params.items():
            if name not in unsigned:
                forged[f"{name} altered"] = urlencode({**params, name: value + "1"})
        return forged

    # -- the status vocabulary ---------------------------------------------------------

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

    # -- the plugin -------------------------------------------------------------------

    def test_the_provider_is_installed_under_its_name(self, provider: Provider) -> None:
        registry = paymux.default_registry()

        assert provider.name in {info.name for info in registry.installed()}
        assert registry.provider_class(provider.name) is type(provider)

    # -- create and status ------------------------------------------------------------

    def test_create_then_status_round_trip(
        self, provider: Provider, new_request: NewRequest
    ) -> None:
        request = new_request()

        created = provider.create(request)
        by_id = provider.status(payment_id=created.id)
        by_order = provider.status(order_id=request.order_id)

        assert created.provider == provider.name
        assert isinstance(created.id, str)
        assert created.id
        assert created.order_id == request.order_id
        assert created.status is self.statuses[self.initial_status]
        assert not created.status.is_final
        for found in (by_id, by_order):
            assert (found.provider, found.id, found.order_id) == (
                provider.name,
                created.id,
                request.order_id,
            )
            assert found.status is created.status

    def test_amounts_stay_exact_decimals(
        self, provider: Provider, new_request: NewRequest, settle: Settle, exact_amount: Decimal
    ) -> None:
        request = dataclasses.replace(new_request(), amount=exact_amount)
        paid_word = self._word_for(PaymentStatus.PAID)

        created = provider.create(request)
        found = provider.status(payment_id=created.id)
        notified = provider.parse_notification(settle(created, paid_word)).payment
        paid = provider.status(payment_id=created.id)

        for payment in (created, found, notified, paid):
            assert type(payment.amount) is Decimal, f"{payment.amount!r} is not a Decimal"
            assert payment.amount == exact_amount
        for payment in (notified, paid):
            assert type(payment.paid_amount) in (Decimal, type(None))
            assert payment.paid_amount in (None, exact_amount)

    def test_settling_reaches_each_provider_status(
        self,
        provider: Provider,
        new_request: NewRequest,
        settle: Settle,
        provider_status: str,
    ) -> None:
        created = provider.create(new_request())

        notification = provider.parse_notification(settle(created, provider_status))
        found = provider.status(payment_id=created.id)

        expected = self.statuses[provider_status]
        assert notification.provider == provider.name
        assert notification.payment.id == created.id
        assert notification.payment.order_id == created.order_id
        assert notification.payment.status is expected
        assert found.status is expected
        assert found.status.is_final == (provider_status in self.final_statuses)

    # -- notifications ----------------------------------------------------------------

    def test_a_genuine_notification_is_accepted(
        self, provider: Provider, new_request: NewRequest, settle: Settle
    ) -> None:
        created = provider.create(new_request())
        genuine = settle(created, self._word_for(PaymentStatus.PAID))

        first = provider.parse_notification(genuine)
        again = provider.parse_notification(genuine)

        assert first.payment.id == created.id
        assert first.payment.status is PaymentStatus.PAID
        assert first.fields
        assert again.payment == first.payment

    def test_forged_notifications_are_rejected(
        self, provider: Provider, new_request: NewRequest, settle: Settle
    ) -> None:
        created = provider.create(new_request())
        genuine = settle(created, self._word_for(PaymentStatus.PAID))

        accepted, wrong_error = [], []
        for name, forged in self.forgeries(genuine).items():
            try:
                provider.parse_notification(forged)
            except SignatureError:
                continue
            except Exception as error:
                wrong_error.append(f"{name}: {type(error).__name__}: {error}")
            else:
                accepted.append(name)

        assert not accepted, f"forged notifications were accepted: {accepted}"
        assert not wrong_error, (
            f"forgeries raised something else than SignatureError: {wrong_error}"
        )

    # -- errors -----------------------------------------------------------------------

    def test_a_refused_create_raises_a_typed_provider_error(
        self, provider: Provider, refused_request: PaymentRequest
    ) -> None:
        with pytest.raises(PaymuxError) as raised:
            provider.create(refused_request)

        assert isinstance(raised.value, ProviderError), repr(raised.value)
        assert str(raised.value)

    def test_an_unknown_payment_raises_payment_not_found(self, provider: Provider) -> None:
        with pytest.raises(PaymentNotFound):
            provider.status(payment_id=self.unknown_payment_id)
        with pytest.raises(PaymentNotFound):
            provider.status(order_id=_unique_order_id())

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

        outcomes = {}
        with no_network() as network:
            for name, call in calls.items():
                try:
                    call()
                    outcomes[name] = "accepted"
                except ValidationError:
                    outcomes[name] = "ValidationError"
                except Exception as error:
                    outcomes[name] = f"{type(error).__name__}: {error}"

        assert outcomes == dict.fromkeys(calls, "ValidationError")
        assert network.attempts == []

    # -- secrets ----------------------------------------------------------------------

    def test_secrets_never_reach_logs_reprs_or_errors(
        self,
        provider: Provider,
        new_request: NewRequest,
        settle: Settle,
        refused_request: PaymentRequest,
        provider_secrets: Collection[str],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        secrets = [secret for secret in provider_secrets if secret]
        assert secrets, "provider_secrets must name at least one secret setting value"
        shown: list[str] = [repr(provider), str(provider)]

        with caplog.at_level(logging.DEBUG, logger="paymux"):
            created = provider.create(new_request())
            genuine = settle(created, self._word_for(PaymentStatus.PAID))
            notification = provider.parse_notification(genuine)
            found = provider.status(order_id=created.order_id)
            shown += [repr(created), repr(notification), repr(found)]
            for fails in (
                lambda: provider.create(refused_request),
                lambda: provider.status(payment_id=self.unknown_payment_id),
                lambda: provider.parse_notification(next(iter(self.forgeries(genuine).values()))),
                lambda: provider.create(dataclasses.replace(new_request(), amount=Decimal(-1))),
            ):
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

    # -- helpers ----------------------------------------------------------------------

    def _word_for(self, status: PaymentStatus) -> str:
        for word, meaning in self.statuses.items():
            if meaning is status:
                return word
        pytest.fail(f"no provider status in `statuses` means {status.name}", pytrace=False)
