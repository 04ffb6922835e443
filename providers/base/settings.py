"""Validating a provider's configuration with a marshmallow schema."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import marshmallow
from marshmallow import fields, validate

from paymux import (
    ConfigurationError,
    Connection,
    Ledger,
    RetryPolicy,
    Secret,
    SQLiteLedger,
    SweepPolicy,
)
from paymux._transport import printable_ascii


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


def header_value(value: str) -> None:
    """A marshmallow validator for a setting sent as an HTTP header value."""
    if not printable_ascii(value):
        raise marshmallow.ValidationError(
            "Must be printable ASCII (no line breaks or other control characters)."
        )


_POSITIVE = validate.Range(min=0, min_inclusive=False)


class ConnectionSettings(marshmallow.Schema):
    """The settings every provider takes for its connection; derive a provider's settings
    schema from it, giving `base_url` the gateway's address as its `load_default`.

    `connection_from` turns the loaded values into the `Connection` core runs calls on.
    """

    base_url = fields.String(required=True)
    connect_timeout = fields.Float(validate=_POSITIVE, load_default=5.0)
    read_timeout = fields.Float(validate=_POSITIVE, load_default=30.0)
    user_agent = fields.String(validate=header_value)
    trust_env = fields.Boolean(load_default=False)
    allow_http = fields.Boolean(load_default=False)
    reconcile = fields.Boolean(load_default=True)
    max_attempts = fields.Integer(validate=validate.Range(min=1, max=20), load_default=3)
    deadline = fields.Float(validate=_POSITIVE, load_default=60.0)
    backoff = fields.Float(validate=validate.Range(min=0), load_default=0.25)
    ledger = fields.String()
    """The ledger of open operations: a SQLite file, or a `postgresql://` URL; without it none
    is kept."""
    sweep_concurrency = fields.Integer(validate=validate.Range(min=1, max=256), load_default=4)
    sweep_rate = fields.Float(validate=_POSITIVE)


def connection_from(
    values: Mapping[str, Any], *, instance: str, base_dir: Path | None = None
) -> Connection:
    """The `Connection` for settings loaded through a `ConnectionSettings` schema (a relative
    `ledger` path is taken from `base_dir`)."""
    check_base_url(values["base_url"], instance=instance, allow_http=values["allow_http"])
    return Connection(
        ledger=_ledger(values.get("ledger"), base_dir),
        sweep=SweepPolicy(concurrency=values["sweep_concurrency"], rate=values.get("sweep_rate")),
        base_url=values["base_url"],
        connect_timeout=values["connect_timeout"],
        read_timeout=values["read_timeout"],
        user_agent=values.get("user_agent"),
        trust_env=values["trust_env"],
        reconcile=values["reconcile"],
        retry=RetryPolicy(
            max_attempts=values["max_attempts"],
            backoff=values["backoff"],
            deadline=values["deadline"],
        ),
    )


def _ledger(where: str | None, base_dir: Path | None) -> Ledger | None:
    """The ledger `where` names: a PostgreSQL database by URL, else a SQLite file."""
    if not where:
        return None
    if where.startswith(("postgresql://", "postgres://")):
        from paymux.stores import PostgresLedger

        return PostgresLedger(where)
    return SQLiteLedger(resolve_path(where, base_dir))


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
