"""A merchant of the sandbox, and the checks its certificate folders pass before the sandbox
registers them: the payment certificate and, when it has one, the separate payout certificate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from paymux import CertificateError
from paymux.providers.alikassa.keys import (
    PASSWORD_FILE,
    PRIVATE_KEY_FILE,
    PUBLIC_KEY_FILE,
    CertificateFolder,
    load_private_key,
    load_public_key,
    read_password,
)

CERTIFICATE_FILES = (PRIVATE_KEY_FILE, PASSWORD_FILE, PUBLIC_KEY_FILE)


@dataclass(frozen=True)
class Merchant:
    """A merchant account registered with the sandbox, and the settings to connect to it.

    `settings` name the payout certificate as `payout_certificate_dir` when there is one.
    """

    account: str
    payment_certificate: CertificateFolder
    settings: dict[str, Any]
    payout_certificate: CertificateFolder | None = None
    """The "API certificate for payouts", which signs `v1/payout` and `v1/payout/status`."""


def checked_public_key(certificate: CertificateFolder) -> bytes | None:
    """The `public.pem` of a certificate folder, once its files are checked; None when the folder
    holds none of them (it is empty or missing).

    A CertificateError when some files are missing, the password does not open the private key,
    or `public.pem` is not that key's.
    """
    existing = [name for name in CERTIFICATE_FILES if (certificate.path / name).exists()]
    if not existing:
        return None
    if len(existing) < len(CERTIFICATE_FILES):
        missing = [name for name in CERTIFICATE_FILES if name not in existing]
        raise CertificateError(
            f"{certificate.path} has {', '.join(existing)} but no {', '.join(missing)}"
        )
    private_key = load_private_key(
        certificate.private_key.read_bytes(), read_password(certificate.password_file)
    )
    public_pem = certificate.public_key.read_bytes()
    if canonical_pem(private_key.public_key()) != canonical_pem(load_public_key(public_pem)):
        raise CertificateError(f"{certificate.public_key} is not the public key of private.pem")
    return public_pem


def canonical_pem(key: rsa.RSAPublicKey) -> str:
    """A public key in one canonical text form, to keep and to compare."""
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem.decode("ascii")
