"""The sandbox under abuse: it never repeats a payment id, never signs a nonsense settle, never
changes a payment it cannot notify, and never crashes or spawns without bound on what a client
sends.

Every test talks to a real sandbox over loopback: `requests` where a client is polite, raw
sockets and `http.client` where it is not.
"""

from __future__ import annotations

import http.client
import json
import selectors
import socket
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

import paymux
from paymux._redaction import mask_card
from paymux.providers.alikassa import AliKassaProvider, CertificateFolder
from paymux.providers.alikassa.sandbox import Sandbox
from paymux.providers.base.loopback import MAX_BODY, MAX_CONNECTIONS
from support import Receiver, payment_request


def connected(sandbox: Sandbox, tmp_path: Path, key: rsa.RSAPrivateKey) -> AliKassaProvider:
    merchant = sandbox.create_merchant(tmp_path, private_key=key)
    provider = paymux.connect(merchant.settings)
    assert isinstance(provider, AliKassaProvider)
    return provider


def created_ids(provider: AliKassaProvider, count: int) -> list[int]:
    return [int(provider.create(payment_request()).id) for _ in range(count)]


@pytest.fixture
def waiting(provider: AliKassaProvider, sandbox: Sandbox, receiver: Receiver) -> int:
    """A 500.00 payment that waits for its customer and notifies `receiver`."""
    payment = provider.create(payment_request(notification_url=receiver.url))
    return int(payment.id)


def settle_over_http(sandbox: Sandbox, payment_id: int, body: bytes) -> requests.Response:
    return requests.post(
        f"{sandbox.url}/sandbox/payments/{payment_id}/settle", data=body, timeout=5
    )


def raw_request(sandbox: Sandbox, headers: dict[str, str], body: bytes = b"") -> tuple[int, Any]:
    """POST a create with exactly these headers; the status and the JSON answer."""
    host, port = sandbox.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        connection.putrequest("POST", "/v1/payment", skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders(body)
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read())
    finally:
        connection.close()


def open_sockets(sandbox: Sandbox, count: int) -> list[socket.socket]:
    host, port = sandbox.url.removeprefix("http://").split(":")
    return [socket.create_connection((host, int(port)), timeout=5) for _ in range(count)]


def turned_away(sockets: list[socket.socket], expected: int, timeout: float) -> list[bytes]:
    """What the sockets the server answered at once got, waiting until `expected` of them did."""
    answers: list[bytes] = []
    with selectors.DefaultSelector() as selector:
        for each in sockets:
            selector.register(each, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while len(answers) < expected and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=0.1):
                selector.unregister(key.fileobj)
                answers.append(_read_to_end(key.fileobj))  # type: ignore[arg-type]
    return answers


def _read_to_end(connection: socket.socket) -> bytes:
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
    return received


def eventually_served(sandbox: Sandbox, timeout: float = 10.0) -> int:
    """The status of the first answer to GET /sandbox/payments that is not a 503."""
    deadline = time.monotonic() + timeout
    while True:
        status = requests.get(f"{sandbox.url}/sandbox/payments", timeout=5).status_code
        if status != 503 or time.monotonic() > deadline:
            return status
        time.sleep(0.05)


@pytest.fixture
def no_tracebacks(capsys: pytest.CaptureFixture[str]) -> Iterator[None]:
    """Fails the test if a handler thread of the sandbox printed a traceback."""
    yield
    assert "Traceback" not in capsys.readouterr().err


# -- payment ids ------------------------------------------------------------------------------


def test_a_sandbox_started_later_numbers_above_every_payment_of_an_earlier_one(
    notification_certificate: CertificateFolder, tmp_path: Path, payment_key: rsa.RSAPrivateKey
) -> None:
    with (
        Sandbox(notification_certificate=notification_certificate.path) as first,
        connected(first, tmp_path / "first", payment_key) as provider,
    ):
        earlier = created_ids(provider, 3)
    frozen_in_the_past = Sandbox(
        notification_certificate=notification_certificate.path, clock=lambda: 0.0
    )
    with frozen_in_the_past as second, connected(second, tmp_path / "second", payment_key) as again:
        later = created_ids(again, 3)

    assert earlier == sorted(set(earlier))
    assert later == sorted(set(later))
    assert min(later) > max(earlier)
    for payment_id in earlier + later:
        assert len(str(payment_id)) <= 12
        assert mask_card(f"payment {payment_id}") == f"payment {payment_id}", "logs keep it whole"


