"""The one retry policy for calls that are safe to repeat (a status lookup, never a create).

Retried: connection failures, 5xx and 429. Never retried: any other 4xx (the answer will not
change) and TLS failures (a wrong certificate stays wrong). Pauses grow exponentially up to a
cap, with jitter so that many clients do not retry in step; a `Retry-After` header is honoured
up to its own cap. Jitter, sleeping and the clock are parameters, so tests pin them and never
sleep.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

from paymux._calls import Answer
from paymux._steps import Blocking, Send, Sleep, Step, Steps, run
from paymux.errors import TLSError, TransportError


def retryable_status(status: int) -> bool:
    """Whether an answer with this status may change if the same call is repeated."""
    return status == 429 or status >= 500


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to repeat an idempotent call.

    `jitter()` returns a number in [0, 1): the pause is `backoff * 2**(n-1)`, capped at
    `max_backoff`, scaled into its upper half by the jitter ("equal jitter": never zero, never
    in step). `deadline` bounds the whole call, pauses included.
    """

    max_attempts: int = 3
    backoff: float = 0.25
    max_backoff: float = 2.0
    max_retry_after: float = 10.0
    deadline: float | None = 60.0
    jitter: Callable[[], float] = field(default=random.random)
    sleep: Callable[[float], None] = field(default=time.sleep)
    clock: Callable[[], float] = field(default=time.monotonic)

    def pause(self, attempt: int, retry_after: str | float | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1 for the first).

        `retry_after` is a `Retry-After` header's text, or seconds a gateway asked for in its
        answer's body.
        """
        honoured = (
            float(retry_after)
            if isinstance(retry_after, (int, float))
            else parse_retry_after(retry_after, now=time.time())
        )
        if honoured is not None:
            return min(honoured, self.max_retry_after)
        capped = min(self.backoff * 2.0 ** (attempt - 1), self.max_backoff)
        return capped * (0.5 + 0.5 * self.jitter())

    def deadline_at(self) -> float | None:
        """The clock reading after which no new attempt starts, for a call starting now."""
        return None if self.deadline is None else self.clock() + self.deadline

    def remaining(self, deadline_at: float | None) -> float | None:
        """Seconds left before `deadline_at` (None: unbounded)."""
        return None if deadline_at is None else deadline_at - self.clock()

    def next_pause(
        self, attempt: int, deadline_at: float | None, retry_after: str | float | None = None
    ) -> float | None:
        """Seconds to wait before the next attempt; None when the deadline forbids one."""
        delay = self.pause(attempt, retry_after)
        left = self.remaining(deadline_at)
        return None if left is not None and delay >= left else delay

    def call(
        self,
        send: Callable[[int, float | None], Answer],
        *,
        deadline_at: float | None = None,
    ) -> Answer:
        """`send(attempt, seconds_left)` until an answer worth keeping (see `repeated`),
        sleeping with `sleep` in between."""
        deadline_at = self.deadline_at() if deadline_at is None else deadline_at
        return run(
            self.repeated(lambda attempt, left: Blocking(lambda: send(attempt, left)), deadline_at),
            send=_no_send,
            sleep=self.sleep,
        )

    def repeated(
        self, attempt: Callable[[int, float | None], Step], deadline_at: float | None
    ) -> Steps[Answer]:
        """The step `attempt(number, seconds_left)` gives, until an answer worth keeping.

        Returns the first answer that is not 5xx/429, or the last answer when attempts or time
        run out; raises the last `TransportError` when no attempt got an answer.
        """
        number = 1
        while True:
            try:
                response: Answer = yield attempt(number, self.remaining(deadline_at))
            except TLSError:
                raise
            except TransportError:
                pause = (
                    None if number >= self.max_attempts else self.next_pause(number, deadline_at)
                )
                if pause is None:
                    raise
            else:
                if not retryable_status(response.status) or number >= self.max_attempts:
                    return response
                pause = self.next_pause(number, deadline_at, response.retry_after)
                if pause is None:
                    return response
            yield Sleep(pause)
            number += 1


def _no_send(step: Send) -> Answer:
    raise AssertionError("RetryPolicy.call sends through its own function")


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds a `Retry-After` header asks for (delta-seconds or an HTTP date), None if unusable."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)
