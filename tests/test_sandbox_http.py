"""The sandbox speaks HTTP/1.1 as clients send it: chunked request bodies (Node's `http.request`
and `requests` with a generator stream them) are read whole, within the body cap, and leave a
keep-alive connection ready for the next request; broken chunking is refused and hung up on.

Every test talks to a real sandbox over loopback: `requests` and `http.client` where the client
is polite, a raw socket where the bytes themselves are the point.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from paymux.providers.alikassa import Signer, phpjson
from paymux.providers.alikassa.sandbox import Merchant, Sandbox
from paymux.providers.base.loopback import MAX_BODY


def signed(merchant: Merchant, body: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """`body` as AliKassa's clients send it, and the headers that authenticate it."""
    payload = phpjson.dumps_bytes(body)
    signer = Signer.from_certificate_dir(merchant.payment_certificate.path)
    headers = {
        "Content-Type": "application/json",
        "Account": merchant.account,
        "Sign": signer.sign(payload),
    }
    return payload, headers


def create_body(order_id: str | None = None) -> dict[str, Any]:
    return {
        "order_id": order_id or f"order-{uuid.uuid4().hex[:12]}",
        "amount": "500.00",
        "service": "payment_card_rub_hpp",
        "customer_ip": "203.0.113.7",
        "customer_browser_user_agent": "Mozilla/5.0",
    }


def pieces(payload: bytes, size: int = 7) -> Iterator[bytes]:
    """`payload` in small pieces: each becomes a chunk of its own."""
    for start in range(0, len(payload), size):
        yield payload[start : start + size]


def address(sandbox: Sandbox) -> tuple[str, int]:
    host, port = sandbox.url.removeprefix("http://").split(":")
    return host, int(port)


def exchange(sandbox: Sandbox, raw: bytes) -> bytes:
    """Send `raw` on a fresh connection, close the sending side, read until the server closes."""
    with socket.create_connection(address(sandbox), timeout=5) as connection:
        connection.sendall(raw)
        connection.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
        return received


def chunked_head(headers: dict[str, str], path: str = "/v1/payment") -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: sandbox", "Transfer-Encoding: chunked"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def statuses(received: bytes) -> list[int]:
    """The status code of every response in `received`, in order."""
    return [int(status) for status in re.findall(rb"HTTP/1\.1 ([0-9]{3}) ", received)]


def test_a_chunked_create_from_requests_is_read_whole_and_creates_the_payment(
    sandbox: Sandbox, merchant: Merchant
) -> None:
    body = create_body()
    payload, headers = signed(merchant, body)

    answer = requests.post(
        f"{sandbox.url}/v1/payment", data=pieces(payload), headers=headers, timeout=5
    )

    assert answer.request.headers["Transfer-Encoding"] == "chunked"
    assert answer.status_code == 200, answer.text
    assert sandbox.payment(body["order_id"]).id == answer.json()["id"]
    assert sandbox.requests[-1].body == payload


def test_after_a_chunked_create_the_same_keep_alive_connection_serves_the_next_request(
    sandbox: Sandbox, merchant: Merchant
) -> None:
    body = create_body()
    payload, headers = signed(merchant, body)
    connection = http.client.HTTPConnection(*address(sandbox), timeout=5)
    try:
        connection.request("POST", "/v1/payment", pieces(payload), headers, encode_chunked=True)
        created = connection.getresponse()
        created_body = json.loads(created.read())
        first_socket = connection.sock

        query, query_headers = signed(merchant, {"order_id": body["order_id"]})
        connection.request("POST", "/v1/payment/status", query, query_headers)
        status = connection.getresponse()
        status_body = json.loads(status.read())

        assert created.status == 200
        assert first_socket is not None
        assert connection.sock is first_socket
        assert status.status == 200
        assert status_body["id"] == created_body["id"]
    finally:
        connection.close()


def test_chunk_extensions_and_trailer_fields_are_read_and_the_next_request_follows(
    sandbox: Sandbox, merchant: Merchant
) -> None:
    body = create_body()
    payload, headers = signed(merchant, body)
    half = len(payload) // 2
    chunked = (
        f"{half:x};name=value\r\n".encode()
        + payload[:half]
        + f"\r\n{len(payload) - half:X} ; last\r\n".encode()
        + payload[half:]
        + b"\r\n0\r\nX-Checksum: ignored\r\nX-Other: too\r\n\r\n"
    )
    listing = b"GET /sandbox/payments HTTP/1.1\r\nHost: sandbox\r\nConnection: close\r\n\r\n"

    received = exchange(sandbox, chunked_head(headers) + chunked + listing)

    assert statuses(received) == [200, 200]
    assert body["order_id"].encode() in received  # the listing shows the payment created
    assert sandbox.payment(body["order_id"]).status == "wait"


