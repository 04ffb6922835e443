"""Helpers the tests share: request builders and a real notification receiver."""

from __future__ import annotations

import threading
import uuid
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import paymux


class Receiver:
    """A shop's notification endpoint: records every GET and answers 200."""

    def __init__(self) -> None:
        self.received: list[str] = []
        self.arrived = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                receiver.received.append(self.path)
                receiver.arrived.set()
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"OK")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        host, port = self._server.server_address[:2]
        self.url = f"http://{host!s}:{port}/notify"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()



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
