"""The gateway's notification endpoint and the page the customer returns to."""

from __future__ import annotations

from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from paymux import Action, Incoming, PaymentStatus
from paymux.contrib import answer
from paymux.contrib.django.instances import config, guard, provider
from paymux.contrib.django.models import Payment
from paymux.contrib.django.shop import DatabaseShop
from paymux.models import show_money


# A gateway's POST carries no CSRF token: the provider authenticates the notification instead.
# Outside ATOMIC_REQUESTS: the guard's claim must be seen by other workers before the reply.
@csrf_exempt
@transaction.non_atomic_requests
@require_http_methods(["GET", "POST"])
def notify(request: HttpRequest, instance: str) -> HttpResponse:
    """A notification for `instance`: 400 forged, 503 to be repeated, 500 not recorded, else
    200 (see `paymux.contrib.answer`)."""
    if instance not in config().instances:
        return HttpResponse("No such gateway", status=404, content_type="text/plain")
    reply = answer(
        provider(instance), guard(), DatabaseShop(instance), Incoming.from_django(request)
    )
    return HttpResponse(reply.text, status=reply.status, content_type="text/plain")


# Gateways send the customer back with a cross-site POST too; this page changes nothing.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def returned(request: HttpRequest, token: str) -> HttpResponse:
    """The payment's status as the notifications recorded it: what the customer's return
    request says (its query, its form) is never believed."""
    payment = Payment.objects.filter(return_token=token).first()
    if payment is None:
        raise Http404("no such payment")
    context = {
        "payment": payment,
        "amount": show_money(payment.amount),
        "outcome": _outcome(payment),
    }
    return render(request, "paymux/returned.html", context)


def _outcome(payment: Payment) -> str:
    """For the template to word: "paid" (to be shipped), "checking" (money arrived that is not
    the full payment expected: a person looks at it), "unpaid" or "waiting"."""
    if payment.status == PaymentStatus.PAID.value:
        return "paid" if payment.action == Action.FULFIL.value else "checking"
    if PaymentStatus(payment.status).is_final:
        return "unpaid"
    return "waiting"
