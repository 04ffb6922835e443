"""The conformance kit's shared part: fixture types, `no_network`, the base of its test classes."""

from __future__ import annotations

import dataclasses
import socket
import threading
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import urlencode

import pytest

from paymux import (
    Authentication,
    Capabilities,
    Incoming,
    Lookup,
    NotificationInput,
    Operation,
    Payment,
    PaymentRequest,
    PaymentStatus,
    PayoutRequest,
    Provider,
    RefundRequest,
    RetryPolicy,
    Unsupported,
)
from paymux.providers.base.notifications import notification_params

__all__ = [
    "CountPayments",
    "KitBase",
    "LoseAnswers",
    "NetworkUse",
    "NewPayout",
    "NewRequest",
    "Notified",
    "Settle",
    "driven_async",
    "no_network",
]

Notified = Incoming | NotificationInput
"""A notification as the shop's endpoint received it."""
NewRequest = Callable[[], PaymentRequest]
"""The `new_request` fixture: a fresh valid request on each call."""
Settle = Callable[[Payment, str], Notified]
"""The `settle` fixture: `(payment, provider_status) -> the notification it caused`."""
LoseAnswers = Callable[[str, int], None]
"""The `lose_answers` fixture: `(operation, count)`: act, but let no answer arrive."""
CountPayments = Callable[[str], int]
"""The `count_payments` (and `count_payouts`) fixture: what the emulator holds for an order."""
NewPayout = Callable[[], PayoutRequest]
"""The `payout_request` fixture: a fresh valid payout on each call."""


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


ANSWERED, LOST = "answered", "answer lost"
"""The two runs of each money-moving operation: as usual, and with the gateway's answer lost."""


def _unique_order_id() -> str:
    return f"conformance-{uuid.uuid4().hex[:12]}"


def _optional(request: pytest.FixtureRequest, name: str, needed_for: str) -> Any:
    """The fixture `name`, or a skip that says which fixture would run this test."""
    value = _fixture_or_none(request, name)
    if value is None:
        pytest.skip(f"supply the `{name}` fixture to test {needed_for}")
    return value


def _fixture_or_none(request: pytest.FixtureRequest, name: str) -> Any:
    try:
        return request.getfixturevalue(name)
    except pytest.FixtureLookupError:
        return None


def _outcomes(
    calls: Mapping[str, Callable[[], object]], expected: type[Exception]
) -> dict[str, str]:
    """How each call ended: the name of the `expected` error (with the operation an
    `Unsupported` names), or what happened instead."""
    outcomes = {}
    for name, call in calls.items():
        try:
            call()
            outcomes[name] = "accepted"
        except expected as error:
            operation = f" {error.operation}" if isinstance(error, Unsupported) else ""
            outcomes[name] = f"{expected.__name__}{operation}"
        except Exception as error:
            outcomes[name] = f"{type(error).__name__}: {error}"
    return outcomes


def _fast(provider: Provider, **changes: Any) -> None:
    """Pauses of a hundredth of a second: the kit tests outcomes, not backoff."""
    provider.retry_policy = dataclasses.replace(RetryPolicy(backoff=0.01), **changes)


@contextmanager
def driven_async(provider: Provider) -> Iterator[None]:
    """While the block lasts, every operation of `provider` runs through the async executor
    (`paymux.aio`: httpx, on an event loop in the calling thread, so that `no_network` sees
    it): tests written against the blocking API then test the async mode unchanged."""
    pytest.importorskip("httpx", reason="the async mode needs httpx: pip install 'paymux[async]'")
    import asyncio

    from paymux.aio import AsyncProvider

    async def run_async(steps: Any) -> Any:
        driven = AsyncProvider(provider)  # an httpx client per operation: each has its loop
        try:
            return await driven._run(steps)
        finally:
            await driven.aclose()

    vars(provider)["_run"] = lambda steps: asyncio.run(run_async(steps))
    try:
        yield
    finally:
        del vars(provider)["_run"]


