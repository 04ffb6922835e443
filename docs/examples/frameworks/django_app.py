"""An AliKassa notification endpoint in Django: verify, de-duplicate, decide, answer.

In a Django project, add `make_view(...)` to your urls; `make_app` is a whole single-file
site around it (settings, urls, a WSGI application) for trying it out.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from decimal import Decimal
from typing import Protocol

import django
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.urls import URLPattern, clear_url_caches, path

from paymux import (
    Decision,
    NotificationGuard,
    Provider,
    SignatureError,
    decide,
)

log = logging.getLogger(__name__)

urlpatterns: list[URLPattern] = []
"""This module is the site's ROOT_URLCONF; `make_app` fills it."""


class Shop(Protocol):
    """The two things the endpoint needs from your shop."""

    def amount_due(self, order_id: str) -> Decimal | None:
        """The order's total; None when the shop has no such order."""

    def apply(self, decision: Decision) -> None:
        """Ship on FULFIL, flag HOLD, REVIEW and REJECT; raise to have the gateway repeat it."""


def make_view(
    provider: Provider, guard: NotificationGuard, shop: Shop
) -> Callable[[HttpRequest], HttpResponse]:
    """The notification view, acting on each notification once, via `shop`."""

    def notify(request: HttpRequest) -> HttpResponse:
        if request.method != "GET":  # AliKassa sends notifications as GET requests
            return HttpResponseNotAllowed(["GET"])
        try:
            # The raw query string: a parameter given twice is refused, not silently dropped.
            notification = provider.parse_notification(request.META.get("QUERY_STRING", ""))
        except SignatureError:
            return text("Bad signature", 400)
        try:
            with guard.admitted(notification) as verdict:  # released again if the block raises
                if verdict.retry:  # BUSY: another worker is handling it right now
                    return text("Busy", 503)  # the gateway sends it again later
                if verdict.act:  # NEW or REOPENED
                    order_id = notification.payment.order_id or ""
                    due = shop.amount_due(order_id)  # None: no such order, a REJECT
                    shop.apply(decide(notification, order_id=order_id, amount=due, verdict=verdict))
        except Exception:
            log.exception("notification %s not handled", notification.payment.id)
            return text("Not handled", 500)  # the gateway sends it again
        return text("OK", 200)  # once handled; DUPLICATE and STALE at once

    return notify


def text(body: str, status: int) -> HttpResponse:
    return HttpResponse(body, status=status, content_type="text/plain")


def make_app(provider: Provider, guard: NotificationGuard, shop: Shop) -> WSGIHandler:
    """A WSGI application serving `GET /alikassa/notify` (settings are configured once)."""
    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY=secrets.token_urlsafe(32),
            ALLOWED_HOSTS=["127.0.0.1", "localhost"],
            ROOT_URLCONF=__name__,
            INSTALLED_APPS=[],
            MIDDLEWARE=[],
        )
        django.setup()
    urlpatterns[:] = [path("alikassa/notify", make_view(provider, guard, shop))]
    clear_url_caches()
    return WSGIHandler()
