"""YooKassa's error answers, each turned into the paymux error a host can act on.

    {"type": "error", "id": "...", "code": "invalid_request", "description": "...",
     "parameter": "amount.value"}

| HTTP | code                   | paymux error                                        |
|------|------------------------|-----------------------------------------------------|
| 400  | invalid_request, ...   | ProviderValidationError, fields {parameter: [text]} |
| 401  | invalid_credentials    | AuthenticationError                                 |
| 403  | forbidden              | NotAllowed                                          |
| 404  | not_found              | PaymentNotFound / RefundNotFound (by operation)     |
| 429  | too_many_requests      | ProviderUnavailable (nothing was done: try later)   |
| 5xx  | internal_server_error  | ProviderServerError                                 |
| else |                        | ProviderError                                       |

The message quotes YooKassa's error `id` (what its support asks for); `request_id` stays
paymux's own `X-Request-Id`.
"""

from __future__ import annotations

from typing import Any

from paymux import (
    AuthenticationError,
    NotAllowed,
    NotFound,
    PaymentNotFound,
    PaymuxError,
    ProviderError,
    ProviderServerError,
    ProviderUnavailable,
    ProviderValidationError,
    RefundNotFound,
)
from paymux.providers.base import Answer, Request

_NOT_FOUND: dict[str, type[NotFound]] = {
    "status": PaymentNotFound,
    "capture": PaymentNotFound,
    "cancel": PaymentNotFound,
    "refund": PaymentNotFound,
    "refund_status": RefundNotFound,
}
_BY_STATUS: dict[int, type[ProviderError]] = {
    401: AuthenticationError,
    403: NotAllowed,
    429: ProviderUnavailable,
}


def error_of(request: Request, answer: Answer) -> PaymuxError:
    """The typed error for YooKassa's non-2xx `answer` to `request`."""
    body = _body(answer)
    error = body if isinstance(body, dict) else {}
    code = _text(error.get("code"))
    description = _text(error.get("description")) or f"HTTP {answer.status}"
    parameter = _text(error.get("parameter"))
    message = f"{request.operation}: YooKassa refused"
    message += f" ({code})" if code else ""
    message += f": {description}"
    if parameter:
        message += f" [parameter {parameter}]"
    if error.get("id"):
        message += f" (YooKassa error id {_text(error['id'])})"
    exchange: dict[str, Any] = {
        "http_status": answer.status,
        "body": body,
        "request_id": answer.request_id,
    }
    if answer.status == 400:
        return ProviderValidationError(
            message, fields={parameter or "_schema": [description]}, **exchange
        )
    if answer.status == 404:
        return _NOT_FOUND.get(request.operation, NotFound)(message, **exchange)
    if answer.status >= 500:
        return ProviderServerError(message, **exchange)
    return _BY_STATUS.get(answer.status, ProviderError)(message, **exchange)


def _body(answer: Answer) -> Any:
    """The answer's JSON, or its text when it is not JSON (a proxy's HTML page)."""
    try:
        return answer.data
    except ProviderError:
        return answer.body[:1000].decode("utf-8", errors="replace")


def _text(value: Any) -> str:
    return "" if value is None else str(value)[:500]
