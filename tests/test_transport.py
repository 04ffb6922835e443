"""The transport's bounds: a wall-clock deadline, a size cap, no ambient environment, clean headers.

Each gateway misbehaviour is a real loopback server (plain or TLS) scripted byte by byte: one
trickles its answer, one sends a gzip bomb, one only records what reached it (`scripted_servers`).
"""

from __future__ import annotations

import base64
import socket
import ssl
import threading
import time
import tracemalloc
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.testing import LogCapture

import paymux
from paymux._transport import Exchange, Transport
from paymux.providers.alikassa import AliKassaProvider
from paymux.providers.alikassa.keys import Signer
from paymux.providers.alikassa.sandbox import Merchant, Sandbox
from paymux.providers.base import Connection
from scripted_servers import (
    TRICKLED_BODY,
    TRICKLED_HEADERS,
    Script,
    ScriptedServer,
    answer,
    hang_up,
)
from support import payment_request

pytest_plugins = ["scripted_servers"]

NOT_FOUND = b'{"message":"Payment not found"}'
DEADLINE = 2.0


def connect(merchant: Merchant, server: ScriptedServer, **settings: Any) -> AliKassaProvider:
    provider = paymux.connect({**merchant.settings, "base_url": server.url, **settings})
    assert isinstance(provider, AliKassaProvider)
    return provider


# -- a wall-clock deadline ------------------------------------------------------------------------


@pytest.mark.parametrize("script", [TRICKLED_HEADERS, TRICKLED_BODY], ids=["headers", "body"])
def test_a_trickling_gateway_cannot_hold_a_status_call_past_its_deadline(
    merchant: Merchant, serve: Callable[..., ScriptedServer], script: Script
) -> None:
    server = serve(script)
    started = time.monotonic()
    with (
        connect(merchant, server, deadline=DEADLINE) as provider,
        pytest.raises(paymux.TransportError) as raised,
    ):
        provider.status(order_id="1001")

    assert time.monotonic() - started < DEADLINE + 1
    assert raised.value.request_sent is True


@pytest.mark.parametrize("script", [TRICKLED_HEADERS, TRICKLED_BODY], ids=["headers", "body"])
def test_a_trickling_gateway_cannot_hold_a_create_past_its_deadline_and_leaves_it_unknown(
    merchant: Merchant, serve: Callable[..., ScriptedServer], script: Script
) -> None:
    server = serve(script)
    request = payment_request()
    started = time.monotonic()
    with (
        connect(merchant, server, deadline=DEADLINE) as provider,
        pytest.raises(paymux.OutcomeUnknown) as raised,
    ):
        provider.create(request)

    assert time.monotonic() - started < DEADLINE + 1
    assert raised.value.order_id == request.order_id


def test_the_deadline_holds_over_tls_too(
    merchant: Merchant,
    serve: Callable[..., ScriptedServer],
    tls_server: ssl.SSLContext,
    clean_environment: Path,
    monkeypatch: pytest.MonkeyPatch,
    tls_bundle: Path,
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_bundle))  # trust_env: the test's CA
    server = serve(TRICKLED_BODY, tls_server)
    started = time.monotonic()
    with (
        connect(merchant, server, deadline=DEADLINE, trust_env=True) as provider,
        pytest.raises(paymux.TransportError) as raised,
    ):
        provider.status(order_id="1001")

    assert time.monotonic() - started < DEADLINE + 1
    assert raised.value.request_sent is True
    assert server.requests, "the TLS handshake succeeded and the request arrived"


def test_concurrent_calls_on_one_provider_each_keep_their_own_deadline(
    merchant: Merchant, serve: Callable[..., ScriptedServer]
) -> None:
    server = serve(TRICKLED_BODY)
    failures: list[BaseException] = []
    durations: list[float] = []

    def call(provider: AliKassaProvider) -> None:
        started = time.monotonic()
        try:
            provider.status(order_id="1001")
        except paymux.TransportError as error:
            failures.append(error)
        durations.append(time.monotonic() - started)

    with connect(merchant, server, deadline=DEADLINE) as provider:
        threads = [threading.Thread(target=call, args=(provider,)) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)

    assert len(failures) == 6
    assert max(durations) < DEADLINE + 1


