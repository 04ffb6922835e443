"""Configuration: named provider instances from a mapping, a TOML file or the environment.

A host may run several instances at once (two gateways, or two accounts at one gateway).
Each instance names its `provider` and carries that provider's settings:

    default = "shop"                     # TOML file (PAYMUX_CONFIG points to it)

    [providers.shop]
    provider = "mygateway"
    merchant = "93d5df06-996c-48c3-9847-348d6b580b80"
    key_file = "keys/merchant.pem"

Environment variables override the file, one setting each: `PAYMUX__SHOP__ACCOUNT=...`
(instance and setting names are case-insensitive), and `PAYMUX_DEFAULT=shop`.

A setting named `password`, `passphrase`, `secret`, `secret_key`, `api_key` or `token` (or
ending so, as `payout_password`) is wrapped in a `paymux.Secret` as soon as it is read, so no
repr or traceback of the configuration shows it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paymux.errors import ConfigurationError
from paymux.secrets import Secret

ENV_PREFIX = "PAYMUX__"
ENV_CONFIG_FILE = "PAYMUX_CONFIG"
ENV_DEFAULT = "PAYMUX_DEFAULT"
NOTHING_CONFIGURED = (
    "no provider instance is configured: point PAYMUX_CONFIG (or --config) at a TOML "
    "configuration file, or set PAYMUX__<INSTANCE>__<SETTING> variables; 'paymux providers' "
    "lists the gateways installed, and a gateway's sandbox command can write a configuration "
    "file for a local sandbox"
)
SECRET_SETTINGS = frozenset(
    {"password", "passphrase", "secret", "secret_key", "api_key", "token", "access_token"}
)
SECRET_SUFFIXES = ("_password", "_passphrase", "_secret", "_secret_key", "_api_key", "_token")
"""Settings whose text is wrapped in a `Secret` (these names, and names ending so); a provider
reads them with `SecretString`."""


@dataclass(frozen=True)
class InstanceConfig:
    """One configured provider instance."""

    name: str
    provider: str
    settings: Mapping[str, Any] = field(repr=False)
    base_dir: Path | None = None

    @classmethod
    def from_mapping(
        cls, name: str, data: Mapping[str, Any], base_dir: Path | None = None
    ) -> InstanceConfig:
        provider = data.get("provider")
        if not isinstance(provider, str) or not provider:
            raise ConfigurationError(f"instance {name!r}: 'provider' (a provider name) is required")
        settings = {key: _guarded(key, value) for key, value in data.items() if key != "provider"}
        return cls(name=name, provider=provider, settings=settings, base_dir=base_dir)


def _guarded(key: str, value: Any) -> Any:
    """`value`, wrapped in a `Secret` when `key` names a secret setting and it is plain text."""
    name = str(key).lower()
    if isinstance(value, str) and (name in SECRET_SETTINGS or name.endswith(SECRET_SUFFIXES)):
        return Secret(value)
    return value


@dataclass(frozen=True)
class Config:
    """All configured instances, and which one `connect()` uses when no name is given."""

    instances: Mapping[str, InstanceConfig] = field(default_factory=dict)
    default: str | None = None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], base_dir: Path | None = None) -> Config:
        """From `{"default": ..., "providers": {name: {"provider": ..., ...}}}`."""
        tables = data.get("providers", {})
        if not isinstance(tables, Mapping):
            raise ConfigurationError("'providers' must be a table of named instances")
        instances = {}
        for name, table in tables.items():
            if not isinstance(table, Mapping):
                raise ConfigurationError(f"providers.{name} must be a table of settings")
            instances[name] = InstanceConfig.from_mapping(name, table, base_dir)
        default = data.get("default")
        if default is not None and not isinstance(default, str):
            raise ConfigurationError("'default' must be an instance name")
        return cls(instances=instances, default=default)

    def instance(self, name: str | None = None) -> InstanceConfig:
        """The named instance; without a name, the default, or the only one configured."""
        if not self.instances:
            raise ConfigurationError(NOTHING_CONFIGURED)
        if name is None:
            name = self.default
        if name is None:
            if len(self.instances) != 1:
                configured = ", ".join(sorted(self.instances)) or "none"
                raise ConfigurationError(
                    f"name the provider instance to use (configured: {configured}), "
                    f"or set 'default'"
                )
            name = next(iter(self.instances))
        try:
            return self.instances[name]
        except KeyError:
            configured = ", ".join(sorted(self.instances)) or "none"
            raise ConfigurationError(
                f"no provider instance named {name!r} is configured (configured: {configured})"
            ) from None


def load_config(
    path: str | os.PathLike[str] | None = None, *, environ: Mapping[str, str] | None = None
) -> Config:
    """The TOML file at `path` (or `$PAYMUX_CONFIG`), with the environment's settings over it.

    Relative paths in the file are resolved against the file's folder.
    """
    environ = os.environ if environ is None else environ
    path = path if path is not None else environ.get(ENV_CONFIG_FILE)
    data: dict[str, Any] = {}
    base_dir = None
    if path:
        file = Path(path)
        data = _read_toml(file)
        base_dir = file.resolve().parent
    providers = data.get("providers", {})
    if not isinstance(providers, Mapping):
        raise ConfigurationError("'providers' must be a table of named instances")
    for name, table in providers.items():
        if not isinstance(table, Mapping):
            raise ConfigurationError(f"providers.{name} must be a table of settings")
    tables = {name: dict(table) for name, table in providers.items()}
    file_names = {name.lower(): name for name in tables}
    for name, settings in _env_tables(environ).items():
        tables.setdefault(file_names.get(name, name), {}).update(settings)
    data["providers"] = tables
    if ENV_DEFAULT in environ:
        data["default"] = environ[ENV_DEFAULT]
    return Config.from_mapping(data, base_dir=base_dir)


def _env_tables(environ: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """Settings from `PAYMUX__<INSTANCE>__<SETTING>` variables, by instance."""
    tables: dict[str, dict[str, str]] = {}
    for key, value in environ.items():
        if not key.upper().startswith(ENV_PREFIX):
            continue
        instance, sep, setting = key[len(ENV_PREFIX) :].partition("__")
        if not sep or not instance or not setting:
            raise ConfigurationError(
                f"environment variable {key} is not of the form PAYMUX__<INSTANCE>__<SETTING>"
            )
        tables.setdefault(instance.lower(), {})[setting.lower()] = value
    return tables


def _read_toml(file: Path) -> dict[str, Any]:
    """The TOML file's tables; the parser is imported only here, when a file is read (a host
    configuring in code never pays for it)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python 3.10 only
        import tomli as tomllib
    try:
        return tomllib.loads(file.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigurationError(f"cannot read {file}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigurationError(f"{file} is not valid TOML: {error}") from None
