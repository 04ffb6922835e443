"""A threaded HTTP server run from a background thread, for emulators of payment gateways.

It serves at most `max_connections` connections at once, one thread each: a connection beyond
that is answered 503 and closed at once. A connection that sends nothing for `idle_timeout`
seconds (an idle keep-alive one, or a request that stops half-way) is closed. Handlers derive
from `LoopbackHandler`, which reads request bodies of at most `MAX_BODY` bytes, sent with a
`Content-Length` or chunked (`Transfer-Encoding: chunked`, as Node's `http.request` streams).
"""

from __future__ import annotations

import io
import json
import re
import socket
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

POLL_INTERVAL = 0.05
"""How often serve_forever checks for shutdown; it is how long stopping takes."""
MAX_CONNECTIONS = 64
"""Connections served at once by default; a test suite's 16 threads and a browser fit."""
IDLE_TIMEOUT = 15.0
"""Seconds a connection may stay silent before it is closed, by default."""
MAX_BODY = 1_048_576
"""Bytes a request body may have: far beyond any real request, far below a memory problem."""
MAX_LINE = 8192
"""Bytes a chunk-size line or a trailer line may have, its CRLF included."""
MAX_TRAILERS = 64
"""Trailer lines a chunked body may end with."""
_LENGTH = re.compile(r"[0-9]{1,18}")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})[ \t]*(?:;[^\r\n]*)?")
_FIELD = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+:[^\r\n]*")

_BUSY_BODY = json.dumps({"message": "Too many connections; try again"}).encode()
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Type: application/json\r\n"
    b"Content-Length: " + str(len(_BUSY_BODY)).encode() + b"\r\n"
    b"Retry-After: 1\r\n"
    b"Connection: close\r\n\r\n" + _BUSY_BODY
)


class _BoundedServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a burst of connects waits to be accepted instead of being dropped

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        *,
        max_connections: int,
        idle_timeout: float,
    ) -> None:
        self.idle_timeout = idle_timeout
        self._slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self._turn_away(request)
            return
        try:
            request.settimeout(self.idle_timeout)
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def _turn_away(self, request: socket.socket) -> None:
        """Answer 503 without reading the request: the accepting thread must not wait on it."""
        try:
            request.settimeout(1.0)
            request.sendall(_BUSY)
        except OSError:
            pass  # the client is gone already
        self.shutdown_request(request)


class LoopbackServer:
    """Serves `handler` on (host, port) from a daemon thread; `context` is reachable from it."""

    def __init__(
        self,
        handler: type[BaseHTTPRequestHandler],
        host: str,
        port: int,
        context: Any = None,
        *,
        max_connections: int = MAX_CONNECTIONS,
        idle_timeout: float = IDLE_TIMEOUT,
    ) -> None:
        self.httpd = _BoundedServer(
            (host, port), handler, max_connections=max_connections, idle_timeout=idle_timeout
        )
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


class LoopbackHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive, quiet, and careful with what the client says it sends."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: never wait
    # for the peer's delayed ACK between them (it costs ~40 ms per exchange)

    def handle(self) -> None:
        try:
            super().handle()
        except OSError:
            self.close_connection = True  # the client went away, or fell silent

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the sandbox records requests instead of printing them."""

    def read_body(self) -> bytes | None:
        """The request body; None once a body it cannot read was answered (400, 413 or 501)."""
        codings = self.headers.get_all("Transfer-Encoding")
        if codings is not None:
            return self._read_chunked(codings)
        length = _content_length(self.headers.get_all("Content-Length") or ["0"])
        if length is None:
            self.refuse(400, "Content-Length must be one whole number of bytes")
        elif length > MAX_BODY:
            self.refuse(413, f"A request body may have at most {MAX_BODY} bytes")
        else:
            return self.rfile.read(length)
        return None

    def _read_chunked(self, codings: Sequence[str]) -> bytes | None:
        """A chunked body, read to its last chunk and trailers so the next request can follow."""
        if [coding.strip().lower() for coding in ",".join(codings).split(",")] != ["chunked"]:
            self.refuse(501, "The only Transfer-Encoding understood is chunked")
            return None
        if "Content-Length" in self.headers:
            self.refuse(400, "A request may have Content-Length or be chunked, not both")
            return None
        try:
            return _decoded_chunks(self.rfile)
        except _BodyTooLarge:
            self.refuse(413, f"A request body may have at most {MAX_BODY} bytes")
        except _BadChunking as problem:
            self.refuse(400, f"Malformed chunked body: {problem}")
        return None

    def refuse(self, status: int, message: str) -> None:
        """Answer a JSON error and close: what is left of the request is never read."""
        payload = json.dumps({"message": message}).encode()
        self.write(status, "application/json", payload, {"Connection": "close"})

    def write(
        self,
        status: int,
        content_type: str,
        payload: bytes,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


def _content_length(values: Sequence[str]) -> int | None:
    """The one length all `Content-Length` headers agree on; None unless 1 to 18 digits."""
    lengths = {value.strip() for value in values}
    if len(lengths) != 1:
        return None
    (text,) = lengths
    return int(text) if _LENGTH.fullmatch(text) else None


class _BadChunking(ValueError):
    """The chunked body breaks the chunked format."""


class _BodyTooLarge(ValueError):
    """The chunks add up to more than `MAX_BODY` bytes."""


def _decoded_chunks(stream: io.BufferedIOBase) -> bytes:
    """The body of a chunked message; its extensions and trailer fields are read and dropped."""
    body = bytearray()
    while size := _chunk_size(_line(stream, "a chunk size")):
        if len(body) + size > MAX_BODY:
            raise _BodyTooLarge
        chunk = stream.read(size)
        if len(chunk) < size:
            raise _BadChunking("the body ends inside a chunk")
        body += chunk
        if stream.read(2) != b"\r\n":
            raise _BadChunking("a chunk is longer than its size says")
    for _ in range(MAX_TRAILERS + 1):
        trailer = _line(stream, "a trailer field")
        if trailer == b"":
            return bytes(body)
        if not _FIELD.fullmatch(trailer):
            raise _BadChunking(f"{trailer[:40]!r} is not a trailer field")
    raise _BadChunking(f"more than {MAX_TRAILERS} trailer fields")


def _line(stream: io.BufferedIOBase, what: str) -> bytes:
    """One CRLF-terminated line, without its CRLF."""
    line = stream.readline(MAX_LINE + 1)
    if len(line) > MAX_LINE:
        raise _BadChunking(f"{what} is longer than {MAX_LINE} bytes")
    if not line.endswith(b"\r\n"):
        raise _BadChunking(f"{what} does not end with CRLF")
    return line[:-2]


def _chunk_size(line: bytes) -> int:
    """The size a chunk-size line gives, in hexadecimal, before any `;extension`."""
    found = _CHUNK_SIZE.fullmatch(line)
    if found is None:
        raise _BadChunking(f"{line[:40]!r} is not a chunk size in hexadecimal")
    return int(found[1], 16)


def context_of(handler: BaseHTTPRequestHandler) -> Any:
    """The `context` object of the server a handler runs in."""
    return handler.server.context  # type: ignore[attr-defined]
