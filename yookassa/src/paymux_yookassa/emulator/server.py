"""The YooKassa emulator over real HTTP on loopback.

    with Emulator(webhook_url=receiver_url) as emulator:
        provider = paymux.connect(emulator.settings())

`settings()` gives `base_url` = the emulator's origin (`http://127.0.0.1:PORT`): the API is at
`base_url + "/v3/..."`, as YooKassa's is at `https://api.yookassa.ru/v3/...`.

Payer: `GET /pay/<id>` (the payment's `confirmation.confirmation_url`) is the payment page;
`POST /pay/<id>` with `action=pay|decline|cancel` settles it and answers 303 to `return_url`.

Control API (the emulator's own, for tests and demos; no authentication):
`GET /emulator/payments`, `GET /emulator/refunds`, `GET /emulator/deliveries` list what the
emulator holds; `POST /emulator/payments/<id>/settle` with `{"status": "waiting_for_capture" |
"succeeded" | "canceled", "reason": ..., "party": ...}` moves a payment on (400 for a move its
status does not allow, 404 for an unknown payment); `POST /emulator/refunds/<id>/settle` with
`{"status": "succeeded" | "canceled"}` finishes a pending refund; `POST /emulator/expire`
applies every expiry due. Each settle answers once the first notification attempt is made.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from decimal import Decimal
from types import TracebackType
from typing import Any

from paymux.providers.base.loopback import (
    IDLE_TIMEOUT,
    MAX_CONNECTIONS,
    LoopbackServer,
)
from paymux_yookassa.emulator.api import DEFAULT_RETRY_AFTER_MS, Api, RecordedRequest
from paymux_yookassa.emulator.faults import Fault, fault_plan
from paymux_yookassa.emulator.handler import Handler
from paymux_yookassa.emulator.objects import Shop, StoredPayment, StoredRefund
from paymux_yookassa.emulator.store import (
    DEFAULT_COMMISSION,
    DEFAULT_CONFIRMATION_PERIOD,
    DEFAULT_HOLD_PERIOD,
    Store,
)
from paymux_yookassa.emulator.webhooks import (
    DEFAULT_FORGED_SENDER,
    DEFAULT_RETRY_DELAYS,
    DEFAULT_SENDER,
    Delivery,
    Notifier,
)
from paymux_yookassa.emulator.wire import ApiError


class Emulator:
    """A running YooKassa API v3 emulator on a free loopback port (a context manager).

    It starts with one shop (`shop`), from `shop_id` and `secret_key` or generated; add more
    with `add_shop`. `clock` (default `time.time`) decides the 24 hours of an Idempotence-Key,
    the hold period and the confirmation period: pass one you can move forward.
    Notifications go to each shop's `webhook_url`, else to `webhook_url`, from
    `sender_address`; an unanswered one is repeated after each of `retry_delays`.
    `fault_rates` and `fault_seed` make a share of creates misbehave (see `faults`).
    `pending_refunds` makes refunds start `pending` until `settle_refund`.
    """

    def __init__(
        self,
        *,
        shop_id: str | None = None,
        secret_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
        webhook_url: str | None = None,
        sender_address: str = DEFAULT_SENDER,
        forged_sender_address: str = DEFAULT_FORGED_SENDER,
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        fault_rates: Mapping[Fault, float] | None = None,
        fault_seed: int | None = None,
        hold_period: float = DEFAULT_HOLD_PERIOD,
        confirmation_period: float = DEFAULT_CONFIRMATION_PERIOD,
        commission_rate: Decimal = DEFAULT_COMMISSION,
        pending_refunds: bool = False,
        retry_after_ms: int = DEFAULT_RETRY_AFTER_MS,
        stall_seconds: float = 5.0,
        max_connections: int = MAX_CONNECTIONS,
        idle_timeout: float = IDLE_TIMEOUT,
    ) -> None:
        self._server = LoopbackServer(
            Handler,
            host,
            port,
            context=self,
            max_connections=max_connections,
            idle_timeout=idle_timeout,
        )
        self.faults = fault_plan(fault_rates, seed=fault_seed)
        """The fault plan: `inject`, `set_rate`, `clear`."""
        self.notifier = Notifier(
            faults=self.faults,
            sender_address=sender_address,
            forged_sender_address=forged_sender_address,
            retry_delays=retry_delays,
        )
        self.store = Store(
            notifier=self.notifier,
            page_url=self.url,
            clock=clock,
            hold_period=hold_period,
            confirmation_period=confirmation_period,
            commission_rate=commission_rate,
            pending_refunds=pending_refunds,
        )
        self.store.webhook_url = webhook_url
        self.api = Api(
            self.store, self.faults, retry_after_ms=retry_after_ms, stall_seconds=stall_seconds
        )
        self.shop = self.add_shop(shop_id, secret_key)

    @property
    def url(self) -> str:
        return self._server.origin

    @property
    def sender_address(self) -> str:
        return self.notifier.sender_address

    @property
    def webhook_url(self) -> str | None:
        """Where notifications go for shops without a `webhook_url` of their own."""
        return self.store.webhook_url

    @webhook_url.setter
    def webhook_url(self, url: str | None) -> None:
        self.store.webhook_url = url

    @property
    def stall_seconds(self) -> float:
        return self.api.stall_seconds

    @stall_seconds.setter
    def stall_seconds(self, seconds: float) -> None:
        self.api.stall_seconds = seconds

    def start(self) -> Emulator:
        self._server.start("yookassa-emulator")
        return self

    def stop(self) -> None:
        self._server.stop()
        self.notifier.close()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- shops ----------------------------------------------------------------------------

    def add_shop(
        self,
        shop_id: str | None = None,
        secret_key: str | None = None,
        *,
        webhook_url: str | None = None,
    ) -> Shop:
        """Register a shop; a numeric id and a `test_...` secret key are made when not given."""
        with self.store.lock:
            shop_id = shop_id or self._new_number()
            if shop_id in self.store.shops:
                raise ValueError(f"shop {shop_id} exists already")
            secret_key = secret_key or f"test_{secrets.token_urlsafe(32)}"
            shop = Shop(shop_id, secret_key, self._new_number(), webhook_url)
            shop.settings = {
                "provider": "yookassa",
                "shop_id": shop_id,
                "secret_key": secret_key,
                "base_url": self.url,
                "allowed_senders": [f"{self.sender_address}/32"],
            }
            self.store.shops[shop_id] = shop
            return shop

    def settings(self, shop: Shop | None = None) -> dict[str, Any]:
        """The provider settings to connect to `shop` (the first shop by default)."""
        return dict((shop or self.shop).settings)

    def _new_number(self) -> str:
        taken = {shop.gateway_id for shop in self.store.shops.values()} | set(self.store.shops)
        while (number := str(100_000 + secrets.randbelow(900_000))) in taken:
            pass
        return number

    # -- inspection and control -----------------------------------------------------------

    @property
    def payments(self) -> list[StoredPayment]:
        """Every payment, of every shop, in the order they were created."""
        return self.store.payments()

    def payment(self, payment_id: str) -> StoredPayment:
        """One payment (KeyError for an unknown id); `.as_json()` is what the API answers."""
        try:
            return self.store.payment(payment_id)
        except ApiError as error:
            raise KeyError(payment_id) from error

    @property
    def refunds(self) -> list[StoredRefund]:
        return self.store.refunds()

    def refund(self, refund_id: str) -> StoredRefund:
        try:
            return self.store.refund(refund_id)
        except ApiError as error:
            raise KeyError(refund_id) from error

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every API request received, in order (Authorization's value hidden)."""
        return list(self.api.requests)

    @property
    def deliveries(self) -> list[Delivery]:
        """Every notification attempt, in order (repeats and faults' additions included)."""
        return list(self.notifier.deliveries)

    def wait_for_deliveries(self, count: int, timeout: float = 5.0) -> list[Delivery]:
        """Block until `count` notification attempts are recorded; returns them all."""
        return self.notifier.wait_for_deliveries(count, timeout)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until no notification is in flight or waiting to be repeated."""
        return self.notifier.wait_idle(timeout)

    def settle(
        self,
        payment_id: str,
        status: str,
        reason: str | None = None,
        *,
        party: str | None = None,
        wait: bool = True,
    ) -> Delivery | None:
        """Move a payment to `waiting_for_capture`, `succeeded` or `canceled` (with a
        documented `reason`, `general_decline` by default), as the payer or the bank would.

        With `wait`, returns the first genuine notification attempt (None without a webhook
        URL); repeats follow in the background.
        """
        return _first(self.store.settle(payment_id, status, reason, party), wait)

    def settle_refund(
        self, refund_id: str, status: str = "succeeded", *, wait: bool = True
    ) -> Delivery | None:
        """Finish a pending refund (see `pending_refunds`)."""
        return _first(self.store.settle_refund(refund_id, status), wait)

    def expire_due(self) -> list[StoredPayment]:
        """Cancel every payment whose confirmation time or hold has run out on the clock."""
        return self.store.expire_due()

    def inject(self, fault: Fault, *, on: str | None = None, times: int = 1) -> None:
        """Show `fault` on the next `times` requests of `on` (see `FAULT_OPERATIONS`)."""
        self.faults.inject(fault, on=on, times=times)


def _first(future: Future[Delivery | None] | None, wait: bool) -> Delivery | None:
    return future.result() if future is not None and wait else None