# -- settling ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "paid_amount",
    [
        pytest.param(-100, id="negative"),
        pytest.param(0, id="zero"),
        pytest.param("0.00", id="zero text"),
        pytest.param(1e9, id="a billion"),
        pytest.param("500.01", id="a cent above the amount"),
        pytest.param("12.345", id="three decimals"),
        pytest.param("1e-999999999", id="vanishingly small"),
        pytest.param("abc", id="not a number"),
        pytest.param("NaN", id="NaN"),
        pytest.param("Infinity", id="infinity"),
        pytest.param(True, id="boolean"),
        pytest.param([100], id="list"),
    ],
)
def test_the_control_api_refuses_a_paid_amount_that_is_not_a_part_of_the_amount(
    sandbox: Sandbox, receiver: Receiver, waiting: int, paid_amount: Any, no_tracebacks: None
) -> None:
    answer = settle_over_http(
        sandbox, waiting, json.dumps({"status": "paid", "paid_amount": paid_amount}).encode()
    )

    refused = (answer.status_code, sandbox.payment(waiting).status, list(sandbox.deliveries))
    part = settle_over_http(sandbox, waiting, b'{"status": "paid", "paid_amount": 499.99}')

    assert refused == (400, "wait", [])
    assert "paid_amount" in answer.json()["message"]
    assert part.status_code == 200
    assert part.json()["payment"]["payment_amount"] == "499.990000000"
    assert len(receiver.wait_for(1)) == 1


@pytest.mark.parametrize(
    "paid_amount",
    [
        pytest.param(Decimal("-100"), id="negative"),
        pytest.param(Decimal("1E+9"), id="a billion"),
        pytest.param(Decimal("0"), id="zero"),
        pytest.param("5e2.0", id="not a number"),
        pytest.param(Decimal("NaN"), id="NaN"),
    ],
)
def test_settle_from_python_refuses_a_paid_amount_that_is_not_a_part_of_the_amount(
    sandbox: Sandbox, receiver: Receiver, waiting: int, paid_amount: Any
) -> None:
    with pytest.raises(ValueError, match="paid_amount"):
        sandbox.settle(waiting, "paid", paid_amount=paid_amount)

    assert sandbox.payment(waiting).status == "wait"
    assert sandbox.deliveries == []


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"status": "paid", "details": 5}', id="details a number"),
        pytest.param(b'{"status": "paid", "details": "card"}', id="details text"),
        pytest.param(b'{"status": "paid", "details": {"bank": [1]}}', id="details nested"),
        pytest.param(b'{"status": "paid", "details": {"bank": 1.5}}', id="details a fraction"),
        pytest.param(b"[" * 100_000, id="nested beyond any parser"),
    ],
)
def test_a_settle_the_sandbox_cannot_use_is_400_and_changes_nothing(
    sandbox: Sandbox, receiver: Receiver, waiting: int, body: bytes, no_tracebacks: None
) -> None:
    refused = settle_over_http(sandbox, waiting, body)
    untouched = sandbox.payment(waiting).status
    settled = settle_over_http(sandbox, waiting, b'{"status": "paid"}')

    assert refused.status_code == 400
    assert untouched == "wait"
    assert settled.status_code == 200
    assert len(receiver.wait_for(1)) == 1, "the settle that worked notified the shop, once"


