"""A create happens exactly once, whatever the gateway's answer suffered on the way back.

The order_id is AliKassa's idempotency key. When a create's outcome is unknown, paymux asks for
the payment by order_id; found, it is returned; not found, the same signed bytes go out again.
Only when nothing works does create raise `OutcomeUnknown`, and `reconcile` settles it later.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

import paymux
from paymux.providers.alikassa import AliKassaProvider
from paymux.providers.alikassa.sandbox import Fault, Merchant, Sandbox
from proxy import CREATE, FAIL, LOST, NOT_FOUND, STATUS, Canned, Proxy
from support import payment_request


def connect(settings: dict[str, Any]) -> AliKassaProvider:
    provider = paymux.connect(settings)
    assert isinstance(provider, AliKassaProvider)
    provider.retry_policy = replace(provider.retry_policy, sleep=lambda seconds: None)
    return provider


def creates(sandbox: Sandbox) -> int:
    return sum(request.path == CREATE for request in sandbox.requests)


@pytest.fixture
def proxy(sandbox: Sandbox) -> Iterator[Proxy]:
    running = Proxy(sandbox.url)
    yield running
    running.close()


@pytest.fixture
def via_proxy(merchant: Merchant, proxy: Proxy) -> Iterator[AliKassaProvider]:
    """A provider talking to the sandbox through the scriptable proxy; pauses do not sleep."""
    with connect({**merchant.settings, "base_url": proxy.url}) as provider:
        yield provider


# -- the gateway stored the payment, the answer was lost ----------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        Fault.INTERNAL_ERROR,
        Fault.DROP_CONNECTION,
        Fault.STALL,
        Fault.HTML_ANSWER,
        Fault.TRUNCATED_JSON,
    ],
)
def test_a_create_whose_answer_is_lost_returns_the_one_stored_payment(
    merchant: Merchant, sandbox: Sandbox, fault: Fault
) -> None:
    sandbox.gateway.stall_seconds = 0.3
    sandbox.inject(fault)
    request = payment_request()

    with connect({**merchant.settings, "read_timeout": 0.1}) as provider:
        payment = provider.create(request)

    stored = [p for p in sandbox.payments() if p.order_id == request.order_id]
    assert [payment.id] == [str(p.id) for p in stored]
    assert payment.order_id == request.order_id
    assert payment.amount == request.amount
    assert payment.status is paymux.PaymentStatus.PENDING
    assert payment.redirect_url == stored[0].url
    assert creates(sandbox) == 1, "found by order_id: never sent twice"


class CreateUpdates:
    """A host plugin that records the payments published by create."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    @paymux.hookimpl
    def paymux_payment_update(self, payment: paymux.Payment, source: str) -> None:
        if source == "create":
            self.ids.append(payment.id)


def test_a_create_found_by_order_id_is_published_once_like_any_create(
    merchant: Merchant, sandbox: Sandbox
) -> None:
    sandbox.inject(Fault.INTERNAL_ERROR)
    updates = CreateUpdates()
    paymux.register_plugin(updates)
    try:
        with connect(merchant.settings) as provider:
            payment = provider.create(payment_request())
    finally:
        paymux.unregister_plugin(updates)

    assert updates.ids == [payment.id]


def test_a_create_the_gateway_never_received_is_sent_again_with_the_same_bytes(
    via_proxy: AliKassaProvider, proxy: Proxy, sandbox: Sandbox
) -> None:
    proxy.then(CREATE, FAIL)  # 500, and nothing stored: the lookup finds nothing
    request = payment_request()

    payment = via_proxy.create(request)

    first, second = proxy.bodies(CREATE)
    assert first == second
    signs = [r.headers["sign"] for r in proxy.received if r.path == CREATE]
    assert signs[0] == signs[1]
    assert [p.order_id for p in sandbox.payments()] == [request.order_id]
    assert payment.id == str(sandbox.payment(request.order_id).id)
    assert [r.path for r in proxy.received] == [CREATE, STATUS, CREATE]