# -- a cap on the answer's size -------------------------------------------------------------------


def test_a_gzip_bomb_is_an_invalid_response_read_no_further_than_the_cap(
    merchant: Merchant, serve: Callable[..., ScriptedServer], gzip_bomb: bytes
) -> None:
    server = serve(answer(200, gzip_bomb, "Content-Encoding: gzip"))
    with connect(merchant, server) as provider:
        tracemalloc.start()
        try:
            with pytest.raises(paymux.InvalidResponse) as raised:
                provider.status(order_id="1001")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    assert peak < 16 * 1024 * 1024, f"{peak} bytes at the peak for a 1 MiB cap"
    assert raised.value.http_status == 200
    assert raised.value.request_id == server.header(0, "X-Request-Id")


@pytest.mark.parametrize(("size", "fits"), [(1000, True), (1001, False)])
def test_an_answer_is_read_up_to_the_transports_cap(
    serve: Callable[..., ScriptedServer], size: int, fits: bool
) -> None:
    server = serve(answer(200, b"x" * size))
    transport = Transport(
        provider="test", connect_timeout=5, read_timeout=5, user_agent="t", max_response_bytes=1000
    )
    with closing(transport):
        if fits:
            answered = transport.send("POST", server.url, b"{}", {}, operation="status")
            assert answered.body == b"x" * size
        else:
            with pytest.raises(paymux.InvalidResponse, match="larger than 1000 bytes"):
                transport.send("POST", server.url, b"{}", {}, operation="status")


# -- no ambient environment -----------------------------------------------------------------------


@pytest.mark.parametrize(("trust_env", "sent"), [(False, False), (True, True)])
def test_netrc_credentials_reach_the_gateway_only_with_trust_env(
    merchant: Merchant,
    serve: Callable[..., ScriptedServer],
    clean_environment: Path,
    trust_env: bool,
    sent: bool,
) -> None:
    netrc = clean_environment / ".netrc"
    netrc.write_text("default login shop password hunter2\n", encoding="utf-8")
    netrc.chmod(0o600)
    server = serve(answer(404, NOT_FOUND))
    with (
        connect(merchant, server, trust_env=trust_env) as provider,
        pytest.raises(paymux.PaymentNotFound),
    ):
        provider.status(order_id="1001")

    expected = "Basic " + base64.b64encode(b"shop:hunter2").decode()
    assert server.header(0, "Authorization") == (expected if sent else None)


@pytest.mark.parametrize(("trust_env", "proxied"), [(False, False), (True, True)])
def test_proxy_variables_apply_only_with_trust_env(
    merchant: Merchant,
    serve: Callable[..., ScriptedServer],
    clean_environment: Path,
    monkeypatch: pytest.MonkeyPatch,
    trust_env: bool,
    proxied: bool,
) -> None:
    gateway = serve(answer(404, NOT_FOUND))
    proxy = serve(answer(404, NOT_FOUND))
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    with (
        connect(merchant, gateway, trust_env=trust_env) as provider,
        pytest.raises(paymux.PaymentNotFound),
    ):
        provider.status(order_id="1001")

    (via, direct) = (proxy, gateway) if proxied else (gateway, proxy)
    assert len(via.requests) == 1
    assert direct.connections == 0
    if proxied:
        assert proxy.requests[0].startswith(f"POST {gateway.url}/v1/payment/status ".encode())


# -- failures say what they are about ------------------------------------------------------------


