"""Everything a provider author needs, and only that: the contract, the description types, the
hook markers, settings helpers, an emulator server and the conformance kit.

A provider plugin is a module listed under the `paymux` entry-point group whose
`paymux_register_providers` hook registers a `Provider` subclass. The provider describes; core
executes (see docs/writing-a-provider.md):

    # pyproject.toml:  [project.entry-points.paymux]  mygateway = "mygateway_paymux"
    from paymux.providers.base import Call, Provider, Request, hookimpl

    class MyGateway(Provider):
        name = "mygateway"

        def describe_status(self, *, payment_id=None, order_id=None):
            return Call(Request("status", "GET", f"payments/{payment_id}"), read=self._payment)
        ...

    @hookimpl
    def paymux_register_providers(register):
        register(MyGateway)

Models and errors are `paymux`'s public names. `ProviderConformance` (from
`paymux.providers.base.testing`) is the test suite every provider should pass; it needs pytest
and is imported only when first used. `paymux.providers.base.loopback` serves an emulator on
this machine.
"""

from typing import TYPE_CHECKING, Any

from paymux._calls import Answer, Call, IdempotencyKey, OrderLookup, Processing, Request
from paymux._retry import RetryPolicy
from paymux.capabilities import Capabilities, Lookup, Operation
from paymux.hookspecs import hookimpl, hookspec
from paymux.incoming import Incoming, NotificationInput
from paymux.provider import Connection, Observers, Provider
from paymux.providers.base.notifications import notification_params
from paymux.providers.base.settings import (
    ConnectionSettings,
    SecretString,
    check_base_url,
    connection_from,
    header_value,
    is_loopback,
    resolve_path,
    validate_settings,
)
from paymux.secrets import Secret
from paymux.statuses import Authentication

if TYPE_CHECKING:
    from paymux.providers.base.testing import ProviderConformance

__all__ = [
    "Answer",
    "Authentication",
    "Call",
    "Capabilities",
    "Connection",
    "ConnectionSettings",
    "IdempotencyKey",
    "Incoming",
    "Lookup",
    "NotificationInput",
    "Observers",
    "Operation",
    "OrderLookup",
    "Processing",
    "Provider",
    "ProviderConformance",
    "Request",
    "RetryPolicy",
    "Secret",
    "SecretString",
    "check_base_url",
    "connection_from",
    "header_value",
    "hookimpl",
    "hookspec",
    "is_loopback",
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