def test_order_id_exists_on_a_re_send_returns_the_payment_an_earlier_attempt_made(
    via_proxy: AliKassaProvider, proxy: Proxy, sandbox: Sandbox
) -> None:
    """The first create was stored, but the lookup lagged behind: the re-send meets it."""
    proxy.then(CREATE, LOST).then(STATUS, NOT_FOUND)
    request = payment_request()

    payment = via_proxy.create(request)

    assert payment.id == str(sandbox.payment(request.order_id).id)
    assert len(sandbox.payments()) == 1
    assert [r.path for r in proxy.received] == [CREATE, STATUS, CREATE, STATUS]
    assert len(set(proxy.bodies(CREATE))) == 1


def test_an_order_id_taken_by_another_amount_is_a_conflict_not_a_success(
    via_proxy: AliKassaProvider, proxy: Proxy, sandbox: Sandbox
) -> None:
    earlier = via_proxy.create(payment_request(amount=Decimal("500.00")))
    proxy.then(CREATE, FAIL)

    with pytest.raises(paymux.OrderConflict) as raised:
        via_proxy.create(payment_request(order_id=earlier.order_id, amount=Decimal("600.00")))

    assert raised.value.order_id == earlier.order_id
    assert raised.value.payment.id == earlier.id
    assert "amount 500" in raised.value.message
    assert isinstance(raised.value, paymux.DuplicateOrder)
    assert len(sandbox.payments()) == 1


def test_order_id_exists_on_a_re_send_for_another_service_is_a_conflict(
    via_proxy: AliKassaProvider, proxy: Proxy, sandbox: Sandbox
) -> None:
    earlier = via_proxy.create(payment_request())
    proxy.then(CREATE, FAIL).then(STATUS, NOT_FOUND)
    other = payment_request(order_id=earlier.order_id, options={"service": "payment_card_eur_card"})

    with pytest.raises(paymux.OrderConflict) as raised:
        via_proxy.create(other)

    assert "service payment_card_rub_hpp" in raised.value.message
    assert len(sandbox.payments()) == 1


def test_order_id_exists_on_the_first_send_looks_the_payment_up_and_returns_it(
    via_proxy: AliKassaProvider, proxy: Proxy, sandbox: Sandbox
) -> None:
    """Another call (a double click, a process that died) made it: the same order, adopted."""
    request = payment_request()
    earlier = via_proxy.create(request)
    proxy.received.clear()

    payment = via_proxy.create(request)

    assert payment.id == earlier.id
    assert [r.path for r in proxy.received] == [CREATE, STATUS]
    assert len(sandbox.payments()) == 1


def test_a_refusal_is_never_sent_again(provider: AliKassaProvider, sandbox: Sandbox) -> None:
    sandbox.maintenance = True

    with pytest.raises(paymux.ProviderUnavailable):
        provider.create(payment_request())

    assert creates(sandbox) == 1
    assert sandbox.payments() == []


def test_a_connect_failure_is_retried_directly_then_raised_as_not_sent(
    merchant: Merchant, closed_port_url: str
) -> None:
    pauses: list[float] = []
    with connect({**merchant.settings, "base_url": closed_port_url}) as provider:
        provider.retry_policy = replace(provider.retry_policy, sleep=pauses.append)
        with pytest.raises(paymux.TransportError) as raised:
            provider.create(payment_request())

    assert raised.value.request_sent is False
    assert not isinstance(raised.value, paymux.OutcomeUnknown)
    assert len(pauses) == 2, "three attempts, two pauses"


# -- when nothing works: OutcomeUnknown, and reconcile later -----------------------------------


def test_when_every_attempt_fails_create_raises_outcome_unknown_saying_what_it_tried(
    via_proxy: AliKassaProvider, proxy: Proxy, sandbox: Sandbox
) -> None:
    proxy.then(CREATE, FAIL, FAIL, FAIL)
    request = payment_request()

    with pytest.raises(paymux.OutcomeUnknown) as raised:
        via_proxy.create(request)

    assert raised.value.order_id == request.order_id
    assert raised.value.http_status == 500
    assert raised.value.message.count("lookup: not found") == 3
    assert "reconcile" in raised.value.message
    assert len(set(proxy.bodies(CREATE))) == 1
    assert len(proxy.bodies(CREATE)) == 3
    with pytest.raises(paymux.PaymentNotFound):
        via_proxy.reconcile(request.order_id)


