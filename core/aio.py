"""The async API: every provider, unchanged, for asyncio hosts (FastAPI, Starlette, aiohttp).

    async with await paymux.connect_async("shop") as provider:
        payment = await provider.create(request)

An `AsyncProvider` runs the very operations a `Provider` runs — core's steps, with the same
validation, exactly-once create and reconcile, errors, events, observers, ledger and redaction —
over one pooled httpx client per instance instead of a requests session; the ledger's writes
run in a thread, off the event loop. Keys are loaded once, when the provider is built. Needs the
`async` extra (httpx).

Cancellation never loses a payment: a task cancelled after a money-moving call may have left
keeps its `OutcomeUnknown` in `take_unsettled()` (and its ledger entry stays open, where the
instance keeps a ledger), for `reconcile` or the sweeper to settle.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping
from decimal import Decimal
from types import TracebackType
from typing import Any, TypeVar, overload

from paymux import __version__ as _version
from paymux._async_transport import AsyncTransport
from paymux._calls import Answer
from paymux._events import emit
from paymux._steps import Moving, Send, Steps, run_async
from paymux.capabilities import Capabilities
from paymux.config import Config
from paymux.connection import Connection
from paymux.errors import OutcomeUnknown
from paymux.incoming import Incoming, NotificationInput
from paymux.models import (
    Balance,
    Notification,
    Payment,
    PaymentRequest,
    Payout,
    PayoutRequest,
    Refund,
    RefundRequest,
)
from paymux.provider import Provider
from paymux.registry import connect
from paymux.sweeper import Handle, SweepReport, due, settling, summed

__all__ = ["AsyncProvider", "connect_async"]

T = TypeVar("T")


async def connect_async(
    target: str | Mapping[str, Any] | None = None, *, config: Config | None = None
) -> AsyncProvider:
    """`paymux.connect` for asyncio hosts: the same settings, an `AsyncProvider`.

    Building the provider reads its configuration and keys from disk: that runs in a thread.
    """
    provider = await asyncio.to_thread(connect, target, config=config)
    connected = AsyncProvider(provider)
    connected._owns_provider = True
    return connected


class AsyncProvider:
    """A provider's operations as coroutines. Share one per instance across the tasks of one
    event loop (its httpx client belongs to the loop it first runs on)."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        """The blocking provider this one drives (its description, keys and ledger)."""
        connection = provider.connection
        self._transport = AsyncTransport(
            provider=provider.name,
            instance=provider.instance,
            connect_timeout=connection.connect_timeout,
            read_timeout=connection.read_timeout,
            user_agent=connection.user_agent or f"paymux/{_version}",
            on_exchange=provider._observers.publish_exchange,
            trust_env=connection.trust_env,
        )
        self._unsettled: list[OutcomeUnknown] = []
        self._lock = threading.Lock()
        self._owns_provider = False

    @property
    def name(self) -> str:
        return self.provider.name

    @property
    def instance(self) -> str:
        return self.provider.instance

    @property
    def account(self) -> str:
        return self.provider.account

    @property
    def capabilities(self) -> Capabilities:
        return self.provider.capabilities

    @property
    def connection(self) -> Connection:
        return self.provider.connection

    def __repr__(self) -> str:
        return f"AsyncProvider({self.provider!r})"

    # -- the operations (see `Provider` for what each does) ----------------------------------

    async def create(self, request: PaymentRequest) -> Payment:
        return await self._run(self.provider._create_steps(request))

    async def status(
        self, *, payment_id: str | None = None, order_id: str | None = None
    ) -> Payment:
        return await self._run(self.provider._status_steps(payment_id, order_id))

    @overload
    async def reconcile(self, unknown: str, amount: Decimal | None = None) -> Payment: ...

    @overload
    async def reconcile(self, unknown: OutcomeUnknown) -> Payment | Refund | Payout: ...

    async def reconcile(
        self, unknown: OutcomeUnknown | str, amount: Decimal | None = None
    ) -> Payment | Refund | Payout:
        return await self._run(self.provider._reconcile_steps(unknown, amount))

    async def refund(self, request: RefundRequest) -> Refund:
        return await self._run(self.provider._refund_steps(request))

    async def refund_status(self, refund_id: str) -> Refund:
        return await self._run(self.provider._refund_status_steps(refund_id))

    async def capture(
        self,
        payment_id: str,
        amount: Decimal | None = None,
        *,
        currency: str | None = None,
        idempotency_key: str | None = None,
    ) -> Payment:
        steps = self.provider._capture_steps(payment_id, amount, currency, idempotency_key)
        return await self._run(steps)

    async def cancel(self, payment_id: str, *, idempotency_key: str | None = None) -> Payment:
        return await self._run(self.provider._cancel_steps(payment_id, idempotency_key))

    async def payout(self, request: PayoutRequest) -> Payout:
        return await self._run(self.provider._payout_steps(request))

    async def payout_status(
        self, *, payout_id: str | None = None, order_id: str | None = None
    ) -> Payout:
        return await self._run(self.provider._payout_status_steps(payout_id, order_id))

    async def balance(self) -> Balance:
        return await self._run(self.provider._balance_steps())

    async def parse_notification(self, data: Incoming | NotificationInput) -> Notification:
        return await self._run(self.provider._notification_steps(data))

    async def sweep(
        self,
        *,
        handle: Handle | None = None,
        limit: int = 100,
        now: float | None = None,
        concurrency: int | None = None,
    ) -> SweepReport:
        """`paymux.sweep` on the event loop: up to `limit` due entries settled, `concurrency` at
        a time (the `sweep_concurrency` setting unless given) as tasks instead of threads, so a
        high concurrency costs no threads. `handle` is called in a thread, off the loop."""
        at = time.time() if now is None else now
        workers = self.connection.sweep.concurrency if concurrency is None else concurrency
        ids = await asyncio.to_thread(due, self.provider, limit=limit, now=at)
        gate = asyncio.Semaphore(workers)

        async def settle_one(entry_id: str) -> SweepReport:
            async with gate:
                return await self.settle(entry_id, handle=handle, now=at)

        reports = await asyncio.gather(*(settle_one(entry_id) for entry_id in ids))
        return summed(self.provider, reports, due=len(ids))

    async def settle(
        self, entry_id: str, *, handle: Handle | None = None, now: float | None = None
    ) -> SweepReport:
        """`paymux.settle` on the event loop: one entry settled, if it is still due."""
        return await self._run(settling(self.provider, entry_id, handle=handle, now=now))

    def take_unsettled(self) -> list[OutcomeUnknown]:
        """The money-moving calls whose tasks were cancelled after they may have been sent
        (since the last call of this): reconcile each."""
        with self._lock:
            taken, self._unsettled = self._unsettled, []
        return taken

    # -- lifetime ----------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Release the pooled connections; those of the blocking provider too (its ledger's)
        when `connect_async` made it."""
        await self._transport.aclose()
        if self._owns_provider:
            await asyncio.to_thread(self.provider.close)

    async def __aenter__(self) -> AsyncProvider:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- internals ---------------------------------------------------------------------------

    async def _run(self, steps: Steps[T]) -> T:
        return await run_async(steps, send=self._send, interrupted=self._interrupted)

    async def _send(self, step: Send) -> Answer:
        runner = self.provider._runner
        answer = await self._transport.send(**runner.exchange(step))
        runner.logged(step.request, answer)
        return answer

    def _interrupted(self, moving: Moving) -> None:
        call = moving.call
        mechanism = call.exactly_once
        unknown = OutcomeUnknown(
            f"{call.request.operation}: the task was cancelled after the call may have been "
            "sent; call reconcile() with this error",
            operation=call.request.operation,
            order_id=mechanism.order_id if mechanism is not None else None,
            idempotency_key=getattr(mechanism, "key", None),
            key_expires_at=moving.key_expires_at,
            call=call,
        )
        emit(
            "warning",
            "paymux.cancelled",
            provider=self.name,
            instance=self.instance,
            operation=unknown.operation,
            order_id=unknown.order_id,
        )
        with self._lock:
            self._unsettled.append(unknown)
