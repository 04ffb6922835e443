"""The app's URLs: `path("payments/", include("paymux.contrib.django.urls"))`."""

from __future__ import annotations

from django.urls import path

from paymux.contrib.django import views

app_name = "paymux"

urlpatterns = [
    path("notify/<str:instance>", views.notify, name="notify"),
    path("return/<str:token>", views.returned, name="return"),
]
