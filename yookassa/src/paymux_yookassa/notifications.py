"""What a YooKassa notification says, read strictly: YooKassa signs nothing.

    POST {"type": "notification", "event": "payment.succeeded", "object": {...}}

Its authenticity comes from around this module: core checks the sender against the shop's
`allowed_senders` before, and re-fetches the object from the API after, trusting only the API's
answer. Here anything that is not exactly that shape is refused with `SignatureError`.
"""

from __future__ import annotations

from paymux import Incoming, Notification, NotificationKind, Payment, Refund, SignatureError
from paymux_yookassa.wire import PROVIDER, WireError, payment_of, recipient_of, refund_of

KINDS = {"payment": NotificationKind.PAYMENT, "refund": NotificationKind.REFUND}
"""The objects whose notifications paymux reads (payouts and deals are not handled)."""


def notification_of(incoming: Incoming, *, instance: str, shop_id: str) -> Notification:
    """The notification `incoming` carries, for shop `shop_id`; `SignatureError` if malformed."""
    if incoming.method != "POST":
        raise SignatureError(f"YooKassa notifies by POST, not {incoming.method[:10]}")
    data = incoming.json()
    if not isinstance(data, dict) or data.get("type") != "notification":
        raise SignatureError("not a YooKassa notification (type is not 'notification')")
    event, found = data.get("event"), data.get("object")
    if not isinstance(event, str) or not isinstance(found, dict):
        raise SignatureError("a YooKassa notification has an event and an object")
    kind, _, status = event.partition(".")
    if kind not in KINDS:
        raise SignatureError(f"notification event {event[:40]!r} is not handled by paymux")
    if found.get("status") != status:
        raise SignatureError(f"notification event {event[:40]!r} disagrees with its object")
    recipient = recipient_of(found)
    if recipient is not None and recipient != shop_id:
        raise SignatureError("notification is for another YooKassa shop")
    try:
        subject: Payment | Refund = payment_of(found) if kind == "payment" else refund_of(found)
    except WireError as error:
        raise SignatureError(f"notification: {error}") from None
    return Notification(
        provider=PROVIDER,
        instance=instance,
        account=shop_id,
        kind=KINDS[kind],
        subject=subject,
        fields=data,
    )
