"""Notification endpoints in FastAPI, one per configured gateway instance, async end to end."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from fastapi import FastAPI

from paymux import NotificationGuard, Provider
from paymux.aio import AsyncProvider
from paymux.contrib import AsyncShop
from paymux.contrib.fastapi import notification_router


def make_app(
    providers: Mapping[str, Provider], guard: NotificationGuard, shop: AsyncShop
) -> FastAPI:
    """A FastAPI app with `/notify/{instance}` (GET or POST, as the gateway sends)."""
    connected = {name: AsyncProvider(provider) for name, provider in providers.items()}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        for provider in connected.values():  # their pooled connections; `providers` stay open
            await provider.aclose()

    app = FastAPI(lifespan=lifespan)
    app.include_router(notification_router(connected, guard, shop))
    return app
