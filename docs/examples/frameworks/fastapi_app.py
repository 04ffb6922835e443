"""An AliKassa notification endpoint in FastAPI: verify, de-duplicate, decide, answer."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Protocol

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse

from paymux import (
    Decision,
    NotificationGuard,
    Provider,
    SignatureError,
    decide,
)

log = logging.getLogger(__name__)


class Shop(Protocol):
    """The two things the endpoint needs from your shop."""

    def amount_due(self, order_id: str) -> Decimal | None:
        """The order's total; None when the shop has no such order."""

    def apply(self, decision: Decision) -> None:
        """Ship on FULFIL, flag HOLD, REVIEW and REJECT; raise to have the gateway repeat it."""


def make_app(provider: Provider, guard: NotificationGuard, shop: Shop) -> FastAPI:
    """A FastAPI app with `GET /alikassa/notify`, acting on each notification once, via `shop`."""
    app = FastAPI()

    # A plain `def`: FastAPI runs it in a worker thread, so a blocking shop and a blocking
    # store (SQLiteStore) never stall the event loop.
    @app.get("/alikassa/notify", response_class=PlainTextResponse)
    def notify(request: Request) -> PlainTextResponse:
        try:
            # The raw query string: a parameter given twice is refused, not silently dropped.
            notification = provider.parse_notification(request.url.query)
        except SignatureError:
            return PlainTextResponse("Bad signature", status_code=400)
        try:
            with guard.admitted(notification) as verdict:  # released again if the block raises
                if verdict.retry:  # BUSY: another worker is handling it right now
                    return PlainTextResponse("Busy", status_code=503)  # repeated later
                if verdict.act:  # NEW or REOPENED
                    order_id = notification.payment.order_id or ""
                    due = shop.amount_due(order_id)  # None: no such order, a REJECT
                    shop.apply(decide(notification, order_id=order_id, amount=due, verdict=verdict))
        except Exception:
            log.exception("notification %s not handled", notification.payment.id)
            return PlainTextResponse("Not handled", status_code=500)  # the gateway repeats it
        return PlainTextResponse("OK")  # once handled; DUPLICATE and STALE at once

    return app
