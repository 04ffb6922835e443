"""The AliKassa sandbox over real HTTP on loopback.

    with Sandbox() as sandbox:
        merchant = sandbox.create_merchant(tmp_path)
        provider = paymux.connect(merchant.settings)

Merchant API: `POST /v1/payment`, `POST /v1/payment/status`, as AliKassa documents them.
Control API (the sandbox's own, for tests and demos):
`GET /sandbox/payments` lists payments; `POST /sandbox/payments/<id>/settle` with
`{"status": "paid" | "cancel" | "fail", "paid_amount": "..."}` settles one and delivers its
signed notification.
"""

from __future__ import annotations

import html
import json
import re
import tempfile
import time
from dataclasses import dataclass
from decimal import Decimal
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import TracebackType
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from paymux.providers.alikassa.keys import (
    CertificateFolder,
    generate_certificate,
    load_private_key,
    load_public_key,
    read_password,
)
from paymux.providers.alikassa.sandbox.gateway import (
    DEFAULT_SERVICES,
    Answer,
    Delivery,
    Fault,
    Gateway,
    RecordedRequest,
    Service,
    StoredPayment,
)
from paymux.providers.alikassa.sandbox.loopback import LoopbackServer, context_of

_SETTLE = re.compile(r"/sandbox/payments/(\d+)/settle")


@dataclass(frozen=True)
class Merchant:
    """A merchant account registered with the sandbox, and the settings to connect to it."""

    account: str
    payment_certificate: CertificateFolder
    settings: dict[str, Any]


class Sandbox:
    """A running AliKassa emulator on a free loopback port (a context manager)."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        digest: str = "sha1",
        services: tuple[Service, ...] = DEFAULT_SERVICES,
        notification_certificate: str | Path | None = None,
        key_size: int = 2048,
    ) -> None:
        self._tempdir = tempfile.TemporaryDirectory(prefix="paymux-sandbox-")
        self.key_size = key_size
        self.notification_certificate = (
            CertificateFolder(Path(notification_certificate))
            if notification_certificate is not None
            else generate_certificate(Path(self._tempdir.name) / "notification", key_size=key_size)
        )
        notification_key = load_private_key(
            self.notification_certificate.private_key.read_bytes(),
            read_password(self.notification_certificate.password_file),
        )
        self._server = LoopbackServer(_Handler, host, port, context=self)
        self.gateway = Gateway(
            notification_key=notification_key,
            digest=digest,
            services=services,
            page_url=self.url,
        )

    @property
    def url(self) -> str:
        return self._server.origin

    def start(self) -> Sandbox:
        self._server.start("paymux-sandbox")
        return self

    def stop(self) -> None:
        self._server.stop()
        self._tempdir.cleanup()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- merchants ------------------------------------------------------------------------

    def register_account(
        self, public_key_pem: bytes, *, account: str | None = None, allowed: bool = True
    ) -> str:
        """Register a merchant by the `public.pem` of its payment certificate."""
        return self.gateway.register_account(
            load_public_key(public_key_pem), account=account, allowed=allowed
        )

    def create_merchant(
        self,
        folder: str | Path,
        *,
        legacy_pem: bool = False,
        private_key: rsa.RSAPrivateKey | None = None,
        allowed: bool = True,
    ) -> Merchant:
        """Make a payment certificate in `folder`, register it, and return connect settings."""
        certificate = generate_certificate(
            Path(folder), key_size=self.key_size, legacy_pem=legacy_pem, private_key=private_key
        )
        account = self.register_account(certificate.public_key.read_bytes(), allowed=allowed)
        settings: dict[str, Any] = {
            "provider": "alikassa",
            "account": account,
            "certificate_dir": str(certificate.path),
            "notification_public_key": str(self.notification_certificate.public_key),
            "base_url": self.url,
            "digest": self.gateway.digest,
        }
        return Merchant(account=account, payment_certificate=certificate, settings=settings)

    # -- inspection and control ---------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every merchant API request received, in order."""
        return list(self.gateway.requests)

    @property
    def deliveries(self) -> list[Delivery]:
        """Every notification sent, in order."""
        return list(self.gateway.deliveries)

    def payments(self) -> list[StoredPayment]:
        return self.gateway.payments()

    def payment(self, reference: int | str) -> StoredPayment:
        return self.gateway.payment(reference)

    def settle(
        self,
        reference: int | str,
        status: str,
        *,
        paid_amount: Decimal | None = None,
        details: dict[str, Any] | None = None,
    ) -> Delivery | None:
        return self.gateway.settle(reference, status, paid_amount=paid_amount, details=details)

    def redirect_form(self, reference: int | str) -> dict[str, str]:
        return self.gateway.redirect_form(reference)

    def inject(self, fault: Fault) -> None:
        self.gateway.inject(fault)

    @property
    def maintenance(self) -> bool:
        return self.gateway.maintenance

    @maintenance.setter
    def maintenance(self, value: bool) -> None:
        self.gateway.maintenance = value

    def notification_public_key_pem(self) -> bytes:
        return self.notification_certificate.public_key.read_bytes()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "paymux-sandbox"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the sandbox records requests instead of printing them."""

    @property
    def sandbox(self) -> Sandbox:
        sandbox: Sandbox = context_of(self)
        return sandbox

    def do_GET(self) -> None:
        gateway = self.sandbox.gateway
        if self.path == "/sandbox/payments":
            self._send(Answer(200, {"payments": [p.status_body() for p in gateway.payments()]}))
        elif self.path.startswith("/pay/"):
            self._page(self.path.removeprefix("/pay/"))
        else:
            self._send(Answer(404, {"message": "Not found"}))

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        settle = _SETTLE.fullmatch(self.path)
        if settle:
            self._settle(int(settle[1]), body)
            return
        headers = {key.lower(): value for key, value in self.headers.items()}
        answer = self.sandbox.gateway.handle("POST", self.path, headers, body)
        if answer.stall:
            time.sleep(answer.stall)
        self._send(answer)

    def _settle(self, payment_id: int, body: bytes) -> None:
        try:
            command = json.loads(body or b"{}")
            paid = command.get("paid_amount")
            delivery = self.sandbox.settle(
                payment_id,
                str(command.get("status")),
                paid_amount=Decimal(str(paid)) if paid is not None else None,
                details=command.get("details"),
            )
        except (ValueError, KeyError, AttributeError) as error:
            self._send(Answer(400, {"message": str(error)}))
            return
        payment = self.sandbox.payment(payment_id)
        self._send(
            Answer(
                200,
                {
                    "payment": payment.status_body(),
                    "notification": None
                    if delivery is None
                    else {
                        "url": delivery.url,
                        "http_status": delivery.http_status,
                        "error": delivery.error,
                    },
                },
            )
        )

    def _page(self, payment_uuid: str) -> None:
        try:
            payment = self.sandbox.payment(payment_uuid)
        except KeyError:
            self._send(Answer(404, {"message": "Payment not found"}))
            return
        text = (
            "<!doctype html><meta charset=utf-8><title>AliKassa sandbox</title>"
            f"<h1>Payment {payment.id}</h1>"
            f"<p>{html.escape(str(payment.request.get('desc', '')))}</p>"
            f"<p>{payment.amount} {payment.service.currency}: {payment.status}</p>"
        ).encode()
        self._write(200, "text/html; charset=utf-8", text)

    def _send(self, answer: Answer) -> None:
        if answer.drop:
            self.close_connection = True
            return
        self._write(answer.status, "application/json", json.dumps(answer.body).encode())

    def _write(self, status: int, content_type: str, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
