"""pytest fixtures for testing a shop's AliKassa integration against the local sandbox.

Installed with paymux and loaded by pytest automatically (entry point `paymux_alikassa` in the
`pytest11` group); with plugin autoloading off, enable it with `-p paymux_alikassa`.
Everything runs on loopback: no network, no AliKassa account.

    def test_checkout(alikassa_provider, alikassa_notifications, alikassa_settle):
        payment = alikassa_provider.create(
            PaymentRequest(..., notification_url=alikassa_notifications.url)
        )
        notification = alikassa_settle(payment, "paid")
        assert alikassa_provider.parse_notification(notification).payment.status is PAID

Fixtures (function scope unless said):

- `alikassa_sandbox`: a running `Sandbox`, AliKassa's merchant API emulated on loopback;
- `alikassa_merchant`: a `Merchant` registered with it (`.account`, `.settings`, certificate);
- `alikassa_provider`: that merchant's provider, from `paymux.connect`; closed after the test;
- `alikassa_notifications`: the shop's notification endpoint (`.url`, `.received`);
- `alikassa_settle`: `settle(payment, status)` ends a payment and returns its notification;
- `alikassa_notification_certificate`, `alikassa_payment_key` (session): the RSA keys, made
  once per test session for speed.

Override any of them with a fixture of the same name in your conftest.py. docs/pytest-plugin.md
has the details and an example.

This module is imported in every pytest session of every project that installs paymux, so it
imports nothing heavy itself: the sandbox and the provider load inside the fixtures.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import pytest

if TYPE_CHECKING:
    from decimal import Decimal

    from cryptography.hazmat.primitives.asymmetric import rsa

    from paymux import Payment
    from paymux.providers.alikassa.keys import CertificateFolder
    from paymux.providers.alikassa.provider import AliKassaProvider
    from paymux.providers.alikassa.sandbox import Merchant, NotificationReceiver, Sandbox

__all__ = [
    "Settle",
    "alikassa_merchant",
    "alikassa_notification_certificate",
    "alikassa_notifications",
    "alikassa_payment_key",
    "alikassa_provider",
    "alikassa_sandbox",
    "alikassa_settle",
]

# paymux's words and AliKassa's for the three ways a payment ends.
_SETTLED = {
    "paid": "paid",
    "cancel": "cancel",
    "canceled": "cancel",
    "fail": "fail",
    "failed": "fail",
}


class Settle:
    """Ends a sandbox payment the way a customer would, and returns the notification it sent.

    `settle(payment, "paid")` marks the payment paid in the sandbox (which signs a notification
    and sends it to the payment's `notification_url`), waits until `alikassa_notifications`
    has received it, and returns it as the shop's endpoint saw it: the request target,
    `/notify?type=payment&id=...&sign=...`, ready for `provider.parse_notification`.

    `payment` is a `paymux.Payment`, a payment id or an order_id. `status` is "paid", "cancel"
    or "fail" (AliKassa's words) or a `paymux.PaymentStatus` (PAID, CANCELED, FAILED).
    `paid_amount` below the amount makes a partial payment; one above it, or not above 0,
    raises ValueError and leaves the payment as it was.
    """

    def __init__(self, sandbox: Sandbox, notifications: NotificationReceiver) -> None:
        self.sandbox = sandbox
        self.notifications = notifications

    def __call__(
        self,
        payment: Payment | int | str,
        status: str = "paid",
        *,
        paid_amount: Decimal | str | None = None,
        timeout: float = 5.0,
    ) -> str:
        word = _SETTLED.get(str(status))
        if word is None:
            raise ValueError(f"status must be paid, cancel or fail, not {status!r}")
        reference = payment if isinstance(payment, (int, str)) else payment.id
        stored = self.sandbox.payment(reference)
        already = len(self.notifications.received)
        delivery = self.sandbox.settle(stored.id, word, paid_amount=paid_amount)
        target = self._wait(str(stored.id), already, timeout)
        if target is not None:
            return target
        where = stored.request.get("notification_endpoint_url")
        if not where:
            reason = "the payment was created without a notification_url"
        elif not str(where).startswith(self.notifications.url):
            reason = f"its notification_url is {where}"
        elif delivery is not None and delivery.error:
            reason = f"delivering it failed: {delivery.error}"
        else:
            reason = "nothing arrived in time"
        pytest.fail(
            f"no notification for payment {stored.id} reached alikassa_notifications within "
            f"{timeout}s: {reason}. Create the payment with "
            f"notification_url=alikassa_notifications.url ({self.notifications.url}).",
            pytrace=False,
        )

    def _wait(self, payment_id: str, already: int, timeout: float) -> str | None:
        deadline = time.monotonic() + timeout
        seen = already
        while True:
            arrived = self.notifications.wait_for(seen + 1, max(0.0, deadline - time.monotonic()))
            for target in arrived[seen:]:
                if parse_qs(urlsplit(target).query).get("id") == [payment_id]:
                    return target
            seen = len(arrived)
            if time.monotonic() >= deadline:
                return None


@pytest.fixture(scope="session")
def alikassa_notification_certificate(
    tmp_path_factory: pytest.TempPathFactory,
) -> CertificateFolder:
    """The gateway's "API certificate for notifications", made once per test session.

    The sandbox signs notifications with its `private.pem`; a shop verifies them with its
    `public.pem` (the `notification_public_key` setting).
    """
    from paymux.providers.alikassa.keys import generate_certificate

    return generate_certificate(tmp_path_factory.mktemp("alikassa-notification"))


@pytest.fixture(scope="session")
def alikassa_payment_key() -> rsa.RSAPrivateKey:
    """The RSA key in every `alikassa_merchant` payment certificate, made once per session."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def alikassa_sandbox(alikassa_notification_certificate: CertificateFolder) -> Iterator[Sandbox]:
    """A fresh AliKassa sandbox on a free loopback port, stopped after the test.

    `.url` is its base URL. Inspect it with `.payments()`, `.payment(id_or_order_id)`,
    `.requests`, `.deliveries`; drive it with `.settle()`, `.inject(Fault...)`,
    `.maintenance = True`, `.create_merchant(folder)`.
    """
    from paymux.providers.alikassa.sandbox import Sandbox

    with Sandbox(notification_certificate=alikassa_notification_certificate.path) as sandbox:
        yield sandbox


@pytest.fixture
def alikassa_merchant(
    alikassa_sandbox: Sandbox, alikassa_payment_key: rsa.RSAPrivateKey, tmp_path: Path
) -> Merchant:
    """A merchant account registered with `alikassa_sandbox`.

    `.account` is its UUID, `.payment_certificate` its certificate folder (under `tmp_path`),
    and `.settings` the configuration to hand to `paymux.connect` or to your own settings.
    """
    return alikassa_sandbox.create_merchant(
        tmp_path / "alikassa-payment", private_key=alikassa_payment_key
    )


@pytest.fixture
def alikassa_provider(alikassa_merchant: Merchant) -> Iterator[AliKassaProvider]:
    """The merchant's AliKassa provider, connected to the sandbox; closed after the test."""
    import paymux
    from paymux.providers.alikassa.provider import AliKassaProvider

    provider = paymux.connect(alikassa_merchant.settings)
    assert isinstance(provider, AliKassaProvider)
    with provider:
        yield provider


@pytest.fixture
def alikassa_notifications() -> Iterator[NotificationReceiver]:
    """The shop's notification endpoint: a real HTTP server on loopback, stopped after the test.

    Create payments with `notification_url=alikassa_notifications.url`. `.received` lists
    each request it got (path and query); `.wait_for(n)` waits until n have arrived.
    """
    from paymux.providers.alikassa.sandbox import NotificationReceiver

    with NotificationReceiver() as receiver:
        yield receiver


@pytest.fixture
def alikassa_settle(
    alikassa_sandbox: Sandbox, alikassa_notifications: NotificationReceiver
) -> Settle:
    """`settle(payment, status="paid")`: end a payment and get its notification; see `Settle`."""
    return Settle(alikassa_sandbox, alikassa_notifications)
