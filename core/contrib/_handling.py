"""A notification endpoint's job, the same in every framework and for every gateway.

Verify, guard, decide, answer: 400 for a forgery (nothing done), 503 while it cannot be decided
yet (the gateway could not be asked to confirm it, or another worker holds it), 500 when the
shop failed to record it (the claim is released, so the gateway's repeat is admitted again), and
200 for every other verdict. The framework modules only turn their request into an `Incoming`
and the `Reply` into a response.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

from paymux.decisions import Decision, decide
from paymux.errors import PaymuxError, SignatureError
from paymux.guards import NotificationGuard, Verdict
from paymux.incoming import Incoming
from paymux.models import Notification
from paymux.provider import Provider

if TYPE_CHECKING:
    from paymux.aio import AsyncProvider

__all__ = ["AsyncShop", "Reply", "Shop", "answer", "answer_async", "handle"]

log = logging.getLogger("paymux.contrib")


class Shop(Protocol):
    """The shop's side of a notification endpoint."""

    def amount_due(self, order_id: str) -> Decimal | None:
        """The order's total; None when the shop has no such order (then REJECT)."""

    def apply(self, decision: Decision, notification: Notification) -> None:
        """Record the notification and act on the decision: ship on FULFIL, capture on CAPTURE,
        flag HOLD, REVIEW and REJECT. Called for every verdict but BUSY (a DUPLICATE's or
        STALE's decision is IGNORE). Raise to have the gateway repeat the notification."""


class AsyncShop(Protocol):
    """`Shop` for asyncio hosts."""

    async def amount_due(self, order_id: str) -> Decimal | None: ...

    async def apply(self, decision: Decision, notification: Notification) -> None: ...


@dataclass(frozen=True)
class Reply:
    """What to answer the gateway: an HTTP status and a short plain text."""

    status: int
    text: str
    verdict: Verdict | None = None
    """The guard's verdict; None when the notification was not admitted (a forgery, an error)."""


FORGED = Reply(400, "Bad notification")
UNVERIFIED = Reply(503, "Try again")
NOT_HANDLED = Reply(500, "Not handled")


def answer(provider: Provider, guard: NotificationGuard, shop: Shop, incoming: Incoming) -> Reply:
    """The reply to one notification request, from a blocking host."""
    try:
        notification = provider.parse_notification(incoming)
    except PaymuxError as error:
        return _refused(error)
    try:
        verdict = handle(guard, shop, notification)
    except Exception:
        return _failed(notification)
    return _busy() if verdict.retry else Reply(200, "OK", verdict)


def handle(guard: NotificationGuard, shop: Shop, notification: Notification) -> Verdict:
    """Guard, decide and apply one verified notification; its verdict. What the shop raises
    propagates, its claim released.

    Also the sweeper's `handle` (`functools.partial(handle, guard, shop)`): a change it finds
    reaches the shop as its notification would, once, whichever comes first.
    """
    with guard.admitted(notification) as verdict:  # released again if the block raises
        if not verdict.retry:
            due = shop.amount_due(notification.order_id or "") if verdict.act else None
            shop.apply(_decision(notification, due, verdict), notification)
    return verdict


async def answer_async(
    provider: AsyncProvider, guard: NotificationGuard, shop: AsyncShop, incoming: Incoming
) -> Reply:
    """The reply to one notification request, from an asyncio host: nothing blocks the loop."""
    try:
        notification = await provider.parse_notification(incoming)
    except PaymuxError as error:
        return _refused(error)
    try:
        async with guard.admitted_async(notification) as verdict:
            if verdict.retry:
                return _busy()
            due = await shop.amount_due(notification.order_id or "") if verdict.act else None
            await shop.apply(_decision(notification, due, verdict), notification)
    except Exception:
        return _failed(notification)
    return Reply(200, "OK", verdict)


def _decision(notification: Notification, due: Decimal | None, verdict: Verdict) -> Decision:
    return decide(notification, order_id=notification.order_id or "", amount=due, verdict=verdict)


def _refused(error: PaymuxError) -> Reply:
    """A forgery is 400; any other failure (the re-fetch that confirms it failed) leaves it
    undecided: 503, and the gateway repeats it."""
    if isinstance(error, SignatureError):
        log.warning("notification refused: %s", error.message)
        return FORGED
    log.warning("notification not verified yet: %s", error.message)
    return UNVERIFIED


def _busy() -> Reply:
    return Reply(503, "Busy", Verdict.BUSY)


def _failed(notification: Notification) -> Reply:
    log.exception("notification for %s not handled", notification.subject.id)
    return NOT_HANDLED
