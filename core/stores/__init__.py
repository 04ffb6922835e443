"""Guard stores shared over the network, for shops on several hosts.

`PostgresStore` needs the `postgres` extra (psycopg), `RedisStore` the `redis` extra (redis-py).
Each is imported on first use, so that importing this package needs neither driver.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from paymux.stores.postgres import PostgresStore
    from paymux.stores.redis import RedisStore

__all__ = ["PostgresStore", "RedisStore"]

_EXTRAS = {"PostgresStore": "postgres", "RedisStore": "redis"}


def __getattr__(name: str) -> object:
    if name not in _EXTRAS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    extra = _EXTRAS[name]
    try:
        module = import_module(f"{__name__}.{extra}")
    except ModuleNotFoundError as error:
        raise ImportError(f"{name} needs {error.name}: pip install 'paymux[{extra}]'") from error
    return getattr(module, name)
