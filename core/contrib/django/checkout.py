"""Checkout: create an order's payment at its gateway and record it, with the amount due."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.http import HttpRequest
from django.urls import reverse
from django.utils.crypto import salted_hmac

from paymux import ConfigurationError, Customer, PaymentRequest
from paymux.contrib.django.instances import configured, provider
from paymux.contrib.django.models import Payment


def checkout(
    instance: str,
    order_id: str,
    amount: Decimal,
    *,
    currency: str | None = None,
    description: str | None = None,
    customer: Customer | None = None,
    options: Mapping[str, Any] | None = None,
    request: HttpRequest | None = None,
) -> Payment:
    """Create the payment of order `order_id` for `amount` through `instance`; send the customer
    to the returned row's `redirect_url`.

    The gateway notifies `notify/<instance>` and sends the customer back to the return page,
    both addressed from `PAYMUX["site_url"]`, else from `request`. The customer is taken from
    `request` (its address and browser) unless given. Creates are exactly once: after an
    `OutcomeUnknown`, call it again with the same arguments. Call it outside
    `transaction.atomic`, so the ledger's entry is kept whatever the caller's transaction does.
    """
    connected = provider(instance)
    token = _return_token(instance, order_id)
    back = _absolute(reverse("paymux:return", kwargs={"token": token}), request)
    created = connected.create(
        PaymentRequest(
            order_id=order_id,
            amount=amount,
            currency=currency,
            description=description or f"Order {order_id}",
            customer=customer or _customer(request),
            success_url=back,
            fail_url=back,
            notification_url=_absolute(
                reverse("paymux:notify", kwargs={"instance": instance}), request
            ),
            options=options or {},
        )
    )
    payment, _ = Payment.objects.update_or_create(
        instance=instance,
        payment_id=created.id,
        defaults={
            "provider": connected.name,
            "order_id": order_id,
            "amount": amount,
            "currency": created.currency or currency or "",
            "status": created.status.value,
            "redirect_url": created.redirect_url or "",
            "return_token": token,
        },
    )
    return payment


def _return_token(instance: str, order_id: str) -> str:
    """The return page's address for an order: the same on every try (so a repeated create
    sends the same request), and guessed by nobody without the project's SECRET_KEY."""
    digest = salted_hmac("paymux.return", f"{instance}\0{order_id}", algorithm="sha256")
    return digest.hexdigest()


def _absolute(path: str, request: HttpRequest | None) -> str:
    site = configured().get("site_url")
    if site:
        return str(site).rstrip("/") + path
    if request is None:
        raise ConfigurationError("set PAYMUX['site_url'] or pass the request to checkout")
    return request.build_absolute_uri(path)


def _customer(request: HttpRequest | None) -> Customer:
    if request is None:
        return Customer()
    return Customer(
        ip=request.META.get("REMOTE_ADDR"), user_agent=request.headers.get("User-Agent")
    )
