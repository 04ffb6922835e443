"""The asyncio transport keeps the blocking one's promises, against the same scripted gateways.

A wall-clock deadline, a size cap on the decoded answer, no ambient environment, clean headers,
failures that say whether the request may have left, and a cancelled task's `CancelledError`
left to go on (after the exchange is reported). Each gateway is a real loopback server, plain
or TLS, scripted byte by byte (`scripted_servers`); each test runs its own event loop.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import socket
import ssl
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable, Mapping
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.testing import LogCapture

import paymux
from paymux._async_transport import AsyncTransport
from paymux._calls import Answer
from paymux._transport import POOL_SIZE, Exchange
from paymux.providers.alikassa.sandbox import Sandbox
from scripted_servers import (
    TRICKLED_BODY,
    TRICKLED_HEADERS,
    Script,
    ScriptedServer,
    Send,
    answer,
    hang_up,
)

pytest_plugins = ["scripted_servers"]

Serve = Callable[..., ScriptedServer]

DEADLINE = 2.0
WELL_WITHIN = DEADLINE + 5
"""How long a send given `DEADLINE` may take in all; a trickling gateway would hold it 30 s."""

BAD_HEADER_VALUES = ["shop\r\nX-Injected: 1", "shop\nX-Injected: 1", "shop\x00", "магазин"]


def transport(**settings: Any) -> AsyncTransport:
    """A transport with roomy timeouts of its own, so that only a deadline can be short."""
    defaults: dict[str, Any] = {
        "provider": "test",
        "connect_timeout": 5,
        "read_timeout": 30,
        "user_agent": "paymux-test",
    }
    return AsyncTransport(**{**defaults, **settings})


def send(
    url: str,
    headers: Mapping[str, str] | None = None,
    *,
    settings: Mapping[str, Any] | None = None,
    **options: Any,
) -> Answer:
    """One POST of `{}` on a fresh transport, in a fresh event loop; the transport closed after."""

    async def one_send() -> Answer:
        sender = transport(**(settings or {}))
        try:
            return await sender.send(
                "POST", url, b"{}", headers or {}, operation="status", **options
            )
        finally:
            await sender.aclose()

    return asyncio.run(one_send())


def unused_port() -> int:
    with closing(socket.create_server(("127.0.0.1", 0))) as listener:
        port: int = listener.getsockname()[1]
    return port


async def cancel_once(sender: AsyncTransport, url: str, when: Callable[[], bool]) -> None:
    """Start a send, cancel its task as soon as `when()` holds; the task must end cancelled."""
    task = asyncio.create_task(sender.send("POST", url, b"{}", {}, operation="create"))
    for _ in range(1000):
        if when() or task.done():
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()


# -- an ordinary exchange -------------------------------------------------------------------------


def test_an_answer_carries_its_status_body_headers_and_the_request_id_that_was_sent(
    serve: Serve,
) -> None:
    server = serve(answer(200, b'{"id": 7}', "X-Trace: abc"))
    exchanges: list[Exchange] = []
    answered = send(
        f"{server.url}/v1/payment/status",
        {"X-Note": "hello"},
        query={"order_id": "1001"},
        settings={"on_exchange": exchanges.append},
    )

    assert (answered.status, answered.body) == (200, b'{"id": 7}')
    assert answered.headers["x-trace"] == "abc", "header names in lower case"
    assert answered.request_id == server.header(0, "X-Request-Id")
    assert server.requests[0].startswith(b"POST /v1/payment/status?order_id=1001 HTTP/1.1\r\n")
    assert server.header(0, "User-Agent") == "paymux-test"
    assert server.header(0, "X-Note") == "hello"
    (exchange,) = exchanges
    assert (exchange.outcome, exchange.http_status) == ("answered", 200)
    assert (exchange.request_id, exchange.method, exchange.operation) == (
        answered.request_id,
        "POST",
        "status",
    )


def test_sends_on_one_transport_reuse_one_kept_alive_connection(serve: Serve) -> None:
    server = serve(answer(200, b"{}"))

    async def three_sends() -> list[str]:
        sender = transport()
        try:
            answers = [
                await sender.send("POST", server.url, b"{}", {}, operation="status")
                for _ in range(3)
            ]
        finally:
            await sender.aclose()
        return [answered.request_id for answered in answers]

    request_ids = asyncio.run(three_sends())

    assert server.connections == 1
    assert request_ids == [server.header(index, "X-Request-Id") for index in range(3)]
    assert len(set(request_ids)) == 3, "a new X-Request-Id for every send"


def test_more_concurrent_sends_than_the_pool_holds_wait_their_turn_and_are_all_answered(
    serve: Serve,
) -> None:
    ordinary = answer(200, b"{}")

    def slowly(send: Send, stop: threading.Event) -> None:
        stop.wait(0.2)
        ordinary(send, stop)

    server = serve(slowly)

    async def many_sends() -> list[Answer]:
        sender = transport(connect_timeout=0.1)  # waiting for the pool is no connecting
        try:
            return await asyncio.gather(
                *(
                    sender.send("POST", server.url, b"{}", {}, operation="status")
                    for _ in range(POOL_SIZE + 8)
                )
            )
        finally:
            await sender.aclose()

    answers = asyncio.run(many_sends())

    assert [answered.status for answered in answers] == [200] * (POOL_SIZE + 8)
    assert server.connections == POOL_SIZE


@pytest.mark.parametrize(
    ("coding", "encode"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda data: zlib.compress(data, wbits=-zlib.MAX_WBITS)),
        ("gzip, deflate", lambda data: zlib.compress(gzip.compress(data))),
    ],
    ids=["gzip", "deflate", "raw-deflate", "gzip-then-deflate"],
)
def test_a_compressed_answer_is_decoded(
    serve: Serve, coding: str, encode: Callable[[bytes], bytes]
) -> None:
    body = b'{"status": "paid"}' * 5000
    server = serve(answer(200, encode(body), f"Content-Encoding: {coding}"))

    assert send(server.url).body == body
    assert server.header(0, "Accept-Encoding") == "gzip, deflate"


# -- failures say whether the request may have left -----------------------------------------------


def test_nothing_listening_is_a_transport_error_and_the_request_certainly_never_left() -> None:
    origin = f"http://127.0.0.1:{unused_port()}"
    exchanges: list[Exchange] = []
    with pytest.raises(paymux.TransportError) as raised:
        send(f"{origin}/v1/payment/status", settings={"on_exchange": exchanges.append})

    assert raised.value.request_sent is False
    assert raised.value.message == f"status: could not connect: nothing answers at {origin}"
    assert exchanges[0].outcome == "not_sent"


def test_a_gateway_that_hangs_up_after_reading_the_request_may_have_acted_on_it(
    serve: Serve,
) -> None:
    server = serve(hang_up)
    exchanges: list[Exchange] = []
    with pytest.raises(paymux.TransportError) as raised:
        send(server.url, settings={"on_exchange": exchanges.append})

    assert raised.value.request_sent is True
    assert raised.value.message == "status: connection lost before the answer arrived"
    assert raised.value.request_id == server.header(0, "X-Request-Id")
    assert exchanges[0].outcome == "interrupted"


@pytest.mark.parametrize("bundle_in_environment", [False, True])
def test_an_untrusted_certificate_is_a_tls_error_and_nothing_is_sent(
    serve: Serve,
    tls_server: ssl.SSLContext,
    tls_bundle: Path,
    clean_environment: Path,
    monkeypatch: pytest.MonkeyPatch,
    bundle_in_environment: bool,
) -> None:
    if bundle_in_environment:  # ignored without trust_env
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_bundle))
    server = serve(answer(200, b"{}"), tls_server)
    exchanges: list[Exchange] = []
    with pytest.raises(paymux.TLSError) as raised:
        send(server.url, settings={"on_exchange": exchanges.append})

    assert raised.value.request_sent is False
    assert raised.value.message.startswith(f"status: TLS verification failed for {server.url}: ")
    assert server.requests == []
    assert exchanges[0].outcome == "not_sent"


def test_an_https_url_at_a_plain_http_server_says_it_speaks_no_tls_not_that_verification_failed(
    sandbox: Sandbox,
) -> None:
    origin = sandbox.url.replace("http://", "https://")  # the sandbox speaks plain HTTP
    exchanges: list[Exchange] = []
    with pytest.raises(paymux.TLSError) as raised:
        send(f"{origin}/v1/payment/status", settings={"on_exchange": exchanges.append})

    message = raised.value.message
    assert message.startswith(f"status: {origin} does not speak TLS ("), message
    assert message.endswith("is it a plain-HTTP server? Check the address's scheme and port")
    assert "verification" not in message
    assert raised.value.request_sent is False
    assert exchanges[0].outcome == "not_sent"


# -- a wall-clock deadline ------------------------------------------------------------------------


@pytest.mark.parametrize("script", [TRICKLED_HEADERS, TRICKLED_BODY], ids=["headers", "body"])
def test_a_trickling_gateway_cannot_hold_a_send_past_its_deadline(
    serve: Serve, script: Script
) -> None:
    server = serve(script)
    exchanges: list[Exchange] = []
    started = time.monotonic()
    with pytest.raises(paymux.TransportError) as raised:
        send(server.url, time_left=DEADLINE, settings={"on_exchange": exchanges.append})

    assert time.monotonic() - started < WELL_WITHIN
    assert raised.value.request_sent is True
    assert raised.value.message == "status: no whole answer within the read timeout or the deadline"
    assert exchanges[0].outcome == "interrupted"


def test_the_deadline_holds_over_tls_too(
    serve: Serve,
    tls_server: ssl.SSLContext,
    tls_bundle: Path,
    clean_environment: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_bundle))  # trust_env: the test's CA
    server = serve(TRICKLED_BODY, tls_server)
    started = time.monotonic()
    with pytest.raises(paymux.TransportError) as raised:
        send(server.url, time_left=DEADLINE, settings={"trust_env": True})

    assert time.monotonic() - started < WELL_WITHIN
    assert raised.value.request_sent is True
    assert server.requests, "the TLS handshake succeeded and the request arrived"


def test_a_gateway_that_never_finishes_the_tls_handshake_ends_at_the_deadline_unsent() -> None:
    exchanges: list[Exchange] = []
    with closing(socket.create_server(("127.0.0.1", 0))) as silent:  # never accepts, never speaks
        origin = f"https://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(paymux.TransportError) as raised:
            send(origin, time_left=DEADLINE, settings={"on_exchange": exchanges.append})

    assert time.monotonic() - started < WELL_WITHIN
    assert raised.value.request_sent is False
    assert raised.value.message == (
        f"status: could not connect within the connect timeout: nothing answers at {origin}"
    )
    assert exchanges[0].outcome == "not_sent"


def test_concurrent_sends_on_one_transport_each_keep_their_own_deadline(serve: Serve) -> None:
    server = serve(TRICKLED_BODY)

    async def timed_send(sender: AsyncTransport) -> tuple[BaseException | Answer, float]:
        started = time.monotonic()
        try:
            result: BaseException | Answer = await sender.send(
                "POST", server.url, b"{}", {}, operation="status", time_left=DEADLINE
            )
        except paymux.TransportError as error:
            result = error
        return result, time.monotonic() - started

    async def six_sends() -> list[tuple[BaseException | Answer, float]]:
        sender = transport()
        try:
            return await asyncio.gather(*(timed_send(sender) for _ in range(6)))
        finally:
            await sender.aclose()

    outcomes = asyncio.run(six_sends())

    assert all(isinstance(result, paymux.TransportError) for result, _ in outcomes)
    assert max(duration for _, duration in outcomes) < WELL_WITHIN
    assert server.connections == 6


# -- a cap on the answer's size -------------------------------------------------------------------


def test_a_gzip_bomb_is_an_invalid_response_inflated_no_further_than_the_cap(
    serve: Serve, gzip_bomb: bytes
) -> None:
    server = serve(answer(200, gzip_bomb, "Content-Encoding: gzip"))
    tracemalloc.start()
    try:
        with pytest.raises(paymux.InvalidResponse) as raised:
            send(server.url)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert peak < 16 * 1024 * 1024, f"{peak} bytes at the peak for a 1 MiB cap"
    assert raised.value.message == "status: the answer is larger than 1048576 bytes"
    assert raised.value.http_status == 200
    assert raised.value.request_id == server.header(0, "X-Request-Id")


@pytest.mark.parametrize(("size", "fits"), [(1000, True), (1001, False)])
def test_an_answer_is_read_up_to_the_transports_cap(serve: Serve, size: int, fits: bool) -> None:
    server = serve(answer(200, b"x" * size))
    settings = {"max_response_bytes": 1000}
    if fits:
        assert send(server.url, settings=settings).body == b"x" * size
    else:
        with pytest.raises(paymux.InvalidResponse, match="larger than 1000 bytes"):
            send(server.url, settings=settings)


# -- no ambient environment -----------------------------------------------------------------------


@pytest.mark.parametrize(("trust_env", "sent"), [(False, False), (True, True)])
def test_netrc_credentials_reach_the_gateway_only_with_trust_env(
    serve: Serve,
    clean_environment: Path,
    monkeypatch: pytest.MonkeyPatch,
    trust_env: bool,
    sent: bool,
) -> None:
    netrc = clean_environment / "credentials.netrc"
    netrc.write_text("default login shop password hunter2\n", encoding="utf-8")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    server = serve(answer(404, b"{}"))
    send(server.url, settings={"trust_env": trust_env})

    expected = "Basic " + base64.b64encode(b"shop:hunter2").decode()
    assert server.header(0, "Authorization") == (expected if sent else None)


@pytest.mark.parametrize(("trust_env", "proxied"), [(False, False), (True, True)])
def test_proxy_variables_apply_only_with_trust_env(
    serve: Serve,
    clean_environment: Path,
    monkeypatch: pytest.MonkeyPatch,
    trust_env: bool,
    proxied: bool,
) -> None:
    gateway = serve(answer(404, b"{}"))
    proxy = serve(answer(404, b"{}"))
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    send(f"{gateway.url}/v1/payment/status", settings={"trust_env": trust_env})

    (via, direct) = (proxy, gateway) if proxied else (gateway, proxy)
    assert len(via.requests) == 1
    assert direct.connections == 0
    if proxied:
        assert proxy.requests[0].startswith(f"POST {gateway.url}/v1/payment/status ".encode())


def test_without_trust_env_an_https_send_goes_straight_to_the_gateway_past_https_proxy(
    serve: Serve,
    tls_server: ssl.SSLContext,
    clean_environment: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gateway = serve(answer(200, b"{}"), tls_server)
    proxy = serve(answer(200, b"{}"))
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    with pytest.raises(paymux.TLSError):  # the test's CA is not trusted without trust_env
        send(gateway.url)

    assert (gateway.connections, proxy.connections) == (1, 0)


# -- header values --------------------------------------------------------------------------------


@pytest.mark.parametrize("value", BAD_HEADER_VALUES)
def test_every_header_value_is_checked_before_anything_is_sent(serve: Serve, value: str) -> None:
    server = serve(answer(200, b"{}"))
    exchanges: list[Exchange] = []
    with pytest.raises(paymux.ValidationError) as raised:
        send(server.url, {"X-Note": value}, settings={"on_exchange": exchanges.append})

    assert list(raised.value.fields) == ["X-Note"]
    assert value not in str(raised.value)
    assert server.connections == 0
    assert exchanges == [], "nothing was exchanged"


@pytest.mark.parametrize("user_agent", BAD_HEADER_VALUES)
def test_a_bad_user_agent_is_a_validation_error_at_the_first_send(
    serve: Serve, user_agent: str
) -> None:
    server = serve(answer(200, b"{}"))
    with pytest.raises(paymux.ValidationError) as raised:
        send(server.url, settings={"user_agent": user_agent})

    assert list(raised.value.fields) == ["User-Agent"]
    assert server.connections == 0


# -- cancellation ---------------------------------------------------------------------------------


def test_a_task_cancelled_once_the_request_left_is_cancelled_and_reported_interrupted(
    serve: Serve,
) -> None:
    server = serve(TRICKLED_BODY)
    exchanges: list[Exchange] = []

    async def cancelled_mid_send() -> None:
        sender = transport(on_exchange=exchanges.append)
        try:
            await cancel_once(sender, server.url, when=lambda: bool(server.requests))
        finally:
            await sender.aclose()

    asyncio.run(cancelled_mid_send())

    (exchange,) = exchanges
    assert exchange.outcome == "interrupted"
    assert exchange.request_id == server.header(0, "X-Request-Id")


def test_a_task_cancelled_during_the_tls_handshake_is_reported_not_sent() -> None:
    exchanges: list[Exchange] = []
    with closing(socket.create_server(("127.0.0.1", 0))) as silent:  # never accepts, never speaks
        url = f"https://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()

        async def cancelled_in_handshake() -> None:
            sender = transport(on_exchange=exchanges.append)
            try:
                await cancel_once(sender, url, when=lambda: time.monotonic() - started > 0.5)
            finally:
                await sender.aclose()

        asyncio.run(cancelled_in_handshake())

    (exchange,) = exchanges
    assert exchange.outcome == "not_sent"


# -- credentials in the address -------------------------------------------------------------------


def test_credentials_in_the_url_are_masked_in_exchanges_and_events_yet_authenticate(
    serve: Serve,
) -> None:
    server = serve(answer(404, b"{}"))
    url = server.url.replace("http://", "http://shop:s3cret-pass@") + "/v1/payment/status"
    exchanges: list[Exchange] = []
    events = LogCapture()
    structlog.configure(processors=[events])
    try:
        send(url, settings={"on_exchange": exchanges.append})
    finally:
        structlog.reset_defaults()

    (http_event,) = [event for event in events.entries if event["event"] == "paymux.http"]
    masked = f"http://***@127.0.0.1:{server.port}/v1/payment/status"
    assert exchanges[0].url == http_event["url"] == masked
    assert "s3cret-pass" not in f"{exchanges} {http_event}"
    expected = "Basic " + base64.b64encode(b"shop:s3cret-pass").decode()
    assert server.header(0, "Authorization") == expected
