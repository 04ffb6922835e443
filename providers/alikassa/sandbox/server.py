"""The AliKassa sandbox over real HTTP on loopback.

    with Sandbox() as sandbox:
        merchant = sandbox.create_merchant(tmp_path)
        provider = paymux.connect(merchant.settings)

Merchant API: `POST /v1/payment`, `POST /v1/payment/status`, as AliKassa documents them.

Customer: `GET /pay/<uuid>` (the `url` create answers) is the payment page, an HTML form with
Pay, Pay partially, Cancel and Fail; `POST /pay/<uuid>` with `action=pay|partial|cancel|fail`
(and `amount` for partial) settles the payment, notifies the shop in the background and sends
the browser back to the success or fail URL with the signed form (`order_id`, `uuid`, `sign`).

Control API (the sandbox's own, for tests and demos):
`GET /sandbox/payments` lists payments (each with the create body it came from);
`GET /sandbox/notifications` lists every notification attempt;
`POST /sandbox/payments/<id>/settle` with
`{"status": "paid" | "cancel" | "fail", "paid_amount": "..."}` settles one and delivers its
signed notification (the first attempt before answering, repeats in the background); a paid
amount must be above 0 and at most the payment's amount, else the answer is 400 and nothing
changes.

Request bodies come with a `Content-Length` or chunked, and may have at most `MAX_BODY` bytes
(413 beyond, 400 for a Content-Length that is not a number or broken chunking); at most
`max_connections` connections are served at once (503 beyond), and one silent for
`idle_timeout` seconds is closed.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from paymux.errors import CertificateError
from paymux.providers.alikassa.keys import (
    PASSWORD_FILE,
    PRIVATE_KEY_FILE,
    PUBLIC_KEY_FILE,
    CertificateFolder,
    generate_certificate,
    load_private_key,
    load_public_key,
    read_password,
)
from paymux.providers.alikassa.sandbox import page
from paymux.providers.alikassa.sandbox.faults import Fault, FaultPlan
from paymux.providers.alikassa.sandbox.gateway import (
    DEFAULT_RETRY_DELAYS,
    DEFAULT_SERVICES,
    Answer,
    Delivery,
    Gateway,
    PaymentClosed,
    RecordedRequest,
    Service,
    StoredPayment,
)
from paymux.providers.alikassa.sandbox.loopback import (
    IDLE_TIMEOUT,
    MAX_CONNECTIONS,
    LoopbackHandler,
    LoopbackServer,
    context_of,
)
from paymux.providers.alikassa.sandbox.state import SavedState, StateFolder, StoredAccount

_SETTLE = re.compile(r"/sandbox/payments/(\d+)/settle")
_PAGE = re.compile(r"/pay/([^/]+)")
_STATUS_OF_ACTION = {"pay": "paid", "partial": "paid", "cancel": "cancel", "fail": "fail"}
CERTIFICATE_FILES = (PRIVATE_KEY_FILE, PASSWORD_FILE, PUBLIC_KEY_FILE)


@dataclass(frozen=True)
class Merchant:
    """A merchant account registered with the sandbox, and the settings to connect to it."""

    account: str
    payment_certificate: CertificateFolder
    settings: dict[str, Any]


class Sandbox:
    """A running AliKassa emulator on a free loopback port (a context manager).

    `clock` (default `time.time`) is the gateway's time, which decides when a payment's
    lifetime runs out: pass a function you can move forward to test expiry without sleeping.
    `notification_retry_delays` are the pauses before each repeat of a notification the shop
    did not answer with HTTP 200 (default 0.1, 0.2 and 0.4 s: four attempts in all).
    `fault_rates` makes that share of creates misbehave (see `faults`; a notification fault's
    rate is per notified payment), `status_fault_rates` that share of status calls;
    `fault_seed` makes the draws repeatable. `max_connections` is how many connections are
    served at once (one more is answered 503), `idle_timeout` how many seconds a silent
    connection stays open.
    `omit_empty_notification_fields` leaves an empty `payment_amount`, `commission_amount` or
    `desc` out of notifications, signed as null, as the gateway may send them.

    `state_dir` keeps the sandbox across restarts (see `state`): the accounts registered, the
    notification certificate (made there once, unless `notification_certificate` is given)
    and the payments, saved after each change. A sandbox started again with the same folder
    knows the same accounts and signs with the same key, so a shop's configuration stays
    valid; without it every sandbox starts empty, with a new temporary notification key.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        digest: str = "sha1",
        services: tuple[Service, ...] = DEFAULT_SERVICES,
        notification_certificate: str | Path | None = None,
        key_size: int = 2048,
        clock: Callable[[], float] = time.time,
        notification_retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        fault_rates: Mapping[Fault, float] | None = None,
        status_fault_rates: Mapping[Fault, float] | None = None,
        fault_seed: int | None = None,
        max_connections: int = MAX_CONNECTIONS,
        idle_timeout: float = IDLE_TIMEOUT,
        omit_empty_notification_fields: bool = False,
        state_dir: str | Path | None = None,
    ) -> None:
        self.state = StateFolder(state_dir) if state_dir is not None else None
        saved = self.state.load() if self.state is not None else None
        self._tempdir = tempfile.TemporaryDirectory(prefix="paymux-sandbox-")
        self.key_size = key_size
        self._accounts: dict[str, StoredAccount] = {}
        self.notification_certificate = self._notification_certificate(notification_certificate)
        notification_key = load_private_key(
            self.notification_certificate.private_key.read_bytes(),
            read_password(self.notification_certificate.password_file),
        )
        self._server = LoopbackServer(
            _Handler,
            host,
            port,
            context=self,
            max_connections=max_connections,
            idle_timeout=idle_timeout,
        )
        self.gateway = Gateway(
            notification_key=notification_key,
            digest=digest,
            services=services,
            page_url=self.url,
            clock=clock,
            retry_delays=notification_retry_delays,
            faults=FaultPlan(fault_rates, status_rates=status_fault_rates, seed=fault_seed),
            omit_empty_notification_fields=omit_empty_notification_fields,
            on_change=None if self.state is None else self._save,
        )
        if saved is not None:
            self._restore(saved)

    def _notification_certificate(self, given: str | Path | None) -> CertificateFolder:
        """The given certificate; else the state folder's, made there once; else a new one."""
        if given is not None:
            return CertificateFolder(Path(given))
        if self.state is None:
            folder = Path(self._tempdir.name) / "notification"
            return generate_certificate(folder, key_size=self.key_size)
        kept = CertificateFolder(self.state.notification_folder)
        if kept.private_key.exists():
            return kept
        return generate_certificate(kept.path, key_size=self.key_size)

    def _restore(self, saved: SavedState) -> None:
        self._accounts.update({stored.account: stored for stored in saved.accounts})
        self.gateway.restore(saved.payments)
        for stored in saved.accounts:
            key = load_public_key(stored.public_key_pem.encode("ascii"))
            self.gateway.register_account(key, account=stored.account, allowed=stored.allowed)

    def _save(self) -> None:
        """Write the state folder; the gateway calls this, under its lock, after each change."""
        if self.state is not None:
            self.state.save(list(self._accounts.values()), self.gateway.snapshot())

    @property
    def url(self) -> str:
        return self._server.origin

    def start(self) -> Sandbox:
        self._server.start("paymux-sandbox")
        return self

    def stop(self) -> None:
        self._server.stop()
        self.gateway.close()
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
        key = load_public_key(public_key_pem)
        account_id = account or str(uuid.uuid4())
        self._accounts[account_id] = StoredAccount(account_id, _pem(key), allowed)
        return self.gateway.register_account(key, account=account_id, allowed=allowed)

    def account_of(self, public_key_pem: bytes) -> str | None:
        """The account registered for this public key: in this run or, kept in the state
        folder, by a sandbox that ran before. None if there is none."""
        wanted = _pem(load_public_key(public_key_pem))
        found = (each for each in self._accounts.values() if each.public_key_pem == wanted)
        return next((each.account for each in found), None)

    def merchant(self, folder: str | Path) -> Merchant:
        """The merchant whose payment certificate is in `folder`; a new one if it has none.

        An empty (or missing) folder gets a new certificate and account, as `create_merchant`.
        An existing certificate is checked (its password opens its private key, and
        `public.pem` is that key's), left untouched, and keeps the account it was registered
        with, in this run or an earlier one with the same state folder; a certificate the
        sandbox never saw gets a new account.
        """
        certificate = CertificateFolder(Path(folder))
        existing = [name for name in CERTIFICATE_FILES if (certificate.path / name).exists()]
        if not existing:
            return self.create_merchant(certificate.path)
        if len(existing) < len(CERTIFICATE_FILES):
            missing = [name for name in CERTIFICATE_FILES if name not in existing]
            raise CertificateError(
                f"{certificate.path} has {', '.join(existing)} but no {', '.join(missing)}"
            )
        private_key = load_private_key(
            certificate.private_key.read_bytes(), read_password(certificate.password_file)
        )
        public_pem = certificate.public_key.read_bytes()
        if _pem(private_key.public_key()) != _pem(load_public_key(public_pem)):
            raise CertificateError(f"{certificate.public_key} is not the public key of private.pem")
        account = self.account_of(public_pem) or self.register_account(public_pem)
        return self._merchant(account, certificate)

    def create_merchant(
        self,
        folder: str | Path,
        *,
        pkcs8: bool = False,
        private_key: rsa.RSAPrivateKey | None = None,
        allowed: bool = True,
    ) -> Merchant:
        """Make a payment certificate in `folder`, register it, and return connect settings.

        The folder is shaped like AliKassa's archive (see `generate_certificate`), so the
        gateway's own sample clients read it; `pkcs8` writes the private key as PKCS#8.
        """
        certificate = generate_certificate(
            Path(folder), key_size=self.key_size, pkcs8=pkcs8, private_key=private_key
        )
        account = self.register_account(certificate.public_key.read_bytes(), allowed=allowed)
        return self._merchant(account, certificate)

    def _merchant(self, account: str, certificate: CertificateFolder) -> Merchant:
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
        """Every notification attempt, in order (repeats of an unanswered one included)."""
        return list(self.gateway.deliveries)

    def wait_for_deliveries(self, count: int, timeout: float = 5.0) -> list[Delivery]:
        """Block until `count` notification attempts are recorded; returns all of them.

        Fewer come back when `timeout` passes first. Notifications from the payment page, from
        expiry and repeats are sent in the background: wait for them with this.
        """
        return self.gateway.wait_for_deliveries(count, timeout)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until no notification is in flight or waiting to be repeated; False on timeout."""
        return self.gateway.wait_idle(timeout)

    def payments(self) -> list[StoredPayment]:
        return self.gateway.payments()

    def payment(self, reference: int | str) -> StoredPayment:
        return self.gateway.payment(reference)

    def settle(
        self,
        reference: int | str,
        status: str,
        *,
        paid_amount: Decimal | str | None = None,
        details: dict[str, Any] | None = None,
    ) -> Delivery | None:
        """Settle as the payment page does; returns the first notification attempt.

        That attempt is made before returning; if the shop does not answer 200 the repeats
        follow in the background (see `wait_for_deliveries`).
        """
        return self.gateway.settle(reference, status, paid_amount=paid_amount, details=details)

    def redirect_form(self, reference: int | str) -> dict[str, str]:
        return self.gateway.redirect_form(reference)

    def inject(self, fault: Fault, *, on: str | None = None, times: int = 1) -> None:
        """Show `fault` on the next `times` requests of `on` (create, status, notification)."""
        self.gateway.inject(fault, on=on, times=times)

    @property
    def faults(self) -> FaultPlan:
        """The sandbox's fault plan: `inject`, `set_rate`, `clear`."""
        return self.gateway.faults

    @property
    def maintenance(self) -> bool:
        return self.gateway.maintenance

    @maintenance.setter
    def maintenance(self, value: bool) -> None:
        self.gateway.maintenance = value

    def notification_public_key_pem(self) -> bytes:
        return self.notification_certificate.public_key.read_bytes()


