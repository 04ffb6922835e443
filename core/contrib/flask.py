"""A Flask extension: the notification endpoint of every configured gateway instance.

    notifications = Paymux(app, providers=providers, guard=guard, shop=shop)

serves `/notify/<instance>` (GET and POST, as each gateway sends) with the semantics of
`paymux.contrib` (verify, guard, decide, answer). Needs the `flask` extra.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from flask import Blueprint, Flask, Request, Response, request

from paymux.contrib._handling import Shop, answer
from paymux.guards import NotificationGuard
from paymux.incoming import Incoming
from paymux.provider import Provider

__all__ = ["Paymux"]


class Paymux:
    """The notification endpoints, registered on `app` now or by `init_app` later.

    `sender` tells the peer's address from a request (by default the socket's peer); behind a
    reverse proxy, read it from the header your proxy sets, and only from a proxy you trust.
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        providers: Mapping[str, Provider],
        guard: NotificationGuard,
        shop: Shop,
        url_prefix: str = "",
        sender: Callable[[Request], str | None] | None = None,
    ) -> None:
        self.providers = providers
        self.guard = guard
        self.shop = shop
        self.url_prefix = url_prefix
        self._sender = sender
        self.blueprint = Blueprint("paymux", __name__)
        self.blueprint.add_url_rule(
            "/notify/<instance>", "notify", self._notify, methods=["GET", "POST"]
        )
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        app.register_blueprint(self.blueprint, url_prefix=self.url_prefix)
        app.extensions["paymux"] = self

    def _notify(self, instance: str) -> Response:
        provider = self.providers.get(instance)
        if provider is None:
            return Response("No such gateway", 404, mimetype="text/plain")
        sender = None if self._sender is None else self._sender(request)
        reply = answer(provider, self.guard, self.shop, Incoming.from_flask(request, sender=sender))
        return Response(reply.text, reply.status, mimetype="text/plain")
