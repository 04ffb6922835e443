"""What goes into and out of the sandbox's merchant API: recorded requests, answers, and the
ways faults spoil an answer. Shared by payments, payouts and the balance call."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from paymux.providers.alikassa.sandbox.faults import Fault

INVALID_DATA = "The given data was invalid."
NINE_PLACES = Decimal("0.000000001")


@dataclass(frozen=True)
class RecordedRequest:
    """A request the gateway received, as it arrived (headers include `Sign`)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Answer:
    """What the HTTP layer should do: answer `status` with `body`, or drop the connection."""

    status: int
    body: dict[str, Any] | None
    stall: float = 0.0
    raw: bytes | None = None
    """Bytes to send instead of `body` as JSON (a fault's broken answer)."""
    content_type: str = "application/json"

    @property
    def drop(self) -> bool:
        return self.body is None and self.raw is None

    def payload(self) -> bytes:
        if self.raw is not None:
            return self.raw
        return json.dumps(self.body, default=_json_text).encode()


def _json_text(value: object) -> str:
    """A Decimal kept from a request (a JSON float read exactly) is shown as its text."""
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def misbehave(faults: set[Fault], answer: Answer, stall_seconds: float) -> Answer:
    """`answer` as the request faults in `faults` spoil it."""
    if Fault.INTERNAL_ERROR in faults:
        return Answer(500, {"message": "Internal server error"})
    if Fault.DROP_CONNECTION in faults:
        return Answer(500, None)
    if Fault.HTML_ANSWER in faults:
        page = b"<html><body><h1>502 Bad Gateway</h1><p>nginx</p></body></html>"
        return Answer(200, None, raw=page, content_type="text/html")
    if Fault.TRUNCATED_JSON in faults:
        whole = answer.payload()
        return Answer(200, None, raw=whole[: len(whole) // 2])
    if Fault.STALL in faults:
        return dataclasses.replace(answer, stall=stall_seconds)
    return answer


def invalid(errors: dict[str, Any]) -> Answer:
    """Laravel's validation failure, as the gateway answers it."""
    return Answer(400, {"message": INVALID_DATA, "errors": errors})


def nine(amount: Decimal | None) -> str | None:
    """Amounts in answers: strings with nine decimals, as AliKassa writes them (never in
    exponent form: zero is "0.000000000")."""
    return None if amount is None else format(Decimal(amount).quantize(NINE_PLACES), "f")


def plain(amount: Decimal) -> str:
    """An amount in a message, without trailing zeros: `Minimum amount 100`."""
    return format(amount.normalize(), "f")


def order_id_as_text(data: dict[str, Any]) -> dict[str, Any]:
    """`data` with an integer order_id as its decimal text: AliKassa's Go sample sends a number."""
    order_id = data.get("order_id")
    if isinstance(order_id, int) and not isinstance(order_id, bool):
        return {**data, "order_id": str(order_id)}
    return data


class _Owned(Protocol):
    account: str


Owned = TypeVar("Owned", bound=_Owned)


def looked_up(
    query: Mapping[str, str],
    account: str,
    by_id: Mapping[int, Owned],
    by_order: Mapping[tuple[str, str], Owned],
) -> Owned | None:
    """What a status body asks for — by `id` (digits only) or by `order_id` — if it is
    `account`'s; None otherwise, as the gateway answers "not found" for another's."""
    if "id" in query:
        found = by_id.get(int(query["id"])) if query["id"].isdigit() else None
    else:
        found = by_order.get((account, query["order_id"]))
    return found if found is not None and found.account == account else None
