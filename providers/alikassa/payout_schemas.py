"""AliKassa's payout and balance requests: `v1/payout`, `v1/payout/status`, `v1/account/balance`.

The two documented pages do not cover them; the fields are those three production integrations
send (PROTOCOL.md, "Payouts" and "Balance"). As with `schemas`, the client checks what it sends
and the sandbox what it receives with the same rules. The payout and status requests have two
forms: the plain one refuses fields it has no rule for (the client sends exactly what it knows),
the `GATEWAY_` one ignores them, as the gateway's Laravel validator does; the gateway reads
nothing from a balance request's body.
"""

from __future__ import annotations

import re
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from paymux.providers.alikassa.schemas import Amount

_CARD = re.compile(r"[0-9]{12,19}")
_PHONE = re.compile(r"\+?[0-9]{10,15}")
_MONTH = re.compile(r"0?[1-9]|1[0-2]")
_YEAR = re.compile(r"[0-9]{2}|[0-9]{4}")

CARD_RULE = "Must be a card number of 12 to 19 digits."
PHONE_RULE = "Must be a phone number: 10 to 15 digits, with or without a leading +."


def pays_to_phone(service: str) -> bool:
    """Whether `service` sends the money to a phone number (SBP) rather than to a card number."""
    return "_sbp_" in service


class DigitsText(fields.Field[str]):
    """A short number given as text or as a whole number (`"07"` or `7`), kept as text."""

    default_error_messages = {"invalid": "Not a valid value."}  # noqa: RUF012

    def __init__(self, pattern: re.Pattern[str], message: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pattern = pattern
        self.error_messages = {**self.error_messages, "invalid": message}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise self.make_error("invalid")
        if not self.pattern.fullmatch(str(value)):
            raise self.make_error("invalid")
        return str(value)


class Reference(fields.Field[str]):
    """A payout id in a status request: text of 1 to 128 characters or a whole number, as text.

    The create answers an integer id, and clients send it back as they got it.
    """

    default_error_messages = {  # noqa: RUF012
        "invalid": "Must be text of 1 to 128 characters or a whole number."
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return str(value)
        if isinstance(value, str) and 1 <= len(value) <= 128:
            return value
        raise self.make_error("invalid")


def _text(maximum: int, *, required: bool = False) -> fields.String:
    return fields.String(required=required, validate=validate.Length(min=1, max=maximum))


class PayoutExtraSchema(Schema):
    """`extra` of a payout: the recipient's card, for services that want more than its number."""

    card_exp_month = DigitsText(_MONTH, "Must be a month, 1 to 12.")
    card_exp_year = DigitsText(_YEAR, "Must be a year of 2 or 4 digits.")
    card_holder = _text(100)
    card_country = _text(50)
    card_recipient_birth_date = fields.Date(format="%Y-%m-%d")


class PayoutSchema(Schema):
    """`POST v1/payout` request body, in the order production integrations send it.

    `number` is the recipient's card number, or for an SBP service (see `pays_to_phone`) their
    phone number. `notification_endpoint_url` overrides the payout notification URL the account
    has configured, as on payments.
    """

    amount = Amount(required=True)
    number = fields.String(required=True)
    order_id = _text(128, required=True)
    service = _text(100, required=True)
    customer_code = _text(50)
    customer_first_name = _text(50)
    customer_last_name = _text(50)
    customer_phone = _text(12)
    customer_email = fields.Email(validate=validate.Length(max=50))
    customer_country = _text(50)
    notification_endpoint_url = fields.URL(
        require_tld=False, schemes={"http", "https"}, validate=validate.Length(max=255)
    )
    extra = fields.Nested(PayoutExtraSchema())

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def _number_for_service(
        self, data: dict[str, Any], original: dict[str, Any], **kwargs: Any
    ) -> None:
        service, number = original.get("service"), original.get("number")
        if not isinstance(service, str) or not isinstance(number, str):
            return
        if pays_to_phone(service):
            if not _PHONE.fullmatch(number):
                raise ValidationError(PHONE_RULE, "number")
        elif not _CARD.fullmatch(number):
            raise ValidationError(CARD_RULE, "number")


class GatewayPayoutSchema(PayoutSchema):
    """What the gateway accepts: the same rules; a field without a rule is ignored, in `extra`
    too."""

    class Meta:
        unknown = EXCLUDE

    extra = fields.Nested(PayoutExtraSchema(unknown=EXCLUDE))


class PayoutStatusRequestSchema(Schema):
    """`POST v1/payout/status` request body: `id` or `order_id`, exactly one."""

    id = Reference()
    order_id = _text(128)

    @validates_schema
    def _one_reference(self, data: dict[str, Any], **kwargs: Any) -> None:
        if ("id" in data) == ("order_id" in data):
            raise ValidationError("Give either id or order_id, not both.", "_schema")


class BalanceRequestSchema(Schema):
    """`POST v1/account/balance` request body: an empty object; the account is the `Account`
    header."""


PAYOUT = PayoutSchema()
GATEWAY_PAYOUT = GatewayPayoutSchema()
PAYOUT_STATUS = PayoutStatusRequestSchema()
GATEWAY_PAYOUT_STATUS = PayoutStatusRequestSchema(unknown=EXCLUDE)
BALANCE = BalanceRequestSchema()
