"""Shared fixtures: a real sandbox on loopback, real RSA keys, a real notification receiver."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

import paymux
from paymux.providers.alikassa import AliKassaProvider, CertificateFolder, generate_certificate
from paymux.providers.alikassa.sandbox import Merchant, Sandbox
from support import Receiver


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
