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
"""

from paymux.hookspecs import hookimpl, hookspec
from paymux.provider import NotificationInput, Provider
from paymux.providers.base.notifications import notification_params
from paymux.providers.base.settings import resolve_path, validate_settings

__all__ = [
    "NotificationInput",
    "Provider",
    "hookimpl",
    "hookspec",
    "notification_params",
    "resolve_path",
    "validate_settings",
]
