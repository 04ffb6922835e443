"""Helpers the tests share: request builders and a real notification receiver."""

from __future__ import annotations

import os
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import paymux
from paymux.providers.alikassa import CertificateFolder, Signer, phpjson
from paymux.providers.alikassa.keys import load_private_key, read_password
from paymux.providers.alikassa.sandbox import NotificationReceiver

Receiver = NotificationReceiver
"""The shop's notification endpoint: a real HTTP server recording every GET."""


def unique_order_id() -> str:
    return f"order-{uuid.uuid4().hex[:12]}"


def payment_request(**overrides: Any) -> paymux.PaymentRequest:
    """A valid AliKassa payment request; keyword arguments replace its fields."""
    values: dict[str, Any] = {
        "order_id": unique_order_id(),
        "amount": Decimal("500.00"),
        "customer": paymux.Customer(ip="18.191.80.10", user_agent="Mozilla/5.0 (X11; Linux)"),
        "options": {"service": "payment_card_rub_hpp"},
    }
    values.update(overrides)
    return paymux.PaymentRequest(**values)


def payout_notification(
    certificate: CertificateFolder, *, account: str, order_id: str, amount: Decimal
) -> dict[str, str]:
    """A genuine paid `type=payout` notification, signed with the gateway's notification key
    over the same eleven fields, in the same way, as the sandbox signs payment notifications."""
    money = str(amount.quantize(Decimal("0.000000001")))
    fields = {
        "type": "payout",
        "id": "900000001",
        "order_id": order_id,
        "payment_status": "paid",
        "amount": money,
        "payment_amount": money,
        "commission_amount": "0.000000000",
        "is_partial_payment": "0",
        "account": account,
        "service": "payment_card_rub",
        "desc": "",
    }
    key = load_private_key(
        certificate.private_key.read_bytes(), read_password(certificate.password_file)
    )
    message = phpjson.dumps_bytes({**fields, "id": int(fields["id"])})
    return {**fields, "sign": Signer(key, "sha1").sign(message)}


@contextmanager
def serve_uvicorn(app: Any) -> Iterator[str]:
    """uvicorn in a thread, on a socket bound beforehand (so its port is known)."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off", ws="none", http="h11")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive(), "uvicorn stopped before it started"
            assert time.monotonic() < deadline, "uvicorn did not start within 10 s"
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(5)
        sock.close()


def in_a_forked_child(work: Callable[[], object]) -> Callable[[], int]:
    """Run `work` in a child forked from this process; what waits for the child's exit code
    (0 when `work` returned, 1 when it raised: the traceback on stderr)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child; it never returns into pytest
        code = 1
        try:
            work()
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)

    def exit_code() -> int:
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status)

    return exit_code
