"""HTTP for asyncio hosts: `Transport`'s twin, over one pooled `httpx.AsyncClient` per provider.

It keeps `paymux._transport`'s promises, with the pieces that module shares (header check,
report, error wording): a failure tells whether the request may have left; an exchange given
`time_left` ends by then on the wall clock, whatever the server trickles; an answer is read only
up to `max_response_bytes` once decoded; `trust_env=False` keeps proxy variables, `~/.netrc` and
CA-bundle variables away, and `trust_env=True` honours the same ones `Transport` does.

httpx would inflate a compressed answer a whole network read at a time (64 KiB of gzip can be
64 MiB of spaces), so the raw bytes are read and inflated here, a bounded piece at a time.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import httpcore
import httpx
from requests.utils import get_netrc_auth

from paymux._calls import Answer
from paymux._transport import (
    CHUNK_BYTES,
    CONNECT_TIMEOUT,
    CONNECTION_LOST,
    NOT_CONNECTED,
    POOL_SIZE,
    READ_TIMEOUT,
    BaseTransport,
    Sending,
    ssl_error,
)

__all__ = ["AsyncTransport"]

_DEFAULT_HEADERS = {"Accept": "*/*", "Accept-Encoding": "gzip, deflate", "Connection": "keep-alive"}
"""requests' defaults, so both transports send alike; only codings `_Inflater` undoes."""

_NEVER_SENT: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
    httpx.InvalidURL,
)
"""Failures that happen before a connection carries any byte of the request."""

_GZIP = 16 + zlib.MAX_WBITS
_CODINGS = {"gzip", "x-gzip", "deflate"}


