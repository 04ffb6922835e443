"""A guard store in Redis: one string per key, shared by every host that reaches the server.

`update` is an optimistic compare-and-swap: the value is read, `change` runs here, and a Lua
script (atomic on the server) writes the result only if the value is still the one read; a
lost race reads and calls `change` again. `update_async` does the same over `redis.asyncio`.
Needs the `redis` extra (redis-py).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

import redis
import redis.asyncio
from redis.asyncio.connection import AbstractConnection
from redis.commands.core import AsyncScript

from paymux.errors import ConfigurationError, GuardStoreError
from paymux.guards import GuardStore
from paymux.stores._closing import Closing
from paymux.stores._loops import CONNECTIONS, PerLoop

__all__ = ["RedisStore"]

_SWAP = """
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
    if current ~= ARGV[2] then return 0 end
elseif current then
    return 0
end
if ARGV[3] == '1' then redis.call('SET', KEYS[1], ARGV[4]) else redis.call('DEL', KEYS[1]) end
return 1
"""
"""Set KEYS[1] to ARGV[4] (or delete it: ARGV[3] '0') if it holds ARGV[2] (or is absent:
ARGV[1] '0'); 1 if it did, 0 if another client changed it first."""

_JITTER = 0.001
"""Seconds: the most a lost race waits per attempt so far, so that racers fall out of step."""

_PORTABLE = {
    *("host", "port", "path", "db", "username", "password", "credential_provider"),
    *("client_name", "protocol", "health_check_interval", "socket_keepalive"),
    *("socket_timeout", "socket_connect_timeout"),
    *("decode_responses", "encoding", "encoding_errors"),
    *("ssl_keyfile", "ssl_certfile", "ssl_password", "ssl_ca_certs", "ssl_ca_data"),
    *("ssl_ca_path", "ssl_cert_reqs", "ssl_check_hostname", "ssl_min_version", "ssl_ciphers"),
    *("ssl_include_verify_flags", "ssl_exclude_verify_flags"),
}
"""The connection settings of a blocking client that an async client takes as they are; the
others are objects of the blocking driver (its retry policy, callbacks, handlers)."""

AsyncClient = tuple[redis.asyncio.Redis, AsyncScript]


class RedisStore(GuardStore, Closing):
    """A store shared by every process of every host that reaches one Redis server.

    `client` is a `redis://`, `rediss://` or `unix://` URL, or a `redis.Redis` of your own
    (closed by you, not by `close`). Keys are `prefix` + the guard's key, kept without expiry
    like the other stores' records. A race lost `attempts` times in a row, like any Redis
    failure, raises `GuardStoreError` and changes nothing; neither errors nor `repr` show the
    password.

    `update_async` uses a `redis.asyncio` client per event loop, made from the URL, or from
    the address, credentials, timeouts, TLS and decoding settings of your client's pool
    (`connection_pool.connection_kwargs`; its retry policy and callbacks are not carried over),
    with at most `CONNECTIONS` connections per loop: more concurrent updates wait for one.
    Those clients are the store's own: closed with their loop, or by `close` and `aclose`.
    """

    def __init__(
        self,
        client: str | redis.Redis,
        *,
        prefix: str = "paymux:guard:",
        attempts: int = 100,
    ) -> None:
        if attempts < 1:
            raise ConfigurationError(f"Redis guard store: attempts must be 1 or more: {attempts}")
        self._owned = isinstance(client, str)
        self._client = redis.Redis.from_url(client) if isinstance(client, str) else client
        self.prefix = prefix
        self.attempts = attempts
        self._swap = self._client.register_script(_SWAP)  # EVALSHA, loaded again if flushed
        url = client if isinstance(client, str) else None
        self._async = PerLoop(lambda: _async_client(url, self._client), _async_close)
        settings = self._client.connection_pool.connection_kwargs
        self._password = settings.get("password")
        if "path" in settings:
            self._shown = f"unix://{settings['path']}?db={settings.get('db', 0)}"
        else:
            self._shown = f"{settings.get('host')}:{settings.get('port')}/{settings.get('db', 0)}"

    def __repr__(self) -> str:
        return f"RedisStore({self._shown!r}, prefix={self.prefix!r})"

    def close(self) -> None:
        """Close the connections of a client made from a URL (a client of your own stays open)
        and those of the async clients (see `PerLoop.close`: a running loop's soon after)."""
        if self._owned:
            self._client.close()
        self._async.close()

    async def aclose(self) -> None:
        """`close`, the running loop's async connections closed before this returns."""
        if self._owned:
            self._client.close()
        await self._async.aclose()

    def update(self, key: str, change: Callable[[str | None], str | None]) -> str | None:
        name = self.prefix + key
        with self._failures_typed():
            for attempt in range(1, self.attempts + 1):
                current = self._text(self._client.get(name))
                new = change(current)
                # Nothing to write (the read is the answer), or written before anyone else.
                if new == current or self._swap(keys=[name], args=_arguments(current, new)) == 1:
                    return current
                time.sleep(_pause(attempt))
        raise self._overtaken(key)

    async def update_async(
        self, key: str, change: Callable[[str | None], str | None]
    ) -> str | None:
        """`update` for asyncio hosts, on this event loop's async client."""
        name = self.prefix + key
        with self._failures_typed():
            client, swap = await self._async.get()
            for attempt in range(1, self.attempts + 1):
                current = self._text(await client.get(name))
                new = change(current)
                if new == current or await swap(keys=[name], args=_arguments(current, new)) == 1:
                    return current
                await asyncio.sleep(_pause(attempt))
        raise self._overtaken(key)

    def _overtaken(self, key: str) -> GuardStoreError:
        return GuardStoreError(
            f"guard store {self!r}: {key!r} was changed by others {self.attempts} times in a row"
        )

    @contextmanager
    def _failures_typed(self) -> Iterator[None]:
        """Redis failures as `GuardStoreError`, naming the store, never its password."""
        try:
            yield
        except redis.RedisError as error:
            message = str(error)
            if self._password:
                message = message.replace(str(self._password), "***")
            # Not chained: the original's text is above, redacted.
            raise GuardStoreError(f"guard store {self!r}: {message}") from None

    def _text(self, value: object) -> str | None:
        """A value as read: bytes, or str from a client made with `decode_responses=True`."""
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, bytes):
            with suppress(UnicodeDecodeError):
                return value.decode()
        raise GuardStoreError(f"guard store {self!r}: unexpected value {value!r}")


