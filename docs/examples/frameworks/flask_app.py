"""Notification endpoints in Flask, one per configured gateway instance."""

from __future__ import annotations

from collections.abc import Mapping

from flask import Flask

from paymux import NotificationGuard, Provider
from paymux.contrib import Shop
from paymux.contrib.flask import Paymux


def make_app(providers: Mapping[str, Provider], guard: NotificationGuard, shop: Shop) -> Flask:
    """A Flask app with `/notify/<instance>` (GET or POST, as the gateway sends)."""
    app = Flask(__name__)
    Paymux(app, providers=providers, guard=guard, shop=shop)
    return app
