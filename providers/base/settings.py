"""Validating a provider's configuration with a marshmallow schema."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import marshmallow

from paymux.errors import ConfigurationError
from paymux.secrets import Secret
from paymux.transport import printable_ascii


class SecretString(marshmallow.fields.Field[Secret[str]]):
    """A secret setting (a password, an API key), given as text or as a `Secret`, loaded as a
    `Secret`: masked in every repr and traceback until the provider calls `reveal()`."""

    def _deserialize(
        self, value: object, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> Secret[str]:
        if isinstance(value, Secret) and isinstance(value.reveal(), str):
            return value
        if isinstance(value, str):
            return Secret(value)
        raise marshmallow.ValidationError("Not a valid string.")


def validate_settings(
    schema: marshmallow.Schema, settings: Mapping[str, Any], *, instance: str
) -> dict[str, Any]:
    """Load `settings` through `schema`; any problem becomes one `ConfigurationError`.

    Messages name the offending settings but never echo their values (they may be secrets).
    """
    try:
        loaded: dict[str, Any] = schema.load(dict(settings))
    except marshmallow.ValidationError as error:
        problems = "; ".join(
            f"{name}: {' '.join(map(str, messages))}"
            for name, messages in _flat(error.messages).items()
        )
        raise ConfigurationError(f"instance {instance!r}: {problems}") from None
    return loaded


def check_base_url(url: str, *, instance: str, allow_http: bool = False) -> None:
    """Refuse an address that is not http(s), or plain http:// beyond this machine.

    Plain HTTP would carry signed requests and the gateway's answers in clear text; loopback
    stays open for sandboxes and emulators, `allow_http` for a host that knows better.
    """
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a port that is not a number in 0-65535
        hostname = parts.hostname
    except ValueError:  # an unclosed "[", a bad port
        hostname = None
    if hostname is None or parts.scheme not in ("http", "https"):
        raise ConfigurationError(f"instance {instance!r}: base_url must be an http(s) URL")
    if parts.scheme == "http" and not allow_http and not is_loopback(hostname):
        raise ConfigurationError(
            f"instance {instance!r}: base_url must use https:// (plain http:// is allowed "
            f"only to this machine, or with allow_http)"
        )


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine: localhost, 127.0.0.0/8 or ::1."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def header_value(value: str) -> None:
    """A marshmallow validator for a setting sent as an HTTP header value."""
    if not printable_ascii(value):
        raise marshmallow.ValidationError(
            "Must be printable ASCII (no line breaks or other control characters)."
        )


def resolve_path(value: str | Path, base_dir: Path | None) -> Path:
    """`value` as a path, relative ones taken from `base_dir` (else the current directory)."""
    path = Path(value).expanduser()
    return path if path.is_absolute() or base_dir is None else base_dir / path


def _flat(messages: Any) -> dict[str, list[str]]:
    if isinstance(messages, Mapping):
        return {
            str(key): value if isinstance(value, list) else [str(value)]
            for key, value in messages.items()
        }
    return {"_schema": list(messages)}
