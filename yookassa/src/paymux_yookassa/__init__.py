"""YooKassa for paymux: the plugin module that the `paymux` entry point `yookassa` names.

Importing it is cheap: paymux imports it only when a host asks for the `yookassa` provider, and
the provider (with marshmallow) loads when the hook below runs or `YooKassaProvider` is first
read. `paymux_yookassa.emulator` runs a fake YooKassa on loopback for tests and demos.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from paymux.providers.base import Provider, hookimpl

if TYPE_CHECKING:
    from paymux_yookassa.provider import YooKassaProvider

__all__ = ["YooKassaProvider", "paymux_register_providers"]


@hookimpl
def paymux_register_providers(register: Callable[[type[Provider]], None]) -> None:
    from paymux_yookassa.provider import YooKassaProvider

    register(YooKassaProvider)


if not TYPE_CHECKING:  # type checkers see the import above; at run time it loads on first use

    def __getattr__(name: str) -> Any:
        if name != "YooKassaProvider":
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        from paymux_yookassa.provider import YooKassaProvider

        return YooKassaProvider
