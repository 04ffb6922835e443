"""Core's exchange runner: sends the calls providers describe, and makes money-moving calls
happen exactly once.

A call that moves nothing (a status, a balance) is repeated under the retry policy. A call that
moves money is sent, and when its outcome is unknown (no whole answer after the request left,
a 5xx, an unreadable 2xx) it is settled the way its provider declared: by looking it up under
the shop's order id, then sending the same bytes again only if it is not there, or by sending
the same bytes with the same idempotency key while the gateway still remembers the key. A
request that never left is simply sent again; a refusal (a 4xx) never is, and a call with no
exactly-once mechanism is never sent twice. When attempts or the deadline run out,
`OutcomeUnknown` carries the call, so that `reconcile` settles it later: time alone never turns
"unknown" into "failed".
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from paymux._calls import (
    Answer,
    Call,
    IdempotencyKey,
    OrderLookup,
    Processing,
    Request,
    parse_json,
)
from paymux._events import emit, enabled
from paymux._retry import RetryPolicy
from paymux._steps import Moving, Send, Sleep, Steps
from paymux._transport import Transport
from paymux.errors import (
    DuplicateOrder,
    InvalidResponse,
    NotFound,
    OrderConflict,
    OutcomeUnknown,
    PaymuxError,
    ProviderError,
    TLSError,
    TransportError,
)
from paymux.models import show_money

T = TypeVar("T")

_RECONCILE = "it may have happened: call reconcile() with this error later"

Authenticate = Callable[[Request], Mapping[str, str]]
ReadError = Callable[[Request, Answer], PaymuxError]


@dataclass
class _Attempts:
    """The state of one exactly-once call: attempts made, what each did, the last unknown.

    `key_expires_at` (a `time.time()` reading) is when the gateway forgets the call's
    idempotency key, counted from the first attempt: a repeat does not make it remember longer.
    """

    deadline_at: float | None
    key_expires_at: float | None = None
    number: int = 0
    unknown: OutcomeUnknown | None = None
    tried: list[str] = field(default_factory=list)


class Runner:
    """Executes one provider instance's calls over its pooled transport."""

    def __init__(
        self,
        *,
        provider: str,
        instance: str,
        base_url: str,
        transport: Transport,
        policy: RetryPolicy,
        authenticate: Authenticate,
        read_error: ReadError,
        reconcile: bool = True,
    ) -> None:
        self.provider = provider
        self.instance = instance
        self.base_url = base_url.rstrip("/")
        self.transport = transport
        self.policy = policy
        self.reconcile_outcomes = reconcile
        self._authenticate = authenticate
        self._read_error = read_error

    # -- calls that move nothing ---------------------------------------------------------

    def fetch(self, call: Call[T], deadline_at: float | None = None) -> Steps[T]:
        """A call safe to repeat: retried on failures, 5xx and 429; the result or a typed error."""
        answer = yield from self.policy.repeated(
            lambda attempt, left: Send(call.request, attempt, left),
            self.policy.deadline_at() if deadline_at is None else deadline_at,
        )
        return self.read(call, answer)

    def read(self, call: Call[T], answer: Answer) -> T:
        if not answer.ok:
            raise self._read_error(call.request, answer)
        try:
            return call.read(answer)
        except Processing:
            raise InvalidResponse(
                f"{call.request.operation}: the gateway is still processing",
                http_status=answer.status,
                request_id=answer.request_id,
            ) from None

    def send(self, step: Send) -> Answer:
        """One exchange over the blocking transport."""
        answer = self.transport.send(**self.exchange(step))
        self.logged(step.request, answer)
        return answer

    def exchange(self, step: Send) -> dict[str, Any]:
        """The transport's arguments for `step`, authenticated now (a signature or a password
        never waits in a call); the same for the blocking and the asyncio transport."""
        request = step.request
        return {
            "method": request.method,
            "url": f"{self.base_url}/{request.path.lstrip('/')}",
            "body": request.body,
            "headers": {**request.headers, **self._authenticate(request)},
            "operation": request.operation,
            "query": request.query or None,
            "attempt": step.attempt,
            "time_left": step.time_left,
        }

    def logged(self, request: Request, answer: Answer) -> None:
        """At debug level, what was sent and answered, redacted like every event."""
        if enabled("debug"):
            emit(
                "debug",
                "paymux.exchange",
                provider=self.provider,
                instance=self.instance,
                operation=request.operation,
                http_status=answer.status,
                request_id=answer.request_id,
                request=_shown(request.body),
                response=_shown(answer.body),
            )

    # -- calls that move money -----------------------------------------------------------

    def once(
        self, call: Call[T], *, look_first: bool = False, key_expires_at: float | None = None
    ) -> Steps[T]:
        """Send a money-moving call so that the gateway acts on it exactly once.

        `look_first` (for `reconcile`) starts with the order-id lookup instead of a send, and
        refuses a call that has no way to be repeated safely. `key_expires_at` is when the
        gateway forgets the idempotency key of a call sent before (by default: now + lifetime).
        """
        mechanism = call.exactly_once
        if key_expires_at is None and isinstance(mechanism, IdempotencyKey):
            key_expires_at = time.time() + mechanism.lifetime
        state = _Attempts(self.policy.deadline_at(), key_expires_at)
        if look_first and mechanism is None:
            raise self._unrepeatable(call, state, "it has no exactly-once mechanism")
        if look_first and isinstance(mechanism, OrderLookup):
            found = yield from self._look_up(call, mechanism, state)
            if found is not None:
                return found
        while True:
            state.number += 1
            outcome = yield from self._attempt(call, state)
            if not isinstance(outcome, _Unsettled):
                return outcome
            if isinstance(outcome.error, TransportError):  # never sent: repeating is safe
                state.tried.append(f"{call.request.operation} #{state.number}: not sent")
                yield from self._wait_or_give_up(call, state, outcome.error, outcome.retry_after)
                continue
            if isinstance(outcome.error, DuplicateOrder) and isinstance(mechanism, OrderLookup):
                state.tried.append(f"{call.request.operation} #{state.number}: order_id exists")
                found = yield from self._look_up(call, mechanism, state, refusal=outcome.error)
                if found is None:  # refused as a duplicate, yet not there: a lagging replica
                    raise self._gave_up(call, state, outcome.error)
                return found
            if outcome.processing:
                state.tried.append(f"{call.request.operation} #{state.number}: processing")
            else:
                state.unknown = self._unknown(call, outcome.error, state)
                state.tried.append(
                    f"{call.request.operation} #{state.number}: {_short(outcome.error)}"
                )
            if mechanism is None or not self.reconcile_outcomes:
                raise state.unknown or self._unknown(call, outcome.error, state)
            if isinstance(mechanism, OrderLookup) and not outcome.processing:
                found = yield from self._look_up(call, mechanism, state)
                if found is not None:
                    return found
            yield from self._wait_or_give_up(call, state, outcome.error, outcome.retry_after)

    def _attempt(self, call: Call[T], state: _Attempts) -> Steps[T | _Unsettled]:
        """One send: the result, or why there is none yet (refusals but a duplicate raise)."""
        try:
            left = self.policy.remaining(state.deadline_at)
            moving = Moving(call, state.key_expires_at)
            answer: Answer = yield Send(call.request, state.number, left, moving)
        except TLSError:
            raise
        except TransportError as error:
            return _Unsettled(error) if not error.request_sent else _Unsettled(_maybe(error))
        except InvalidResponse as error:  # too large to read: it may have said "done"
            return _Unsettled(error)
        if answer.status == 429:  # throttled before any work: not acted on
            return _Unsettled(
                TransportError(
                    "throttled (HTTP 429)", request_sent=False, request_id=answer.request_id
                ),
                retry_after=answer.retry_after,
            )
        if answer.status >= 500:
            return _Unsettled(self._read_error(call.request, answer))
        if not answer.ok:
            refusal = self._read_error(call.request, answer)
            if isinstance(refusal, DuplicateOrder) and isinstance(call.exactly_once, OrderLookup):
                return _Unsettled(refusal)  # adopted after a lookup, when it is this call's
            raise refusal
        try:
            return call.read(answer)
        except Processing as still:
            return _Unsettled(
                _maybe_answer(answer, "still processing"),
                retry_after=still.retry_after,
                processing=True,
            )
        except InvalidResponse as error:
            return _Unsettled(error)

    def _look_up(
        self,
        call: Call[T],
        mechanism: OrderLookup[T],
        state: _Attempts,
        refusal: DuplicateOrder | None = None,
    ) -> Steps[T | None]:
        """What the gateway holds under the order id, checked to be this call's; None if nothing."""
        try:
            found = yield from self.fetch(mechanism.lookup(), state.deadline_at)
        except NotFound:
            state.tried.append("lookup: not found")
            return None
        except (TransportError, ProviderError) as error:
            state.tried.append(f"lookup: {_short(error)}")
            raise self._gave_up(call, state, error) from None
        emit(
            "info",
            "paymux.reconcile",
            provider=self.provider,
            instance=self.instance,
            operation=call.request.operation,
            order_id=mechanism.order_id,
            outcome="found",
            tried=list(state.tried),
        )
        return _checked(call, mechanism, found, refusal)

    def _wait_or_give_up(
        self,
        call: Call[Any],
        state: _Attempts,
        error: PaymuxError,
        retry_after: str | float | None,
    ) -> Steps[None]:
        pause = (
            None
            if state.number >= self.policy.max_attempts
            else self.policy.next_pause(state.number, state.deadline_at, retry_after)
        )
        if pause is None:
            if state.unknown is None and isinstance(error, TransportError):
                raise error
            raise self._gave_up(call, state, error)
        yield Sleep(pause)
        acted = state.unknown is not None or not isinstance(error, TransportError)
        if acted and state.key_expires_at is not None and time.time() >= state.key_expires_at:
            tried = "; ".join(state.tried)
            raise self._unrepeatable(call, state, f"its idempotency key is forgotten: {tried}")

    def _unrepeatable(self, call: Call[Any], state: _Attempts, why: str) -> OutcomeUnknown:
        """The outcome is unknown and sending the call again could act twice."""
        last = state.unknown
        cause = PaymuxError(
            why,
            http_status=last.http_status if last else None,
            body=last.body if last else None,
            request_id=last.request_id if last else None,
        )
        return self._unknown(
            call, cause, state, "sending it again could act twice: settle it by hand"
        )

    def _unknown(
        self, call: Call[Any], cause: PaymuxError, state: _Attempts, advice: str = _RECONCILE
    ) -> OutcomeUnknown:
        mechanism = call.exactly_once
        return OutcomeUnknown(
            f"{_about(call.request.operation, cause.message)}; {advice}",
            operation=call.request.operation,
            order_id=mechanism.order_id if mechanism is not None else None,
            idempotency_key=mechanism.key if isinstance(mechanism, IdempotencyKey) else None,
            key_expires_at=state.key_expires_at,
            call=call,
            http_status=cause.http_status,
            body=cause.body,
            request_id=cause.request_id,
        )

    def _gave_up(self, call: Call[Any], state: _Attempts, error: PaymuxError) -> OutcomeUnknown:
        last = state.unknown or self._unknown(call, error, state)
        return OutcomeUnknown(
            f"{call.request.operation}: outcome unknown after {'; '.join(state.tried)}; "
            + _RECONCILE,
            operation=last.operation,
            order_id=last.order_id,
            idempotency_key=last.idempotency_key,
            key_expires_at=last.key_expires_at,
            call=call,
            http_status=last.http_status,
            body=last.body,
            request_id=last.request_id,
        )


