"""Guard stores and a ledger shared over the network, for shops on several hosts.

`PostgresStore` and `PostgresLedger` need the `postgres` extra (psycopg), `RedisStore` the
`redis` extra (redis-py). Each is imported on first use, so that importing this package needs
neither driver.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from paymux.stores.postgres import PostgresStore
    from paymux.stores.postgres_ledger import PostgresLedger
    from paymux.stores.redis import RedisStore

__all__ = ["PostgresLedger", "PostgresStore", "RedisStore"]

_MODULES = {
    "PostgresLedger": ("postgres_ledger", "postgres"),
    "PostgresStore": ("postgres", "postgres"),
    "RedisStore": ("redis", "redis"),
}
"""Each class's module and the extra that brings its driver."""


def __getattr__(name: str) -> object:
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module_name, extra = _MODULES[name]
    try:
        module = import_module(f"{__name__}.{module_name}")
    except ModuleNotFoundError as error:
        raise ImportError(f"{name} needs {error.name}: pip install 'paymux[{extra}]'") from error
    return getattr(module, name)
