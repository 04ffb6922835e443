"""The app's configuration: its tables are `paymux_*`, its permissions `paymux.*`."""

from __future__ import annotations

from django.apps import AppConfig


class PaymuxConfig(AppConfig):
    name = "paymux.contrib.django"
    label = "paymux"
    verbose_name = "Payments"
    default_auto_field = "django.db.models.BigAutoField"
