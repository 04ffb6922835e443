"""The YooKassa provider: one shop, HTTP Basic auth, Idempotence-Key exactly-once, two-phase
payments, refunds, and notifications trusted by their sender and a re-fetch from the API."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

from paymux import (
    Authentication,
    Incoming,
    Notification,
    Payment,
    PaymentRequest,
    PaymuxError,
    Refund,
    RefundRequest,
)
from paymux.providers.base import (
    Answer,
    Call,
    Capabilities,
    Connection,
    Lookup,
    Observers,
    Operation,
    Provider,
    Request,
    Secret,
    connection_from,
    validate_settings,
)
from paymux_yookassa import exchanges
from paymux_yookassa.errors import error_of
from paymux_yookassa.notifications import notification_of
from paymux_yookassa.settings import DEFAULT_BASE_URL, SETTINGS, YOOKASSA_SENDERS, IPNetwork

__all__ = ["DEFAULT_BASE_URL", "YOOKASSA_SENDERS", "YooKassaProvider"]


def _flag(text: str) -> bool:
    """A yes/no option given as text (on the command line)."""
    if text.strip().lower() not in ("true", "false", "1", "0", "yes", "no"):
        raise ValueError(f"{text!r} is not true or false")
    return text.strip().lower() in ("true", "1", "yes")


def _json_object(text: str) -> dict[str, Any]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object")
    return value


class YooKassaProvider(Provider):
    """One YooKassa shop. Safe to share between threads; connections are pooled."""

    name = "yookassa"
    capabilities = Capabilities(
        operations={Operation.REFUND, Operation.REFUND_STATUS, Operation.CAPTURE, Operation.CANCEL},
        status_by={Lookup.PAYMENT_ID},
        notifications={Authentication.SENDER, Authentication.REFETCH},
    )
    option_types: ClassVar[Mapping[str, Callable[[str], Any]]] = {
        "metadata": _json_object,
        "receipt": _json_object,
        "payment_method_data": _json_object,
        "save_payment_method": _flag,
        "merchant_customer_id": str,
        "locale": str,
    }

    def __init__(
        self,
        *,
        shop_id: str,
        secret_key: Secret[str],
        connection: Connection | None = None,
        instance: str = "yookassa",
        allowed_senders: Sequence[IPNetwork] = YOOKASSA_SENDERS,
        currency: str = "RUB",
        return_url: str | None = None,
        observers: Observers | None = None,
    ) -> None:
        self.shop_id = shop_id
        self.account = shop_id
        self.currency = currency
        """The currency of a payment, capture or refund that names none."""
        self.return_url = return_url
        """Where the payer returns to when a payment request has no `success_url`."""
        self._senders = tuple(allowed_senders)
        self._authorization = Secret(
            "Basic " + base64.b64encode(f"{shop_id}:{secret_key.reveal()}".encode()).decode("ascii")
        )
        super().__init__(
            instance=instance,
            connection=connection or Connection(base_url=DEFAULT_BASE_URL),
            observers=observers,
        )

    @classmethod
    def from_settings(
        cls,
        settings: Mapping[str, Any],
        *,
        instance: str,
        base_dir: Path | None = None,
        observers: Observers | None = None,
    ) -> YooKassaProvider:
        """From configuration values; docs/yookassa.md lists each setting."""
        values = validate_settings(SETTINGS, settings, instance=instance)
        return cls(
            shop_id=values["shop_id"],
            secret_key=values["secret_key"],
            connection=connection_from(values, instance=instance),
            instance=instance,
            allowed_senders=values["allowed_senders"],
            currency=values["currency"],
            return_url=values.get("return_url"),
            observers=observers,
        )

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]}, shop_id={self.shop_id!r})"

    # -- what YooKassa's calls look like --------------------------------------------------

    def authenticate(self, request: Request) -> Mapping[str, str]:
        return {"Authorization": self._authorization.reveal()}

    def read_error(self, request: Request, answer: Answer) -> PaymuxError:
        return error_of(request, answer)

    def describe_create(self, request: PaymentRequest) -> Call[Payment]:
        return exchanges.create(request, currency=self.currency, return_url=self.return_url)

    def describe_status(
        self, *, payment_id: str | None = None, order_id: str | None = None
    ) -> Call[Payment]:
        # `status` lets through only the lookups the capabilities declare: payment_id.
        return exchanges.status(str(payment_id))

    def describe_capture(
        self, payment_id: str, amount: Decimal | None, currency: str | None, idempotency_key: str
    ) -> Call[Payment]:
        return exchanges.capture(
            payment_id, amount, idempotency_key, currency=currency or self.currency
        )

    def describe_cancel(self, payment_id: str, idempotency_key: str) -> Call[Payment]:
        return exchanges.cancel(payment_id, idempotency_key)

    def describe_refund(self, request: RefundRequest) -> Call[Refund]:
        return exchanges.refund(request, currency=self.currency)

    def describe_refund_status(self, refund_id: str) -> Call[Refund]:
        return exchanges.refund_status(refund_id)

    # -- notifications --------------------------------------------------------------------

    def allowed_senders(self) -> Sequence[IPNetwork]:
        return self._senders

    def read_notification(self, incoming: Incoming) -> Notification:
        return notification_of(incoming, instance=self.instance, shop_id=self.shop_id)