def test_reconcile_later_resolves_an_outcome_unknown(
    via_proxy: AliKassaProvider, proxy: Proxy, sandbox: Sandbox
) -> None:
    proxy.then(CREATE, LOST).then(STATUS, FAIL, FAIL, FAIL)  # stored, then every lookup fails
    request = payment_request()
    with pytest.raises(paymux.OutcomeUnknown):
        via_proxy.create(request)

    payment = via_proxy.reconcile(request.order_id, amount=request.amount)

    assert payment.id == str(sandbox.payment(request.order_id).id)
    assert len(proxy.bodies(CREATE)) == 1


def test_reconcile_given_the_error_finds_the_payment_and_sends_nothing_again(
    via_proxy: AliKassaProvider, proxy: Proxy, sandbox: Sandbox
) -> None:
    proxy.then(CREATE, LOST).then(STATUS, FAIL, FAIL, FAIL)  # stored, then every lookup fails
    request = payment_request()
    with pytest.raises(paymux.OutcomeUnknown) as raised:
        via_proxy.create(request)

    payment = via_proxy.reconcile(raised.value)

    assert isinstance(payment, paymux.Payment)
    assert payment.id == str(sandbox.payment(request.order_id).id)
    assert len(proxy.bodies(CREATE)) == 1


def test_reconcile_given_the_error_of_a_create_never_stored_sends_the_same_bytes_again(
    via_proxy: AliKassaProvider, proxy: Proxy, sandbox: Sandbox
) -> None:
    proxy.then(CREATE, FAIL, FAIL, FAIL)
    request = payment_request()
    with pytest.raises(paymux.OutcomeUnknown) as raised:
        via_proxy.create(request)

    payment = via_proxy.reconcile(raised.value)

    assert payment.id == str(sandbox.payment(request.order_id).id)
    assert len(set(proxy.bodies(CREATE))) == 1
    assert len(proxy.bodies(CREATE)) == 4
    assert creates(sandbox) == 1


def test_reconcile_with_another_amount_is_a_conflict(
    provider: AliKassaProvider, sandbox: Sandbox
) -> None:
    created = provider.create(payment_request(amount=Decimal("500.00")))

    with pytest.raises(paymux.OrderConflict):
        provider.reconcile(str(created.order_id), amount=Decimal("500.01"))
    assert provider.reconcile(str(created.order_id), amount=Decimal("500")).id == created.id


def test_reconciliation_stops_at_the_deadline(
    via_proxy: AliKassaProvider, proxy: Proxy, sandbox: Sandbox
) -> None:
    """With a fake clock: the pause that would cross the deadline is not taken."""
    now = [0.0]
    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        now[0] += seconds

    via_proxy.retry_policy = replace(
        via_proxy.retry_policy,
        max_attempts=10,
        backoff=0.4,
        max_backoff=10.0,
        deadline=1.0,
        jitter=lambda: 1.0,
        sleep=sleep,
        clock=lambda: now[0],
    )
    proxy.then(CREATE, *[FAIL] * 10)

    with pytest.raises(paymux.OutcomeUnknown):
        via_proxy.create(payment_request())

    assert pauses == [0.4], "0.4 fits in 1 s; the next pause (0.8) would end past it"
    assert len(proxy.bodies(CREATE)) == 2


def test_reconciliation_can_be_switched_off(merchant: Merchant, sandbox: Sandbox) -> None:
    sandbox.inject(Fault.INTERNAL_ERROR)
    with (
        connect({**merchant.settings, "reconcile": "false"}) as provider,
        pytest.raises(paymux.OutcomeUnknown),
    ):
        provider.create(payment_request())

    assert [r.path for r in sandbox.requests] == [CREATE]


@pytest.fixture
def closed_port_url() -> str:
    """A loopback URL on which nothing listens: connecting is refused."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# -- answers trusted no further than they are checked -------------------------------------------

NESTED = b"[" * 100_000 + b"]" * 100_000
"""Valid JSON nested deeper than any recursive reader survives."""


def status_answer(sandbox: Sandbox, payment_id: str, **changes: object) -> Canned:
    """The sandbox's own status answer for `payment_id`, with `changes` applied."""
    body = {**sandbox.payment(payment_id).status_body(), **changes}
    return Canned(200, json.dumps(body).encode())