class KitBase:
    """What the kit's tests share: the provider's declared vocabulary, what an author may
    override, and the helpers the tests drive the emulator with."""

    statuses: ClassVar[Mapping[str, PaymentStatus]]
    """Every status word the provider's API uses, and the `PaymentStatus` it means."""

    initial_status: ClassVar[str]
    """The word a newly created payment has."""

    final_statuses: ClassVar[Collection[str]]
    """The words the provider documents as final: the payment never changes after them."""

    unsigned_fields: ClassVar[Collection[str]] = ()
    """Query-string notification fields the signature does not cover (the default forgeries
    leave them alone)."""

    exact_amounts: ClassVar[tuple[Decimal, ...]] = (
        Decimal("100.10"),
        Decimal("1234.57"),
        Decimal("4999.99"),
    )
    """Amounts (valid for `new_request`'s payment method) that floats would not keep exact."""

    unknown_payment_id: ClassVar[str] = "999999999"
    """A well-formed payment id that the emulator never issued."""

    capabilities: Capabilities
    """The provider's declaration, set before `forgeries` is called."""

    # -- parametrization ------------------------------------------------------------------

    @pytest.fixture(autouse=True)
    def mode(self, request: pytest.FixtureRequest) -> Iterator[str]:
        """How the test's operations run: "sync" (blocking) or "async" (see `driven_async`)."""
        chosen: str = getattr(request, "param", "sync")
        if chosen == "async":
            with driven_async(request.getfixturevalue("provider")):
                yield chosen
        else:
            yield chosen

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """Run each test that uses the provider in both modes, and the per-status and
        per-amount tests once for each declared value."""
        if "provider" in metafunc.fixturenames:
            metafunc.parametrize("mode", ["sync", "async"], indirect=True)
        if "provider_status" in metafunc.fixturenames:
            reachable = [word for word in self.statuses if word != self.initial_status]
            metafunc.parametrize("provider_status", reachable)
        if "exact_amount" in metafunc.fixturenames:
            metafunc.parametrize("exact_amount", self.exact_amounts, ids=str)
        if "answer" in metafunc.fixturenames:
            metafunc.parametrize("answer", [ANSWERED, LOST])

    # -- what an author may override ------------------------------------------------------

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

    def refund_request(self, payment: Payment) -> RefundRequest:
        """The refund the kit asks for, of a PAID payment: all of it."""
        return RefundRequest(payment_id=payment.id, amount=payment.amount)

    def forgeries(self, genuine: Notified) -> dict[str, Notified]:
        """Notifications derived from a genuine one that must all raise `SignatureError`."""
        forged: dict[str, Notified] = {}
        declared = self.capabilities.notifications
        if Authentication.SENDER in declared and isinstance(genuine, Incoming):
            for name, sender in _FOREIGN_SENDERS.items():
                forged[name] = dataclasses.replace(genuine, sender=sender)
        query = _query_of(genuine)
        if Authentication.SIGNATURE in declared and query is not None:
            for name, altered in self._query_forgeries(notification_params(query)).items():
                forged[name] = (
                    dataclasses.replace(genuine, query=altered)
                    if isinstance(genuine, Incoming)
                    else altered
                )
        return forged

    def _query_forgeries(self, params: dict[str, str]) -> dict[str, str]:
        forged = {"empty": "", "not a notification": "hello"}
        if params:
            first = next(iter(params.items()))
            forged["a field given twice"] = urlencode([*params.items(), first])
        for name, value in params.items():
            if name in self.unsigned_fields:
                continue
            others = {k: v for k, v in params.items() if k != name}
            forged[f"{name} missing"] = urlencode(others)
            forged[f"{name} extended"] = urlencode({**params, name: value + "1"})
            if value:
                changed = ("0" if value[0] != "0" else "1") + value[1:]
                forged[f"{name} altered"] = urlencode({**params, name: changed})
                forged[f"{name} emptied"] = urlencode({**params, name: ""})
        return forged

    # -- helpers --------------------------------------------------------------------------

    def _word_for(self, status: PaymentStatus) -> str:
        for word, meaning in self.statuses.items():
            if meaning is status:
                return word
        pytest.fail(f"no provider status in `statuses` means {status.name}", pytrace=False)

    def _status(
        self, provider: Provider, payment: Payment | None, by: Lookup | None = None
    ) -> Payment:
        """`status` by `by` (by default a declared lookup; None: an unknown payment)."""
        declared = provider.capabilities.status_by
        lookup = by or (Lookup.PAYMENT_ID if Lookup.PAYMENT_ID in declared else Lookup.ORDER_ID)
        if lookup is Lookup.PAYMENT_ID:
            return provider.status(payment_id=payment.id if payment else self.unknown_payment_id)
        return provider.status(order_id=payment.order_id if payment else _unique_order_id())

    def _lose_if(
        self, answer: str, request: pytest.FixtureRequest, provider: Provider, operation: str
    ) -> None:
        """Under LOST, the next answer to `operation` never arrives: it must still act once."""
        if answer == LOST:
            lose: LoseAnswers = _optional(
                request, "lose_answers", f"{operation} under lost answers"
            )
            _fast(provider)
            lose(operation, 1)

    def _offers(self, provider: Provider, operation: Operation) -> bool:
        """Whether `operation` is declared; when it is not, checks that calling it raises
        `Unsupported` before any network use (then the test has nothing more to do)."""
        if provider.capabilities.offers(operation):
            return True
        with no_network() as network, pytest.raises(Unsupported):
            _UNDECLARED_CALLS[operation](provider, self.unknown_payment_id)
        assert network.attempts == [], f"an undeclared {operation} touched the network"
        return False

    def _paid(self, provider: Provider, new_request: NewRequest, settle: Settle) -> Payment:
        created = provider.create(new_request())
        provider.parse_notification(settle(created, self._word_for(PaymentStatus.PAID)))
        return self._status(provider, created)

    def _authorized(self, provider: Provider, new_request: NewRequest, settle: Settle) -> Payment:
        """A two-phase payment whose money is held: created with capture=False, then paid."""
        if PaymentStatus.AUTHORIZED not in self.statuses.values():
            pytest.skip(
                f"{provider.name} declares two-phase operations, but no status word in "
                f"`statuses` means AUTHORIZED"
            )
        created = provider.create(dataclasses.replace(new_request(), capture=False))
        notified = provider.parse_notification(
            settle(created, self._word_for(PaymentStatus.AUTHORIZED))
        )
        assert notified.payment.status is PaymentStatus.AUTHORIZED
        return self._status(provider, created)


