"""HmacPay for paymux: the plugin module the `paymux` entry point `hmacpay` names.

paymux imports this module only when a host asks for the `hmacpay` provider; it then calls the
`paymux_register_providers` hook below, which registers the provider class.
"""

from __future__ import annotations

from collections.abc import Callable

from paymux.providers.base import Provider, hookimpl

__all__ = ["paymux_register_providers"]


@hookimpl
def paymux_register_providers(register: Callable[[type[Provider]], None]) -> None:
    from paymux_hmacpay.provider import HmacPayProvider

    register(HmacPayProvider)