@dataclass(frozen=True)
class _Unsettled:
    """Why an attempt produced no result: an error that may hide one, or "not sent"."""

    error: PaymuxError
    retry_after: str | float | None = None
    processing: bool = False


def _shown(body: bytes) -> Any:
    """A body for the debug log: its JSON, so that redaction sees its fields; of anything else
    only its size (an HTML page or a hostile answer is no log line)."""
    try:
        return parse_json(body)
    except ValueError:
        return f"<{len(body)} bytes, not JSON>"


def _maybe(error: TransportError) -> PaymuxError:
    return PaymuxError(error.message, request_id=error.request_id)


def _maybe_answer(answer: Answer, what: str) -> PaymuxError:
    return PaymuxError(what, http_status=answer.status, request_id=answer.request_id)


def _about(operation: str, message: str) -> str:
    """`message` headed by its operation once: the transport's and the providers' errors name it
    already, paymux's own reasons ("still processing") do not."""
    return message if message.startswith(f"{operation}: ") else f"{operation}: {message}"


def _short(error: PaymuxError) -> str:
    return error.message.split(";")[0].split(": ", 1)[-1]


def _checked(
    call: Call[T], mechanism: OrderLookup[T], found: T, refusal: DuplicateOrder | None
) -> T:
    """`found` if it is what the call asked for; `OrderConflict` if the order id is taken.

    A result showing no amount cannot be told from another: `OutcomeUnknown`, not a conflict.
    """
    operation = call.request.operation
    amount: Decimal | None = getattr(found, "amount", None)
    if amount is None:
        raise OutcomeUnknown(
            f"{operation}: what the gateway holds under order_id {mechanism.order_id!r} shows no "
            f"amount to compare with {show_money(mechanism.amount)}; call reconcile() with this "
            "error later",
            operation=operation,
            order_id=mechanism.order_id,
            call=call,
            body=dict(getattr(found, "raw", {})),
        )
    differs = []
    if amount != mechanism.amount:
        held = f"{show_money(amount)} {getattr(found, 'currency', None) or ''}".rstrip()
        differs.append(f"amount {held} instead of {show_money(mechanism.amount)}")
    differs += mechanism.differences(found)
    if differs:
        raise OrderConflict(
            f"{operation}: order_id {mechanism.order_id!r} belongs to another "
            f"({getattr(found, 'id', '?')}: {', '.join(differs)})",
            order_id=mechanism.order_id,
            payment=found,  # type: ignore[arg-type]
            http_status=refusal.http_status if refusal else None,
            body=refusal.body if refusal else None,
            request_id=refusal.request_id if refusal else None,
        )
    return found