_UNDECLARED_CALLS: dict[Operation, Callable[[Provider, str], object]] = {
    Operation.REFUND: lambda provider, unknown: provider.refund(
        RefundRequest(unknown, Decimal("1.00"))
    ),
    Operation.CAPTURE: lambda provider, unknown: provider.capture(unknown),
    Operation.CANCEL: lambda provider, unknown: provider.cancel(unknown),
    Operation.PAYOUT: lambda provider, unknown: provider.payout(
        PayoutRequest(_unique_order_id(), Decimal("1.00"), number="4111111111111111")
    ),
    Operation.BALANCE: lambda provider, unknown: provider.balance(),
}
"""How the kit calls each optional operation to see an undeclared one refused."""

_FOREIGN_SENDERS = {
    "sender unknown": None,
    "sender not an address": "gateway.example",
    "sender outside the gateway's networks (IPv4)": "192.0.2.1",
    "sender outside the gateway's networks (IPv6)": "2001:db8::1",
}
"""Senders no gateway uses: documentation addresses (RFC 5737, RFC 3849) and worse."""


def _query_of(notified: Notified) -> NotificationInput | None:
    """The query string (or parameters) a notification is made of; None when it has a body."""
    if isinstance(notified, Incoming):
        return notified.query if not notified.body and notified.query else None
    return notified
