"""A shop's notification endpoint in miniature: records every GET it receives, answers 200."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from typing import Any

from paymux.providers.alikassa.sandbox.loopback import LoopbackServer, context_of


class NotificationReceiver:
    """A real HTTP endpoint on loopback that keeps the path and query of each request."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.received: list[str] = []
        self._arrived = threading.Condition()
        self._server = LoopbackServer(_Handler, host, port, context=self)
        self.url = f"{self._server.origin}/notify"
        self._server.start("paymux-receiver")

    def record(self, path: str) -> None:
        with self._arrived:
            self.received.append(path)
            self._arrived.notify_all()

    def wait_for(self, count: int = 1, timeout: float = 5.0) -> list[str]:
        """Block until `count` requests have arrived; returns them (fewer on timeout)."""
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.received) >= count, timeout)
            return list(self.received)

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


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        receiver: NotificationReceiver = context_of(self)
        receiver.record(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: requests are recorded, not printed."""
