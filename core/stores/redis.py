"""A guard store in Redis: one string per key, shared by every host that reaches the server.

`update` is an optimistic compare-and-swap: the value is read, `change` runs here, and a Lua
script (atomic on the server) writes the result only if the value is still the one read; a
lost race reads and calls `change` again. Needs the `redis` extra (redis-py).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

import redis

from paymux.errors import ConfigurationError, GuardStoreError
from paymux.guards import GuardStore
from paymux.stores._closing import Closing

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


class RedisStore(GuardStore, Closing):
    """A store shared by every process of every host that reaches one Redis server.

    `client` is a `redis://`, `rediss://` or `unix://` URL, or a `redis.Redis` of your own
    (closed by you, not by `close`). Keys are `prefix` + the guard's key, kept without expiry
    like the other stores' records. A race lost `attempts` times in a row, like any Redis
    failure, raises `GuardStoreError` and changes nothing; neither errors nor `repr` show the
    password.
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
        settings = self._client.connection_pool.connection_kwargs
        self._password = settings.get("password")
        if "path" in settings:
            self._shown = f"unix://{settings['path']}?db={settings.get('db', 0)}"
        else:
            self._shown = f"{settings.get('host')}:{settings.get('port')}/{settings.get('db', 0)}"

    def __repr__(self) -> str:
        return f"RedisStore({self._shown!r}, prefix={self.prefix!r})"

    def close(self) -> None:
        """Close the connections of a client made from a URL; a client of your own stays open."""
        if self._owned:
            self._client.close()

    def update(self, key: str, change: Callable[[str | None], str | None]) -> str | None:
        name = self.prefix + key
        with self._failures_typed():
            for attempt in range(1, self.attempts + 1):
                current = self._text(self._client.get(name))
                new = change(current)
                if new == current:  # nothing to write: the read is the answer
                    return current
                if self._swap(keys=[name], args=[*_flagged(current), *_flagged(new)]) == 1:
                    return current
                time.sleep(random.uniform(0, _JITTER * attempt))  # noqa: S311 - not a secret
        raise GuardStoreError(
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


def _flagged(value: str | None) -> tuple[str, str]:
    """The script's two arguments for a value that may be absent: a presence flag and the text."""
    return ("0", "") if value is None else ("1", value)
