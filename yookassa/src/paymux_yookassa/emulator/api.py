"""The `/v3` API without HTTP: authentication, routing, the Idempotence-Key and request faults.

    POST /v3/payments                      create a payment        (fault operation "create")
    GET  /v3/payments/{id}                 the payment             ("status")
    POST /v3/payments/{id}/capture         capture a held payment  ("capture")
    POST /v3/payments/{id}/cancel          cancel a held payment   ("cancel")
    POST /v3/refunds                       refund a payment        ("refund")
    GET  /v3/refunds/{id}                  the refund              ("status")

Every call needs HTTP Basic auth (shop id, secret key): else 401 invalid_credentials. Every
POST needs an `Idempotence-Key` of 1 to 64 characters: else 400 invalid_request naming
`Idempotence-Key`. Within 24 hours (on the emulator's clock) the same key with the same path
and body returns the original answer (status and body) without acting again; the same key
with another path or body is refused with YooKassa's "Idempotence key duplicated". Keys belong
to their shop. Only answers of requests that acted (HTTP 200) are kept: a refused request
(4xx) leaves its key free for a corrected request.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from paymux.providers.base.faults import FaultPlan
from paymux_yookassa.emulator.faults import (
    HEADER,
    NOTIFICATION_FAULTS,
    Fault,
    faults_named,
)
from paymux_yookassa.emulator.objects import Shop
from paymux_yookassa.emulator.store import Store
from paymux_yookassa.emulator.validation import (
    checked_capture,
    checked_object,
    checked_payment,
    checked_refund,
)
from paymux_yookassa.emulator.wire import Answer, ApiError, error_body, invalid

IDEMPOTENCE_LIFETIME = 24 * 3600.0
"""Seconds YooKassa remembers an Idempotence-Key."""
MAX_IDEMPOTENCE_KEY = 64
DEFAULT_RETRY_AFTER_MS = 100
"""`retry_after` of a 202 processing answer, in milliseconds (YooKassa's example says 1800)."""
_PAYMENT = re.compile(r"/v3/payments/([^/]+)")
_PAYMENT_ACTION = re.compile(r"/v3/payments/([^/]+)/(capture|cancel)")
_REFUND = re.compile(r"/v3/refunds/([^/]+)")

_Act = Callable[[Any], dict[str, Any]]
"""What a route does with the request's JSON body: the object to answer."""
_Route = tuple[str, _Act] | Answer


@dataclass(frozen=True)
class RecordedRequest:
    """An API request as it arrived; header names are lower-case, Authorization's value hidden."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    shop_id: str | None
    """The shop it authenticated as; None when authentication failed."""

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass(frozen=True)
class _Remembered:
    fingerprint: str
    created_at: float
    answer: Answer | None
    """None while the request was accepted (202) but has not acted yet."""


class Api:
    """YooKassa API v3 in memory. Thread-safe."""

    def __init__(
        self,
        store: Store,
        faults: FaultPlan[Fault],
        *,
        retry_after_ms: int = DEFAULT_RETRY_AFTER_MS,
        stall_seconds: float = 5.0,
    ) -> None:
        self.store = store
        self.faults = faults
        self.retry_after_ms = retry_after_ms
        self.stall_seconds = stall_seconds
        self.requests: list[RecordedRequest] = []
        self._keys: dict[tuple[str, str], _Remembered] = {}
        self._record_lock = threading.Lock()

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        """Answer one API request; `headers` has lower-case names."""
        shop = self._authenticate(headers.get("authorization", ""))
        self._record(method, path, headers, body, shop)
        if shop is None:
            return ApiError(401, "invalid_credentials", "Basic authentication failed").answer()
        self.store.expire_due()
        route = self._route(method, path, shop, headers)
        if isinstance(route, Answer):
            return route
        operation, act = route
        faults = self.faults.draw(operation, asked=faults_named(headers.get(HEADER)))
        if Fault.TOO_MANY_REQUESTS in faults:
            return Answer(429, error_body("too_many_requests", "Too many requests, try later"))
        if method == "GET":
            answer = _acted(act, None)
        else:
            answer = self._post(shop, path, headers, body, faults, act)
        return self._spoiled(faults, answer)

    def _route(self, method: str, path: str, shop: Shop, headers: dict[str, str]) -> _Route:
        """The fault operation and the action of `method path`, or the error to answer."""
        found = self._routes(path, shop, faults_named(headers.get(HEADER)))
        if found is None:
            return ApiError(404, "not_found", f"No API method at {path}").answer()
        allowed, operation, act = found
        if method != allowed:
            return ApiError(405, None, f"Method {method} is not allowed here").answer()
        return operation, act

    def _routes(self, path: str, shop: Shop, asked: set[Fault]) -> tuple[str, str, _Act] | None:
        store = self.store
        if path == "/v3/payments":
            sticky = frozenset(asked & NOTIFICATION_FAULTS)

            def create(data: Any) -> dict[str, Any]:
                return store.create_payment(shop, checked_payment(data), sticky).as_json()

            return "POST", "create", create
        if path == "/v3/refunds":
            return (
                "POST",
                "refund",
                lambda data: store.create_refund(shop, checked_refund(data)).as_json(),
            )
        if action := _PAYMENT_ACTION.fullmatch(path):
            payment_id = action[1]
            if action[2] == "capture":

                def capture(data: Any) -> dict[str, Any]:
                    return store.capture(shop, payment_id, checked_capture(data)).as_json()

                return "POST", "capture", capture

            def cancel(data: Any) -> dict[str, Any]:
                checked_object(data)
                return store.cancel(shop, payment_id).as_json()

            return "POST", "cancel", cancel
        if payment := _PAYMENT.fullmatch(path):
            return "GET", "status", lambda _: store.payment(payment[1], shop).as_json()
        if refund := _REFUND.fullmatch(path):
            return "GET", "status", lambda _: store.refund(refund[1], shop).as_json()
        return None

    def _post(
        self,
        shop: Shop,
        path: str,
        headers: dict[str, str],
        body: bytes,
        faults: set[Fault],
        act: _Act,
    ) -> Answer:
        media = headers.get("content-type", "").split(";")[0].strip().lower()
        if (media or body) and media != "application/json":
            return ApiError(415, None, "Send the request body as application/json").answer()
        key = headers.get("idempotence-key", "")
        if not key:
            return invalid("Idempotence-Key", "Idempotence key is empty").answer()
        if len(key) > MAX_IDEMPOTENCE_KEY:
            description = f"Idempotence key is longer than {MAX_IDEMPOTENCE_KEY} characters"
            return invalid("Idempotence-Key", description).answer()
        try:
            data = json.loads(body) if body.strip() else {}
        except (ValueError, RecursionError):
            return invalid(None, "The request body is not valid JSON").answer()
        fingerprint = f"{path}\n{json.dumps(data, sort_keys=True, separators=(',', ':'))}"
        return self._idempotent((shop.shop_id, key), fingerprint, data, faults, act)

    def _idempotent(
        self, key: tuple[str, str], fingerprint: str, data: Any, faults: set[Fault], act: _Act
    ) -> Answer:
        """Act once per key: a repeat gets the original answer; another body is refused."""
        with self.store.lock:
            now = self.store.clock()
            remembered = self._keys.get(key)
            if remembered is not None and now - remembered.created_at >= IDEMPOTENCE_LIFETIME:
                remembered = None
            if remembered is not None and remembered.fingerprint != fingerprint:
                return invalid("Idempotence-Key", "Idempotence key duplicated").answer()
            if remembered is not None and remembered.answer is not None:
                return remembered.answer
            since = now if remembered is None else remembered.created_at
            if Fault.PROCESSING in faults:
                self._keys[key] = _Remembered(fingerprint, since, None)
                return self._processing()
            answer = _acted(act, data)
            if answer.status == 200:
                self._keys[key] = _Remembered(fingerprint, since, answer)
            else:
                self._keys.pop(key, None)
            return answer

    def _processing(self) -> Answer:
        body = {
            "type": "processing",
            "id": str(uuid.uuid4()),
            "description": "Request accepted, but not processed yet. "
            "Retry again with the same Idempotence-Key",
            "retry_after": self.retry_after_ms,
        }
        return Answer(202, body)

    def _spoiled(self, faults: set[Fault], answer: Answer) -> Answer:
        """`answer` as the request faults spoil it, after the request acted."""
        if Fault.INTERNAL_ERROR in faults:
            return Answer(500, error_body("internal_server_error", "Internal server error"))
        if Fault.DROP_CONNECTION in faults:
            return Answer(500, None)
        if Fault.STALL in faults:
            return replace(answer, stall=self.stall_seconds)
        return answer

    def _authenticate(self, authorization: str) -> Shop | None:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        shop_id, colon, secret_key = decoded.partition(":")
        return self.store.authenticate(shop_id, secret_key) if colon else None

    def _record(
        self, method: str, path: str, headers: dict[str, str], body: bytes, shop: Shop | None
    ) -> None:
        shown = {
            name: "<hidden>" if name == "authorization" else value
            for name, value in headers.items()
        }
        recorded = RecordedRequest(
            method, path, shown, body, None if shop is None else shop.shop_id
        )
        with self._record_lock:
            self.requests.append(recorded)


def _acted(act: _Act, data: Any) -> Answer:
    try:
        return Answer(200, act(data))
    except ApiError as error:
        return error.answer()
