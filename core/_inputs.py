"""An operation's input as JSON and back, for the ledger: the same request, so that describing
the call again gives the same bytes."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from paymux.models import Customer, PaymentRequest, PayoutRequest, RefundRequest

_TYPES: dict[str, type[Any]] = {
    "create": PaymentRequest,
    "refund": RefundRequest,
    "payout": PayoutRequest,
}


def encode(operation: str, value: Any) -> dict[str, Any]:
    """`value` (a request, or the arguments of capture and cancel) as JSON-ready data."""
    is_request = dataclasses.is_dataclass(value) and not isinstance(value, type)
    data = dataclasses.asdict(value) if is_request else dict(value)
    return {"operation": operation, "value": _plain(data)}


def decode(data: Mapping[str, Any]) -> Any:
    """What `encode` was given: the request, or a dict of arguments."""
    value = _typed(data["value"])
    kind = _TYPES.get(data["operation"])
    if kind is None:
        return value
    if kind is PaymentRequest:
        value["customer"] = Customer(**value["customer"])
    return kind(**value)


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _typed(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$decimal"}:
            return Decimal(value["$decimal"])
        if set(value) == {"$date"}:
            return date.fromisoformat(value["$date"])
        return {key: _typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_typed(item) for item in value]
    return value
