"""AliKassa for paymux: RSA-signed JSON requests, signed GET notifications, and a local sandbox.

This module is the plugin that the `paymux` entry point `alikassa` names.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from paymux.hookspecs import hookimpl
from paymux.provider import Provider
from paymux.providers.alikassa.keys import CertificateFolder, Signer, Verifier, generate_certificate
from paymux.providers.alikassa.provider import DEFAULT_BASE_URL, AliKassaProvider

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


@hookimpl
def paymux_register_providers(register: Callable[[type[Provider]], None]) -> None:
    register(AliKassaProvider)


@hookimpl
def paymux_cli_commands(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from paymux.providers.alikassa.cli import add_commands

    add_commands(subcommands)
