"""An AliKassa notification endpoint in FastAPI: verify, de-duplicate, record, answer."""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse

from paymux import Notification, NotificationGuard, Provider, SignatureError

log = logging.getLogger(__name__)


def make_app(
    provider: Provider, guard: NotificationGuard, record: Callable[[Notification], None]
) -> FastAPI:
    """A FastAPI app with `GET /alikassa/notify`; `record` stores a notification in your shop."""
    app = FastAPI()

    # A plain `def`: FastAPI runs it in a worker thread, so a blocking `record` and a blocking
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
                if verdict.act:  # NEW or REOPENED
                    record(notification)
        except Exception:
            log.exception("notification %s not recorded", notification.payment.id)
            return PlainTextResponse("Not recorded", status_code=500)  # the gateway repeats it
        return PlainTextResponse("OK")  # NEW and REOPENED once recorded; DUPLICATE and STALE

    return app
