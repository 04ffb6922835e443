"""The packaged notification endpoints' own options: where they mount, and who the sender is.

What they do with each notification (the four outcomes, duplicates, forgeries, failures) is
specified in tests/test_frameworks.py, which serves them on real servers; here a genuine
YooKassa webhook, as the emulator delivered it, is replayed through each framework's test
client (FastAPI: over uvicorn, its guard on each kind of store, the networked ones natively
async), claiming to come from YooKassa's address or from elsewhere.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
import requests
from yookassa_support import Webhooks, paid

import paymux
from paymux import Action, Decision, NotificationGuard, Verdict
from paymux.contrib import Reply, answer, answer_async
from paymux_yookassa.emulator import Emulator
from paymux_yookassa.emulator.webhooks import DEFAULT_SENDER
from support import serve_uvicorn

STRANGER = "203.0.113.9"
"""An address outside the senders YooKassa's instance trusts."""


@dataclass
class Recorder:
    """A shop that keeps what it was told, blocking or as coroutines."""

    due: Decimal
    decisions: list[Decision] = field(default_factory=list)

    def amount_due(self, order_id: str) -> Decimal | None:
        return self.due

    def apply(self, decision: Decision, notification: paymux.Notification) -> None:
        self.decisions.append(decision)


@dataclass
class AsyncRecorder:
    shop: Recorder

    async def amount_due(self, order_id: str) -> Decimal | None:
        return self.shop.amount_due(order_id)

    async def apply(self, decision: Decision, notification: paymux.Notification) -> None:
        self.shop.apply(decision, notification)


def webhook(yookassa: paymux.Provider, emulator: Emulator, webhooks: Webhooks) -> paymux.Incoming:
    """A genuine `payment.succeeded` webhook, as it reached the shop."""
    payment = paid(yookassa, emulator)
    webhooks.wait_for(1)
    [incoming] = webhooks.about(payment.id, "payment.succeeded")
    return incoming


def proxied(sender: str) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Real-IP": sender}


def test_the_flask_extension_mounts_under_a_prefix_and_trusts_the_sender_it_is_told(
    yookassa: paymux.Provider, emulator: Emulator, webhooks: Webhooks
) -> None:
    flask = pytest.importorskip("flask", reason="no Flask: pip install 'paymux[flask]'")
    from paymux.contrib.flask import Paymux

    incoming = webhook(yookassa, emulator, webhooks)
    shop = Recorder(due=incoming_amount(incoming))
    extension = Paymux(
        providers={"yoo": yookassa},
        guard=NotificationGuard(paymux.MemoryStore()),
        shop=shop,
        url_prefix="/payments",
        sender=lambda request: request.headers.get("X-Real-IP"),
    )
    app = flask.Flask(__name__)
    extension.init_app(app)
    client = app.test_client()

    forged = client.post("/payments/notify/yoo", data=incoming.body, headers=proxied(STRANGER))
    unknown = client.post("/payments/notify/nope", data=incoming.body, headers=proxied(STRANGER))
    genuine = client.post(
        "/payments/notify/yoo", data=incoming.body, headers=proxied(DEFAULT_SENDER)
    )
    again = client.post("/payments/notify/yoo", data=incoming.body, headers=proxied(DEFAULT_SENDER))

    assert app.extensions["paymux"] is extension
    assert (forged.status_code, unknown.status_code) == (400, 404)
    assert (genuine.status_code, again.status_code) == (200, 200)
    assert [d.action for d in shop.decisions] == [Action.FULFIL, Action.IGNORE]
    assert [d.verdict for d in shop.decisions] == [Verdict.NEW, Verdict.DUPLICATE]


@pytest.fixture(params=["memory", "redis", "postgres"])
def store(request: pytest.FixtureRequest) -> Iterator[paymux.GuardStore]:
    """The guard's store: in memory (updated in a thread) or networked (natively async)."""
    if request.param == "memory":
        yield paymux.MemoryStore()
        return
    from paymux.stores import PostgresStore, RedisStore

    name = f"guard_{uuid.uuid4().hex}"
    if request.param == "redis":
        with RedisStore(request.getfixturevalue("redis_url"), prefix=f"{name}:") as networked:
            yield networked
    else:
        with PostgresStore(request.getfixturevalue("postgres_dsn"), table=name) as networked:
            yield networked


def test_the_fastapi_router_mounts_under_a_prefix_and_trusts_the_sender_it_is_told(
    yookassa: paymux.Provider, emulator: Emulator, webhooks: Webhooks, store: paymux.GuardStore
) -> None:
    fastapi = pytest.importorskip("fastapi", reason="no FastAPI: pip install 'paymux[fastapi]'")
    from paymux.aio import AsyncProvider
    from paymux.contrib.fastapi import notification_router

    incoming = webhook(yookassa, emulator, webhooks)
    shop = Recorder(due=incoming_amount(incoming))
    provider = AsyncProvider(yookassa)  # its httpx client is made on the server's loop

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        yield
        await provider.aclose()

    app = fastapi.FastAPI(lifespan=lifespan)
    app.include_router(
        notification_router(
            {"yoo": provider},
            NotificationGuard(store),
            AsyncRecorder(shop),
            prefix="/payments",
            sender=lambda request: request.headers.get("X-Real-IP"),
        )
    )
    with serve_uvicorn(app) as base:

        def post(path: str, sender: str) -> int:
            answer = requests.post(
                base + path, data=incoming.body, headers=proxied(sender), timeout=10
            )
            return answer.status_code

        forged = post("/payments/notify/yoo", STRANGER)
        unknown = post("/payments/notify/nope", STRANGER)
        genuine = post("/payments/notify/yoo", DEFAULT_SENDER)
        again = post("/payments/notify/yoo", DEFAULT_SENDER)

    assert (forged, unknown) == (400, 404)
    assert (genuine, again) == (200, 200)
    assert [d.action for d in shop.decisions] == [Action.FULFIL, Action.IGNORE]
    assert [d.verdict for d in shop.decisions] == [Verdict.NEW, Verdict.DUPLICATE]


def test_a_shop_that_fails_to_record_gets_a_retryable_answer_and_the_repeat_is_admitted(
    yookassa: paymux.Provider, emulator: Emulator, webhooks: Webhooks
) -> None:
    incoming = webhook(yookassa, emulator, webhooks)
    guard = NotificationGuard(paymux.MemoryStore())
    shop = Recorder(due=incoming_amount(incoming))
    failing = Recorder(due=shop.due)

    def broken(decision: Decision, notification: paymux.Notification) -> None:
        raise RuntimeError("the shop's database is down")

    failing.apply = broken  # type: ignore[method-assign]

    async def replies() -> list[Reply]:
        from paymux.aio import AsyncProvider

        async with AsyncProvider(yookassa) as provider:
            first = await answer_async(provider, guard, AsyncRecorder(failing), incoming)
            second = await answer_async(provider, guard, AsyncRecorder(shop), incoming)
        return [first, second]

    first, second = asyncio.run(replies())
    third = answer(yookassa, guard, shop, incoming)

    assert (first.status, first.verdict) == (500, None)
    assert (second.status, second.verdict) == (200, Verdict.NEW)
    assert (third.status, third.verdict) == (200, Verdict.DUPLICATE)
    assert [d.action for d in shop.decisions] == [Action.FULFIL, Action.IGNORE]


def incoming_amount(incoming: paymux.Incoming) -> Decimal:
    return Decimal(incoming.json()["object"]["amount"]["value"])
