"""Payments as the sandbox keeps them: the services that take them, what is stored, and the
checks a settle makes. No HTTP and no locking here: `gateway` does that."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from paymux.providers.alikassa.sandbox.answers import nine, plain

DEFAULT_LIFETIME = 3600
"""Seconds a payment waits for its customer when the create request gives no `lifetime`."""
FINAL_STATUSES = ("paid", "cancel", "fail")
DETAIL_TYPES = (str, int, type(None))
"""What a settle `details` value may be: it lands as it is in the status answer."""
TEST_CARD_HOLDER = "IVAN PETROV"
TEST_CARD_BANK = "Sandbox Bank"


@dataclass(frozen=True)
class Service:
    """A payment method the sandbox accepts, with its currency and amount limits."""

    code: str
    currency: str
    minimum: Decimal = Decimal("1")
    maximum: Decimal = Decimal("100000")
    required: tuple[str, ...] = ()
    """Fields this service needs beyond the documented required ones (a `virtual_account_*`
    service needs no `customer_browser_user_agent`: see `schemas.needs_user_agent`)."""
    card_transfer: bool = False
    """Host-to-host: the create answers with a card for the payer to transfer to (`cardNumber`,
    `cardHolderName`, `bank`) instead of a payment page `url`."""


DEFAULT_SERVICES = (
    Service("payment_card_rub_hpp", "RUB", Decimal("100"), Decimal("5000")),
    Service("payment_card_eur_card", "EUR", Decimal("1"), Decimal("10000")),
    Service("payment_card_usd_card", "USD", Decimal("1"), Decimal("10000")),
    Service("payment_sbp_rub", "RUB", Decimal("10"), Decimal("100000"), ("customer_phone",)),
    Service(
        "payment_card_number_rub_card", "RUB", Decimal("100"), Decimal("100000"), card_transfer=True
    ),
    Service("virtual_account_rub_hpp", "RUB", Decimal("100"), Decimal("100000")),
)


@dataclass
class StoredPayment:
    """A payment as the gateway keeps it."""

    id: int
    uuid: str
    account: str
    request: dict[str, Any]
    """The create body as received, fields the gateway has no rule for included."""
    service: Service
    url: str | None
    """The payment page; None for a card-transfer service."""
    status: str = "wait"
    payment_amount: Decimal | None = None
    commission_amount: Decimal | None = None
    details: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    """When the gateway created it, on the gateway's clock (seconds)."""
    expired: bool = False
    """True when it was canceled because its lifetime ran out before the customer paid."""
    transfer_to: dict[str, str] = field(default_factory=dict)
    """For a card-transfer service, the card the create answered with (`cardNumber`, ...)."""

    @property
    def order_id(self) -> str:
        return str(self.request["order_id"])

    @property
    def lifetime(self) -> int:
        """Seconds the customer has to pay (the request's `lifetime`, an hour by default)."""
        return int(self.request.get("lifetime") or DEFAULT_LIFETIME)

    @property
    def expires_at(self) -> float:
        return self.created_at + self.lifetime

    @property
    def description(self) -> str:
        return str(self.request.get("desc") or "")

    @property
    def success_url(self) -> str | None:
        return _text_or_none(self.request.get("success_redirect_url"))

    @property
    def fail_url(self) -> str | None:
        return _text_or_none(self.request.get("fail_redirect_url"))

    @property
    def return_url(self) -> str | None:
        """Where the customer goes back to: the success URL once paid, else the fail URL."""
        return self.success_url if self.status == "paid" else self.fail_url

    @property
    def amount(self) -> Decimal:
        return Decimal(str(self.request["amount"]))

    @property
    def is_partial(self) -> bool:
        return self.payment_amount is not None and self.payment_amount < self.amount

    def created_body(self) -> dict[str, Any]:
        """The `v1/payment` answer: the payment page `url`, or the card to transfer to."""
        page = {"url": self.url} if self.url is not None else {}
        created = {"payment_status": self.status, "id": self.id, "uuid": self.uuid}
        return {**page, **created, **self.transfer_to}

    @property
    def credited(self) -> Decimal | None:
        """What the payment brings the account: the sum paid less the commission."""
        if self.payment_amount is None:
            return None
        return self.payment_amount - (self.commission_amount or 0)

    def notification_fields(self) -> dict[str, str]:
        """The eleven signed notification fields for the payment's current state, as text."""
        return {
            "type": "payment",
            "id": str(self.id),
            "order_id": self.order_id,
            "payment_status": self.status,
            "amount": nine(self.amount) or "",
            "payment_amount": nine(self.payment_amount) or "",
            "commission_amount": nine(self.commission_amount) or "",
            "is_partial_payment": "1" if self.is_partial else "0",
            "account": self.account,
            "service": self.service.code,
            "desc": str(self.request.get("desc", "")),
        }

    def status_body(self) -> dict[str, Any]:
        """The documented `v1/payment/status` answer."""
        return {
            "url": self.url,
            "antiFraud": False,
            "payment_status": self.status,
            "id": self.id,
            "order_id": self.order_id,
            "amount": nine(self.amount),
            "payment_amount": nine(self.payment_amount),
            "is_partial_payment": self.is_partial,
            "hold_amount": "",
            "hold_at": None,
            "account_payment_amount": nine(self.credited),
            "commission_amount": nine(self.commission_amount),
            "currency": self.service.currency,
            "service_code": self.service.code,
            "account_old_balance": None,
            "account_new_balance": None,
            "crypto_network": None,
            "crypto_txid": None,
            "customer_phone": self.request.get("customer_phone"),
            "customer_card_number": self.details.get("customer_card_number"),
            "payment_error_message": self.details.get("payment_error_message"),
            "card_number": self.details.get("card_number"),
            "card_holder_name": self.details.get("card_holder_name"),
            "bank": self.details.get("bank"),
            "bik_bank": None,
        }


