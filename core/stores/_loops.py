"""What the networked stores' async clients share: one per event loop, closed with its loop.

An asyncio connection belongs to the loop that opened it, so each running loop gets a client of
its own. Each client is held by a suspended async generator registered with its loop, and
`asyncio.run` closes a loop's async generators (`shutdown_asyncgens`) before the loop itself:
the client closes its connections while its loop can still run that, leaving no unclosed
socket (nor its warning) behind.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncGenerator, Callable, Coroutine
from contextlib import suppress
from typing import Generic, TypeVar

T = TypeVar("T")

CONNECTIONS = 10
"""The most connections a store opens per event loop: tasks are cheap, server connections are
not (a PostgreSQL server takes 100 by default). More concurrent updates wait for one."""

Held = dict[asyncio.AbstractEventLoop, tuple[T, AsyncGenerator[None, None]]]


class PerLoop(Generic[T]):
    """A client (`make`) for each running event loop; `shut` closes a client's connections and
    leaves it usable (its next call opens new ones)."""

    def __init__(
        self, make: Callable[[], T], shut: Callable[[T], Coroutine[object, object, None]]
    ) -> None:
        self._make = make
        self._shut = shut
        self._held: Held[T] = {}
        self._forked_off: list[Held[T]] = []
        self._closing: set[asyncio.Task[None]] = set()  # referenced until done, as asyncio asks
        self._lock = threading.Lock()
        self._pid = os.getpid()

    async def get(self) -> T:
        """The running loop's client, made on the loop's first call."""
        loop = asyncio.get_running_loop()
        with self._lock:
            held = self._live().get(loop)
        if held is not None:
            return held[0]
        client = self._make()
        holder = self._holding(client)
        # Runs to its `yield` without suspending, so no other task of this loop comes between.
        await holder.asend(None)
        with self._lock:
            self._held[loop] = (client, holder)
        return client

    def close(self) -> None:
        """Close the clients of the loops running now, each in its own loop, soon after: this
        may be called from inside one of them, so it cannot wait. A loop not running closes its
        client when it shuts down (`asyncio.run` does), or has done so already; a loop closed
        without `shutdown_asyncgens` leaves its connections to the garbage collector."""
        self._close_running(but=None)

    async def aclose(self) -> None:
        """`close`; the running loop's client is closed before this returns."""
        loop = asyncio.get_running_loop()
        self._close_running(but=loop)
        with self._lock:
            held = self._live().get(loop)
        if held is not None:
            await self._shut(held[0])

    def _close_running(self, but: asyncio.AbstractEventLoop | None) -> None:
        with self._lock:
            running = [
                (loop, client)
                for loop, (client, _) in self._live().items()
                if loop is not but and loop.is_running()
            ]
        for loop, client in running:
            with suppress(RuntimeError):  # closed since: its shutdown closed the client
                loop.call_soon_threadsafe(self._start_closing, loop, client)

    def _start_closing(self, loop: asyncio.AbstractEventLoop, client: T) -> None:
        task = loop.create_task(self._shut(client))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _holding(self, client: T) -> AsyncGenerator[None, None]:
        """Suspended for its loop's life; the loop's shutdown closes `client`."""
        try:
            yield
        finally:
            await self._shut(client)

    def _live(self) -> Held[T]:
        """The clients of the loops not closed yet (call under the lock); none after a fork."""
        if self._pid != os.getpid():
            # Forked: those loops and sockets are the parent's. Kept but never used nor closed,
            # which would act on the parent's connections.
            self._forked_off.append(self._held)
            self._held, self._pid = {}, os.getpid()
        self._held = {loop: held for loop, held in self._held.items() if not loop.is_closed()}
        return self._held
