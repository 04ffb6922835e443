"""Idempotency keys: every money-moving request carries one, the host's or a new one."""

from __future__ import annotations

import dataclasses
import uuid
from typing import TypeVar

from paymux.models import PaymentRequest, PayoutRequest, RefundRequest

K = TypeVar("K", PaymentRequest, RefundRequest, PayoutRequest)


def keyed(request: K) -> K:
    """`request` with an idempotency key: the host's, or a new one for this call and its repeats."""
    if request.idempotency_key:
        return request
    return dataclasses.replace(request, idempotency_key=new_key())


def new_key() -> str:
    return str(uuid.uuid4())
