"""`paymux.Incoming`: what a web framework received, the same from every framework.

Each adapter is fed the framework's own request object for one notification — a POSTed JSON
body with a query string, a header and a sender — and must give the same `Incoming`.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from paymux import Incoming, SignatureError
from paymux.providers.base import notification_params

BODY = json.dumps({"event": "payment.succeeded", "object": {"amount": "10.50"}}).encode()
QUERY = "shop=7&note=%D0%BF%D1%80%D0%B8%D0%B2%D0%B5%D1%82"
SENDER = "185.71.76.5"


def expected(**changes: Any) -> Incoming:
    return Incoming(
        method="POST",
        path="/notify/yookassa",
        query=QUERY,
        headers={"content-type": "application/json", "x-trace": "abc"},
        body=BODY,
        sender=SENDER,
        **changes,
    )


def environ() -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/notify/yookassa",
        "QUERY_STRING": QUERY,
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(BODY)),
        "HTTP_X_TRACE": "abc",
        "REMOTE_ADDR": SENDER,
        "wsgi.input": io.BytesIO(BODY),
    }


def comparable(incoming: Incoming) -> Incoming:
    """`incoming` with only the headers this test sent (frameworks add their own)."""
    wanted = {name: incoming.headers[name] for name in ("content-type", "x-trace")}
    return Incoming(
        method=incoming.method,
        path=incoming.path,
        query=incoming.query,
        headers=wanted,
        body=incoming.body,
        sender=incoming.sender,
    )


def test_from_wsgi_reads_method_path_query_headers_body_and_sender() -> None:
    assert comparable(Incoming.from_wsgi(environ())) == expected()


def test_from_flask() -> None:
    flask = pytest.importorskip("flask", reason="the flask extra is not installed")
    app = flask.Flask(__name__)
    full = {**environ(), "wsgi.url_scheme": "http", "SERVER_NAME": "shop", "SERVER_PORT": "80"}
    with app.request_context(full):
        assert comparable(Incoming.from_flask(flask.request)) == expected()


def test_from_django() -> None:
    pytest.importorskip("django", reason="the django extra is not installed")
    from django.conf import settings

    if not settings.configured:
        settings.configure(ALLOWED_HOSTS=["*"])
    from django.core.handlers.wsgi import WSGIRequest

    request = WSGIRequest({**environ(), "SERVER_NAME": "shop", "SERVER_PORT": "80"})
    assert comparable(Incoming.from_django(request)) == expected()


def test_from_starlette_and_asgi() -> None:
    starlette = pytest.importorskip("starlette.requests", reason="the fastapi extra is absent")
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/notify/yookassa",
        "query_string": QUERY.encode(),
        "headers": [(b"content-type", b"application/json"), (b"x-trace", b"abc")],
        "client": (SENDER, 40000),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": BODY, "more_body": False}

    request = starlette.Request(scope, receive)
    assert asyncio.run(Incoming.from_starlette(request)) == expected()
    assert Incoming.from_asgi(scope, BODY) == expected()


@pytest.mark.parametrize(
    "build",
    [
        lambda sender: Incoming.from_wsgi(environ(), sender=sender),
        lambda sender: Incoming.from_asgi({"client": (SENDER, 1)}, sender=sender),
    ],
    ids=["wsgi", "asgi"],
)
def test_a_sender_given_by_the_host_wins_over_the_peer(
    build: Callable[[str], Incoming],
) -> None:
    """Behind a reverse proxy the peer is the proxy; the host passes the address it trusts."""
    assert build("77.75.153.9").sender == "77.75.153.9"


def test_a_query_string_url_or_mapping_is_a_get_with_that_query() -> None:
    for given in ("type=payment&id=1", "https://shop.example/n?type=payment&id=1"):
        incoming = Incoming.of(given)
        assert (incoming.method, incoming.body, incoming.sender) == ("GET", b"", None)
        assert notification_params(incoming.query) == {"type": "payment", "id": "1"}
    assert Incoming.of({"id": "1"}).query == {"id": "1"}
    assert Incoming.of(b"id=1").query == "id=1"


def test_query_bytes_that_are_not_utf8_are_refused_when_read() -> None:
    wsgi = Incoming.from_wsgi({**environ(), "QUERY_STRING": "note=\xff"})
    with pytest.raises(SignatureError, match="not valid UTF-8"):
        notification_params(wsgi.query)
    with pytest.raises(SignatureError, match="not valid UTF-8"):
        Incoming.of(b"note=\xff")


def test_utf8_sent_raw_in_a_wsgi_query_string_is_read_as_utf8() -> None:
    raw = "note=привет".encode().decode("latin-1")  # how PEP 3333 hands raw bytes over
    assert notification_params(Incoming.from_wsgi({"QUERY_STRING": raw}).query) == {
        "note": "привет"
    }


def test_the_body_reads_as_json_with_exact_decimals() -> None:
    assert Incoming(body=b'{"amount": 10.10}').json() == {"amount": Decimal("10.10")}
    with pytest.raises(SignatureError, match="not JSON"):
        Incoming(body=b"<html>").json()


def test_the_body_never_shows_in_a_repr() -> None:
    assert "payment.succeeded" not in repr(expected())
