"""Notification delivery: sign a notification, send it from a background thread, repeat it until
the shop answers HTTP 200, and record every attempt.

Payments and payouts are notified alike (the same eleven fields, signed as PHP `json_encode`
with the notification key); only `type` tells them apart. The notification faults (forged,
duplicate, stale) apply to both.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from paymux.providers.alikassa import phpjson, schemas
from paymux.providers.alikassa.keys import Signer
from paymux.providers.alikassa.sandbox.faults import Fault, asked_for
from paymux.providers.base.faults import FaultPlan

DEFAULT_RETRY_DELAYS = (0.1, 0.2, 0.4)
"""Seconds to wait before each repeat of an unanswered notification: four attempts in all."""
DELIVERY_TIMEOUT = 5.0
"""Seconds one notification attempt may take."""

Plan = list[tuple[dict[str, str], str | None]]
"""The query parameters of each first-round attempt, and the fault that added it (if one did)."""


@dataclass(frozen=True)
class Delivery:
    """One attempt to send a notification, and how the receiver answered."""

    payment_id: int
    """The id of the payment, or of the payout for a `type=payout` notification."""
    url: str
    params: dict[str, str]
    http_status: int | None
    error: str | None = None
    attempt: int = 1
    """1 for the first try, 2 for the first repeat, and so on."""
    fault: str | None = None
    """Set on a delivery a fault added: "forged", "duplicate" or "stale"."""
    kind: str = "payment"
    """The notification's `type`: "payment" or "payout"."""

    @property
    def delivered(self) -> bool:
        """The receiver answered 200: the gateway stops sending this notification."""
        return self.http_status == 200

    def as_json(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "payment_id": self.payment_id,
            "attempt": self.attempt,
            "url": self.url,
            "params": self.params,
            "http_status": self.http_status,
            "error": self.error,
            "delivered": self.delivered,
            "fault": self.fault,
        }


@dataclass(frozen=True)
class Notice:
    """What to notify about one payment or payout in its current state."""

    record_id: int
    order_id: str
    """Decides order_id-prefixed notification faults."""
    target: str | None
    """The notification URL; None or "" when there is none (nothing is sent)."""
    fields: dict[str, str]
    """The eleven signed fields (see `schemas.NOTIFICATION_FIELDS`), as text."""
    stale_fields: dict[str, str] | None = None
    """The same record's fields when it still waited: what a stale notification sends."""

    @property
    def kind(self) -> str:
        return self.fields["type"]


