"""AliKassa's wire format: every request field, and the rules every answer's values follow.

The same schemas check what paymux sends (before any network call) and what the sandbox
receives, so the two can never disagree about a rule. The answers read on every call (a
payment created, a status) and the notifications are read field by field in `responses` and
`notifications` with `wire_decimal` and `flag` from here: a schema load would cost more than
the rest of the call. Payout, balance and error answers are loaded through schemas.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from marshmallow import (
    EXCLUDE,
    Schema,
    ValidationError,
    fields,
    validate,
    validates_schema,
)
from marshmallow.types import UnknownOption

_AMOUNT = re.compile(r"[0-9]{1,9}(\.[0-9]{1,2})?")
_DIGITS = re.compile(r"[0-9]{1,12}")


AMOUNT_RULE = "Must be a number with at most 9 digits before the point and 2 after it."


class Amount(fields.Field[Decimal]):
    """A request amount: decimal(11.2), given as a string or an integer, above zero."""

    default_error_messages = {  # noqa: RUF012 - marshmallow's own convention
        "invalid": AMOUNT_RULE,
        "positive": "Must be greater than 0.",
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
            raise self.make_error("invalid")
        text = format(value, "f") if isinstance(value, Decimal) else str(value)
        if not _AMOUNT.fullmatch(text):
            raise self.make_error("invalid")
        amount = Decimal(text)
        if amount <= 0:
            raise self.make_error("positive")
        return amount


def wire_decimal(value: Any) -> Decimal | None:
    """An amount as the gateway writes it (a decimal string up to 9 places, a number, "" or
    null); ValueError for anything else."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise ValueError("not a decimal amount")
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise ValueError("not a decimal amount") from None
    if not amount.is_finite():
        raise ValueError("not a decimal amount")
    return amount


_TRUE = frozenset({"1", "true"})
_FALSE = frozenset({"0", "false", ""})


def flag(value: Any) -> bool:
    """A boolean as JSON or as a query parameter ("1"/"0", "true"/"false", ""); ValueError for
    anything else."""
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, (str, int)):
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise ValueError("not a boolean")


class WireDecimal(fields.Field[Decimal | None]):
    """An amount in an answer: see `wire_decimal`."""

    default_error_messages = {"invalid": "Not a valid decimal amount."}  # noqa: RUF012

    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> Decimal | None:
        try:
            return wire_decimal(value)
        except ValueError:
            raise self.make_error("invalid") from None


class Flag(fields.Field[bool]):
    """A boolean: see `flag`."""

    default_error_messages = {"invalid": "Not a valid boolean."}  # noqa: RUF012

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        try:
            return flag(value)
        except ValueError:
            raise self.make_error("invalid") from None


class PostCode(fields.Field[str]):
    """A postal code: up to 12 digits, as text (to keep leading zeros) or an integer."""

    default_error_messages = {"invalid": "Must be up to 12 digits."}  # noqa: RUF012

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise self.make_error("invalid")
        if not _DIGITS.fullmatch(str(value)):
            raise self.make_error("invalid")
        return str(value)


