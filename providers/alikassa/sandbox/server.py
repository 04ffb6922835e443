"""The AliKassa sandbox over real HTTP on loopback.

    with Sandbox() as sandbox:
        merchant = sandbox.create_merchant(tmp_path / "payment", payout_folder=tmp_path / "payout")
        provider = paymux.connect(merchant.settings)

What it answers, and where, is in `handler`: the merchant API (payments, payouts, balance),
the customer's payment page, and the sandbox's own control API.

Request bodies come with a `Content-Length` or chunked, and may have at most `MAX_BODY` bytes
(413 beyond, 400 for a Content-Length that is not a number or broken chunking); at most
`max_connections` connections are served at once (503 beyond), and one silent for
`idle_timeout` seconds is closed.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
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
from paymux.providers.alikassa.sandbox.answers import RecordedRequest
from paymux.providers.alikassa.sandbox.balances import Balance
from paymux.providers.alikassa.sandbox.delivery import DEFAULT_RETRY_DELAYS, Delivery
from paymux.providers.alikassa.sandbox.faults import Fault, fault_plan
from paymux.providers.alikassa.sandbox.gateway import Gateway
from paymux.providers.alikassa.sandbox.handler import Handler
from paymux.providers.alikassa.sandbox.merchants import Merchant, canonical_pem, checked_public_key
from paymux.providers.alikassa.sandbox.payments import DEFAULT_SERVICES, Service, StoredPayment
from paymux.providers.alikassa.sandbox.payouts import (
    DEFAULT_PAYOUT_SERVICES,
    PayoutService,
    StoredPayout,
)
from paymux.providers.alikassa.sandbox.state import SavedState, StateFolder, StoredAccount
from paymux.providers.base.faults import FaultPlan
from paymux.providers.base.loopback import IDLE_TIMEOUT, MAX_CONNECTIONS, LoopbackServer

__all__ = ["Merchant", "Sandbox"]


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
    `latency` is how many seconds each API answer waits before it is sent (the gateway's and
    the network's time, for benchmarks; `sandbox.latency` may be changed while it runs).
    `omit_empty_notification_fields` leaves an empty `payment_amount`, `commission_amount` or
    `desc` out of notifications, signed as null, as the gateway may send them.
    `payout_services` are the payout methods it knows; `payout_notification_url` is where a
    payout without a `notification_endpoint_url` of its own is notified (the real gateway's
    is set in the merchant cabinet; None: nowhere).

    `state_dir` keeps the sandbox across restarts (see `state`): the accounts registered, the
    notification certificate (made there once, unless `notification_certificate` is given),
    the payments, payouts and balances, saved after each change. A sandbox started again with
    the same folder knows the same accounts and signs with the same key, so a shop's
    configuration stays valid; without it every sandbox starts empty, with a new temporary
    notification key.
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
        latency: float = 0.0,
        omit_empty_notification_fields: bool = False,
        payout_services: Sequence[PayoutService] = DEFAULT_PAYOUT_SERVICES,
        payout_notification_url: str | None = None,
        state_dir: str | Path | None = None,
    ) -> None:
        self.state = StateFolder(state_dir) if state_dir is not None else None
        saved = self.state.load() if self.state is not None else None
        self._tempdir = tempfile.TemporaryDirectory(prefix="paymux-sandbox-")
        self.key_size = key_size
        self.latency = latency
        self._accounts: dict[str, StoredAccount] = {}
        self.notification_certificate = self._notification_certificate(notification_certificate)
        notification_key = load_private_key(
            self.notification_certificate.private_key.read_bytes(),
            read_password(self.notification_certificate.password_file),
        )
        self._server = LoopbackServer(
            Handler,
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
            faults=fault_plan(fault_rates, status_rates=status_fault_rates, seed=fault_seed),
            omit_empty_notification_fields=omit_empty_notification_fields,
            payout_services=payout_services,
            payout_notification_url=payout_notification_url,
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
        self.gateway.restore(saved.payments, saved.payouts, saved.balances)
        for stored in saved.accounts:
            key = load_public_key(stored.public_key_pem.encode("ascii"))
            payout_pem = stored.payout_public_key_pem
            payout_key = load_public_key(payout_pem.encode("ascii")) if payout_pem else None
            self.gateway.register_account(
                key, account=stored.account, allowed=stored.allowed, payout_public_key=payout_key
            )

    def _save(self) -> None:
        """Write the state folder; the gateway calls this, under its lock, after each change."""
        if self.state is not None:
            self.state.save(
                list(self._accounts.values()),
                self.gateway.snapshot(),
                self.gateway.payout_desk.snapshot(),
                self.gateway.ledger.snapshot(),
            )

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
        self,
        public_key_pem: bytes,
        *,
        account: str | None = None,
        allowed: bool = True,
        payout_public_key_pem: bytes | None = None,
    ) -> str:
        """Register a merchant by the `public.pem` of its payment certificate (and of its payout
        certificate, if given)."""
        key = load_public_key(public_key_pem)
        payout_key = load_public_key(payout_public_key_pem) if payout_public_key_pem else None
        account_id = account or str(uuid.uuid4())
        payout_pem = canonical_pem(payout_key) if payout_key is not None else None
        self._accounts[account_id] = StoredAccount(
            account_id, canonical_pem(key), allowed, payout_pem
        )
        return self.gateway.register_account(
            key, account=account_id, allowed=allowed, payout_public_key=payout_key
        )

    def register_payout_key(self, account: str, public_key_pem: bytes) -> None:
        """Give a registered account the `public.pem` of its payout certificate (replacing the
        one it had): payout calls must be signed with its private key. KeyError: no account."""
        key = load_public_key(public_key_pem)
        stored = dataclasses.replace(
            self._accounts[account], payout_public_key_pem=canonical_pem(key)
        )
        self._accounts[account] = stored
        self.gateway.register_payout_key(account, key)

    def account_of(self, public_key_pem: bytes) -> str | None:
        """The account registered for this payment public key: in this run or, kept in the
        state folder, by a sandbox that ran before. None if there is none."""
        wanted = canonical_pem(load_public_key(public_key_pem))
        found = (each for each in self._accounts.values() if each.public_key_pem == wanted)
        return next((each.account for each in found), None)

    def merchant(self, folder: str | Path, *, payout_folder: str | Path | None = None) -> Merchant:
        """The merchant whose payment certificate is in `folder`; a new one if it has none.

        An empty (or missing) folder gets a new certificate and account, as `create_merchant`.
        An existing certificate is checked (its password opens its private key, and
        `public.pem` is that key's), left untouched, and keeps the account it was registered
        with, in this run or an earlier one with the same state folder; a certificate the
        sandbox never saw gets a new account. `payout_folder` is treated the same way for the
        account's payout certificate: made there if empty, else checked and registered.
        """
        certificate = CertificateFolder(Path(folder))
        public_pem = checked_public_key(certificate)
        if public_pem is None:
            return self.create_merchant(certificate.path, payout_folder=payout_folder)
        account = self.account_of(public_pem) or self.register_account(public_pem)
        payout = None if payout_folder is None else self._payout_certificate(account, payout_folder)
        return self._merchant(account, certificate, payout)

    def _payout_certificate(self, account: str, folder: str | Path) -> CertificateFolder:
        """The payout certificate in `folder` (made there if it is empty), registered."""
        certificate = CertificateFolder(Path(folder))
        public_pem = checked_public_key(certificate)
        if public_pem is None:
            certificate = generate_certificate(certificate.path, key_size=self.key_size)
            public_pem = certificate.public_key.read_bytes()
        wanted = canonical_pem(load_public_key(public_pem))
        if self._accounts[account].payout_public_key_pem != wanted:
            self.register_payout_key(account, public_pem)
        return certificate

    def create_merchant(
        self,
        folder: str | Path,
        *,
        pkcs8: bool = False,
        private_key: rsa.RSAPrivateKey | None = None,
        allowed: bool = True,
        payout_folder: str | Path | None = None,
        payout_private_key: rsa.RSAPrivateKey | None = None,
    ) -> Merchant:
        """Make a payment certificate in `folder`, register it, and return connect settings.

        The folder is shaped like AliKassa's archive (see `generate_certificate`), so the
        gateway's own sample clients read it; `pkcs8` writes the private key as PKCS#8.
        With `payout_folder` (another folder) the account also gets an "API certificate for
        payouts" there, of the same shape, from `payout_private_key` if given.
        """
        if payout_folder is not None and Path(payout_folder).resolve() == Path(folder).resolve():
            raise ValueError("the payout certificate needs a folder of its own")
        certificate = generate_certificate(
            Path(folder), key_size=self.key_size, pkcs8=pkcs8, private_key=private_key
        )
        payout = None
        if payout_folder is not None:
            payout = generate_certificate(
                Path(payout_folder),
                key_size=self.key_size,
                pkcs8=pkcs8,
                private_key=payout_private_key,
            )
        account = self.register_account(
            certificate.public_key.read_bytes(),
            allowed=allowed,
            payout_public_key_pem=payout.public_key.read_bytes() if payout else None,
        )
        return self._merchant(account, certificate, payout)

    def _merchant(
        self, account: str, certificate: CertificateFolder, payout: CertificateFolder | None = None
    ) -> Merchant:
        settings: dict[str, Any] = {
            "provider": "alikassa",
            "account": account,
            "certificate_dir": str(certificate.path),
            "notification_public_key": str(self.notification_certificate.public_key),
            "base_url": self.url,
            "digest": self.gateway.digest,
        }
        if payout is not None:
            settings["payout_certificate_dir"] = str(payout.path)
        return Merchant(account, certificate, settings, payout)

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
        notify: bool = True,
    ) -> Delivery | None:
        """Settle as the payment page does; returns the first notification attempt.

        That attempt is made before returning; if the shop does not answer 200 the repeats
        follow in the background (see `wait_for_deliveries`). `notify` False loses the
        notification, as when the gateway's delivery is down: `notify(payment)` sends it late.
        """
        return self.gateway.settle(
            reference, status, paid_amount=paid_amount, details=details, notify=notify
        )

    def redirect_form(self, reference: int | str) -> dict[str, str]:
        return self.gateway.redirect_form(reference)

    # -- payouts and balances -------------------------------------------------------------

    def payouts(self) -> list[StoredPayout]:
        return self.gateway.payout_desk.payouts()

    def payout(self, reference: int | str) -> StoredPayout:
        """A payout by id or order_id; KeyError if there is none."""
        return self.gateway.payout_desk.payout(reference)

    def settle_payout(self, reference: int | str, status: str) -> Delivery | None:
        """Move a payout to "paid", "fail" or "cancel", settle its hold, and notify it
        (`type=payout`); returns the first notification attempt, None without a URL.

        Raises `PayoutClosed` when it was settled before and ValueError for another status.
        """
        return self.gateway.payout_desk.settle(reference, status)

    @property
    def payout_notification_url(self) -> str | None:
        """Where payouts without a `notification_endpoint_url` are notified."""
        return self.gateway.payout_desk.notification_url

    @payout_notification_url.setter
    def payout_notification_url(self, url: str | None) -> None:
        self.gateway.payout_desk.notification_url = url

    def balance(self, account: str) -> Balance:
        """The account's balance as `v1/account/balance` answers it (see `balances`)."""
        return self.gateway.balance(account)

    def set_balance(
        self,
        account: str,
        *,
        balance: Decimal | str | int | None = None,
        hold: Decimal | str | int | None = None,
        rolling_reserve: Decimal | str | int | None = None,
    ) -> Balance:
        """Set the parts of an account's balance that are given (amounts at or above 0);
        returns the balance. KeyError for an account the sandbox does not know."""
        return self.gateway.set_balance(
            account, balance=balance, hold=hold, rolling_reserve=rolling_reserve
        )

    def inject(self, fault: Fault, *, on: str | None = None, times: int = 1) -> None:
        """Show `fault` on the next `times` requests of `on` (see `faults.OPERATIONS`)."""
        self.gateway.inject(fault, on=on, times=times)

    @property
    def faults(self) -> FaultPlan[Fault]:
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