def _async_client(url: str | None, blocking: redis.Redis) -> AsyncClient:
    """An async client to the server of `url`, or else of the `blocking` client, and its
    compare-and-swap script. Past `CONNECTIONS` busy connections, an update waits for one."""
    pool = redis.asyncio.BlockingConnectionPool
    if url is not None:
        connections = pool.from_url(url, max_connections=CONNECTIONS, timeout=None)
    else:
        kind: type[AbstractConnection] = redis.asyncio.Connection
        if issubclass(blocking.connection_pool.connection_class, redis.SSLConnection):
            kind = redis.asyncio.SSLConnection
        elif issubclass(
            blocking.connection_pool.connection_class, redis.UnixDomainSocketConnection
        ):
            kind = redis.asyncio.UnixDomainSocketConnection
        settings = blocking.connection_pool.connection_kwargs.items()
        connections = pool(
            connection_class=kind,
            max_connections=CONNECTIONS,
            timeout=None,
            **{name: value for name, value in settings if name in _PORTABLE},
        )
    client = redis.asyncio.Redis.from_pool(connections)
    return client, client.register_script(_SWAP)


async def _async_close(held: AsyncClient) -> None:
    await held[0].aclose()


def _arguments(current: str | None, new: str | None) -> list[str]:
    """The script's arguments: a presence flag and the text of the value read, then of the new."""
    return [*_flagged(current), *_flagged(new)]


def _flagged(value: str | None) -> tuple[str, str]:
    """The script's two arguments for a value that may be absent: a presence flag and the text."""
    return ("0", "") if value is None else ("1", value)


def _pause(attempt: int) -> float:
    """Seconds to wait after losing the race `attempt` times."""
    return random.uniform(0, _JITTER * attempt)  # noqa: S311 - not a secret
