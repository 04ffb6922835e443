"""The sandbox's HTTP side: which request goes where.

Merchant API: `POST /v1/payment`, `POST /v1/payment/status`, `POST /v1/payout`,
`POST /v1/payout/status` and `POST /v1/account/balance`, answered by the gateway.

Customer: `GET /pay/<uuid>` (the `url` create answers) is the payment page, an HTML form with
Pay, Pay partially, Cancel and Fail; `POST /pay/<uuid>` with `action=pay|partial|cancel|fail`
(and `amount` for partial) settles the payment, notifies the shop in the background and sends
the browser back to the success or fail URL with the signed form (`order_id`, `uuid`, `sign`).

Control API (the sandbox's own, for tests and demos):
`GET /sandbox/payments` lists payments (each with the create body it came from);
`GET /sandbox/payouts` lists payouts the same way;
`GET /sandbox/notifications` lists every notification attempt;
`POST /sandbox/payments/<id>/settle` with
`{"status": "paid" | "cancel" | "fail", "paid_amount": "..."}` settles one and delivers its
signed notification (the first attempt before answering, repeats in the background); a paid
amount must be above 0 and at most the payment's amount, else the answer is 400 and nothing
changes. `POST /sandbox/payouts/<id>/settle` with `{"status": "paid" | "cancel" | "fail"}`
does the same for a payout (answer: `payout` and `notification`);
`POST /sandbox/accounts/<account>/balance` with any of `balance`, `hold`, `rolling_reserve`
(decimal text) sets them and answers the balance as `v1/account/balance` does.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from paymux.providers.alikassa.sandbox import page
from paymux.providers.alikassa.sandbox.answers import Answer
from paymux.providers.alikassa.sandbox.delivery import Delivery
from paymux.providers.alikassa.sandbox.payments import PaymentClosed, StoredPayment
from paymux.providers.base.loopback import LoopbackHandler, context_of

if TYPE_CHECKING:
    from paymux.providers.alikassa.sandbox.server import Sandbox

_SETTLE = re.compile(r"/sandbox/payments/(\d+)/settle")
_SETTLE_PAYOUT = re.compile(r"/sandbox/payouts/(\d+)/settle")
_BALANCE = re.compile(r"/sandbox/accounts/([^/]+)/balance")
_PAGE = re.compile(r"/pay/([^/]+)")
_STATUS_OF_ACTION = {"pay": "paid", "partial": "paid", "cancel": "cancel", "fail": "fail"}


class Handler(LoopbackHandler):
    """One connection to the sandbox: the merchant API, the payment page, the control API."""

    server_version = "paymux-sandbox"

    @property
    def sandbox(self) -> Sandbox:
        sandbox: Sandbox = context_of(self)
        return sandbox

    def do_GET(self) -> None:
        gateway = self.sandbox.gateway
        path = urlsplit(self.path).path
        shown = _PAGE.fullmatch(path)
        if path == "/sandbox/payments":
            listed = [{**p.status_body(), "request": p.request} for p in gateway.payments()]
            self._send(Answer(200, {"payments": listed}))
        elif path == "/sandbox/payouts":
            payouts = [{**p.status_body(), "request": p.request} for p in self.sandbox.payouts()]
            self._send(Answer(200, {"payouts": payouts}))
        elif path == "/sandbox/notifications":
            deliveries = [delivery.as_json() for delivery in gateway.deliveries]
            self._send(Answer(200, {"notifications": deliveries}))
        elif shown:
            self._show_page(shown[1])
        else:
            self._send(Answer(404, {"message": "Not found"}))

    def do_POST(self) -> None:
        body = self.read_body()
        if body is None:
            return
        path = urlsplit(self.path).path
        settle = _SETTLE.fullmatch(path)
        settle_payout = _SETTLE_PAYOUT.fullmatch(path)
        funds = _BALANCE.fullmatch(path)
        chosen = _PAGE.fullmatch(path)
        if settle:
            self._settle(int(settle[1]), body)
            return
        if settle_payout:
            self._settle_payout(int(settle_payout[1]), body)
            return
        if funds:
            self._set_balance(funds[1], body)
            return
        if chosen:
            self._choose(chosen[1], body)
            return
        headers = {key.lower(): value for key, value in self.headers.items()}
        answer = self.sandbox.gateway.handle("POST", self.path, headers, body)
        if answer.stall or self.sandbox.latency:
            time.sleep(answer.stall + self.sandbox.latency)
        self._send(answer)

    def _settle(self, payment_id: int, body: bytes) -> None:
        def settle(command: dict[str, Any]) -> Delivery | None:
            return self.sandbox.settle(
                payment_id,
                str(command.get("status")),
                paid_amount=command.get("paid_amount"),
                details=command.get("details"),
            )

        self._settled(
            f"payment {payment_id}",
            body,
            settle,
            lambda: {"payment": self.sandbox.payment(payment_id).status_body()},
        )

    def _settle_payout(self, payout_id: int, body: bytes) -> None:
        self._settled(
            f"payout {payout_id}",
            body,
            lambda command: self.sandbox.settle_payout(payout_id, str(command.get("status"))),
            lambda: {"payout": self.sandbox.payout(payout_id).status_body()},
        )

    def _settled(
        self,
        what: str,
        body: bytes,
        settle: Callable[[dict[str, Any]], Delivery | None],
        shown: Callable[[], dict[str, Any]],
    ) -> None:
        """Run a settle command from the control API; answer what it became and its notice."""
        try:
            delivery = settle(_command(body))
        except KeyError:
            self._send(Answer(404, {"message": f"no sandbox {what}"}))
            return
        except (ValueError, RecursionError) as error:
            self._send(Answer(400, {"message": str(error)}))
            return
        except RuntimeError as error:
            self._send(Answer(503, {"message": str(error)}))
            return
        self._send(Answer(200, {**shown(), "notification": _attempt(delivery)}))

    def _set_balance(self, account: str, body: bytes) -> None:
        try:
            command = _command(body)
            parts = {name: command.get(name) for name in ("balance", "hold", "rolling_reserve")}
            balance = self.sandbox.set_balance(account, **parts)
        except KeyError:
            self._send(Answer(404, {"message": f"no sandbox account {account}"}))
            return
        except (ValueError, RecursionError) as error:
            self._send(Answer(400, {"message": str(error)}))
            return
        self._send(balance.answer())

    # -- the customer's payment page --------------------------------------------------------

    def _show_page(self, payment_uuid: str) -> None:
        gateway = self.sandbox.gateway
        try:
            payment = gateway.payment_by_uuid(payment_uuid)
        except KeyError:
            self._html(404, page.not_found_page())
            return
        text = page.payment_page(payment, gateway.now(), return_form=self._return_form(payment))
        self._html(200, text)

    def _choose(self, payment_uuid: str, body: bytes) -> None:
        """The customer clicked one of the page's buttons."""
        gateway = self.sandbox.gateway
        try:
            payment = gateway.payment_by_uuid(payment_uuid)
        except KeyError:
            self._html(404, page.not_found_page())
            return
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        action = form.get("action", "")
        typed = form.get("amount", "")
        if payment.status != "wait":
            self._closed(payment)
            return
        if action not in _STATUS_OF_ACTION:
            error = "Choose one of the buttons below."
            self._html(400, page.payment_page(payment, gateway.now(), error=error))
            return
        paid_amount = None
        if action == "partial":
            try:
                paid_amount = page.partial_amount(typed, payment)
            except ValueError as problem:
                text = page.payment_page(
                    payment, gateway.now(), error=str(problem), typed_amount=typed
                )
                self._html(400, text)
                return
        try:
            gateway.settle(
                payment.uuid, _STATUS_OF_ACTION[action], paid_amount=paid_amount, wait=False
            )
        except PaymentClosed:
            self._closed(payment)
            return
        except RuntimeError:
            error = "The payment could not be completed now. Try again."
            self._html(503, page.payment_page(payment, gateway.now(), error=error))
            return
        url = payment.return_url
        if url is None:
            self._html(200, page.outcome_page(payment))
        else:
            self._html(200, page.return_page(payment, url, gateway.redirect_form(payment.uuid)))

    def _closed(self, payment: StoredPayment) -> None:
        """Answer a click on a payment that no longer waits (settled, or its time ran out)."""
        if payment.expired:
            error = "This payment expired and can no longer be paid."
        else:
            error = f"This payment can no longer be changed: it is {payment.status}."
        text = page.outcome_page(payment, error=error, return_form=self._return_form(payment))
        self._html(409, text)

    def _return_form(self, payment: StoredPayment) -> dict[str, str] | None:
        if payment.status == "wait" or payment.return_url is None:
            return None
        return self.sandbox.gateway.redirect_form(payment.uuid)

    # -- answers ------------------------------------------------------------------------------

    def _send(self, answer: Answer) -> None:
        if answer.drop:
            self.close_connection = True
            return
        self.write(answer.status, answer.content_type, answer.payload())

    def _html(self, status: int, text: str) -> None:
        self.write(
            status,
            "text/html; charset=utf-8",
            text.encode(),
            {"Cache-Control": "no-store", "Content-Security-Policy": page.SECURITY_POLICY},
        )


def _command(body: bytes) -> dict[str, Any]:
    """A control request's JSON object (an empty body is an empty one); ValueError if not."""
    command = json.loads(body or b"{}", parse_float=Decimal)
    if not isinstance(command, dict):
        raise ValueError("the body must be a JSON object")
    return command


def _attempt(delivery: Delivery | None) -> dict[str, Any] | None:
    """How a settle's first notification attempt went, for the control API's answer."""
    if delivery is None:
        return None
    return {"url": delivery.url, "http_status": delivery.http_status, "error": delivery.error}
