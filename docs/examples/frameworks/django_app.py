"""An AliKassa notification endpoint in Django: verify, de-duplicate, record, answer.

In a Django project, add `make_view(...)` to your urls; `make_app` is a whole single-file
site around it (settings, urls, a WSGI application) for trying it out.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable

import django
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.urls import URLPattern, clear_url_caches, path

from paymux import Notification, NotificationGuard, Provider, SignatureError

log = logging.getLogger(__name__)

urlpatterns: list[URLPattern] = []
"""This module is the site's ROOT_URLCONF; `make_app` fills it."""


def make_view(
    provider: Provider, guard: NotificationGuard, record: Callable[[Notification], None]
) -> Callable[[HttpRequest], HttpResponse]:
    """The notification view; `record` stores a notification in your shop."""

    def notify(request: HttpRequest) -> HttpResponse:
        if request.method != "GET":  # AliKassa sends notifications as GET requests
            return HttpResponseNotAllowed(["GET"])
        try:
            # The raw query string: a parameter given twice is refused, not silently dropped.
            notification = provider.parse_notification(request.META.get("QUERY_STRING", ""))
        except SignatureError:
            return HttpResponse("Bad signature", status=400, content_type="text/plain")
        try:
            with guard.admitted(notification) as verdict:  # released again if the block raises
                if verdict.act:  # NEW or REOPENED
                    record(notification)
        except Exception:
            log.exception("notification %s not recorded", notification.payment.id)
            return HttpResponse("Not recorded", status=500, content_type="text/plain")
        return HttpResponse("OK", content_type="text/plain")  # also for DUPLICATE and STALE

    return notify


def make_app(
    provider: Provider, guard: NotificationGuard, record: Callable[[Notification], None]
) -> WSGIHandler:
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
    urlpatterns[:] = [path("alikassa/notify", make_view(provider, guard, record))]
    clear_url_caches()
    return WSGIHandler()
