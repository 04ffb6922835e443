"""AliKassa for paymux: RSA-signed JSON requests, signed GET notifications, and a local sandbox.

This module is the plugin that the `paymux` entry point `alikassa` names.
"""

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
    "paymux_register_providers",
]


@hookimpl
def paymux_register_providers(register: Callable[[type[Provider]], None]) -> None:
    register(AliKassaProvider)