def test_a_lookup_answering_about_another_order_is_never_taken_for_ours(
    via_proxy: AliKassaProvider, proxy: Proxy, sandbox: Sandbox
) -> None:
    """Same amount, same service, another order: returning it would hand out a stranger's page."""
    stranger = via_proxy.create(payment_request())
    request = payment_request()
    proxy.then(CREATE, LOST).then(STATUS, status_answer(sandbox, stranger.id))

    with pytest.raises(paymux.OutcomeUnknown) as raised:
        via_proxy.create(request)

    assert raised.value.order_id == request.order_id
    assert "answer is about" in raised.value.message
    assert via_proxy.reconcile(request.order_id).id == str(sandbox.payment(request.order_id).id)


def test_a_lookup_showing_no_amount_is_an_unknown_outcome_not_a_conflict(
    via_proxy: AliKassaProvider, proxy: Proxy, sandbox: Sandbox
) -> None:
    request = payment_request()
    ours = via_proxy.create(request)
    proxy.then(CREATE, FAIL).then(STATUS, status_answer(sandbox, ours.id, amount=None))

    with pytest.raises(paymux.OutcomeUnknown) as raised:
        via_proxy.create(request)

    assert not isinstance(raised.value, paymux.ProviderError)
    assert raised.value.order_id == request.order_id
    assert "no amount" in raised.value.message


def test_reconcile_with_an_amount_when_the_answer_shows_none_is_an_invalid_response(
    via_proxy: AliKassaProvider, proxy: Proxy, sandbox: Sandbox
) -> None:
    ours = via_proxy.create(payment_request())
    proxy.then(STATUS, status_answer(sandbox, ours.id, amount=None))

    with pytest.raises(paymux.InvalidResponse, match="no amount"):
        via_proxy.reconcile(str(ours.order_id), amount=Decimal("500.00"))


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(NESTED, id="nested-too-deep"),
        pytest.param(b'{"url":"x","payment_status":"wait","id":1e999999999}', id="huge-number"),
        pytest.param(
            b'{"url":"x","payment_status":"wait","id":1,"pad":"' + b"x" * 2**21 + b'"}',
            id="above-the-size-cap",
        ),
    ],
)
def test_a_create_answered_with_a_hostile_body_returns_the_stored_payment(
    via_proxy: AliKassaProvider, proxy: Proxy, sandbox: Sandbox, answer: bytes
) -> None:
    """The gateway stored the payment; an answer paymux cannot read is an unknown outcome."""
    proxy.then(CREATE, Canned(200, answer, forward=True))
    request = payment_request()

    payment = via_proxy.create(request)

    assert payment.id == str(sandbox.payment(request.order_id).id)
    assert creates(sandbox) == 1


def test_a_hostile_answer_to_every_call_is_outcome_unknown_carrying_the_order_id(
    via_proxy: AliKassaProvider, proxy: Proxy, sandbox: Sandbox
) -> None:
    proxy.then(CREATE, Canned(200, NESTED, forward=True)).then(STATUS, Canned(200, NESTED))
    request = payment_request()

    with pytest.raises(paymux.OutcomeUnknown) as raised:
        via_proxy.create(request)

    assert raised.value.order_id == request.order_id
    assert raised.value.http_status == 200
    assert via_proxy.reconcile(request.order_id).id == str(sandbox.payment(request.order_id).id)


def test_debug_logging_survives_a_hostile_answer(
    via_proxy: AliKassaProvider, proxy: Proxy, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="paymux")
    proxy.then(CREATE, Canned(200, NESTED, forward=True))

    payment = via_proxy.create(payment_request())

    logged = [record.getMessage() for record in caplog.records]
    assert payment.id == str(sandbox.payment(payment.id).id)
    assert sum("event='paymux.http'" in line for line in logged) == 2
    assert any("event='paymux.reconcile'" in line for line in logged)
    assert not any("[[[[" in line for line in logged)