class _Handler(LoopbackHandler):
    server_version = "paymux-sandbox"

    @property
    def sandbox(self) -> Sandbox:
        sandbox: Sandbox = context_of(self)
        return sandbox

    def do_GET(self) -> None:
        gateway = self.sandbox.gateway
        path = urlsplit(self.path).path
        shown = _PAGE.fullmatch(path)
        if path == "/sandbox/payments":
            listed = [{**p.status_body(), "request": p.request} for p in gateway.payments()]
            self._send(Answer(200, {"payments": listed}))
        elif path == "/sandbox/notifications":
            deliveries = [delivery.as_json() for delivery in gateway.deliveries]
            self._send(Answer(200, {"notifications": deliveries}))
        elif shown:
            self._show_page(shown[1])
        else:
            self._send(Answer(404, {"message": "Not found"}))

    def do_POST(self) -> None:
        body = self.read_body()
        if body is None:
            return
        path = urlsplit(self.path).path
        settle = _SETTLE.fullmatch(path)
        chosen = _PAGE.fullmatch(path)
        if settle:
            self._settle(int(settle[1]), body)
            return
        if chosen:
            self._choose(chosen[1], body)
            return
        headers = {key.lower(): value for key, value in self.headers.items()}
        answer = self.sandbox.gateway.handle("POST", self.path, headers, body)
        if answer.stall:
            time.sleep(answer.stall)
        self._send(answer)

    def _settle(self, payment_id: int, body: bytes) -> None:
        try:
            command = json.loads(body or b"{}", parse_float=Decimal)
            if not isinstance(command, dict):
                raise ValueError("the body must be a JSON object")
            delivery = self.sandbox.settle(
                payment_id,
                str(command.get("status")),
                paid_amount=command.get("paid_amount"),
                details=command.get("details"),
            )
        except KeyError:
            self._send(Answer(404, {"message": f"no sandbox payment {payment_id}"}))
            return
        except (ValueError, RecursionError) as error:
            self._send(Answer(400, {"message": str(error)}))
            return
        except RuntimeError as error:
            self._send(Answer(503, {"message": str(error)}))
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

    # -- the customer's payment page --------------------------------------------------------

    def _show_page(self, payment_uuid: str) -> None:
        gateway = self.sandbox.gateway
        try:
            payment = gateway.payment_by_uuid(payment_uuid)
        except KeyError:
            self._html(404, page.not_found_page())
            return
        text = page.payment_page(payment, gateway.now(), return_form=self._return_form(payment))
        self._html(200, text)

    def _choose(self, payment_uuid: str, body: bytes) -> None:
        """The customer clicked one of the page's buttons."""
        gateway = self.sandbox.gateway
        try:
            payment = gateway.payment_by_uuid(payment_uuid)
        except KeyError:
            self._html(404, page.not_found_page())
            return
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        action = form.get("action", "")
        typed = form.get("amount", "")
        if payment.status != "wait":
            self._closed(payment)
            return
        if action not in _STATUS_OF_ACTION:
            error = "Choose one of the buttons below."
            self._html(400, page.payment_page(payment, gateway.now(), error=error))
            return
        paid_amount = None
        if action == "partial":
            try:
                paid_amount = page.partial_amount(typed, payment)
            except ValueError as problem:
                text = page.payment_page(
                    payment, gateway.now(), error=str(problem), typed_amount=typed
                )
                self._html(400, text)
                return
        try:
            gateway.settle(
                payment.uuid, _STATUS_OF_ACTION[action], paid_amount=paid_amount, wait=False
            )
        except PaymentClosed:
            self._closed(payment)
            return
        except RuntimeError:
            error = "The payment could not be completed now. Try again."
            self._html(503, page.payment_page(payment, gateway.now(), error=error))
            return
        url = payment.return_url
        if url is None:
            self._html(200, page.outcome_page(payment))
        else:
            self._html(200, page.return_page(payment, url, gateway.redirect_form(payment.uuid)))

    def _closed(self, payment: StoredPayment) -> None:
        """Answer a click on a payment that no longer waits (settled, or its time ran out)."""
        if payment.expired:
            error = "This payment expired and can no longer be paid."
        else:
            error = f"This payment can no longer be changed: it is {payment.status}."
        text = page.outcome_page(payment, error=error, return_form=self._return_form(payment))
        self._html(409, text)

    def _return_form(self, payment: StoredPayment) -> dict[str, str] | None:
        if payment.status == "wait" or payment.return_url is None:
            return None
        return self.sandbox.gateway.redirect_form(payment.uuid)

    # -- answers ------------------------------------------------------------------------------

    def _send(self, answer: Answer) -> None:
        if answer.drop:
            self.close_connection = True
            return
        self.write(answer.status, answer.content_type, answer.payload())

    def _html(self, status: int, text: str) -> None:
        self.write(
            status,
            "text/html; charset=utf-8",
            text.encode(),
            {"Cache-Control": "no-store", "Content-Security-Policy": page.SECURITY_POLICY},
        )


def _pem(key: rsa.RSAPublicKey) -> str:
    """A public key in one canonical text form, to keep and to compare."""
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem.decode("ascii")
