"""An AliKassa notification endpoint in Flask: verify, de-duplicate, decide, answer."""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol

from flask import Flask, request

from paymux import (
    Decision,
    NotificationGuard,
    Provider,
    SignatureError,
    decide,
)


class Shop(Protocol):
    """The two things the endpoint needs from your shop."""

    def amount_due(self, order_id: str) -> Decimal | None:
        """The order's total; None when the shop has no such order."""

    def apply(self, decision: Decision) -> None:
        """Ship on FULFIL, flag HOLD, REVIEW and REJECT; raise to have the gateway repeat it."""


def make_app(provider: Provider, guard: NotificationGuard, shop: Shop) -> Flask:
    """A Flask app with `GET /alikassa/notify`, acting on each notification once, via `shop`."""
    app = Flask(__name__)

    @app.get("/alikassa/notify")
    def notify() -> tuple[str, int]:
        try:
            # The raw query string: a parameter given twice is refused, not silently dropped.
            notification = provider.parse_notification(request.query_string)
        except SignatureError:
            return "Bad signature", 400  # forged or damaged: never acted on
        try:
            with guard.admitted(notification) as verdict:  # released again if the block raises
                if verdict.retry:  # BUSY: another worker is handling it right now
                    return "Busy", 503  # the gateway sends it again later
                if verdict.act:  # NEW or REOPENED
                    order_id = notification.payment.order_id or ""
                    due = shop.amount_due(order_id)  # None: no such order, a REJECT
                    shop.apply(decide(notification, order_id=order_id, amount=due, verdict=verdict))
        except Exception:
            app.logger.exception("notification %s not handled", notification.payment.id)
            return "Not handled", 500  # the gateway sends it again
        return "OK", 200  # once handled; DUPLICATE and STALE at once

    return app
