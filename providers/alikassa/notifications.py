"""AliKassa's notifications and redirects: signed GET parameters, verified before they are read.

The gateway signs PHP `json_encode` of eleven fields in a fixed order (PROTOCOL.md); a
notification is about a payment (`type=payment`) or a payout (`type=payout`), and becomes a
`Notification` whose subject is a `Payment` or a `Payout`, never one taken for the other.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from paymux import (
    InvalidResponse,
    Notification,
    NotificationKind,
    Payment,
    Payout,
    Redirect,
    SignatureError,
)
from paymux.providers.alikassa import phpjson, responses, schemas
from paymux.providers.alikassa.keys import Verifier
from paymux.providers.base import NotificationInput, notification_params

_INTEGER = re.compile(r"0|[1-9][0-9]{0,17}")
"""A notification id as the gateway writes it: no sign, no padding, at most 18 digits."""


def read(
    data: NotificationInput, *, verifier: Verifier, account: str, instance: str
) -> Notification:
    """The notification in `data` (its query parameters), once its signature verifies and it
    names `account`; `SignatureError` otherwise."""
    params = notification_params(data)
    missing = [
        name
        for name in (*schemas.NOTIFICATION_FIELDS, "sign")
        if name not in params and name not in schemas.NULLABLE_NOTIFICATION_FIELDS
    ]
    if missing:
        raise SignatureError(f"notification is missing {', '.join(missing)}")
    if not _INTEGER.fullmatch(params["id"]):
        raise SignatureError("notification id is not an integer")
    signed = {name: params[name] for name in schemas.NOTIFICATION_FIELDS if name in params}
    verifier.verify(_signed_message(params), params["sign"])
    if params["account"] != account:
        raise SignatureError("notification is for another AliKassa account")
    values = _typed(signed)
    kind = NotificationKind(values["type"])
    subject: Payment | Payout
    if kind is NotificationKind.PAYOUT:
        subject = Payout(
            provider=responses.PROVIDER,
            instance=instance,
            id=str(values["id"]),
            order_id=values["order_id"],
            status=responses.payout_status_of(values["payment_status"]),
            amount=values["amount"],
            fee=values["commission_amount"],
            raw=signed,
        )
    else:
        subject = Payment(
            provider=responses.PROVIDER,
            instance=instance,
            id=str(values["id"]),
            order_id=values["order_id"],
            status=responses.status_of(values["payment_status"]),
            amount=values["amount"],
            paid_amount=values["payment_amount"],
            fee=values["commission_amount"],
            is_partial=values["is_partial_payment"],
            raw=signed,
        )
    return Notification(
        provider=responses.PROVIDER,
        instance=instance,
        account=account,
        kind=kind,
        subject=subject,
        fields=signed,
    )


def _typed(signed: Mapping[str, str]) -> dict[str, Any]:
    """The verified fields with their types (amounts exact, the flag a bool, a missing optional
    field None); `InvalidResponse` naming every field that is not what the gateway writes."""
    values: dict[str, Any] = dict.fromkeys(schemas.NOTIFICATION_FIELDS)
    values.update(signed)
    problems: dict[str, list[str]] = {}
    if values["type"] not in _KINDS:
        problems["type"] = ["Must be one of: payment, payout."]
    values["id"] = int(values["id"])  # checked against _INTEGER before the signature
    for name in ("amount", "payment_amount", "commission_amount"):
        try:
            values[name] = schemas.wire_decimal(values[name])
        except ValueError:
            problems[name] = ["Not a valid decimal amount."]
    try:
        values["is_partial_payment"] = schemas.flag(values["is_partial_payment"])
    except ValueError:
        problems["is_partial_payment"] = ["Not a valid boolean."]
    if problems:
        raise InvalidResponse(f"notification: unexpected values {problems}")
    return values


_KINDS = frozenset({"payment", "payout"})
"""The kinds AliKassa notifies of."""


def _signed_message(params: Mapping[str, str]) -> bytes:
    """What the gateway signs, as its documented PHP check rebuilds it: `json_encode` of the
    eleven fields in order, `id` as an integer, a field left out as null."""
    values: dict[str, str | int | None] = {
        name: params.get(name) for name in schemas.NOTIFICATION_FIELDS
    }
    return phpjson.dumps_bytes({**values, "id": int(params["id"])})


def verify_redirect(
    data: NotificationInput,
    *,
    verifier: Verifier,
    order_id: str | None = None,
    payment_uuid: str | None = None,
) -> Redirect:
    """The customer's return form (`order_id`, `uuid`, `sign`), verified; see
    `AliKassaProvider.verify_redirect`."""
    params = notification_params(data)
    missing = [name for name in ("order_id", "uuid", "sign") if name not in params]
    if missing:
        raise SignatureError(f"redirect is missing {', '.join(missing)}")
    message = {"order_id": params["order_id"], "uuid": params["uuid"]}
    verifier.verify(phpjson.dumps_bytes(message), params["sign"])
    if order_id is not None and params["order_id"] != order_id:
        raise SignatureError(f"redirect is for another order, not {order_id!r}")
    if payment_uuid is not None and params["uuid"] != payment_uuid:
        raise SignatureError(f"redirect is for another payment, not uuid {payment_uuid!r}")
    return Redirect(
        provider=responses.PROVIDER, order_id=params["order_id"], payment_uuid=params["uuid"]
    )
