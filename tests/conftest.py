"""Shared fixtures: a real sandbox on loopback, real RSA keys, a real notification receiver."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from yookassa_support import Webhooks, settings_of

import paymux
from distributions import HMACPAY, YOOKASSA, ensure_installed
from paymux.providers.alikassa import AliKassaProvider, CertificateFolder, generate_certificate
from paymux.providers.alikassa.sandbox import Merchant, Sandbox
from support import Receiver

if TYPE_CHECKING:
    from paymux_yookassa.emulator import Emulator


def pytest_configure(config: pytest.Config) -> None:
    """YooKassa and the example provider are distributions of their own: installed with pip,
    before any test module imports them."""
    ensure_installed(*YOOKASSA)
    ensure_installed(*HMACPAY)


@pytest.fixture(scope="session")
def payment_key() -> rsa.RSAPrivateKey:
    """The merchant's payment key, generated once per run."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def notification_certificate(tmp_path_factory: pytest.TempPathFactory) -> CertificateFolder:
    """The gateway's notification certificate, generated once per run."""
    return generate_certificate(tmp_path_factory.mktemp("notification"))


@pytest.fixture
def sandbox(notification_certificate: CertificateFolder) -> Iterator[Sandbox]:
    """A fresh AliKassa sandbox on a free loopback port."""
    with Sandbox(notification_certificate=notification_certificate.path) as running:
        yield running


@pytest.fixture
def merchant(sandbox: Sandbox, tmp_path: Path, payment_key: rsa.RSAPrivateKey) -> Merchant:
    """A merchant account registered with the sandbox, its certificate folder on disk."""
    return sandbox.create_merchant(tmp_path / "payment", private_key=payment_key)


@pytest.fixture
def provider(merchant: Merchant) -> Iterator[AliKassaProvider]:
    """A connected AliKassa provider, selected by name from configuration."""
    connected = paymux.connect(merchant.settings)
    assert isinstance(connected, AliKassaProvider)
    with connected:
        yield connected


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.close()


# -- YooKassa: the shop's webhook endpoint, the emulator, a connected provider -----------------


@pytest.fixture
def webhooks() -> Iterator[Webhooks]:
    endpoint = Webhooks()
    yield endpoint
    endpoint.close()


@pytest.fixture
def emulator(webhooks: Webhooks) -> Iterator[Emulator]:
    from paymux_yookassa.emulator import Emulator

    with Emulator(webhook_url=webhooks.url) as running:
        yield running


@pytest.fixture
def yookassa(emulator: Emulator) -> Iterator[paymux.Provider]:
    """A YooKassa provider connected to the emulator's shop."""
    with paymux.connect(settings_of(emulator)) as connected:
        yield connected


# -- networked guard stores: a PostgreSQL cluster and a Redis server, each started once per run --


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """The DSN of a database in a throw-away PostgreSQL cluster (trust on loopback)."""
    import servers

    pytest.importorskip("psycopg", reason="no psycopg: pip install 'paymux[postgres]'")
    with servers.postgres() as dsn:
        yield dsn


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The URL of a throw-away Redis server that keeps nothing on disk."""
    import servers

    pytest.importorskip("redis", reason="no redis-py: pip install 'paymux[redis]'")
    with servers.redis() as url:
        yield url