class PaymentClosed(ValueError):
    """The payment no longer waits for its customer: it is paid, canceled, failed or expired."""

    def __init__(self, payment: StoredPayment) -> None:
        self.payment = payment
        reason = " (its lifetime ran out)" if payment.expired else ""
        super().__init__(f"payment {payment.id} is already {payment.status}{reason}")


def checked_paid_amount(value: object, payment: StoredPayment) -> Decimal:
    """The paid sum of a settle: the whole amount by default, else above 0 and at most it."""
    if value is None:
        return payment.amount
    paid = _decimal_or_none(value)
    exponent = paid.as_tuple().exponent if paid is not None else None
    if paid is None or not isinstance(exponent, int) or exponent < -2 or paid <= 0:
        raise ValueError(f"paid_amount must be above 0, with at most two decimals, not {value!r}")
    if paid > payment.amount:
        raise ValueError(
            f"paid_amount {paid} is more than the payment's amount {plain(payment.amount)}"
        )
    return paid


def _decimal_or_none(value: object) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, str)):
        return None
    try:
        return Decimal(value)
    except ArithmeticError:
        return None


def checked_details(details: object) -> dict[str, Any]:
    """Settle `details` as the status answer will show them: names to text, numbers or None."""
    if details is None:
        return {}
    if not isinstance(details, dict) or not all(
        isinstance(name, str) and isinstance(value, DETAIL_TYPES) for name, value in details.items()
    ):
        raise ValueError("details must map field names to text, whole numbers or null")
    return dict(details)


def transfer_card() -> dict[str, str]:
    """A card to transfer to, as a card-number service answers: a random Luhn-valid number."""
    number = "2200" + "".join(str(secrets.randbelow(10)) for _ in range(11))
    return {
        "cardNumber": number + _luhn_check_digit(number),
        "cardHolderName": TEST_CARD_HOLDER,
        "bank": TEST_CARD_BANK,
    }


def _luhn_check_digit(digits: str) -> str:
    """The digit that makes `digits` + it pass the Luhn check."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char) * (2 if position % 2 == 0 else 1)
        total += digit - 9 if digit > 9 else digit
    return str(-total % 10)


def _text_or_none(value: Any) -> str | None:
    return str(value) if value else None
