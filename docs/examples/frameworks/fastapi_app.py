"""Notification endpoints in FastAPI, one per configured gateway instance."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse

from host import Shop, notification_answer
from paymux import Incoming, NotificationGuard, Provider


def make_app(providers: Mapping[str, Provider], guard: NotificationGuard, shop: Shop) -> FastAPI:
    """A FastAPI app with `/notify/{instance}` (GET or POST, as the gateway sends)."""
    app = FastAPI()

    @app.api_route("/notify/{instance}", methods=["GET", "POST"])
    async def notify(instance: str, request: Request) -> PlainTextResponse:
        provider = providers.get(instance)
        if provider is None:
            return PlainTextResponse("No such gateway", status_code=404)
        incoming = await Incoming.from_starlette(request)
        # The provider, the guard's store and the shop block: run them off the event loop.
        status, text = await run_in_threadpool(notification_answer, provider, guard, shop, incoming)
        return PlainTextResponse(text, status_code=status)

    return app