class Notifier:
    """Sends notifications. Thread-safe under `lock`, a condition on the lock of its gateway, so
    that a change of status and the start of its delivery happen together or not at all."""

    def __init__(
        self,
        *,
        key: rsa.RSAPrivateKey,
        digest: str,
        lock: threading.Condition,
        faults: FaultPlan[Fault],
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        omit_empty_fields: bool = False,
    ) -> None:
        self.signer = Signer(key, digest)
        self.faults = faults
        self.retry_delays = tuple(retry_delays)
        self.omit_empty_fields = omit_empty_fields
        """Leave empty nullable fields out of notifications, signed as null (the PHP way)."""
        self.deliveries: list[Delivery] = []
        self._changed = lock
        self._senders: set[threading.Thread] = set()
        self._closing = threading.Event()

    def params(self, fields: dict[str, str]) -> dict[str, str]:
        """The signed query parameters of a notification with these fields."""
        omitted = self._omitted_fields(fields)
        record_id = int(fields["id"])
        message = phpjson.dumps_bytes({**fields, "id": record_id, **dict.fromkeys(omitted)})
        sent = {name: value for name, value in fields.items() if name not in omitted}
        return {**sent, "sign": self.signer.sign(message)}

    def _omitted_fields(self, fields: dict[str, str]) -> list[str]:
        """The empty nullable fields a notification leaves out: the gateway's PHP check reads
        each as null, so it is signed as null."""
        if not self.omit_empty_fields:
            return []
        nullable = schemas.NULLABLE_NOTIFICATION_FIELDS
        return [name for name, value in fields.items() if name in nullable and value == ""]

    def wait_for_deliveries(self, count: int, timeout: float = 5.0) -> list[Delivery]:
        """Block until `count` attempts are recorded; returns them all (fewer on timeout)."""
        with self._changed:
            self._changed.wait_for(lambda: len(self.deliveries) >= count, timeout)
            return list(self.deliveries)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until no notification is being sent or waiting to be sent again."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._senders, timeout)

    def close(self) -> None:
        """Stop sending: abandon pending repeats, wait for attempts in flight."""
        self._closing.set()
        with self._changed:
            senders = list(self._senders)
        for sender in senders:
            sender.join(DELIVERY_TIMEOUT + 1)

    def schedule(self, notice: Notice) -> Future[Delivery | None] | None:
        """Start delivering `notice`; None without a URL.

        The future gives the first attempt once the first round (with whatever the notification
        faults add) is made; repeats follow in the same background thread. Raises RuntimeError,
        having started nothing, when the notifier is closed or no thread can start.
        """
        if not notice.target:
            return None
        plan = self._plan(notice)
        first: Future[Delivery | None] = Future()
        sender = threading.Thread(
            target=self._deliver,
            args=(notice, str(notice.target), plan, first),
            name=f"paymux-notify-{notice.record_id}",
            daemon=True,
        )
        with self._changed:
            if self._closing.is_set():
                raise RuntimeError("the sandbox is stopped: it sends no more notifications")
            self._senders.add(sender)
            try:
                sender.start()
            except RuntimeError:
                self._senders.discard(sender)
                raise
        return first

    def _plan(self, notice: Notice) -> Plan:
        """The genuine notification, with whatever the notification faults add around it."""
        params = self.params(notice.fields)
        faults = self.faults.draw("notification", asked=asked_for(order_id=notice.order_id))
        plan: Plan = []
        if Fault.FORGED_NOTIFICATION in faults:
            plan.append(({**params, "sign": _forged(params["sign"])}, "forged"))
        plan.append((params, None))
        if Fault.DUPLICATE_NOTIFICATION in faults:
            plan.append((params, "duplicate"))
        if Fault.STALE_NOTIFICATION in faults and notice.stale_fields is not None:
            plan.append((self.params(notice.stale_fields), "stale"))
        return plan

    def _deliver(
        self, notice: Notice, target: str, plan: Plan, first: Future[Delivery | None]
    ) -> None:
        """One round of `plan`, then repeats of the genuine notification until answered 200."""
        try:
            genuine: Delivery | None = None
            for params, fault in plan:
                delivery = self._attempt(notice, target, params, 1, fault)
                if fault is None:
                    genuine = delivery
            first.set_result(genuine)
            if genuine is not None and not genuine.delivered:
                self._repeat(notice, target, genuine.params)
        finally:
            if not first.done():
                first.set_result(None)
            with self._changed:
                self._senders.discard(threading.current_thread())
                self._changed.notify_all()

    def _repeat(self, notice: Notice, target: str, params: dict[str, str]) -> None:
        for attempt, delay in enumerate(self.retry_delays, start=2):
            if self._closing.wait(delay):
                return
            if self._attempt(notice, target, params, attempt).delivered:
                return

    def _attempt(
        self,
        notice: Notice,
        target: str,
        params: dict[str, str],
        attempt: int,
        fault: str | None = None,
    ) -> Delivery:
        url = f"{target}{'&' if '?' in target else '?'}{urlencode(params)}"
        status: int | None = None
        error: str | None = None
        try:
            status = requests.get(url, timeout=DELIVERY_TIMEOUT).status_code
        except Exception as problem:  # any failure is this attempt's outcome
            error = type(problem).__name__
        delivery = Delivery(
            notice.record_id, url, params, status, error, attempt, fault, kind=notice.kind
        )
        with self._changed:
            self.deliveries.append(delivery)
            self._changed.notify_all()
        return delivery


def _forged(sign: str) -> str:
    """A signature of the right shape that does not verify: the first byte flipped."""
    raw = bytearray(base64.b64decode(sign))
    raw[0] ^= 0xFF
    return base64.b64encode(bytes(raw)).decode("ascii")