class UserId(fields.Field[str | int]):
    """The payer's id in the shop's system: text of up to 50 characters, or a whole number."""

    default_error_messages = {  # noqa: RUF012
        "invalid": "Must be text of 1 to 50 characters or a whole number."
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str | int:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        if isinstance(value, str) and 1 <= len(value) <= 50:
            return value
        raise self.make_error("invalid")


def _text(maximum: int, *, required: bool = False) -> fields.String:
    return fields.String(required=required, validate=validate.Length(min=1, max=maximum))


def _url(maximum: int | None = 255) -> fields.URL:
    return fields.URL(
        require_tld=False,
        schemes={"http", "https"},
        validate=validate.Length(max=maximum) if maximum else None,
    )


def _reference() -> fields.Integer:
    return fields.Integer(strict=True, validate=validate.Range(min=1))


def errors(schema: Schema, data: Mapping[str, Any]) -> dict[str, Any]:
    """`schema.validate(data)`, the same verdict, walking only the fields `data` gives and the
    required ones: a request leaves most optional fields out, and marshmallow would visit every
    one of them on every call."""
    given = frozenset(name for name in data if name in schema.fields)
    narrowed = _narrowed(type(schema), given | _required(schema), schema.unknown)
    return narrowed.validate(dict(data))


def _required(schema: Schema) -> frozenset[str]:
    return frozenset(name for name, field in schema.fields.items() if field.required)


@functools.lru_cache(maxsize=256)
def _narrowed(kind: type[Schema], names: frozenset[str], unknown: UnknownOption) -> Schema:
    return kind(only=names, unknown=unknown)


def needs_user_agent(service: str) -> bool:
    """Whether `service` requires `customer_browser_user_agent`.

    Card and SBP payments pass through the payer's browser; a virtual account is paid by bank
    transfer, and its clients send no user agent.
    """
    return not service.startswith("virtual_account_")


class CreatePaymentSchema(Schema):
    """`POST v1/payment` request body. Field order is the documented one, then the fields
    production integrations send besides (`customer_code`: the payer's bank, for card-number
    and SBP services; `customer_user_id`).

    Fields it has no rule for are refused (what paymux sends is exactly what it knows); the
    gateway, a Laravel validator, ignores them instead: see `GATEWAY_CREATE_PAYMENT`.
    """

    amount = Amount(required=True)
    order_id = _text(128, required=True)
    service = _text(100, required=True)
    desc = fields.String(validate=validate.Length(max=128))
    lifetime = fields.Integer(strict=True, validate=validate.Range(min=900, max=3600))
    customer_ip = fields.IP(required=True)
    customer_account = _text(50)
    customer_email = fields.Email(validate=validate.Length(max=50))
    customer_first_name = _text(50)
    customer_last_name = _text(50)
    customer_address = _text(50)
    customer_phone = _text(12)
    customer_post_code = PostCode()
    customer_state = _text(50)
    customer_city = _text(20)
    customer_browser_user_agent = _text(2000)
    customer_birth_date = fields.Date(format="%Y-%m-%d")
    success_redirect_id = _reference()
    fail_redirect_id = _reference()
    notification_endpoint_id = _reference()
    success_redirect_url = _url()
    fail_redirect_url = _url()
    notification_endpoint_url = _url()
    project_url = _url(None)
    customer_code = _text(50)
    customer_user_id = UserId()

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def _user_agent_for_service(
        self, data: dict[str, Any], original: dict[str, Any], **kwargs: Any
    ) -> None:
        service = original.get("service")
        if (
            isinstance(service, str)
            and needs_user_agent(service)
            and "customer_browser_user_agent" not in original
        ):
            raise ValidationError("Missing data for required field.", "customer_browser_user_agent")


class StatusRequestSchema(Schema):
    """`POST v1/payment/status` request body: `id` or `order_id`, exactly one."""

    id = _text(128)
    order_id = _text(128)

    @validates_schema
    def _one_reference(self, data: dict[str, Any], **kwargs: Any) -> None:
        if ("id" in data) == ("order_id" in data):
            raise ValidationError("Give either id or order_id, not both.", "_schema")


class PayoutCreatedSchema(Schema):
    """`POST v1/payout` answer on success (HTTP 200)."""

    class Meta:
        unknown = EXCLUDE

    id = fields.Integer(required=True)
    payment_status = fields.String(required=True)


class PayoutStatusSchema(Schema):
    """`POST v1/payout/status` answer on success (HTTP 200); `card_number` comes masked."""

    class Meta:
        unknown = EXCLUDE

    id = fields.Integer(required=True)
    payment_status = fields.String(required=True)
    order_id = fields.String(load_default=None, allow_none=True)
    amount = WireDecimal(load_default=None, allow_none=True)
    commission_amount = WireDecimal(load_default=None, allow_none=True)
    currency = fields.String(load_default=None, allow_none=True)
    service_code = fields.String(load_default=None, allow_none=True)
    card_number = fields.String(load_default=None, allow_none=True)


class BalanceSchema(Schema):
    """`POST v1/account/balance` answer on success (HTTP 200): three numbers."""

    class Meta:
        unknown = EXCLUDE

    balance = WireDecimal(required=True)
    hold = WireDecimal(load_default=None, allow_none=True)
    rolling_reserve = WireDecimal(load_default=None, allow_none=True)


class ErrorSchema(Schema):
    """Every documented error body: a `message`, and `errors` by field for validation."""

    class Meta:
        unknown = EXCLUDE

    message = fields.String(required=True)
    errors = fields.Dict(
        keys=fields.String(), values=fields.List(fields.String()), load_default=dict
    )


NOTIFICATION_FIELDS = (
    "type",
    "id",
    "order_id",
    "payment_status",
    "amount",
    "payment_amount",
    "commission_amount",
    "is_partial_payment",
    "account",
    "service",
    "desc",
)
"""The signed notification fields, in the order the gateway signs them."""

NULLABLE_NOTIFICATION_FIELDS = frozenset({"payment_amount", "commission_amount", "desc"})
"""Fields a notification may leave out when empty: the gateway's PHP check signs them as null."""


CREATE_PAYMENT = CreatePaymentSchema()
GATEWAY_CREATE_PAYMENT = CreatePaymentSchema(unknown=EXCLUDE)
"""What the gateway accepts: the same rules, and a field without a rule is ignored, not refused."""
STATUS_REQUEST = StatusRequestSchema()
PAYOUT_CREATED = PayoutCreatedSchema()
PAYOUT_STATUS = PayoutStatusSchema()
BALANCE = BalanceSchema()
ERROR = ErrorSchema()
