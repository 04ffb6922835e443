"""HTTP for providers: one pooled session per provider, explicit timeouts, TLS verification on.

The transport tells apart failures where the request certainly never left (connect refused,
connect timeout, TLS handshake) from those where it may have been acted on (read timeout,
connection dropped mid-exchange): only the provider knows which of those is safe to repeat.
`BaseTransport`, `Sending` and `Body` hold what `paymux._async_transport.AsyncTransport`, the
asyncio twin, shares with it: the header check, the report of each exchange, the wording of
each failure.

Two bounds hold whatever the server does: an exchange given `time_left` ends by then on the
wall clock (a server trickling its answer byte by byte cannot stretch it, because every read
waits only for what remains), and an answer is read only up to `max_response_bytes` once
decoded (a compressed answer cannot inflate past it).
"""

from __future__ import annotations

import http.client
import io
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NewConnectionError,
    ReadTimeoutError,
)

from paymux._calls import Answer
from paymux._events import emit
from paymux.errors import InvalidResponse, TLSError, TransportError, ValidationError

POOL_SIZE = 32
MAX_RESPONSE_BYTES = 1024 * 1024
CHUNK_BYTES = 64 * 1024

_exchange = threading.local()
"""`deadline`: the `time.monotonic()` reading by which this thread's current exchange ends."""

_Value = TypeVar("_Value", str, str | bytes)

# How each transport words a failed exchange, whichever HTTP library it runs on.
READ_TIMEOUT = "no whole answer within the read timeout or the deadline"
CONNECT_TIMEOUT = "could not connect within the connect timeout"
NOT_CONNECTED = "could not connect"
CONNECTION_LOST = "connection lost before the answer arrived"

_NOT_TLS = frozenset(
    {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "UNKNOWN_PROTOCOL"}
)
"""OpenSSL's reasons when what answered the handshake speaks no TLS at all: a plain-HTTP
server's answer read as a TLS record. Not a certificate problem, so not worded as one."""


@dataclass(frozen=True)
class Exchange:
    """What one HTTP call did, for observers and logs. Carries no body and no header values."""

    provider: str
    operation: str
    method: str
    url: str
    """The address called, any user name and password in it masked."""
    request_id: str
    http_status: int | None
    duration: float
    outcome: str
    attempt: int = 1
    """1 for the first try of a call, 2 for its first repeat, and so on."""
    instance: str = ""
    """The configured instance that made the call."""


class BaseTransport:
    """What both transports share: their settings, and how one send begins and is reported."""

    def __init__(
        self,
        *,
        provider: str,
        instance: str = "",
        connect_timeout: float,
        read_timeout: float,
        user_agent: str,
        on_exchange: Callable[[Exchange], None] | None = None,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        trust_env: bool = False,
    ) -> None:
        self.provider = provider
        self.instance = instance
        self.timeout = (connect_timeout, read_timeout)
        self.max_response_bytes = max_response_bytes
        self._on_exchange = on_exchange
        self._open(user_agent=user_agent, trust_env=trust_env)

    def _open(self, *, user_agent: str, trust_env: bool) -> None:
        """Make the transport's pooled client."""
        raise NotImplementedError

    def _begin(self, method: str, url: str, *, operation: str, attempt: int) -> Sending:
        return Sending(self, method=method, url=url, operation=operation, attempt=attempt)

    def _timeout(self, time_left: float | None) -> tuple[float, float]:
        """(connect, read) timeouts, neither longer than `time_left`."""
        connect, read = self.timeout
        if time_left is None:
            return self.timeout
        return (min(connect, max(time_left, 0.001)), min(read, max(time_left, 0.001)))

    def _report(self, exchange: Exchange) -> None:
        emit(
            "debug",
            "paymux.http",
            provider=exchange.provider,
            instance=exchange.instance,
            operation=exchange.operation,
            url=exchange.url,
            http_status=exchange.http_status,
            duration_ms=round(exchange.duration * 1000, 3),
            request_id=exchange.request_id,
            outcome=exchange.outcome,
            attempt=exchange.attempt,
        )
        if self._on_exchange is not None:
            self._on_exchange(exchange)


