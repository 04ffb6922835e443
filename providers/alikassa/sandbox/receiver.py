"""A shop in miniature: records the notifications it gets (GET) and the customers who come back
from the payment page (POST to the success or fail URL); answers 200 to both."""

from __future__ import annotations

import html
import threading
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import parse_qsl

from paymux.providers.base.loopback import LoopbackHandler, LoopbackServer, context_of


@dataclass(frozen=True)
class PostedForm:
    """A form a browser posted to the shop: where to, and its fields as sent."""

    path: str
    fields: dict[str, str]


class NotificationReceiver:
    """A real HTTP endpoint on loopback that keeps every request it gets.

    `url` is the notification endpoint: each GET's path and query lands in `received`.
    `success_url` and `fail_url` are where the payment page sends the customer back: each POSTed
    form lands in `forms`.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.received: list[str] = []
        self.forms: list[PostedForm] = []
        self._arrived = threading.Condition()
        self._server = LoopbackServer(_Handler, host, port, context=self)
        self.url = f"{self._server.origin}/notify"
        self.success_url = f"{self._server.origin}/success"
        self.fail_url = f"{self._server.origin}/fail"
        self._server.start("paymux-receiver")

    def record(self, path: str) -> None:
        with self._arrived:
            self.received.append(path)
            self._arrived.notify_all()

    def record_form(self, form: PostedForm) -> None:
        with self._arrived:
            self.forms.append(form)
            self._arrived.notify_all()

    def wait_for(self, count: int = 1, timeout: float = 5.0) -> list[str]:
        """Block until `count` notifications have arrived; returns them (fewer on timeout)."""
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.received) >= count, timeout)
            return list(self.received)

    def wait_for_forms(self, count: int = 1, timeout: float = 5.0) -> list[PostedForm]:
        """Block until `count` forms have been posted; returns them (fewer on timeout)."""
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.forms) >= count, timeout)
            return list(self.forms)

    def close(self) -> None:
        self._server.stop()

    def __enter__(self) -> NotificationReceiver:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class _Handler(LoopbackHandler):
    @property
    def receiver(self) -> NotificationReceiver:
        receiver: NotificationReceiver = context_of(self)
        return receiver

    def do_GET(self) -> None:
        self.receiver.record(self.path)
        self._answer("text/plain; charset=utf-8", b"OK")

    def do_POST(self) -> None:
        body = self.read_body()
        if body is None:
            return
        fields = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        self.receiver.record_form(PostedForm(self.path, fields))
        page = (
            "<!doctype html><html lang=en><meta charset=utf-8><title>Shop</title>"
            "<h1>Back at the shop</h1>"
            f"<p>The shop received your return to {html.escape(self.path)}.</p></html>"
        )
        self._answer("text/html; charset=utf-8", page.encode())

    def _answer(self, content_type: str, payload: bytes) -> None:
        self.write(200, content_type, payload)
