"""AliKassa for paymux: RSA-signed JSON requests, signed GET notifications, and a local sandbox.

This module is the plugin that the `paymux` entry point `alikassa` names.

Importing it is cheap: the provider, the key handling and their dependencies (marshmallow,
cryptography) load when first used — when paymux asks for the provider, or when one of the
names below is first read. pytest imports `paymux.providers.alikassa.pytest_plugin`, and with
it this package, in every test session of every project that installs paymux.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from paymux import hookimpl

if TYPE_CHECKING:
    import argparse

    from paymux import Provider
    from paymux.providers.alikassa.keys import (
        CertificateFolder,
        Signer,
        Verifier,
        generate_certificate,
    )
    from paymux.providers.alikassa.provider import AliKassaProvider
    from paymux.providers.alikassa.settings import DEFAULT_BASE_URL

__all__ = [
    "DEFAULT_BASE_URL",
    "AliKassaProvider",
    "CertificateFolder",
    "Signer",
    "Verifier",
    "generate_certificate",
    "paymux_cli_commands",
    "paymux_register_providers",
]

_LAZY = {
    "DEFAULT_BASE_URL": "paymux.providers.alikassa.settings",
    "AliKassaProvider": "paymux.providers.alikassa.provider",
    "CertificateFolder": "paymux.providers.alikassa.keys",
    "Signer": "paymux.providers.alikassa.keys",
    "Verifier": "paymux.providers.alikassa.keys",
    "generate_certificate": "paymux.providers.alikassa.keys",
}


@hookimpl
def paymux_register_providers(register: Callable[[type[Provider]], None]) -> None:
    from paymux.providers.alikassa.provider import AliKassaProvider

    register(AliKassaProvider)


@hookimpl
def paymux_cli_commands(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from paymux.providers.alikassa.cli import add_commands

    add_commands(subcommands)


if not TYPE_CHECKING:  # type checkers see the imports above; at run time they load on first use

    def __getattr__(name: str) -> Any:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *__all__})
