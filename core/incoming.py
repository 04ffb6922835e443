"""What a web framework received: one value for every way a gateway notifies a shop.

Gateways notify by GET with a signed query string, by POST with a JSON body trusted by its
sender's address and a re-fetch of the object from their API, or by a signed form. `Incoming`
carries all of it — method, path, query, headers, raw body, the sender's address — and the
adapters below build one from what each framework hands a view:

    Incoming.from_wsgi(environ)                 # any WSGI app (Flask's request.environ too)
    Incoming.from_flask(request)                # Flask / Werkzeug
    Incoming.from_django(request)               # Django HttpRequest
    await Incoming.from_starlette(request)      # FastAPI / Starlette
    Incoming.from_asgi(scope, body)             # any ASGI app

Behind a reverse proxy the sender is the proxy: pass `sender=` (taken from the header your
proxy sets, and only from a proxy you trust). A query string, a URL or a mapping of query
parameters is still accepted wherever an `Incoming` is, for query-string gateways.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from paymux.errors import SignatureError

__all__ = ["Incoming", "NotificationInput"]

NotificationInput = Mapping[str, str | Sequence[str]] | str | bytes
"""A notification as a query-string gateway's handler has it: parameters, a query string or a
URL (use `Incoming` for anything with a body or a sender)."""


@dataclass(frozen=True)
class Incoming:
    """One HTTP request as the shop's endpoint received it. Header names in lower case."""

    method: str = "GET"
    path: str = "/"
    query: str | Mapping[str, str | Sequence[str]] = ""
    """The raw query string, or already parsed parameters."""
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = field(default=b"", repr=False)
    sender: str | None = None
    """The peer's IP address (`REMOTE_ADDR`), None when the caller did not say."""

    @classmethod
    def of(cls, data: Incoming | NotificationInput) -> Incoming:
        """`data` as an `Incoming`: a query string, a URL or parameters become a GET."""
        if isinstance(data, Incoming):
            return data
        if isinstance(data, bytes):
            try:
                data = data.decode("utf-8")
            except UnicodeDecodeError:
                raise SignatureError("notification is not valid UTF-8") from None
        if isinstance(data, str):
            return cls(query=data)
        if isinstance(data, Mapping):
            return cls(query=data)
        raise SignatureError(f"cannot read a notification from {type(data).__name__}")

    def json(self) -> Any:
        """The body as JSON (decimals exact); `SignatureError` when it is not JSON."""
        try:
            return json.loads(self.body, parse_float=Decimal)
        except (ValueError, UnicodeDecodeError):
            raise SignatureError("notification body is not JSON") from None

    @classmethod
    def from_wsgi(cls, environ: Mapping[str, Any], *, sender: str | None = None) -> Incoming:
        """From a WSGI environ; reads the body from `wsgi.input` (up to CONTENT_LENGTH)."""
        length = _length(environ.get("CONTENT_LENGTH"))
        stream = environ.get("wsgi.input")
        body = stream.read(length) if stream is not None and length else b""
        headers = {
            key[5:].replace("_", "-").lower(): str(value)
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = str(environ["CONTENT_TYPE"])
        return cls(
            method=str(environ.get("REQUEST_METHOD", "GET")).upper(),
            path=str(environ.get("PATH_INFO", "/")),
            query=_latin1_to_utf8(str(environ.get("QUERY_STRING", ""))),
            headers=headers,
            body=body,
            sender=sender or environ.get("REMOTE_ADDR"),
        )

    @classmethod
    def from_asgi(
        cls, scope: Mapping[str, Any], body: bytes = b"", *, sender: str | None = None
    ) -> Incoming:
        """From an ASGI HTTP scope and the body already received."""
        client = scope.get("client")
        raw_query = scope.get("query_string", b"")
        return cls(
            method=str(scope.get("method", "GET")).upper(),
            path=str(scope.get("path", "/")),
            query=raw_query.decode("utf-8", errors="surrogateescape")
            if isinstance(raw_query, bytes)
            else str(raw_query),
            headers={
                name.decode("latin-1").lower(): value.decode("latin-1")
                for name, value in scope.get("headers", ())
            },
            body=body,
            sender=sender or (client[0] if client else None),
        )

    @classmethod
    def from_flask(cls, request: _WerkzeugRequest, *, sender: str | None = None) -> Incoming:
        """From a Flask (Werkzeug) request."""
        return cls(
            method=request.method.upper(),
            path=request.path,
            query=request.query_string.decode("utf-8", errors="surrogateescape"),
            headers={name.lower(): value for name, value in request.headers.items()},
            body=request.get_data(cache=True),
            sender=sender or request.remote_addr,
        )

    @classmethod
    def from_django(cls, request: _DjangoRequest, *, sender: str | None = None) -> Incoming:
        """From a Django `HttpRequest`."""
        return cls(
            method=str(request.method or "GET").upper(),
            path=request.path,
            query=_latin1_to_utf8(str(request.META.get("QUERY_STRING", ""))),
            headers={name.lower(): value for name, value in request.headers.items()},
            body=request.body,
            sender=sender or request.META.get("REMOTE_ADDR"),
        )

    @classmethod
    async def from_starlette(
        cls, request: _StarletteRequest, *, sender: str | None = None
    ) -> Incoming:
        """From a Starlette (FastAPI) request; reads its body."""
        return cls.from_asgi(request.scope, await request.body(), sender=sender)


def _length(value: object) -> int:
    try:
        return max(int(str(value)), 0)
    except ValueError:
        return 0


def _latin1_to_utf8(text: str) -> str:
    """PEP 3333 hands the query string over as latin-1 text: the bytes sent, re-read as UTF-8.

    Bytes that are not UTF-8 stay as surrogates, which the parameter reader refuses.
    """
    try:
        return text.encode("latin-1").decode("utf-8", errors="surrogateescape")
    except UnicodeEncodeError:  # a server that decoded it already
        return text


class _WerkzeugRequest(Protocol):
    method: str
    path: str
    query_string: bytes
    remote_addr: str | None

    @property
    def headers(self) -> Any: ...

    def get_data(self, cache: bool = ...) -> bytes: ...


class _DjangoRequest(Protocol):
    method: str | None
    path: str

    @property
    def META(self) -> Mapping[str, Any]: ...

    @property
    def body(self) -> bytes: ...

    @property
    def headers(self) -> Any: ...


class _StarletteRequest(Protocol):
    scope: Any

    async def body(self) -> bytes: ...