def test_an_https_url_at_a_plain_http_server_says_it_speaks_no_tls_not_that_verification_failed(
    merchant: Merchant, sandbox: Sandbox
) -> None:
    origin = sandbox.url.replace("http://", "https://")  # the sandbox speaks plain HTTP
    with (
        paymux.connect({**merchant.settings, "base_url": origin}) as provider,
        pytest.raises(paymux.TLSError) as raised,
    ):
        provider.status(order_id="1001")

    message = raised.value.message
    assert message.startswith(f"status: {origin} does not speak TLS ("), message
    assert message.endswith("is it a plain-HTTP server? Check the address's scheme and port")
    assert "verification" not in message
    assert raised.value.request_sent is False


def test_an_untrusted_certificate_is_a_verification_failure_at_that_address(
    merchant: Merchant,
    serve: Callable[..., ScriptedServer],
    tls_server: ssl.SSLContext,
    clean_environment: Path,
) -> None:
    server = serve(answer(200, b"{}"), tls_server)
    with connect(merchant, server) as provider, pytest.raises(paymux.TLSError) as raised:
        provider.status(order_id="1001")

    assert raised.value.message.startswith(f"status: TLS verification failed for {server.url}: ")
    assert server.requests == []


def test_a_tls_handshake_that_never_ends_is_a_connect_timeout_with_nothing_sent() -> None:
    """The address accepts connections and never speaks: a plain-HTTP server waiting for a
    request line would do the same. Nothing was sent, so it must not read as "may have acted"."""
    transport = Transport(provider="test", connect_timeout=0.5, read_timeout=30, user_agent="t")
    with closing(socket.create_server(("127.0.0.1", 0))) as silent, closing(transport):
        origin = f"https://127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(paymux.TransportError) as raised:
            transport.send("POST", origin, b"{}", {}, operation="status")

    assert raised.value.request_sent is False
    assert raised.value.message == (
        f"status: could not connect within the connect timeout: nothing answers at {origin}"
    )


def test_a_create_at_a_closed_port_names_the_address_and_its_operation_once(
    merchant: Merchant,
) -> None:
    with closing(socket.create_server(("127.0.0.1", 0))) as listener:
        origin = f"http://127.0.0.1:{listener.getsockname()[1]}"  # closed once left
    with (
        paymux.connect({**merchant.settings, "base_url": origin, "backoff": 0.01}) as provider,
        pytest.raises(paymux.TransportError) as raised,
    ):
        provider.create(payment_request())

    assert raised.value.message == f"create: could not connect: nothing answers at {origin}"


@pytest.mark.parametrize(
    ("script", "why"),
    [
        (hang_up, "connection lost before the answer arrived"),
        (answer(500, b'{"message":"Server Error"}'), "Server Error"),
    ],
    ids=["hang-up", "HTTP 500"],
)
def test_an_unknown_create_outcome_names_the_operation_once(
    merchant: Merchant, serve: Callable[..., ScriptedServer], script: Script, why: str
) -> None:
    server = serve(script)
    with (
        connect(merchant, server, reconcile="false") as provider,
        pytest.raises(paymux.OutcomeUnknown) as raised,
    ):
        provider.create(payment_request())

    assert raised.value.message == (
        f"create: {why}; it may have happened: call reconcile() with this error later"
    )


# -- plain http ----------------------------------------------------------------------------------


@pytest.mark.parametrize("base_url", ["http://[::1", "https://host:99999999/", "ftp://host/"])
def test_a_malformed_base_url_is_a_configuration_error(merchant: Merchant, base_url: str) -> None:
    with pytest.raises(paymux.ConfigurationError, match="base_url"):
        paymux.connect({**merchant.settings, "base_url": base_url})


@pytest.mark.parametrize(
    "base_url",
    ["http://api-merchant.alikassa.io", "http://10.0.0.1:8080", "http://localhost.example.com"],
)
def test_plain_http_to_another_machine_is_refused(merchant: Merchant, base_url: str) -> None:
    with pytest.raises(paymux.ConfigurationError, match="base_url must use https"):
        paymux.connect({**merchant.settings, "base_url": base_url})


def test_plain_http_to_another_machine_is_accepted_with_allow_http(merchant: Merchant) -> None:
    settings = {**merchant.settings, "base_url": "http://10.0.0.1:8080", "allow_http": "true"}
    with paymux.connect(settings) as provider:
        assert isinstance(provider, AliKassaProvider)
        assert provider.base_url == "http://10.0.0.1:8080"


