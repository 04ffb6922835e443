"""The emulator's HTTP face: the `/v3` API, the payer's page and the control API.

Request bodies come with a `Content-Length` or chunked, and may have at most `MAX_BODY` bytes
(`LoopbackHandler` answers 413 beyond). API answers are JSON; a fault may make one late
(STALL) or drop the connection without an answer (DROP_CONNECTION).
"""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

from paymux.providers.base.loopback import LoopbackHandler, context_of
from paymux_yookassa.emulator import page
from paymux_yookassa.emulator.wire import Answer, ApiError

if TYPE_CHECKING:
    from paymux_yookassa.emulator.server import Emulator

_PAGE = re.compile(r"/pay/([^/]+)")
_SETTLE = re.compile(r"/emulator/(payments|refunds)/([^/]+)/settle")


class Handler(LoopbackHandler):
    """Routes each request to the API, the payment page or the control API."""

    server_version = "yookassa-emulator"

    @property
    def emulator(self) -> Emulator:
        emulator: Emulator = context_of(self)
        return emulator

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        body = self.read_body()
        if body is None:
            return
        path = urlsplit(self.path).path
        shown = _PAGE.fullmatch(path)
        if path.startswith("/v3/"):
            headers = {name.lower(): value for name, value in self.headers.items()}
            self._send(self.emulator.api.handle(method, path, headers, body))
        elif shown and method in ("GET", "POST"):
            self._page(method, shown[1], body)
        elif path.startswith("/emulator/"):
            self._control(method, path, body)
        else:
            self._send(Answer(404, {"message": "Not found"}))

    # -- the payer's page -----------------------------------------------------------------

    def _page(self, method: str, payment_id: str, body: bytes) -> None:
        store = self.emulator.store
        with store.lock:
            try:
                payment = store.payment(payment_id)
            except ApiError:
                self._html(404, page.not_found_page())
                return
            if method == "GET":
                self._html(200, page.payment_page(payment))
                return
            action = dict(parse_qsl(body.decode("utf-8", "replace"))).get("action", "")
            if payment.status != "pending":
                error = f"This payment can no longer be changed: it is {payment.status}."
                self._html(409, page.payment_page(payment, error=error))
                return
            if action not in page.ACTIONS:
                self._html(400, page.payment_page(payment, error="Choose one of the buttons."))
                return
            try:
                if action == "pay":
                    store.pay(payment_id)
                else:
                    reason = page.DECLINE_REASON if action == "decline" else page.CANCEL_REASON
                    store.settle(payment_id, "canceled", reason)
            except RuntimeError:
                error = "The payment could not be completed now. Try again."
                self._html(503, page.payment_page(payment, error=error))
                return
        self.write(303, "text/plain; charset=utf-8", b"See Other", {"Location": payment.return_url})

    # -- the control API ------------------------------------------------------------------

    def _control(self, method: str, path: str, body: bytes) -> None:
        emulator = self.emulator
        settle = _SETTLE.fullmatch(path)
        if method == "GET" and path == "/emulator/payments":
            self._send(Answer(200, {"payments": [p.as_json() for p in emulator.payments]}))
        elif method == "GET" and path == "/emulator/refunds":
            self._send(Answer(200, {"refunds": [r.as_json() for r in emulator.refunds]}))
        elif method == "GET" and path == "/emulator/deliveries":
            self._send(Answer(200, {"deliveries": [d.as_json() for d in emulator.deliveries]}))
        elif method == "POST" and path == "/emulator/expire":
            self._send(Answer(200, {"expired": [p.id for p in emulator.expire_due()]}))
        elif method == "POST" and settle:
            self._settle(settle[1], settle[2], body)
        else:
            self._send(Answer(404, {"message": "Not found"}))

    def _settle(self, kind: str, object_id: str, body: bytes) -> None:
        emulator = self.emulator
        try:
            command = json.loads(body or b"{}")
            if not isinstance(command, dict):
                raise ValueError("the body must be a JSON object")
            if kind == "payments":
                reason, party = command.get("reason"), command.get("party")
                delivery = emulator.settle(
                    object_id, str(command.get("status")), reason, party=party
                )
                settled = emulator.payment(object_id).as_json()
            else:
                delivery = emulator.settle_refund(
                    object_id, str(command.get("status", "succeeded"))
                )
                settled = emulator.refund(object_id).as_json()
        except KeyError:
            self._send(Answer(404, {"message": f"no such {kind[:-1]}: {object_id}"}))
            return
        except (ValueError, RecursionError) as error:
            self._send(Answer(400, {"message": str(error)}))
            return
        except RuntimeError as error:
            self._send(Answer(503, {"message": str(error)}))
            return
        notification = None if delivery is None else delivery.as_json()
        self._send(Answer(200, {"object": settled, "notification": notification}))

    # -- answers --------------------------------------------------------------------------

    def _send(self, answer: Answer) -> None:
        if answer.drop:
            self.close_connection = True
            return
        if answer.stall:
            time.sleep(answer.stall)
        self.write(
            answer.status, "application/json; charset=utf-8", answer.payload(), answer.headers
        )

    def _html(self, status: int, text: str) -> None:
        headers = {"Cache-Control": "no-store", "Content-Security-Policy": page.SECURITY_POLICY}
        self.write(status, "text/html; charset=utf-8", text.encode(), headers)