def test_a_settle_whose_notification_cannot_start_leaves_the_payment_waiting(
    sandbox: Sandbox, receiver: Receiver, waiting: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A corner no real server shows on demand: the process can start no more threads."""

    def no_more_threads(thread: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    with monkeypatch.context() as patched:
        patched.setattr(threading.Thread, "start", no_more_threads)
        with pytest.raises(RuntimeError):
            sandbox.gateway.settle(waiting, "paid", wait=False)
        untouched = sandbox.payment(waiting).status

    assert untouched == "wait"
    assert sandbox.settle(waiting, "paid") is not None
    assert sandbox.payment(waiting).status == "paid"
    assert len(receiver.wait_for(1)) == 1


def test_a_stopped_sandbox_refuses_to_settle_instead_of_settling_in_silence(
    sandbox: Sandbox, receiver: Receiver, waiting: int
) -> None:
    sandbox.stop()

    with pytest.raises(RuntimeError, match="stopped"):
        sandbox.settle(waiting, "paid")
    assert sandbox.payment(waiting).status == "wait"
    assert receiver.received == []


# -- what a client sends ----------------------------------------------------------------------


def test_a_body_beyond_the_limit_is_413_before_a_byte_of_it_is_read(
    sandbox: Sandbox, no_tracebacks: None
) -> None:
    status, answer = raw_request(sandbox, {"Content-Length": str(10**11)})

    assert status == 413
    assert str(MAX_BODY) in answer["message"]
    assert eventually_served(sandbox) == 200


@pytest.mark.parametrize(
    "length",
    [
        pytest.param(["-1"], id="negative"),
        pytest.param(["abc"], id="not a number"),
        pytest.param(["1e3"], id="exponent"),
        pytest.param(["+5"], id="plus sign"),
        pytest.param(["9" * 5000], id="five thousand digits"),
        pytest.param(["5", "6"], id="two that disagree"),
    ],
)
def test_a_content_length_that_is_not_one_plain_number_is_400(
    sandbox: Sandbox, length: list[str], no_tracebacks: None
) -> None:
    host, port = sandbox.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    connection.putrequest("POST", "/v1/payment", skip_accept_encoding=True)
    for value in length:
        connection.putheader("Content-Length", value)
    connection.endheaders()
    answer = connection.getresponse()
    message = json.loads(answer.read())["message"]
    connection.close()

    assert answer.status == 400
    assert "Content-Length" in message
    assert eventually_served(sandbox) == 200


def test_300_idle_connections_hold_at_most_the_connection_limit_in_threads(
    sandbox: Sandbox, no_tracebacks: None
) -> None:
    before = threading.active_count()
    sockets = open_sockets(sandbox, 300)
    try:
        refused = turned_away(sockets, 300 - MAX_CONNECTIONS, timeout=10)
        grown = threading.active_count() - before
        while_full = requests.get(f"{sandbox.url}/sandbox/payments", timeout=5)
    finally:
        for each in sockets:
            each.close()

    assert len(refused) == 300 - MAX_CONNECTIONS
    assert all(answer.startswith(b"HTTP/1.1 503 ") for answer in refused)
    assert grown <= MAX_CONNECTIONS
    assert while_full.status_code == 503
    assert "Too many connections" in while_full.json()["message"]
    assert eventually_served(sandbox) == 200, "closing them frees the sandbox"


@pytest.fixture
def impatient(notification_certificate: CertificateFolder) -> Iterator[Sandbox]:
    """A sandbox that closes a connection silent for half a second."""
    with Sandbox(notification_certificate=notification_certificate.path, idle_timeout=0.5) as run:
        yield run


def test_an_idle_keep_alive_connection_is_closed_after_the_idle_timeout(
    impatient: Sandbox,
) -> None:
    host, port = impatient.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    connection.request("GET", "/sandbox/payments")
    answer = connection.getresponse()
    answer.read()
    assert connection.sock is not None
    started = time.monotonic()

    closed = connection.sock.recv(1) == b""  # blocks until the sandbox hangs up
    waited = time.monotonic() - started
    connection.close()

    assert answer.status == 200
    assert answer.getheader("Connection") != "close", "it was kept alive at first"
    assert closed
    assert waited < 4


@pytest.mark.parametrize(
    "sent",
    [
        pytest.param(b"", id="nothing"),
        pytest.param(b"POST /v1/payment HTTP/1.1\r\nHost: x\r\n", id="half the headers"),
        pytest.param(
            b"POST /v1/payment HTTP/1.1\r\nContent-Length: 100\r\n\r\n{", id="half the body"
        ),
    ],
)
def test_a_client_that_stops_half_way_is_hung_up_on_and_its_thread_ends(
    impatient: Sandbox, sent: bytes, no_tracebacks: None
) -> None:
    before = threading.active_count()
    (connection,) = open_sockets(impatient, 1)
    connection.sendall(sent)

    answered = _read_to_end(connection)  # returns when the sandbox hangs up
    connection.close()
    deadline = time.monotonic() + 5
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.05)

    assert b"200 OK" not in answered
    assert threading.active_count() <= before
    assert eventually_served(impatient) == 200
