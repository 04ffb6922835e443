"""The configuration of one AliKassa instance, and the keys it names.

An account has up to three certificates (PROTOCOL.md): the payment one signs payment, status
and balance calls; the payout one, optional, signs payout calls; of the notification one the
merchant holds only `public.pem`, which verifies notifications and redirects. Each is loaded
once, when the provider is built, so a wrong file or password fails at start-up, not mid-sale.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import marshmallow
from marshmallow import fields, validate, validates_schema

from paymux.providers.alikassa.keys import DIGESTS, Signer, Verifier
from paymux.providers.base import ConnectionSettings, SecretString, resolve_path

DEFAULT_BASE_URL = "https://api-merchant.alikassa.io"


def _http_url(value: str) -> None:
    """An http(s) URL with a host (checked plainly: marshmallow's URL regex costs ~50 ms once)."""
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises ValueError for a port that is not a number in 0-65535
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # an unclosed "[", a bad port
        valid = False
    if not valid:
        raise marshmallow.ValidationError("Must be an http:// or https:// URL.")


class SettingsSchema(ConnectionSettings):
    """The configuration of one AliKassa instance: the connection's settings and these."""

    account = fields.UUID(required=True)
    certificate_dir = fields.String()
    private_key = fields.String()
    password = SecretString()
    password_file = fields.String()
    payout_certificate_dir = fields.String()
    payout_private_key = fields.String()
    payout_password = SecretString()
    payout_password_file = fields.String()
    notification_public_key = fields.String()
    base_url = fields.String(validate=_http_url, load_default=DEFAULT_BASE_URL)
    digest = fields.String(validate=validate.OneOf(sorted(DIGESTS)), load_default="sha1")
    notification_digest = fields.String(validate=validate.OneOf(sorted(DIGESTS)))
    service = fields.String()
    payout_service = fields.String()

    @validates_schema
    def _one_key_each(self, data: dict[str, Any], **kwargs: Any) -> None:
        if ("certificate_dir" in data) == ("private_key" in data):
            raise marshmallow.ValidationError(
                "Give exactly one of certificate_dir (the unpacked certificate folder) "
                "and private_key.",
                "certificate_dir",
            )
        if "payout_certificate_dir" in data and "payout_private_key" in data:
            raise marshmallow.ValidationError(
                "Give payout_certificate_dir or payout_private_key, not both.",
                "payout_certificate_dir",
            )
        for prefix, key in (("", "private_key"), ("payout_", "payout_private_key")):
            password, password_file = f"{prefix}password", f"{prefix}password_file"
            if password in data and password_file in data:
                raise marshmallow.ValidationError(
                    f"Give {password} or {password_file}, not both.", password
                )
            if key not in data and (password in data or password_file in data):
                raise marshmallow.ValidationError(
                    f"{password} goes with {key}; a certificate folder brings its own "
                    "password.txt.",
                    password,
                )


SETTINGS = SettingsSchema()


@dataclass(frozen=True)
class Keys:
    """An instance's loaded keys."""

    signer: Signer
    """Signs payment, status and balance calls."""
    payout_signer: Signer | None
    """Signs payout calls; None without a payout certificate."""
    verifier: Verifier | None
    """Verifies notifications and redirects; None without `notification_public_key`."""


def load_keys(values: Mapping[str, Any], base_dir: Path | None) -> Keys:
    """The keys loaded settings name, paths taken from `base_dir`; `CertificateError` if one
    cannot be read or opened."""
    digest: str = values["digest"]
    public_key = values.get("notification_public_key")
    verifier = (
        Verifier.from_file(
            resolve_path(public_key, base_dir),
            digest=values.get("notification_digest", digest),
        )
        if public_key
        else None
    )
    signer = _signer(values, "", base_dir)
    assert signer is not None, "the schema requires certificate_dir or private_key"
    return Keys(signer, _signer(values, "payout_", base_dir), verifier)


def _signer(values: Mapping[str, Any], prefix: str, base_dir: Path | None) -> Signer | None:
    """The signer of the certificate the settings starting with `prefix` name, if any."""
    digest: str = values["digest"]
    folder = values.get(f"{prefix}certificate_dir")
    if folder is not None:
        return Signer.from_certificate_dir(resolve_path(folder, base_dir), digest=digest)
    key = values.get(f"{prefix}private_key")
    if key is None:
        return None
    password_file = values.get(f"{prefix}password_file")
    return Signer.from_files(
        resolve_path(key, base_dir),
        password=values.get(f"{prefix}password"),
        password_file=resolve_path(password_file, base_dir) if password_file else None,
        digest=digest,
    )
