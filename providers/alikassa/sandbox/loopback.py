"""A threaded HTTP server run from a background thread, shared by the sandbox's servers."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

POLL_INTERVAL = 0.05
"""How often serve_forever checks for shutdown; it is how long stopping takes."""


class LoopbackServer:
    """Serves `handler` on (host, port) from a daemon thread; `context` is reachable from it."""

    def __init__(
        self, handler: type[BaseHTTPRequestHandler], host: str, port: int, context: Any = None
    ) -> None:
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.httpd.context = context  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def origin(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self, name: str) -> None:
        self._thread = threading.Thread(
            target=self.httpd.serve_forever,
            kwargs={"poll_interval": POLL_INTERVAL},
            name=name,
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join()
            self._thread = None
        self.httpd.server_close()


def context_of(handler: BaseHTTPRequestHandler) -> Any:
    """The `context` object of the server a handler runs in."""
    return handler.server.context  # type: ignore[attr-defined]
