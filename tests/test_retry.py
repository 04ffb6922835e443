"""One retry policy for calls that are safe to repeat: what it repeats, how long it waits."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from email.utils import formatdate

import pytest

import paymux
from paymux._retry import RetryPolicy, parse_retry_after
from paymux.errors import TLSError, TransportError
from paymux.providers.alikassa import AliKassaProvider
from paymux.providers.alikassa.sandbox import Fault, Merchant, Sandbox
from paymux.providers.base import Answer
from proxy import STATUS, THROTTLE, Proxy
from support import payment_request


class FakeTime:
    """A clock that moves only when the policy sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.pauses: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


def policy(fake: FakeTime, **changes: object) -> RetryPolicy:
    pinned = RetryPolicy(jitter=lambda: 1.0, sleep=fake.sleep, clock=lambda: fake.now)
    return replace(pinned, **changes)  # type: ignore[arg-type]


def answers(*statuses: int, retry_after: str | None = None) -> Iterator[Answer]:
    headers = {} if retry_after is None else {"retry-after": retry_after}
    for status in statuses:
        yield Answer(status=status, body=b"{}", request_id=f"r{status}", headers=headers)


# -- the policy on its own -----------------------------------------------------------------------


def test_pauses_grow_exponentially_up_to_the_cap(fake: FakeTime) -> None:
    pinned = policy(fake, backoff=0.5, max_backoff=3.0)

    assert [pinned.pause(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_jitter_scales_each_pause_within_its_upper_half(fake: FakeTime) -> None:
    low = policy(fake, backoff=1.0, jitter=lambda: 0.0)
    middle = policy(fake, backoff=1.0, jitter=lambda: 0.5)

    assert (low.pause(1), middle.pause(1)) == (0.5, 0.75)


def test_retry_after_is_honoured_up_to_its_cap(fake: FakeTime) -> None:
    pinned = policy(fake, max_retry_after=10.0)

    assert pinned.pause(1, "3") == 3.0
    assert pinned.pause(1, "3600") == 10.0
    assert pinned.pause(1, "soon") == pinned.pause(1)


def test_retry_after_may_be_an_http_date() -> None:
    assert parse_retry_after(formatdate(1000.0 + 7, usegmt=True), now=1000.0) == 7.0
    assert parse_retry_after(formatdate(1000.0 - 7, usegmt=True), now=1000.0) == 0.0


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_5xx_and_429_are_repeated_until_an_answer(fake: FakeTime, status: int) -> None:
    sequence = answers(status, 200)

    response = policy(fake).call(lambda attempt, left: next(sequence))

    assert response.status == 200
    assert fake.pauses == [0.25]


def test_the_retry_after_of_an_answer_sets_the_pause_before_the_next_attempt(
    fake: FakeTime,
) -> None:
    sequence = answers(429, 200, retry_after="3")

    assert policy(fake).call(lambda attempt, left: next(sequence)).status == 200
    assert fake.pauses == [3.0]


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_4xx_is_never_repeated(fake: FakeTime, status: int) -> None:
    sequence = answers(status, 200)

    assert policy(fake).call(lambda attempt, left: next(sequence)).status == status
    assert fake.pauses == []


def test_the_last_answer_is_kept_when_attempts_run_out(fake: FakeTime) -> None:
    sequence = answers(500, 502, 503, 200)
    seen: list[int] = []

    def send(attempt: int, left: float | None) -> Answer:
        seen.append(attempt)
        return next(sequence)

    assert policy(fake, max_attempts=3).call(send).status == 503
    assert seen == [1, 2, 3]
    assert fake.pauses == [0.25, 0.5]


def test_connection_failures_are_repeated_and_the_last_one_raised(fake: FakeTime) -> None:
    def send(attempt: int, left: float | None) -> Answer:
        raise TransportError(f"attempt {attempt}", request_sent=True)

    with pytest.raises(TransportError, match="attempt 3"):
        policy(fake).call(send)


def test_tls_failures_are_never_repeated(fake: FakeTime) -> None:
    def send(attempt: int, left: float | None) -> Answer:
        raise TLSError("bad certificate")

    with pytest.raises(TLSError):
        policy(fake).call(send)
    assert fake.pauses == []


def test_no_pause_crosses_the_deadline(fake: FakeTime) -> None:
    """Each attempt is told the time left, and a pause that would end past it is not taken."""
    lefts: list[float | None] = []

    def send(attempt: int, left: float | None) -> Answer:
        lefts.append(left)
        return Answer(status=503, body=b"", request_id="r")

    pinned = policy(fake, max_attempts=10, backoff=1.0, max_backoff=100.0, deadline=5.0)

    assert pinned.call(send).status == 503
    assert fake.pauses == [1.0, 2.0]
    assert lefts == [5.0, 4.0, 2.0]


# -- status over the sandbox -----------------------------------------------------------------


@pytest.fixture
def patient(merchant: Merchant, fake: FakeTime) -> Iterator[AliKassaProvider]:
    with paymux.connect(merchant.settings) as provider:
        assert isinstance(provider, AliKassaProvider)
        provider.retry_policy = policy(fake)
        yield provider


def status_requests(sandbox: Sandbox) -> int:
    return sum(request.path == STATUS for request in sandbox.requests)


def test_status_is_repeated_after_a_500_and_each_exchange_carries_its_attempt(
    patient: AliKassaProvider, sandbox: Sandbox, fake: FakeTime
) -> None:
    created = patient.create(payment_request())
    sandbox.inject(Fault.INTERNAL_ERROR, on="status")
    exchanges: list[paymux.Exchange] = []

    class Observer:
        @paymux.hookimpl
        def paymux_exchange(self, exchange: paymux.Exchange) -> None:
            exchanges.append(exchange)

    observer = Observer()
    paymux.register_plugin(observer)
    try:
        payment = patient.status(payment_id=created.id)
    finally:
        paymux.unregister_plugin(observer)

    assert payment.id == created.id
    assert [(e.operation, e.attempt, e.http_status) for e in exchanges] == [
        ("status", 1, 500),
        ("status", 2, 200),
    ]
    assert status_requests(sandbox) == 2
    assert fake.pauses == [0.25]


def test_a_status_not_found_is_asked_once(
    patient: AliKassaProvider, sandbox: Sandbox, fake: FakeTime
) -> None:
    with pytest.raises(paymux.PaymentNotFound):
        patient.status(order_id="never-created")

    assert status_requests(sandbox) == 1
    assert fake.pauses == []


def test_a_429_is_repeated_after_the_retry_after_it_asks_for(
    merchant: Merchant, sandbox: Sandbox, fake: FakeTime
) -> None:
    proxy = Proxy(sandbox.url).then(STATUS, THROTTLE)
    try:
        with paymux.connect({**merchant.settings, "base_url": proxy.url}) as provider:
            assert isinstance(provider, AliKassaProvider)
            provider.retry_policy = policy(fake)
            created = provider.create(payment_request())
            assert provider.status(payment_id=created.id).id == created.id
    finally:
        proxy.close()

    assert fake.pauses == [3.0]
    assert len(proxy.bodies(STATUS)) == 2


def test_a_tls_failure_is_raised_at_once(
    merchant: Merchant, sandbox: Sandbox, fake: FakeTime
) -> None:
    """An https:// address answered by a plain-HTTP server fails the handshake."""
    https = sandbox.url.replace("http://", "https://")
    with paymux.connect({**merchant.settings, "base_url": https}) as provider:
        assert isinstance(provider, AliKassaProvider)
        provider.retry_policy = policy(fake)
        with pytest.raises(paymux.TLSError) as raised:
            provider.status(order_id="anything")

    assert raised.value.request_sent is False
    assert fake.pauses == []