class Sending:
    """One send's bookkeeping, the same in both transports: its request id, its outcome, the
    errors that end it, and the report made of it however it ends."""

    def __init__(
        self, transport: BaseTransport, *, method: str, url: str, operation: str, attempt: int
    ) -> None:
        self.request_id = str(uuid.uuid4())
        self.status: int | None = None
        self.outcome = "answered"
        """One of "answered", "not_sent" (certainly never left), "interrupted" (may have left)."""
        self._transport = transport
        self._method = method
        self._url = url
        self._operation = operation
        self._attempt = attempt
        self._started = time.perf_counter()

    def headers(
        self, defaults: Mapping[str, _Value], headers: Mapping[str, str]
    ) -> dict[str, _Value | str]:
        """`defaults`, then `headers`, then this send's `X-Request-Id`, each value checked:
        `ValidationError` before anything is sent if one would break the request."""
        merged: dict[str, _Value | str] = {**defaults, **headers, "X-Request-Id": self.request_id}
        _check_header_values(merged)
        return merged

    def body(self) -> Body:
        """Where the answer's decoded body collects, up to the transport's cap."""
        return Body(self, limit=self._transport.max_response_bytes)

    def failed(self, description: str, *, sent: bool) -> TransportError:
        """The error that ends this send: `sent` is whether the request may have left."""
        self.outcome = "interrupted" if sent else "not_sent"
        where = "" if sent else f": nothing answers at {_origin(self._url)}"
        message = f"{self._operation}: {description}{where}"
        return TransportError(message, request_sent=sent, request_id=self.request_id)

    def tls_failed(self, error: BaseException) -> TLSError:
        """The error that ends a send whose TLS handshake failed, worded by what failed."""
        self.outcome = "not_sent"
        message = f"{self._operation}: {tls_failure(error, self._url)}"
        return TLSError(message, request_id=self.request_id)

    def too_large(self) -> InvalidResponse:
        return InvalidResponse(
            f"{self._operation}: the answer is larger than "
            f"{self._transport.max_response_bytes} bytes",
            http_status=self.status,
            request_id=self.request_id,
        )

    def report(self) -> None:
        """The `paymux.http` event and the observers' `Exchange`, url masked, no body."""
        self._transport._report(
            Exchange(
                provider=self._transport.provider,
                instance=self._transport.instance,
                operation=self._operation,
                method=self._method,
                url=masked_url(self._url),
                request_id=self.request_id,
                http_status=self.status,
                duration=time.perf_counter() - self._started,
                outcome=self.outcome,
                attempt=self._attempt,
            )
        )


class Body:
    """An answer's decoded body as it arrives, refused as soon as it passes the cap: a huge
    answer is abandoned after at most one chunk too many, never read to its end."""

    def __init__(self, sending: Sending, *, limit: int) -> None:
        self._sending = sending
        self._limit = limit
        self._data = bytearray()

    def add(self, chunk: bytes) -> None:
        self._data += chunk
        if len(self._data) > self._limit:
            raise self._sending.too_large()

    def value(self) -> bytes:
        return bytes(self._data)


class Transport(BaseTransport):
    """Sends requests for one provider instance over one pooled, thread-safe session.

    `trust_env=False` (the default) ignores the ambient environment: proxy variables,
    `~/.netrc` credentials and CA-bundle variables never reach a payment gateway unasked.
    """

    def _open(self, *, user_agent: str, trust_env: bool) -> None:
        self._session = requests.Session()
        adapter = _DeadlineAdapter(pool_connections=1, pool_maxsize=POOL_SIZE)
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        self._session.headers["User-Agent"] = user_agent
        self._session.verify = True
        self._session.trust_env = trust_env

    def send(
        self,
        method: str,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        operation: str,
        query: Mapping[str, str] | None = None,
        attempt: int = 1,
        time_left: float | None = None,
    ) -> Answer:
        """Send `body` as is with `method`; raise `TransportError` when no whole answer arrives.

        With `time_left` (seconds) the exchange ends within it, connecting and reading alike.
        An answer past `max_response_bytes` raises `InvalidResponse`. A header value that is
        not printable ASCII raises `ValidationError` before anything is sent.
        """
        sending = self._begin(method, url, operation=operation, attempt=attempt)
        all_headers = sending.headers(self._session.headers, headers)
        _exchange.deadline = None if time_left is None else time.monotonic() + time_left
        try:
            with self._session.request(
                method,
                url,
                params=query,
                data=body or None,
                headers=all_headers,
                timeout=self._timeout(time_left),
                allow_redirects=False,
                stream=True,
            ) as answer:
                sending.status = answer.status_code
                return Answer(
                    status=answer.status_code,
                    body=_body(answer, sending),
                    request_id=sending.request_id,
                    headers=dict(answer.headers.lower_items()),
                )
        except requests.exceptions.SSLError as error:
            raise sending.tls_failed(error) from None
        except requests.RequestException as error:
            raise sending.failed(_describe(error), sent=not _never_sent(error)) from None
        finally:
            _exchange.deadline = None
            sending.report()

    def close(self) -> None:
        self._session.close()


