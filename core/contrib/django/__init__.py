"""The Django app: payments, notifications and the ledger in the project's database.

Add "paymux.contrib.django" to INSTALLED_APPS, configure the instances in the `PAYMUX`
setting, include `paymux.contrib.django.urls`, and `migrate` (docs/django.md). Then
`paymux.contrib.django.checkout.checkout` creates a payment, the gateway's notifications reach
`notify/<instance>`, and the `payment_decided` signal (`paymux.contrib.django.signals`) tells
the shop what to do with its order. Needs the `django` extra.

Nothing is imported here: the models may be imported only once Django's apps are ready.
"""