@pytest.mark.parametrize(
    "chunked",
    [
        pytest.param(b"zz\r\n{}\r\n0\r\n\r\n", id="size not hexadecimal"),
        pytest.param(b"-2\r\n{}\r\n0\r\n\r\n", id="negative size"),
        pytest.param(b"\r\n{}\r\n0\r\n\r\n", id="size missing"),
        pytest.param(b"1\r\n{}\r\n0\r\n\r\n", id="chunk longer than its size"),
        pytest.param(b"2\n{}\r\n0\r\n\r\n", id="size line without CR"),
        pytest.param(b"1" * 9000 + b"\r\n", id="size line beyond the line limit"),
        pytest.param(b"0\r\nnot a field\r\n\r\n", id="trailer line that is not a field"),
        pytest.param(b"0\r\n" + b"X: y\r\n" * 65 + b"\r\n", id="too many trailer fields"),
    ],
)
def test_a_malformed_chunked_body_is_400_and_the_connection_is_closed(
    sandbox: Sandbox, merchant: Merchant, chunked: bytes
) -> None:
    _, headers = signed(merchant, create_body())
    follower = b"GET /sandbox/payments HTTP/1.1\r\nHost: sandbox\r\n\r\n"

    received = exchange(sandbox, chunked_head(headers) + chunked + follower)

    assert statuses(received) == [400]
    assert b"Connection: close" in received
    assert b"Malformed chunked body" in received
    assert sandbox.payments() == []


@pytest.mark.parametrize(
    "chunked",
    [
        pytest.param(b"5\r\n{}", id="inside a chunk"),
        pytest.param(b"2\r\n{}\r\n0\r\n", id="before the last CRLF"),
        pytest.param(b"2\r\n{}\r\n0\r\nX-Trailer: y", id="inside a trailer field"),
        pytest.param(b"2", id="inside a chunk size"),
    ],
)
def test_a_chunked_body_cut_short_is_400(
    sandbox: Sandbox, merchant: Merchant, chunked: bytes
) -> None:
    _, headers = signed(merchant, create_body())

    received = exchange(sandbox, chunked_head(headers) + chunked)

    assert statuses(received) == [400]
    assert sandbox.payments() == []


def test_a_chunked_body_larger_than_the_limit_is_413_even_in_small_chunks(
    sandbox: Sandbox, merchant: Merchant
) -> None:
    _, headers = signed(merchant, create_body())
    chunk = b"x" * 65536
    whole_limit = (f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n") * (MAX_BODY // len(chunk))
    one_more = b"1\r\n"  # its byte is never sent: the size alone passes the limit

    received = exchange(sandbox, chunked_head(headers) + whole_limit + one_more)

    assert statuses(received) == [413]
    assert str(MAX_BODY).encode() in received
    assert sandbox.payments() == []


def test_one_chunk_declared_beyond_the_limit_is_413_before_a_byte_of_it_is_read(
    sandbox: Sandbox, merchant: Merchant
) -> None:
    _, headers = signed(merchant, create_body())

    received = exchange(sandbox, chunked_head(headers) + b"ffffffffffffffff\r\n")

    assert statuses(received) == [413]


@pytest.mark.parametrize(
    ("extra", "status"),
    [
        pytest.param("Transfer-Encoding: gzip", 501, id="a coding other than chunked"),
        pytest.param("Content-Length: 2", 400, id="Content-Length as well"),
    ],
)
def test_a_transfer_encoding_the_sandbox_cannot_read_safely_is_refused(
    sandbox: Sandbox, merchant: Merchant, extra: str, status: int
) -> None:
    payload, headers = signed(merchant, create_body())
    head = chunked_head(headers).replace(b"\r\n\r\n", f"\r\n{extra}\r\n\r\n".encode())
    chunked = f"{len(payload):x}\r\n".encode() + payload + b"\r\n0\r\n\r\n"

    received = exchange(sandbox, head + chunked)

    assert statuses(received) == [status]
    assert sandbox.payments() == []
