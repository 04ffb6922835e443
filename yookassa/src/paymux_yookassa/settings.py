"""The configuration of one YooKassa shop, checked once when the provider is built."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

import marshmallow
from marshmallow import fields, validate

from paymux.providers.base import ConnectionSettings, SecretString, header_value
from paymux_yookassa.bodies import http_url

DEFAULT_BASE_URL = "https://api.yookassa.ru"
"""YooKassa's API origin; calls go to `v3/...` under it."""

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

YOOKASSA_SENDERS: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(network)
    for network in (
        "185.71.76.0/27",
        "185.71.77.0/27",
        "77.75.153.0/25",
        "77.75.156.11/32",
        "77.75.156.35/32",
        "77.75.154.128/25",
        "2a02:5180::/32",
    )
)
"""The addresses YooKassa publishes for its notifications ("Входящие уведомления")."""


class _Network(fields.Field[IPNetwork]):
    """A network such as `185.71.76.0/27` or a single address; host bits set are refused, so
    that a typo cannot widen a range unnoticed."""

    def _deserialize(
        self, value: object, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> IPNetwork:
        if not isinstance(value, str):
            raise marshmallow.ValidationError("Not a valid string.")
        try:
            return ipaddress.ip_network(value.strip())
        except ValueError:
            raise marshmallow.ValidationError(
                f"{value!r} is not a network such as 185.71.76.0/27 (host bits must be 0)."
            ) from None


def _shop_id(value: str) -> None:
    header_value(value)
    if not value or ":" in value or " " in value:
        raise marshmallow.ValidationError("Must be the shop's id, without spaces or colons.")


class SettingsSchema(ConnectionSettings):
    """One YooKassa shop: its credentials, where its notifications may come from, defaults."""

    base_url = fields.String(load_default=DEFAULT_BASE_URL)
    shop_id = fields.String(required=True, validate=_shop_id)
    secret_key = SecretString(required=True)
    allowed_senders = fields.List(
        _Network(), validate=validate.Length(min=1), load_default=lambda: list(YOOKASSA_SENDERS)
    )
    currency = fields.String(validate=validate.Regexp(r"[A-Z]{3}\Z"), load_default="RUB")
    """The currency of a payment, capture or refund that names none."""
    return_url = fields.String(validate=http_url)
    """Where the payer returns to when a payment request gives no `success_url`."""

    @marshmallow.post_load
    def _frozen(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        data["allowed_senders"] = tuple(data["allowed_senders"])
        return data


SETTINGS = SettingsSchema()
