"""Notification delivery: JSON POSTs from a chosen source address, repeated until answered 200.

YooKassa signs nothing: a shop trusts a notification by the sender's IP address and/or by
asking the API. So the emulator sends each one from `sender_address` (127.0.0.2 by default;
all of 127.0.0.0/8 is loopback on Linux, so the receiver sees that address as the peer), and
forged ones from `forged_sender_address`. Every attempt is recorded in `deliveries`.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from paymux.providers.base.faults import FaultPlan
from paymux_yookassa.emulator.faults import Fault

DEFAULT_RETRY_DELAYS = (0.1, 0.2, 0.4)
"""Seconds before each repeat of an unanswered notification: four attempts in all."""
DELIVERY_TIMEOUT = 5.0
"""Seconds one attempt may take."""
DEFAULT_SENDER = "127.0.0.2"
DEFAULT_FORGED_SENDER = "127.0.0.99"


@dataclass(frozen=True)
class Delivery:
    """One attempt to deliver a notification, and how the receiver answered."""

    event: str
    object_id: str
    url: str
    sender: str
    status_code: int | None
    body: dict[str, Any]
    attempt: int = 1
    """1 for the first try, 2 for the first repeat, and so on."""
    fault: str | None = None
    """Set on a delivery a fault added: "forged_sender", "forged_status", "duplicate", "stale"."""
    error: str | None = None
    """Why no answer came (the exception's name), when none did."""

    @property
    def delivered(self) -> bool:
        """The receiver answered 200: YooKassa stops sending this notification."""
        return self.status_code == 200

    def as_json(self) -> dict[str, Any]:
        return {
            "event": self.event,
            "object_id": self.object_id,
            "url": self.url,
            "sender": self.sender,
            "status_code": self.status_code,
            "attempt": self.attempt,
            "fault": self.fault,
            "error": self.error,
        }


_Step = tuple[dict[str, Any], str, str | None]
"""One delivery of a plan: the body, the sender address, and the fault that added it."""


class Notifier:
    """Sends notifications from background threads. Thread-safe."""

    def __init__(
        self,
        *,
        faults: FaultPlan[Fault],
        sender_address: str = DEFAULT_SENDER,
        forged_sender_address: str = DEFAULT_FORGED_SENDER,
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        timeout: float = DELIVERY_TIMEOUT,
    ) -> None:
        self.faults = faults
        self.sender_address = sender_address
        self.forged_sender_address = forged_sender_address
        self.retry_delays = tuple(retry_delays)
        self.timeout = timeout
        self.deliveries: list[Delivery] = []
        self._previous: dict[str, dict[str, Any]] = {}
        """The last genuine payment notification per payment id, for stale repeats."""
        self._changed = threading.Condition()
        self._senders: set[threading.Thread] = set()
        self._closing = threading.Event()

    def notify(
        self, url: str, body: dict[str, Any], *, payment_id: str, asked: frozenset[Fault]
    ) -> Future[Delivery | None]:
        """Start delivering `body` to `url`; the future gives the first genuine attempt.

        `asked` are notification faults stuck to the payment; others are drawn from the plan.
        Raises RuntimeError, having started nothing, once the emulator is stopping.
        """
        first: Future[Delivery | None] = Future()
        with self._changed:
            if self._closing.is_set():
                raise RuntimeError("the emulator is stopped: it sends no more notifications")
            plan = self._plan(body, payment_id, self.faults.draw("notification", asked=asked))
            sender = threading.Thread(
                target=self._deliver, args=(url, plan, first), name="yookassa-notify", daemon=True
            )
            self._senders.add(sender)
            try:
                sender.start()
            except RuntimeError:
                self._senders.discard(sender)
                raise
            if body["event"].startswith("payment."):
                self._previous[payment_id] = body
        return first

    def _plan(self, body: dict[str, Any], payment_id: str, faults: set[Fault]) -> list[_Step]:
        """The genuine notification, with whatever the notification faults add around it."""
        genuine = self.sender_address
        plan: list[_Step] = []
        if Fault.FORGED_NOTIFICATION in faults:
            plan.append((body, self.forged_sender_address, "forged_sender"))
            if body["event"].startswith("payment."):
                plan.append((_unconfirmed(body), genuine, "forged_status"))
        plan.append((body, genuine, None))
        if Fault.DUPLICATE_NOTIFICATION in faults:
            plan.append((body, genuine, "duplicate"))
        previous = self._previous.get(payment_id)
        if Fault.STALE_NOTIFICATION in faults and previous is not None:
            plan.append((previous, genuine, "stale"))
        return plan

    def wait_for_deliveries(self, count: int, timeout: float = 5.0) -> list[Delivery]:
        """Block until `count` attempts are recorded; returns them all (fewer on timeout)."""
        with self._changed:
            self._changed.wait_for(lambda: len(self.deliveries) >= count, timeout)
            return list(self.deliveries)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until nothing is being sent or waiting to be sent again; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._senders, timeout)

    def close(self) -> None:
        """Stop sending: abandon pending repeats, wait for attempts in flight."""
        with self._changed:
            self._closing.set()
            senders = list(self._senders)
        for sender in senders:
            sender.join(self.timeout + 1)

    def _deliver(self, url: str, plan: list[_Step], first: Future[Delivery | None]) -> None:
        """One round of `plan`, then repeats of the genuine notification until answered 200."""
        try:
            genuine: Delivery | None = None
            for body, sender, fault in plan:
                delivery = self._attempt(url, body, sender, 1, fault)
                if fault is None:
                    genuine = delivery
            first.set_result(genuine)
            if genuine is not None and not genuine.delivered:
                self._repeat(url, genuine.body)
        finally:
            if not first.done():
                first.set_result(None)
            with self._changed:
                self._senders.discard(threading.current_thread())
                self._changed.notify_all()

    def _repeat(self, url: str, body: dict[str, Any]) -> None:
        for attempt, delay in enumerate(self.retry_delays, start=2):
            if self._closing.wait(delay):
                return
            if self._attempt(url, body, self.sender_address, attempt).delivered:
                return

    def _attempt(
        self, url: str, body: dict[str, Any], sender: str, attempt: int, fault: str | None = None
    ) -> Delivery:
        status, error = self._post(url, body, sender)
        event, object_id = str(body["event"]), str(body["object"]["id"])
        delivery = Delivery(event, object_id, url, sender, status, body, attempt, fault, error)
        with self._changed:
            self.deliveries.append(delivery)
            self._changed.notify_all()
        return delivery

    def _post(self, url: str, body: dict[str, Any], sender: str) -> tuple[int | None, str | None]:
        """POST `body` as JSON from `sender`: the status answered, or why there was none."""
        parts = urlsplit(url)
        kind = {"http": http.client.HTTPConnection, "https": http.client.HTTPSConnection}
        if parts.scheme not in kind or not parts.hostname:
            return None, "UnsupportedURL"
        connection = kind[parts.scheme](
            parts.hostname, parts.port, timeout=self.timeout, source_address=(sender, 0)
        )
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        payload = json.dumps(body, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "YooKassa emulator"}
        try:
            connection.request("POST", target, body=payload, headers=headers)
            answer = connection.getresponse()
            answer.read()
            return answer.status, None
        except Exception as error:  # any failure is this attempt's outcome
            return None, type(error).__name__
        finally:
            connection.close()


def _unconfirmed(body: dict[str, Any]) -> dict[str, Any]:
    """A payment notification claiming a status the API does not confirm (its own is other)."""
    claimed = dict(body["object"])
    for field in ("cancellation_details", "expires_at", "confirmation"):
        claimed.pop(field, None)
    if claimed["status"] != "succeeded":
        claimed.update(status="succeeded", paid=True)
    else:
        reason = {"party": "merchant", "reason": "canceled_by_merchant"}
        claimed.update(status="canceled", paid=False, refundable=False, cancellation_details=reason)
    return {"type": "notification", "event": f"payment.{claimed['status']}", "object": claimed}
