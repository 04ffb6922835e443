"""A scriptable stand-in between paymux and the sandbox, for answers no sandbox fault gives.

Each merchant API path has a queue of actions; a request takes the next one (none left:
forward). Every request is recorded as it arrived, so tests compare the bytes paymux sent.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

CREATE = "/v1/payment"
STATUS = "/v1/payment/status"
PAYOUT = "/v1/payout"
PAYOUT_STATUS = "/v1/payout/status"

FORWARD = "forward"
"""Pass the request to the sandbox and its answer back."""
FAIL = "fail"
"""Answer 500 without passing the request on: nothing was created."""
LOST = "lost"
"""Pass the request on, then answer 500 anyway: the sandbox acted, the client cannot know."""
NOT_FOUND = "not_found"
"""Answer 404 "Payment not found" without asking the sandbox (a lagging replica)."""
THROTTLE = "throttle"
"""Answer 429 with `Retry-After: 3`."""
BAD_REQUEST = "bad_request"
"""Answer 400 with a validation error."""


@dataclass(frozen=True)
class Canned:
    """Answer with this status and body; pass the request on first when `forward` is set."""

    status: int
    body: bytes
    forward: bool = False


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Proxy:
    """Forwards to `upstream` unless the script for the path says otherwise."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.script: dict[str, list[str | Canned]] = defaultdict(list)
        self.received: list[Received] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {key.lower(): value for key, value in self.headers.items()}
                status, extra, answer = proxy.answer(self.path, headers, body)
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **extra}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        host, port = self._server.server_address[:2]
        self.url = f"http://{host!s}:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def then(self, path: str, *actions: str | Canned) -> Proxy:
        """Queue `actions` for the next requests to `path`."""
        self.script[path].extend(actions)
        return self

    def bodies(self, path: str) -> list[bytes]:
        return [request.body for request in self.received if request.path == path]

    def answer(
        self, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        self.received.append(Received(path, headers, body))
        queue = self.script[path]
        action = queue.pop(0) if queue else FORWARD
        if isinstance(action, Canned) and not action.forward:
            return action.status, {}, action.body
        if action == FAIL:
            return 500, {}, b'{"message":"Internal server error"}'
        if action == NOT_FOUND:
            return 404, {}, b'{"message":"Payment not found"}'
        if action == THROTTLE:
            return 429, {"Retry-After": "3"}, b'{"message":"Too Many Attempts."}'
        if action == BAD_REQUEST:
            return 400, {}, b'{"message":"The given data was invalid.","errors":{}}'
        forwarded = requests.post(
            f"{self.upstream}{path}",
            data=body,
            headers={name: headers[name] for name in ("account", "sign", "content-type")},
            timeout=5,
        )
        if action == LOST:
            return 500, {}, b'{"message":"Internal server error"}'
        if isinstance(action, Canned):
            return action.status, {}, action.body
        return forwarded.status_code, {}, forwarded.content

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
