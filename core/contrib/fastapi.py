"""A FastAPI router: the notification endpoint of every configured gateway instance, async end
to end (the async provider, the guard's async stores, the shop's coroutines).

    app.include_router(notification_router(providers, guard, shop))

serves `/notify/{instance}` (GET and POST, as each gateway sends) with the semantics of
`paymux.contrib` (verify, guard, decide, answer). Needs the `fastapi` and `async` extras.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from paymux.aio import AsyncProvider
from paymux.contrib._handling import AsyncShop, answer_async
from paymux.guards import NotificationGuard
from paymux.incoming import Incoming

__all__ = ["notification_router"]


def notification_router(
    providers: Mapping[str, AsyncProvider],
    guard: NotificationGuard,
    shop: AsyncShop,
    *,
    prefix: str = "",
    sender: Callable[[Request], str | None] | None = None,
) -> APIRouter:
    """The router; `sender` as for the Flask extension (the peer's address behind a trusted
    proxy)."""
    router = APIRouter(prefix=prefix)

    @router.api_route("/notify/{instance}", methods=["GET", "POST"])
    async def notify(instance: str, request: Request) -> PlainTextResponse:
        provider = providers.get(instance)
        if provider is None:
            return PlainTextResponse("No such gateway", status_code=404)
        peer = None if sender is None else sender(request)
        incoming = await Incoming.from_starlette(request, sender=peer)
        reply = await answer_async(provider, guard, shop, incoming)
        return PlainTextResponse(reply.text, status_code=reply.status)

    return router
