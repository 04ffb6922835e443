"""The checks core makes around a provider's reading of a notification: where it came from,
and whether the gateway's API confirms what it claims."""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Sequence

from paymux.errors import NotFound, SignatureError
from paymux.incoming import Incoming
from paymux.models import Notification, Subject
from paymux.statuses import progress

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def check_sender(incoming: Incoming, allowed: Sequence[IPNetwork]) -> None:
    """Refuse a notification from an address outside the gateway's networks (or none known)."""
    if incoming.sender is None:
        raise SignatureError(
            "the sender's address is unknown: pass an Incoming built from the request"
        )
    try:
        address = ipaddress.ip_address(incoming.sender)
    except ValueError:
        raise SignatureError(f"the sender {incoming.sender!r} is not an IP address") from None
    if not any(address in network for network in allowed):
        raise SignatureError(
            f"notification from {address}, outside the gateway's notification addresses"
        )


def confirmed(notification: Notification, fetched: Subject | NotFound) -> Notification:
    """The notification with its subject as the API reports it (`fetched`: the answer to the
    re-fetch), if the API agrees.

    The API may be further along than a genuine notification that came late (an AUTHORIZED
    arriving after the capture): its later state is what the notification carries then. A
    claim the API does not confirm — another amount, a state it never reached, an object it
    does not know — is refused.
    """
    claimed = notification.subject
    if isinstance(fetched, NotFound):
        raise SignatureError(f"notification names {claimed.id}, which the API does not know")
    if type(fetched) is not type(claimed) or fetched.id != claimed.id:
        raise SignatureError(f"notification names {claimed.id}; the API answered for another")
    later = progress(fetched.status) > progress(claimed.status) and not claimed.status.is_final
    if fetched.status is not claimed.status and not later:
        raise SignatureError(
            f"notification claims {claimed.id} is {claimed.status.value}; the API says "
            f"{fetched.status.value}"
        )
    if None not in (claimed.amount, fetched.amount) and claimed.amount != fetched.amount:
        raise SignatureError(
            f"notification claims {claimed.id} is for {claimed.amount}; the API says "
            f"{fetched.amount}"
        )
    return dataclasses.replace(notification, subject=fetched)