def masked_url(url: str) -> str:
    """`url` with any user name and password in it replaced by `***`."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"***@{host}"))


def tls_failure(error: BaseException, url: str) -> str:
    """A failed TLS handshake with `url` in words that say which failure it is: a certificate
    that does not verify, an address that speaks no TLS (an `https://` URL pointed at a
    plain-HTTP server), or another handshake failure; each needs a different fix."""
    origin = _origin(url)
    cause = ssl_error(error)
    if isinstance(cause, ssl.SSLCertVerificationError):
        return f"TLS verification failed for {origin}: {cause.verify_message or cause.reason}"
    reason = (cause.reason if cause is not None else None) or ""
    said = f" ({reason.replace('_', ' ').lower()})" if reason else ""
    if reason in _NOT_TLS:
        return (
            f"{origin} does not speak TLS{said}: is it a plain-HTTP server? "
            f"Check the address's scheme and port"
        )
    return f"the TLS handshake with {origin} failed{said}"


def ssl_error(error: BaseException) -> ssl.SSLError | None:
    """The `ssl.SSLError` under the wrappers of requests, urllib3, httpx and httpcore, if any."""
    seen: set[int] = set()
    todo: list[BaseException] = [error]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ssl.SSLError):
            return current
        around = (current.__cause__, current.__context__, getattr(current, "reason", None))
        todo += [each for each in (*around, *current.args) if isinstance(each, BaseException)]
    return None


def _origin(url: str) -> str:
    """Where `url` points: scheme, host and port, without a path or credentials."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], "", "", ""))


def _check_header_values(headers: Mapping[str, str | bytes]) -> None:
    """Refuse what would break the request line or fail to encode, naming only the header."""
    bad = {
        name: ["must be printable ASCII (no line breaks or other control characters)"]
        for name, value in headers.items()
        if not printable_ascii(value.decode("latin-1") if isinstance(value, bytes) else value)
    }
    if bad:
        raise ValidationError(bad)


def printable_ascii(text: str) -> bool:
    """Whether `text` can go in a header value as is: ASCII, no control characters (for ASCII
    text, `isprintable` is exactly " " to "~")."""
    return text.isascii() and text.isprintable()


class _DeadlineReader(io.RawIOBase):
    """A socket reader whose every read waits at most until the exchange's deadline."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        self._raw = sock.makefile("rb", buffering=0)
        self._read_timeout = sock.gettimeout()
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the deadline passed before the answer was complete")
        self._sock.settimeout(left if self._read_timeout is None else min(self._read_timeout, left))
        return self._raw.readinto(buffer)

    def close(self) -> None:
        self._raw.close()
        super().close()


class _DeadlineSocket:
    """What `http.client.HTTPResponse` asks of a socket: a reader bound to the deadline."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self._sock, self._deadline))


class _DeadlineHTTPResponse(http.client.HTTPResponse):
    """An HTTP response read under this thread's exchange deadline, when it has one."""

    def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
        deadline: float | None = getattr(_exchange, "deadline", None)
        reader: Any = sock if deadline is None else _DeadlineSocket(sock, deadline)
        super().__init__(reader, *args, **kwargs)


class _DeadlineHTTPConnection(HTTPConnection):
    response_class = _DeadlineHTTPResponse


class _DeadlineHTTPSConnection(HTTPSConnection):
    response_class = _DeadlineHTTPResponse

    def connect(self) -> None:
        """Connect and shake hands; a handshake that times out sent nothing, so it is a connect
        timeout (urllib3 would report a read timeout: "may have been acted on")."""
        try:
            super().connect()
        except TimeoutError as error:  # the TCP connect's own timeout is already typed
            raise ConnectTimeoutError(self, f"no TLS handshake with {self.host}") from error


class _DeadlineHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _DeadlineHTTPConnection


class _DeadlineHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _DeadlineHTTPSConnection


_DEADLINE_POOLS: dict[str, type[HTTPConnectionPool]] = {
    "http": _DeadlineHTTPConnectionPool,
    "https": _DeadlineHTTPSConnectionPool,
}


class _DeadlineAdapter(HTTPAdapter):
    """requests' adapter with connections that read under the exchange deadline."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _DEADLINE_POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):  # SOCKS brings pools of its own
            manager.pool_classes_by_scheme = _DEADLINE_POOLS
        return manager


def _body(answer: requests.Response, sending: Sending) -> bytes:
    """The decoded body, read in chunks (urllib3 inflates only as far as it is read)."""
    body = sending.body()
    for chunk in answer.iter_content(chunk_size=CHUNK_BYTES):
        body.add(chunk)
    return body.value()


def _never_sent(error: requests.RequestException) -> bool:
    """True when the failure happened before any byte of the request could reach the server."""
    if isinstance(error, (requests.exceptions.ConnectTimeout, requests.exceptions.SSLError)):
        return True
    if isinstance(error, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
        return True
    if isinstance(error, requests.exceptions.ConnectionError):
        return isinstance(_reason(error), NewConnectionError)
    return False


def _reason(error: requests.RequestException) -> object:
    reason = error.args[0] if error.args else None
    return reason.reason if isinstance(reason, MaxRetryError) else reason


def _describe(error: requests.RequestException) -> str:
    if isinstance(error, requests.exceptions.ReadTimeout) or isinstance(
        _reason(error), ReadTimeoutError
    ):
        return READ_TIMEOUT
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return CONNECT_TIMEOUT
    if _never_sent(error):
        return NOT_CONNECTED
    return CONNECTION_LOST
