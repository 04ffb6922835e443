"""How a provider describes one exchange with its gateway; core's runner executes it.

A provider never sends anything itself. For each operation it returns a `Call`: the `Request`
(method, path, headers, body), how to `read` a successful `Answer`, and, for a call that moves
money, how the gateway makes it exactly-once — `OrderLookup` (find it by the shop's order id
after a lost answer, re-send the same bytes if it is not there) or `IdempotencyKey` (re-send the
same bytes with the same key). Secrets (signatures, passwords) are added at send time by
`Provider.authenticate`, so a described call can be kept, logged and repeated without them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from typing import Any, Generic, TypeVar

from paymux.errors import InvalidResponse

T = TypeVar("T")

__all__ = ["Answer", "Call", "IdempotencyKey", "OrderLookup", "Processing", "Request"]


@dataclass(frozen=True)
class Request:
    """One HTTP request to the gateway, without its secrets.

    `path` is appended to the instance's `base_url` (`v1/payment`, `v3/payments/123`); `query`
    goes after a `?`; `headers` are those that carry no secret (the provider's `authenticate`
    adds the rest when the request is sent, every time it is sent).
    """

    operation: str
    method: str
    path: str
    body: bytes = field(default=b"", repr=False)
    """Kept out of the repr: it may carry a card number or the customer's data."""
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Answer:
    """The gateway's raw answer: status, the headers a provider may read, the body's bytes."""

    status: int
    body: bytes
    request_id: str
    headers: Mapping[str, str] = field(default_factory=dict)
    """Header names in lower case."""

    @property
    def retry_after(self) -> str | None:
        """The `Retry-After` header as sent (seconds or an HTTP date)."""
        return self.headers.get("retry-after")

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @cached_property
    def data(self) -> Any:
        """The body as JSON (decimals kept exact), decoded once; `InvalidResponse` if it is not,
        or is nested deeper than any gateway's answer (a hostile one)."""
        try:
            return parse_json(self.body)
        except ValueError:
            raise InvalidResponse(
                "the answer is not JSON", http_status=self.status, request_id=self.request_id
            ) from None

    def json_object(self) -> dict[str, Any]:
        """`data`, which must be a JSON object."""
        value = self.data
        if not isinstance(value, dict):
            raise InvalidResponse(
                "the answer is not a JSON object",
                http_status=self.status,
                body=value,
                request_id=self.request_id,
            )
        return value


MAX_DEPTH = 32
"""How deeply a gateway's JSON may nest: far beyond any real answer, far short of a stack."""


def parse_json(body: bytes) -> Any:
    """`body` as JSON with exact decimals; ValueError when it is not JSON or nests too deep."""
    try:
        value = json.loads(body, parse_float=Decimal)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise ValueError("not JSON") from None
    level, depth = [value], 0
    while level:
        depth += 1
        if depth > MAX_DEPTH:
            raise ValueError(f"nested deeper than {MAX_DEPTH}")
        level = [
            child
            for item in level
            if isinstance(item, (dict, list))
            for child in (item.values() if isinstance(item, dict) else item)
        ]
    return value


@dataclass(frozen=True)
class OrderLookup(Generic[T]):
    """Exactly-once by the shop's order id: after a lost answer, `lookup()` describes the call
    that finds what the gateway holds under `order_id`; when it raises `NotFound` the very same
    request is sent again; when the gateway refuses a create as a duplicate order
    (`DuplicateOrder`), the one it holds is looked up and adopted.

    A result found is checked before it is returned as this call's: its `amount` must equal
    `amount`, and `differences(result)` (the provider's own checks, e.g. the payment method)
    must be empty; otherwise `OrderConflict`.
    """

    order_id: str
    amount: Decimal
    lookup: Callable[[], Call[T]]
    differences: Callable[[T], list[str]] = lambda result: []


@dataclass(frozen=True)
class IdempotencyKey:
    """Exactly-once by a key the gateway remembers for `lifetime` seconds: the same request with
    the same `key` returns the first result instead of acting again, so a lost answer is
    settled by sending it again. The provider puts `key` in its request (a header)."""

    key: str
    lifetime: float
    order_id: str | None = None
    """The shop's order id, if the call has one: `OutcomeUnknown` names it for people."""


@dataclass(frozen=True)
class Call(Generic[T]):
    """One operation's exchange, as a provider describes it.

    `read(answer)` turns a 2xx answer into the result (raising `InvalidResponse` when it cannot,
    or `Processing` when the gateway asks to be asked again); other answers go to the
    provider's `read_error`. `exactly_once` is set on a call that moves money (create, refund,
    capture, cancel, payout): without it such a call is never sent twice.
    """

    request: Request
    read: Callable[[Answer], T]
    exactly_once: OrderLookup[T] | IdempotencyKey | None = None


class Processing(Exception):
    """Raised by `Call.read`: the gateway is still working on this request; send the same one
    again (same bytes, same key) after `retry_after` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"still processing; ask again in {retry_after} s")
        self.retry_after = retry_after
