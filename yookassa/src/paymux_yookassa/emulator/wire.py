"""YooKassa's wire shapes: error objects, answers, amounts, timestamps and object ids."""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CENT = Decimal("0.01")


class ApiError(Exception):
    """A request YooKassa refuses: its HTTP status and the error object it answers."""

    def __init__(
        self, status: int, code: str | None, description: str, parameter: str | None = None
    ) -> None:
        super().__init__(description)
        self.status = status
        self.code = code
        self.description = description
        self.parameter = parameter

    def answer(self) -> Answer:
        return Answer(self.status, error_body(self.code, self.description, self.parameter))


def invalid(parameter: str | None, description: str) -> ApiError:
    """400 invalid_request, naming the offending parameter as YooKassa does."""
    return ApiError(400, "invalid_request", description, parameter)


def error_body(code: str | None, description: str, parameter: str | None = None) -> dict[str, Any]:
    """YooKassa's error object: `{"type": "error", "id", "code", "description", "parameter"}`."""
    body: dict[str, Any] = {"type": "error", "id": str(uuid.uuid4())}
    if code is not None:
        body["code"] = code
    body["description"] = description
    if parameter is not None:
        body["parameter"] = parameter
    return body


@dataclass(frozen=True)
class Answer:
    """What the HTTP layer should do: answer `status` with `body`, or drop the connection."""

    status: int
    body: dict[str, Any] | None
    stall: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def drop(self) -> bool:
        return self.body is None

    def payload(self) -> bytes:
        return json.dumps(self.body, ensure_ascii=False).encode()


def money(value: Decimal, currency: str) -> dict[str, str]:
    """An amount object as YooKassa writes it: `{"value": "10.00", "currency": "RUB"}`."""
    return {"value": str(value.quantize(CENT, ROUND_HALF_UP)), "currency": currency}


def iso(timestamp: float) -> str:
    """UTC, ISO 8601 with milliseconds and Z, as YooKassa's `created_at`."""
    moment = datetime.fromtimestamp(timestamp, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def object_id(kind: str, now: float) -> str:
    """A 36-character id shaped like YooKassa's: time in front, `000f-5000` for payments,
    `0015-5000` for refunds, then random digits."""
    middle = "000f-5000" if kind == "payment" else "0015-5000"
    variant = secrets.choice("89ab")
    return f"{int(now) & 0xFFFFFFFF:08x}-{middle}-{variant}000-{secrets.token_hex(6)}"
