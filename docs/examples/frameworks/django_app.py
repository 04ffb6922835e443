"""Notification endpoints in Django, one per configured gateway instance, without the app.

The Django app `paymux.contrib.django` (see docs/django.md) brings models, an admin and views; this
is the endpoint alone, for a project that keeps its orders its own way. Add `make_view(...)` to
your urls; `make_app` is a whole single-file site around it (settings, urls, a WSGI
application) for trying it out.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from typing import cast

import django
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, clear_url_caches, path
from django.views.decorators.csrf import csrf_exempt

from paymux import Incoming, NotificationGuard, Provider
from paymux.contrib import Shop, answer

urlpatterns: list[URLPattern] = []
"""This module is the site's ROOT_URLCONF; `make_app` fills it."""


def make_view(
    providers: Mapping[str, Provider], guard: NotificationGuard, shop: Shop
) -> Callable[..., HttpResponse]:
    """The notification view for `notify/<instance>` (GET or POST, as the gateway sends)."""

    def notify(request: HttpRequest, instance: str) -> HttpResponse:
        provider = providers.get(instance)
        if provider is None:
            return HttpResponse("No such gateway", status=404, content_type="text/plain")
        reply = answer(provider, guard, shop, Incoming.from_django(request))
        return HttpResponse(reply.text, status=reply.status, content_type="text/plain")

    # A gateway's POST carries no CSRF token; the provider authenticates it instead.
    return cast(Callable[..., HttpResponse], csrf_exempt(notify))


def make_app(
    providers: Mapping[str, Provider], guard: NotificationGuard, shop: Shop
) -> WSGIHandler:
    """A WSGI application serving `/notify/<instance>` (settings are configured once)."""
    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY=secrets.token_urlsafe(32),
            ALLOWED_HOSTS=["127.0.0.1", "localhost"],
            ROOT_URLCONF=__name__,
            INSTALLED_APPS=[],
            MIDDLEWARE=["django.middleware.csrf.CsrfViewMiddleware"],
        )
        django.setup()
    urlpatterns[:] = [path("notify/<str:instance>", make_view(providers, guard, shop))]
    clear_url_caches()
    return WSGIHandler()