class AsyncTransport(BaseTransport):
    """Sends requests for one provider instance over one pooled `httpx.AsyncClient`.

    Share one per instance across the tasks of one event loop: at most `POOL_SIZE` sends are
    in flight at once, the others wait their turn. `trust_env=False` (the default) ignores the
    ambient environment, as `Transport` does.
    """

    def _open(self, *, user_agent: str, trust_env: bool) -> None:
        self._trust_env = trust_env
        self._running: set[asyncio.Future[Answer]] = set()
        """Exchanges under way, those whose callers were cancelled included."""
        # Checked at each send, not here: a bad User-Agent is a ValidationError, as in `Transport`.
        self._headers = {**_DEFAULT_HEADERS, "User-Agent": user_agent}
        self._client = httpx.AsyncClient(
            verify=_verification(trust_env),
            trust_env=trust_env,
            follow_redirects=False,
            limits=httpx.Limits(max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE),
            timeout=self._httpx_timeout(None),
        )

    async def send(
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

        With `time_left` (seconds) the whole exchange ends within it, connecting and reading
        alike. An answer past `max_response_bytes` raises `InvalidResponse`. A header value that
        is not printable ASCII raises `ValidationError` before anything is sent. A cancelled
        task's `CancelledError` goes on, once the exchange is reported as "interrupted" (or
        "not_sent" when no byte of the request had left).
        """
        sending = self._begin(method, url, operation=operation, attempt=attempt)
        all_headers = sending.headers(self._headers, headers)
        progress = _Progress()
        try:
            request = self._client.build_request(
                method,
                url,
                params=query,
                content=body or None,
                headers=all_headers,
                timeout=self._httpx_timeout(time_left),
                extensions={"trace": progress.trace},
            )
            exchange = asyncio.ensure_future(self._bounded(request, sending, time_left))
            self._running.add(exchange)
            exchange.add_done_callback(self._running.discard)
            exchange.add_done_callback(_finished)
            # Shielded: a cancelled caller leaves the exchange to end by itself (by its
            # deadline at the latest). Cancelling httpcore mid-exchange can leak a pooled
            # connection for good (its issue 1093), and enough of those stop every later call.
            return await asyncio.shield(exchange)
        except asyncio.TimeoutError:
            sent = progress.sent
            raise sending.failed(READ_TIMEOUT if sent else CONNECT_TIMEOUT, sent=sent) from None
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            if isinstance(error, httpx.ConnectError) and ssl_error(error) is not None:
                raise sending.tls_failed(error) from None
            sent = progress.sent and not isinstance(error, _NEVER_SENT)
            raise sending.failed(_describe(error, sent=sent), sent=sent) from None
        except zlib.error:  # a broken compressed body: `Transport` words it the same way
            raise sending.failed(CONNECTION_LOST, sent=True) from None
        except asyncio.CancelledError:
            sending.outcome = "interrupted" if progress.sent else "not_sent"
            raise
        finally:
            sending.report()

    async def aclose(self) -> None:
        """Close the pooled connections, ending first the exchanges cancelled callers left
        (the pool goes with them: nothing is left to leak)."""
        for exchange in self._running:
            exchange.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
        await self._client.aclose()

    async def _bounded(
        self, request: httpx.Request, sending: Sending, time_left: float | None
    ) -> Answer:
        exchange = self._exchange(request, sending)
        if time_left is None:
            return await exchange
        # httpx's timeouts bound each wait; only this bounds their sum (a trickling server).
        return await asyncio.wait_for(exchange, max(time_left, 0.0))

    async def _exchange(self, request: httpx.Request, sending: Sending) -> Answer:
        answer = await self._client.send(request, auth=self._netrc(str(request.url)), stream=True)
        try:
            sending.status = answer.status_code
            return Answer(
                status=answer.status_code,
                body=await _body(answer, sending),
                request_id=sending.request_id,
                headers=_answer_headers(answer),
            )
        finally:
            await answer.aclose()

    def _httpx_timeout(self, time_left: float | None) -> httpx.Timeout:
        """`Transport`'s (connect, read) pair; writing waits as long as reading, as in urllib3.

        A send waiting for one of the `POOL_SIZE` connections has sent nothing and is bounded
        by its deadline alone: `Transport` never waits for one, so no connect timeout may end
        that wait, however many tasks send at once."""
        connect, read = self._timeout(time_left)
        return httpx.Timeout(connect=connect, read=read, write=read, pool=None)

    def _netrc(self, url: str) -> httpx.BasicAuth | None:
        """With `trust_env`, the `~/.netrc` (or `$NETRC`) credentials for `url`'s host: the very
        lookup requests makes for `Transport` (httpx makes none of its own)."""
        found = get_netrc_auth(url) if self._trust_env else None
        return None if found is None else httpx.BasicAuth(*found)


class _Progress:
    """How far one exchange got, as httpcore traces it: whether any byte of the request may
    have left (a deadline or a cancellation before that point leaves nothing to reconcile).

    It also closes a connection whose TLS handshake is cancelled: httpcore closes it when the
    handshake fails, not when it is cancelled, and the socket would stay open until collected.
    """

    def __init__(self) -> None:
        self.sent = False
        self._connection: httpcore.AsyncNetworkStream | None = None

    async def trace(self, event: str, info: Mapping[str, Any]) -> None:
        if event.endswith(".send_request_headers.started"):
            self.sent = True
        elif event.endswith(".connect_tcp.complete"):
            stream = info.get("return_value")
            self._connection = stream if isinstance(stream, httpcore.AsyncNetworkStream) else None
        elif event.endswith(".start_tls.complete"):
            self._connection = None
        elif event.endswith(".start_tls.failed") and not isinstance(
            info.get("exception"), Exception
        ):
            connection, self._connection = self._connection, None
            if connection is not None:
                await connection.aclose()


def _verification(trust_env: bool) -> ssl.SSLContext:
    """What verifies the gateway's certificate: certifi's bundle, as requests uses, or with
    `trust_env` the bundle `REQUESTS_CA_BUNDLE` or `CURL_CA_BUNDLE` names (a file or a folder);
    httpx's own `SSL_CERT_FILE` and `SSL_CERT_DIR` are not honoured, so both transports agree."""
    environ = os.environ if trust_env else {}
    bundle = environ.get("REQUESTS_CA_BUNDLE") or environ.get("CURL_CA_BUNDLE")
    if not bundle:
        return httpx.create_ssl_context(verify=True, trust_env=False)
    if os.path.isdir(bundle):
        return ssl.create_default_context(capath=bundle)
    return ssl.create_default_context(cafile=bundle)


