"""Notification endpoints in Flask, one per configured gateway instance."""

from __future__ import annotations

from collections.abc import Mapping

from flask import Flask, request

from host import Shop, notification_answer
from paymux import Incoming, NotificationGuard, Provider


def make_app(providers: Mapping[str, Provider], guard: NotificationGuard, shop: Shop) -> Flask:
    """A Flask app with `/notify/<instance>` (GET or POST, as the gateway sends)."""
    app = Flask(__name__)

    @app.route("/notify/<instance>", methods=["GET", "POST"])
    def notify(instance: str) -> tuple[str, int]:
        provider = providers.get(instance)
        if provider is None:
            return "No such gateway", 404
        status, text = notification_answer(provider, guard, shop, Incoming.from_flask(request))
        return text, status

    return app
