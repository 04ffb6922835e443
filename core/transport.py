"""HTTP for providers: one pooled session per provider, explicit timeouts, TLS verification on.

The transport tells apart failures where the request certainly never left (connect refused,
connect timeout, TLS handshake) from those where it may have been acted on (read timeout,
connection dropped mid-exchange): only the provider knows which of those is safe to repeat.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, NewConnectionError

from paymux.errors import TLSError, TransportError
from paymux.events import emit

POOL_SIZE = 32


@dataclass(frozen=True)
class Exchange:
    """What one HTTP call did, for observers and logs. Carries no body and no header values."""

    provider: str
    operation: str
    method: str
    url: str
    request_id: str
    http_status: int | None
    duration: float
    outcome: str
    attempt: int = 1
    """1 for the first try of a call, 2 for its first repeat, and so on."""


@dataclass(frozen=True)
class Response:
    """The provider's raw answer."""

    status: int
    body: bytes
    request_id: str
    retry_after: str | None = None
    """The `Retry-After` header as sent (seconds or an HTTP date), for the retry policy."""


class Transport:
    """Sends requests for one provider instance over one pooled, thread-safe session."""

    def __init__(
        self,
        *,
        provider: str,
        connect_timeout: float,
        read_timeout: float,
        user_agent: str,
        on_exchange: Callable[[Exchange], None] | None = None,
    ) -> None:
        self.provider = provider
        self.timeout = (connect_timeout, read_timeout)
        self._on_exchange = on_exchange
        self._session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=POOL_SIZE)
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        self._session.headers["User-Agent"] = user_agent
        self._session.verify = True

    def post(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        operation: str,
        attempt: int = 1,
        time_left: float | None = None,
    ) -> Response:
        """POST `body` as is; raise `TransportError` when no answer arrives.

        `time_left` (seconds) shortens the read timeout so a caller's deadline holds.
        """
        request_id = str(uuid.uuid4())
        started = time.perf_counter()
        status: int | None = None
        outcome = "answered"
        try:
            answer = self._session.post(
                url,
                data=body,
                headers={**headers, "X-Request-Id": request_id},
                timeout=self._timeout(time_left),
                allow_redirects=False,
            )
            status = answer.status_code
            return Response(
                status=status,
                body=answer.content,
                request_id=request_id,
                retry_after=answer.headers.get("Retry-After"),
            )
        except requests.exceptions.SSLError:
            outcome = "not_sent"
            raise TLSError(f"{operation}: TLS verification failed", request_id=request_id) from None
        except requests.RequestException as error:
            sent = not _never_sent(error)
            outcome = "interrupted" if sent else "not_sent"
            raise TransportError(
                f"{operation}: {_describe(error)}", request_sent=sent, request_id=request_id
            ) from None
        finally:
            self._report(
                Exchange(
                    provider=self.provider,
                    operation=operation,
                    method="POST",
                    url=url,
                    request_id=request_id,
                    http_status=status,
                    duration=time.perf_counter() - started,
                    outcome=outcome,
                    attempt=attempt,
                )
            )

    def _timeout(self, time_left: float | None) -> tuple[float, float]:
        connect, read = self.timeout
        if time_left is None:
            return self.timeout
        return (min(connect, max(time_left, 0.001)), min(read, max(time_left, 0.001)))

    def _report(self, exchange: Exchange) -> None:
        emit(
            "debug",
            "paymux.http",
            provider=exchange.provider,
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

    def close(self) -> None:
        self._session.close()


def _never_sent(error: requests.RequestException) -> bool:
    """True when the failure happened before any byte of the request could reach the server."""
    if isinstance(error, (requests.exceptions.ConnectTimeout, requests.exceptions.SSLError)):
        return True
    if isinstance(error, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
        return True
    if isinstance(error, requests.exceptions.ConnectionError):
        reason = error.args[0] if error.args else None
        if isinstance(reason, MaxRetryError):
            reason = reason.reason
        return isinstance(reason, NewConnectionError)
    return False


def _describe(error: requests.RequestException) -> str:
    if isinstance(error, requests.exceptions.ReadTimeout):
        return "no answer within the read timeout"
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return "could not connect within the connect timeout"
    if isinstance(error, requests.exceptions.SSLError):
        return "TLS verification failed"
    if _never_sent(error):
        return "could not connect"
    return "connection lost before the answer arrived"
