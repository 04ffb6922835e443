"""A shop's notification endpoint in miniature: records every GET it receives, answers 200."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


class NotificationReceiver:
    """A real HTTP endpoint on loopback that keeps the path and query of each request."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.received: list[str] = []
        self._arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                with receiver._arrived:
                    receiver.received.append(self.path)
                    receiver._arrived.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"OK")

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: requests are recorded, not printed."""

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        bound_host, bound_port = self._server.server_address[:2]
        self.url = f"http://{bound_host!s}:{bound_port}/notify"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="paymux-receiver",
            daemon=True,
        )
        self._thread.start()

    def wait_for(self, count: int = 1, timeout: float = 5.0) -> list[str]:
        """Block until `count` requests have arrived; returns them (fewer on timeout)."""
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.received) >= count, timeout)
            return list(self.received)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> NotificationReceiver:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
