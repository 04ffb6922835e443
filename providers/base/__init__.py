"""What a provider author needs: the interface, the hook markers and the shared plumbing.

A provider plugin is a module listed under the `paymux` entry-point group whose
`paymux_register_providers` hook registers a `Provider` subclass:

    # pyproject.toml:  [project.entry-points.paymux]  mygateway = "mygateway_paymux"
    from paymux.providers.base import Provider, hookimpl

    class MyGateway(Provider):
        name = "mygateway"
        ...

    @hookimpl
    def paymux_register_providers(register):
        register(MyGateway)

`ProviderConformance` (from `paymux.providers.base.testing`) is the test suite every provider
should pass; it needs pytest and is imported only when first used.
"""

from typing import TYPE_CHECKING, Any

from paymux.hookspecs import hookimpl, hookspec
from paymux.provider import NotificationInput, Provider
from paymux.providers.base.notifications import notification_params
from paymux.providers.base.settings import (
    SecretString,
    check_base_url,
    header_value,
    resolve_path,
    validate_settings,
)
from paymux.secrets import Secret

if TYPE_CHECKING:
    from paymux.providers.base.testing import ProviderConformance

__all__ = [
    "NotificationInput",
    "Provider",
    "ProviderConformance",
    "Secret",
    "SecretString",
    "check_base_url",
    "header_value",
    "hookimpl",
    "hookspec",
    "notification_params",
    "resolve_path",
    "validate_settings",
]


def __getattr__(name: str) -> Any:
    # The conformance kit imports pytest, which hosts do not install: load it on first use only.
    if name == "ProviderConformance":
        from paymux.providers.base.testing import ProviderConformance

        return ProviderConformance
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