@pytest.mark.parametrize(
    "base_url",
    ["http://127.0.0.1:8765", "http://127.9.8.7", "http://[::1]:8765", "http://LocalHost:8765"],
)
def test_plain_http_to_this_machine_is_always_accepted(merchant: Merchant, base_url: str) -> None:
    with paymux.connect({**merchant.settings, "base_url": base_url}) as provider:
        assert isinstance(provider, AliKassaProvider)


# -- header values --------------------------------------------------------------------------------

BAD_HEADER_VALUES = ["shop\r\nX-Injected: 1", "shop\nX-Injected: 1", "shop\x00", "магазин"]


@pytest.mark.parametrize("user_agent", BAD_HEADER_VALUES)
def test_a_create_with_a_bad_header_value_is_a_validation_error_and_sends_nothing(
    merchant: Merchant, serve: Callable[..., ScriptedServer], user_agent: str
) -> None:
    server = serve(answer(404, NOT_FOUND))
    provider = AliKassaProvider(
        account=merchant.account,
        signer=Signer.from_certificate_dir(merchant.payment_certificate.path),
        connection=Connection(base_url=server.url, user_agent=user_agent),
    )
    with provider, pytest.raises(paymux.ValidationError) as raised:
        provider.create(payment_request())

    assert "User-Agent" in raised.value.fields
    assert server.connections == 0


@pytest.mark.parametrize("value", BAD_HEADER_VALUES)
def test_every_header_value_is_checked_before_anything_is_sent(
    serve: Callable[..., ScriptedServer], value: str
) -> None:
    server = serve(answer(200, b"{}"))
    transport = Transport(provider="test", connect_timeout=5, read_timeout=5, user_agent="t")
    with closing(transport), pytest.raises(paymux.ValidationError) as raised:
        transport.send("POST", server.url, b"{}", {"X-Note": value}, operation="status")

    assert list(raised.value.fields) == ["X-Note"]
    assert value not in str(raised.value)
    assert server.connections == 0


@pytest.mark.parametrize("user_agent", BAD_HEADER_VALUES)
def test_a_user_agent_setting_with_a_bad_character_is_a_configuration_error(
    merchant: Merchant, user_agent: str
) -> None:
    with pytest.raises(paymux.ConfigurationError, match="user_agent: Must be printable ASCII"):
        paymux.connect({**merchant.settings, "user_agent": user_agent})


# -- credentials in the address -------------------------------------------------------------------


def test_credentials_in_the_base_url_are_masked_in_reprs_exchanges_and_events(
    merchant: Merchant, serve: Callable[..., ScriptedServer]
) -> None:
    server = serve(answer(404, NOT_FOUND))
    base_url = server.url.replace("http://", "http://shop:s3cret-pass@")
    exchanges: list[Exchange] = []
    events = LogCapture()
    structlog.configure(processors=[events])
    transport = Transport(
        provider="test",
        connect_timeout=5,
        read_timeout=5,
        user_agent="t",
        on_exchange=exchanges.append,
    )
    try:
        with closing(transport):
            transport.send("POST", f"{base_url}/v1/payment/status", b"{}", {}, operation="status")
    finally:
        structlog.reset_defaults()
    with paymux.connect({**merchant.settings, "base_url": base_url}) as provider:
        shown = repr(provider)

    (http_event,) = [event for event in events.entries if event["event"] == "paymux.http"]
    masked = f"http://***@127.0.0.1:{server.port}"
    assert exchanges[0].url == http_event["url"] == f"{masked}/v1/payment/status"
    assert f"base_url='{masked}'" in shown
    assert "s3cret-pass" not in f"{exchanges} {http_event} {shown}"
    expected = "Basic " + base64.b64encode(b"shop:s3cret-pass").decode()
    assert server.header(0, "Authorization") == expected, "still used to authenticate"
