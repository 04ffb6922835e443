"""Core's operations written once, as steps, for a blocking and an asyncio host alike.

An operation (create, status, parse_notification, ...) is a generator: it yields a `Send` where
it needs an exchange with the gateway, a `Sleep` where it waits before a repeat, a `Blocking`
for work that may block (the ledger's writes), and receives each one's result (or has its error
raised where it yielded). `run` performs the steps with the blocking transport; `run_async`
with the asyncio one, off the event loop for `Blocking`. No provider and no operation exists
twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from typing import Any, TypeVar

from paymux._calls import Answer, Call, Request

T = TypeVar("T")


@dataclass(frozen=True)
class Moving:
    """The money-moving call a `Send` belongs to, for what an interrupted host must settle."""

    call: Call[Any]
    key_expires_at: float | None


@dataclass(frozen=True)
class Send:
    """One exchange: `request`, authenticated when it is performed."""

    request: Request
    attempt: int = 1
    time_left: float | None = None
    moving: Moving | None = None


@dataclass(frozen=True)
class Sleep:
    """A pause before the next attempt."""

    seconds: float


@dataclass(frozen=True)
class Blocking:
    """Work that may block (a ledger write): run as is, or in a thread by an asyncio host."""

    work: Callable[[], Any]


Step = Send | Sleep | Blocking
Steps = Generator[Step, Any, T]
"""An operation: yields steps, receives their results, returns what the operation returns."""


def run(steps: Steps[T], *, send: Callable[[Send], Answer], sleep: Callable[[float], None]) -> T:
    """Perform `steps` one after another, blocking; the operation's result or its error."""
    outcome: _Outcome = (None, None)
    while not isinstance(step := _advance(steps, outcome), _Done):
        try:
            if isinstance(step, Send):
                outcome = (send(step), None)
            elif isinstance(step, Sleep):
                sleep(step.seconds)
                outcome = (None, None)
            else:
                outcome = (step.work(), None)
        except Exception as error:  # raised where the step was yielded
            outcome = (None, error)
    finished: T = step.value
    return finished


async def run_async(
    steps: Steps[T],
    *,
    send: Callable[[Send], Awaitable[Answer]],
    interrupted: Callable[[Moving], None],
) -> T:
    """Perform `steps` on the running event loop; the operation's result or its error.

    A task cancelled once a money-moving call may have been sent tells `interrupted` which
    call (so that it can be reconciled), then lets the cancellation go on.
    """
    outcome: _Outcome = (None, None)
    moving: Moving | None = None
    try:
        while not isinstance(step := _advance(steps, outcome), _Done):
            try:
                if isinstance(step, Send):
                    moving = step.moving or moving
                    outcome = (await send(step), None)
                elif isinstance(step, Sleep):
                    await asyncio.sleep(step.seconds)
                    outcome = (None, None)
                else:
                    outcome = (await asyncio.to_thread(step.work), None)
            except Exception as error:  # raised where the step was yielded
                outcome = (None, error)
    except asyncio.CancelledError:
        steps.close()
        if moving is not None:
            interrupted(moving)
        raise
    finished: T = step.value
    return finished


_Outcome = tuple[Any, Exception | None]
"""What the last step gave: its result, or the error it raised."""


@dataclass(frozen=True)
class _Done:
    value: Any


def _advance(steps: Steps[Any], outcome: _Outcome) -> Step | _Done:
    """The operation's next step, handed the last one's outcome; `_Done` once it returns."""
    result, failure = outcome
    try:
        return steps.send(result) if failure is None else steps.throw(failure)
    except StopIteration as done:
        return _Done(done.value)
