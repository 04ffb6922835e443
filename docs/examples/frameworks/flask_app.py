"""An AliKassa notification endpoint in Flask: verify, de-duplicate, record, answer."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, request

from paymux import Notification, NotificationGuard, Provider, SignatureError


def make_app(
    provider: Provider, guard: NotificationGuard, record: Callable[[Notification], None]
) -> Flask:
    """A Flask app with `GET /alikassa/notify`; `record` stores a notification in your shop."""
    app = Flask(__name__)

    @app.get("/alikassa/notify")
    def notify() -> tuple[str, int]:
        try:
            # The raw query string: a parameter given twice is refused, not silently dropped.
            notification = provider.parse_notification(request.query_string)
        except SignatureError:
            return "Bad signature", 400  # forged or damaged: never acted on
        try:
            with guard.admitted(notification) as verdict:  # released again if the block raises
                if verdict.act:  # NEW or REOPENED
                    record(notification)
        except Exception:
            app.logger.exception("notification %s not recorded", notification.payment.id)
            return "Not recorded", 500  # the gateway sends it again
        return "OK", 200  # NEW and REOPENED once recorded; DUPLICATE and STALE at once

    return app
