"""What the app tells the shop: the decision on each notification it acts on."""

from __future__ import annotations

from django.dispatch import Signal

payment_decided = Signal()
"""Sent for each verified notification the guard admits (NEW or REOPENED; never for a
DUPLICATE, STALE or BUSY one), inside the transaction that records it, with `decision` (a
`paymux.Decision`: ship on FULFIL only), `notification` (the `paymux.Notification`) and
`payment` (the app's `Payment` row, None when the app has none for it). A receiver that raises
rolls the transaction back and makes the endpoint answer 500: the gateway repeats the
notification and it is decided again."""