def _describe(error: Exception, *, sent: bool) -> str:
    """httpx's failure in the words `Transport` uses for urllib3's."""
    if isinstance(error, httpx.ConnectTimeout | httpx.PoolTimeout):
        return CONNECT_TIMEOUT
    if isinstance(error, httpx.TimeoutException):
        return READ_TIMEOUT
    return CONNECTION_LOST if sent else NOT_CONNECTED


async def _body(answer: httpx.Response, sending: Sending) -> bytes:
    """The decoded body, inflated here piece by piece and abandoned as soon as it passes the
    cap: no more than one piece past it is ever inflated."""
    body = sending.body()
    decode = _decoder(answer.headers.get("content-encoding", ""))
    async for raw in answer.aiter_raw(CHUNK_BYTES):
        for piece in decode(raw):
            body.add(piece)
    return body.value()


def _answer_headers(answer: httpx.Response) -> dict[str, str]:
    """Names in lower case; values read as Latin-1 and a repeated header's joined with ", ",
    as `http.client` reads them for `Transport`."""
    merged: dict[str, str] = {}
    for raw_name, raw_value in answer.headers.raw:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        merged[name] = f"{merged[name]}, {value}" if name in merged else value
    return merged


def _decoder(content_encoding: str) -> Callable[[bytes], Iterator[bytes]]:
    """Raw body bytes to decoded pieces, undoing the codings in the reverse of their order.

    A coding other than gzip and deflate is left as is, as urllib3 leaves it.
    """
    codings = [coding.strip().lower() for coding in content_encoding.split(",")]
    stages = [_Inflater(coding) for coding in reversed(codings) if coding in _CODINGS]

    def decode(raw: bytes) -> Iterator[bytes]:
        pieces: Iterator[bytes] = iter((raw,))
        for stage in stages:
            pieces = stage.through(pieces)
        return pieces

    return decode


class _Inflater:
    """One content coding undone lazily, no piece larger than `CHUNK_BYTES` however far the
    bytes inflate, so that the cap stops a bomb (even a nested one) before it inflates.

    gzip may bring several members one after another, and bytes after a whole member that are
    no member are ignored; deflate may come with or without its zlib wrapper, told by whether
    its first bytes inflate. The same leniency as urllib3's decoders, which `Transport` uses.
    """

    def __init__(self, coding: str) -> None:
        self._gzip = coding != "deflate"
        self._zlib = zlib.decompressobj(_GZIP if self._gzip else zlib.MAX_WBITS)
        self._replay: bytes | None = None if self._gzip else b""
        """deflate, until its first output: the bytes so far, to inflate again unwrapped."""
        self._later_member = False
        self._ignoring = False

    def through(self, pieces: Iterable[bytes]) -> Iterator[bytes]:
        for piece in pieces:
            yield from self._inflate(piece)

    def _inflate(self, data: bytes) -> Iterator[bytes]:
        if self._replay is not None:
            self._replay += data
        full = False  # zlib may hold more output even once all input is taken
        while (data or full) and not self._ignoring:
            if self._zlib.eof:  # a whole stream: gzip may start another member
                if not self._gzip:
                    self._ignoring = True
                    return
                self._zlib = zlib.decompressobj(_GZIP)
                self._later_member = True
            try:
                out = self._zlib.decompress(data, CHUNK_BYTES)
            except zlib.error:
                if self._replay is not None:  # deflate without its zlib wrapper
                    data, self._replay = self._replay, None
                    self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
                    continue
                if self._later_member:
                    self._ignoring = True
                    return
                raise
            full = len(out) == CHUNK_BYTES and not self._zlib.eof
            data = self._zlib.unused_data if self._zlib.eof else self._zlib.unconsumed_tail
            if out:
                self._replay = None
                yield out


def _finished(exchange: asyncio.Future[Answer]) -> None:
    """Forget an ended exchange; the outcome of one whose caller was cancelled is dropped (its
    caller's steps record the call as unsettled)."""
    if not exchange.cancelled():
        exchange.exception()
