"""Gateways that misbehave on purpose, for both transports' tests: real loopback servers.

Each `ScriptedServer` (plain or TLS) answers every request with a script, byte by byte: one
trickles its answer, one sends a gzip bomb, one hangs up, one only records what reached it.

The test modules import its scripts and load it as a plugin (`pytest_plugins`) for its fixtures;
imported first, it cannot have its asserts rewritten (it has none): PYTEST_DONT_REWRITE.
"""

from __future__ import annotations

import datetime
import gzip
import ipaddress
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

Send = Callable[[bytes], None]
Script = Callable[[Send, threading.Event], None]


class HangUp(Exception):
    """Raised by a script: the server closes the connection without a word more."""


def answer(status: int, body: bytes, *headers: str) -> Script:
    """A whole, ordinary keep-alive answer."""
    head = [f"HTTP/1.1 {status} X", "Content-Type: application/json", *headers]
    head.append(f"Content-Length: {len(body)}")
    message = ("\r\n".join(head) + "\r\n\r\n").encode() + body

    def script(send: Send, stop: threading.Event) -> None:
        send(message)

    return script


def trickle(prefix: bytes, drip: bytes) -> Script:
    """`prefix` at once, then one byte of `drip` every 0.1 s for 30 s: never a silent second."""

    def script(send: Send, stop: threading.Event) -> None:
        send(prefix)
        for byte in drip[:300]:
            if stop.wait(0.1):
                return
            send(bytes([byte]))

    return script


TRICKLED_HEADERS = trickle(b"HTTP/1.1 200 OK\r\nX-Slow: ", b"a" * 300)
TRICKLED_BODY = trickle(
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 300\r\n\r\n", b" " * 300
)


def hang_up(send: Send, stop: threading.Event) -> None:
    """Read the request, then close the connection without answering."""
    raise HangUp


class ScriptedServer:
    """A loopback HTTP/1.1 server answering every request with `script`; it records each one."""

    def __init__(self, script: Script, tls: ssl.SSLContext | None = None) -> None:
        self.script = script
        self.requests: list[bytes] = []
        """Each request's head (request line and headers) as it arrived."""
        self.connections = 0
        self._tls = tls
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        try:
            if self._tls is not None:
                connection = self._tls.wrap_socket(connection, server_side=True)
            with connection, connection.makefile("rb") as reader:
                while self._answer_one(reader, connection.sendall):
                    pass
        except (OSError, ssl.SSLError, HangUp):
            pass  # the client gave up, or the script hung up: exactly what these tests provoke

    def _answer_one(self, reader: Any, send: Send) -> bool:
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            line = reader.readline()
            if not line:
                return False
            head += line
        self.requests.append(head)
        length = next(
            (
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        reader.read(length)
        self.script(send, self._stop)
        return True

    def header(self, index: int, name: str) -> str | None:
        """Header `name` of request number `index`, None when it was not sent."""
        for line in self.requests[index].decode("latin-1").split("\r\n")[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None

    def close(self) -> None:
        self._stop.set()
        self._listener.close()


@pytest.fixture
def serve() -> Iterator[Callable[..., ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(script: Script, tls: ssl.SSLContext | None = None) -> ScriptedServer:
        servers.append(ScriptedServer(script, tls))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No proxy, netrc or CA-bundle variables from the machine running the tests; HOME is empty."""
    for name in ("NETRC", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    """256 MiB of spaces in about 260 KB of gzip (256 members of 1 MiB each)."""
    return gzip.compress(b" " * (1024 * 1024), compresslevel=9) * 256


@pytest.fixture(scope="module")
def tls_certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "paymux test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls_server(tls_certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*tls_certificate)
    return context


@pytest.fixture
def tls_bundle(tls_certificate: tuple[Path, Path]) -> Path:
    return tls_certificate[0]
