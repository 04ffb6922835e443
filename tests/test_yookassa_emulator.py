"""The YooKassa emulator, driven over real loopback HTTP the way a provider drives YooKassa."""

from __future__ import annotations

import html
import json
import re
import uuid
from collections.abc import Iterator
from typing import Any, cast

import pytest
import requests

from paymux.providers.base.loopback import LoopbackHandler, LoopbackServer, context_of
from paymux_yookassa.emulator import FAULT_OPERATIONS, Emulator, Fault

SHOP_ID = "100500"
SECRET_KEY = "test_emulator-secret"
RETURN_URL = "https://shop.example/orders/1/back"
DAY = 24 * 3600.0
TIMEOUT = 5
DIDNT_PAY = "expired_on_confirmation"


class Clock:
    """A clock the test moves forward by hand: `clock.now += seconds`."""

    now = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now


class Receiver:
    """A shop's webhook endpoint on loopback: keeps (sender address, JSON body) of each POST,
    answering the statuses in `answers` first, then 200. Read it once `emulator.wait_idle()`."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.answers: list[int] = []
        self._server = LoopbackServer(_ReceiverHandler, "127.0.0.1", 0, context=self)
        self.url = f"{self._server.origin}/yookassa/webhook"
        self._server.start("test-receiver")

    def events(self) -> list[str]:
        return [body["event"] for _, body in self.received]

    def close(self) -> None:
        self._server.stop()


class _ReceiverHandler(LoopbackHandler):
    def do_POST(self) -> None:
        receiver: Receiver = context_of(self)
        receiver.received.append((self.client_address[0], json.loads(self.read_body() or b"{}")))
        self.write(receiver.answers.pop(0) if receiver.answers else 200, "application/json", b"{}")


class Api:
    """The shop's side of YooKassa's API: Basic auth, a fresh Idempotence-Key per POST."""

    def __init__(self, emulator: Emulator, auth: tuple[str, str] = (SHOP_ID, SECRET_KEY)) -> None:
        self.base = f"{emulator.url}/v3"
        self.session = requests.Session()
        self.session.auth = auth

    def post(
        self, path: str, body: Any = None, key: str = "", fault: str = ""
    ) -> requests.Response:
        headers = {"Idempotence-Key": key or str(uuid.uuid4()), "X-Emulator-Fault": fault}
        return self.session.post(f"{self.base}{path}", json=body, headers=headers, timeout=TIMEOUT)

    def get(self, path: str) -> requests.Response:
        return self.session.get(f"{self.base}{path}", timeout=TIMEOUT)

    def create(self, **changes: Any) -> dict[str, Any]:
        answer = self.post("/payments", payment_body(**changes))
        assert answer.status_code == 200, answer.text
        return cast(dict[str, Any], answer.json())

    def now(self, payment: dict[str, Any]) -> dict[str, Any]:
        """The payment as `GET /v3/payments/{id}` answers it now."""
        return cast(dict[str, Any], self.get(f"/payments/{payment['id']}").json())


def payment_body(**changes: Any) -> dict[str, Any]:
    body = {
        "amount": {"value": "100.00", "currency": "RUB"},
        "capture": True,
        "confirmation": {"type": "redirect", "return_url": RETURN_URL},
        "description": "Order 1",
        "metadata": {"order_id": "1"},
    }
    return {**body, **changes}


def rub(value: str) -> dict[str, str]:
    return {"value": value, "currency": "RUB"}


def click(payment: dict[str, Any], button: str) -> requests.Response:
    """Open the payment page as the payer and click one of its buttons."""
    url = payment["confirmation"]["confirmation_url"]
    page = requests.get(url, timeout=TIMEOUT).text
    assert payment["amount"]["value"] in page
    assert SHOP_ID in page
    action = re.search(r'<form method="post" action="([^"]+)"', page)
    value = re.search(rf'<button[^>]*name="action" value="(\w+)">{button}</button>', page)
    assert action is not None
    assert value is not None
    target = requests.compat.urljoin(url, html.unescape(action[1]))
    return requests.post(target, data={"action": value[1]}, allow_redirects=False, timeout=TIMEOUT)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture
def emulator(clock: Clock, receiver: Receiver) -> Iterator[Emulator]:
    with Emulator(
        shop_id=SHOP_ID, secret_key=SECRET_KEY, clock=clock, webhook_url=receiver.url
    ) as emulator:
        yield emulator


@pytest.fixture
def api(emulator: Emulator) -> Api:
    return Api(emulator)


@pytest.fixture
def held(api: Api, emulator: Emulator) -> dict[str, Any]:
    """A two-phase payment the payer paid: its funds are held."""
    payment = api.create(capture=False)
    emulator.settle(payment["id"], "waiting_for_capture")
    return payment


@pytest.fixture
def paid(api: Api, emulator: Emulator) -> dict[str, Any]:
    """A one-phase payment the payer paid."""
    payment = api.create()
    emulator.settle(payment["id"], "succeeded")
    return payment


# -- authentication and validation ------------------------------------------------------------


@pytest.mark.parametrize("auth", [None, (SHOP_ID, "test_wrong"), ("999999", SECRET_KEY)])
def test_calls_without_the_shops_credentials_are_refused(emulator: Emulator, auth: Any) -> None:
    answer = requests.get(f"{emulator.url}/v3/payments/any", auth=auth, timeout=TIMEOUT)
    assert answer.status_code == 401
    assert (answer.json()["type"], answer.json()["code"]) == ("error", "invalid_credentials")


@pytest.mark.parametrize(
    ("changes", "parameter"),
    [
        ({"amount": None}, "amount"),
        ({"amount": rub("10.001")}, "amount.value"),
        ({"amount": rub("0.00")}, "amount.value"),
        ({"amount": {"value": 10, "currency": "RUB"}}, "amount.value"),
        ({"amount": {"value": "10.00", "currency": "XYZ"}}, "amount.currency"),
        ({"confirmation": None}, "confirmation"),
        ({"confirmation": {"type": "embedded"}}, "confirmation.type"),
        ({"confirmation": {"type": "redirect"}}, "confirmation.return_url"),
        ({"description": "x" * 129}, "description"),
        ({"metadata": {f"k{n}": "v" for n in range(17)}}, "metadata"),
        ({"metadata": {"k" * 33: "v"}}, "metadata"),
        ({"capture": "yes"}, "capture"),
    ],
)
def test_invalid_payments_are_refused_naming_the_parameter(
    api: Api, emulator: Emulator, changes: dict[str, Any], parameter: str
) -> None:
    answer = api.post("/payments", payment_body(**changes))
    assert answer.status_code == 400
    assert (answer.json()["code"], answer.json()["parameter"]) == ("invalid_request", parameter)
    assert emulator.payments == []


@pytest.mark.parametrize("headers", [{}, {"Idempotence-Key": "k" * 65}])
def test_a_post_needs_an_idempotence_key_of_at_most_64_characters(
    api: Api, headers: dict[str, str]
) -> None:
    answer = api.session.post(f"{api.base}/payments", json=payment_body(), headers=headers)
    assert (answer.status_code, answer.json()["parameter"]) == (400, "Idempotence-Key")


# -- payments -----------------------------------------------------------------------------------


def test_a_new_payment_is_pending_with_a_payment_page(api: Api, emulator: Emulator) -> None:
    payment = api.create()
    assert len(payment["id"]) == 36
    assert (payment["status"], payment["amount"]) == ("pending", rub("100.00"))
    assert payment["recipient"]["account_id"] == SHOP_ID
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", payment["created_at"])
    assert payment["confirmation"] == {
        "type": "redirect",
        "confirmation_url": f"{emulator.url}/pay/{payment['id']}",
        "return_url": RETURN_URL,
    }
    assert (payment["paid"], payment["refundable"], payment["test"]) == (False, False, True)
    assert payment["metadata"] == {"order_id": "1"}
    assert api.now(payment) == payment


def test_another_shops_payment_is_not_found(api: Api, emulator: Emulator) -> None:
    other = emulator.add_shop()
    assert other.secret_key.startswith("test_")
    answer = Api(emulator, (other.shop_id, other.secret_key)).get(f"/payments/{api.create()['id']}")
    assert (answer.status_code, answer.json()["code"]) == (404, "not_found")


def test_paying_a_one_phase_payment_succeeds_and_notifies_from_the_sender_address(
    api: Api, emulator: Emulator, receiver: Receiver
) -> None:
    payment = api.create()
    back = click(payment, "Pay")
    assert (back.status_code, back.headers["Location"]) == (303, RETURN_URL)
    paid = api.now(payment)
    assert (paid["status"], paid["paid"], paid["refundable"]) == ("succeeded", True, True)
    assert (paid["income_amount"], "captured_at" in paid) == (rub("96.50"), True)
    assert emulator.wait_idle()
    [(sender, notification)] = receiver.received
    assert sender == "127.0.0.2"
    assert notification == {"type": "notification", "event": "payment.succeeded", "object": paid}


def test_a_two_phase_payment_is_held_until_captured(
    api: Api, emulator: Emulator, receiver: Receiver
) -> None:
    payment = api.create(capture=False)
    click(payment, "Pay")
    held = api.now(payment)
    assert (held["status"], held["paid"]) == ("waiting_for_capture", True)
    assert held["expires_at"] > held["created_at"]
    captured = api.post(f"/payments/{payment['id']}/capture").json()
    assert (captured["status"], captured["amount"]) == ("succeeded", rub("100.00"))
    assert emulator.wait_idle()
    assert receiver.events() == ["payment.waiting_for_capture", "payment.succeeded"]


def test_capturing_less_than_held_takes_only_that_much(api: Api, held: dict[str, Any]) -> None:
    path = f"/payments/{held['id']}/capture"
    too_much = api.post(path, {"amount": rub("100.01")})
    assert (too_much.status_code, too_much.json()["parameter"]) == (400, "amount.value")
    captured = api.post(path, {"amount": rub("60.00")}).json()
    assert (captured["status"], captured["amount"]) == ("succeeded", rub("60.00"))


def test_only_a_held_payment_can_be_captured_or_canceled(api: Api, emulator: Emulator) -> None:
    payment = api.create(capture=False)
    for action in ("capture", "cancel"):
        answer = api.post(f"/payments/{payment['id']}/{action}")
        assert (answer.status_code, answer.json()["code"]) == (400, "invalid_request")
    emulator.settle(payment["id"], "waiting_for_capture")
    canceled = api.post(f"/payments/{payment['id']}/cancel").json()
    assert canceled["status"] == "canceled"
    assert canceled["cancellation_details"]["reason"] == "canceled_by_merchant"
    assert canceled["cancellation_details"]["party"] == "merchant"


def test_a_hold_expires_at_expires_at(api: Api, held: dict[str, Any], clock: Clock) -> None:
    clock.now += 7 * DAY
    expired = api.now(held)
    assert expired["status"] == "canceled"
    assert expired["cancellation_details"] == {"party": "yoo_money", "reason": "expired_on_capture"}


def test_an_unpaid_payment_expires_after_the_confirmation_period(
    api: Api, emulator: Emulator, clock: Clock, receiver: Receiver
) -> None:
    payment = api.create()
    clock.now += 3600
    assert [each.id for each in emulator.expire_due()] == [payment["id"]]
    details = emulator.payment(payment["id"]).as_json()["cancellation_details"]
    assert details == {"party": "yoo_money", "reason": "expired_on_confirmation"}
    assert emulator.wait_idle()
    assert receiver.events() == ["payment.canceled"]


@pytest.mark.parametrize(
    ("button", "party", "reason"),
    [("Decline", "payment_network", "card_expired"), ("Cancel", "yoo_money", DIDNT_PAY)],
)
def test_the_page_declines_or_gives_up(api: Api, button: str, party: str, reason: str) -> None:
    payment = api.create()
    assert click(payment, button).headers["Location"] == RETURN_URL
    canceled = api.now(payment)
    assert canceled["status"] == "canceled"
    assert canceled["cancellation_details"] == {"party": party, "reason": reason}
    page = payment["confirmation"]["confirmation_url"]
    assert requests.post(page, {"action": "pay"}, timeout=TIMEOUT).status_code == 409


# -- idempotency --------------------------------------------------------------------------------


def test_a_repeat_gets_the_original_answer_and_another_body_is_refused(
    api: Api, emulator: Emulator
) -> None:
    first = api.post("/payments", payment_body(), key="order-1")
    again = api.post("/payments", payment_body(), key="order-1")
    assert (again.status_code, again.json()) == (first.status_code, first.json())
    other = api.post("/payments", payment_body(description="Order 2"), key="order-1").json()
    assert other["description"] == "Idempotence key duplicated"
    assert other["parameter"] == "Idempotence-Key"
    assert len(emulator.payments) == 1


def test_a_key_is_forgotten_after_24_hours(api: Api, emulator: Emulator, clock: Clock) -> None:
    first = api.post("/payments", payment_body(), key="order-1").json()
    clock.now += DAY - 1
    assert api.post("/payments", payment_body(), key="order-1").json()["id"] == first["id"]
    clock.now += 1
    assert api.post("/payments", payment_body(), key="order-1").json()["id"] != first["id"]
    assert len(emulator.payments) == 2


# -- refunds ------------------------------------------------------------------------------------


def refund(api: Api, payment: dict[str, Any], value: str) -> requests.Response:
    return api.post("/refunds", {"payment_id": payment["id"], "amount": rub(value)})


def test_partial_and_repeated_refunds_up_to_the_paid_amount(api: Api, paid: dict[str, Any]) -> None:
    first = refund(api, paid, "30.00").json()
    assert (first["status"], first["amount"]) == ("succeeded", rub("30.00"))
    assert first["payment_id"] == paid["id"]
    assert api.get(f"/refunds/{first['id']}").json() == first
    assert refund(api, paid, "70.00").status_code == 200
    over = refund(api, paid, "0.01")
    assert (over.status_code, over.json()["parameter"]) == (400, "amount.value")
    refunded = api.now(paid)
    assert (refunded["refunded_amount"], refunded["refundable"]) == (rub("100.00"), False)


def test_only_a_succeeded_payment_can_be_refunded(api: Api, held: dict[str, Any]) -> None:
    answer = refund(api, held, "1.00")
    assert (answer.status_code, answer.json()["parameter"]) == (400, "payment_id")


def test_a_pending_refund_succeeds_when_settled(api: Api, emulator: Emulator) -> None:
    emulator.store.pending_refunds = True
    payment = api.create()
    emulator.settle(payment["id"], "succeeded")
    pending = refund(api, payment, "10.00").json()
    assert pending["status"] == "pending"
    delivery = emulator.settle_refund(pending["id"])
    assert delivery is not None
    assert (delivery.event, delivery.body["object"]["status"]) == ("refund.succeeded", "succeeded")
    assert api.get(f"/refunds/{pending['id']}").json()["status"] == "succeeded"


# -- webhooks and control -----------------------------------------------------------------------


def test_an_unanswered_notification_is_repeated(
    api: Api, emulator: Emulator, receiver: Receiver
) -> None:
    receiver.answers.append(500)
    emulator.settle(api.create()["id"], "succeeded")
    assert emulator.wait_idle()
    attempts = [(each.attempt, each.status_code, each.sender) for each in emulator.deliveries]
    assert attempts == [(1, 500, "127.0.0.2"), (2, 200, "127.0.0.2")]


def test_the_control_api_settles_a_payment(api: Api, emulator: Emulator) -> None:
    url = f"{emulator.url}/emulator/payments/{api.create()['id']}/settle"
    command = {"status": "canceled", "reason": "insufficient_funds"}
    settled = requests.post(url, json=command, timeout=TIMEOUT).json()
    assert settled["object"]["cancellation_details"]["party"] == "payment_network"
    assert settled["notification"]["status_code"] == 200
    assert requests.post(url, json={"status": "succeeded"}, timeout=TIMEOUT).status_code == 400
    unknown = f"{emulator.url}/emulator/payments/nope/settle"
    assert requests.post(unknown, json={}, timeout=TIMEOUT).status_code == 404


def test_requests_are_recorded_without_the_secret(api: Api, emulator: Emulator) -> None:
    api.create()
    [recorded] = emulator.requests
    assert (recorded.method, recorded.path, recorded.shop_id) == ("POST", "/v3/payments", SHOP_ID)
    assert recorded.json() == payment_body()
    assert SECRET_KEY not in json.dumps(recorded.headers)


def test_settings_connect_to_the_shop(emulator: Emulator) -> None:
    assert emulator.settings() == {
        "provider": "yookassa",
        "shop_id": SHOP_ID,
        "secret_key": SECRET_KEY,
        "base_url": emulator.url,
        "allowed_senders": ["127.0.0.2/32"],
    }


# -- faults -------------------------------------------------------------------------------------


def test_an_internal_error_hides_a_payment_that_exists(api: Api, emulator: Emulator) -> None:
    failed = api.post("/payments", payment_body(), key="k", fault="internal_error")
    assert (failed.status_code, failed.json()["code"]) == (500, "internal_server_error")
    [stored] = emulator.payments
    assert api.post("/payments", payment_body(), key="k").json()["id"] == stored.id


def test_an_internal_error_on_a_refund_still_refunds(
    api: Api, emulator: Emulator, paid: dict[str, Any]
) -> None:
    emulator.inject(Fault.INTERNAL_ERROR, on="refund")
    assert refund(api, paid, "100.00").status_code == 500
    assert [each.status for each in emulator.refunds] == ["succeeded"]


def test_a_dropped_connection_hides_a_payment_that_exists(api: Api, emulator: Emulator) -> None:
    emulator.inject(Fault.DROP_CONNECTION, on="create")
    with pytest.raises(requests.ConnectionError):
        api.post("/payments", payment_body(), key="k")
    assert api.post("/payments", payment_body(), key="k").json()["id"] == emulator.payments[0].id


def test_a_stalled_answer_comes_after_the_clients_timeout(api: Api, emulator: Emulator) -> None:
    emulator.stall_seconds = 0.5
    emulator.inject(Fault.STALL, on="status")
    payment = api.create()
    with pytest.raises(requests.ReadTimeout):
        api.session.get(f"{api.base}/payments/{payment['id']}", timeout=0.2)


def test_processing_acts_only_on_the_repeat(api: Api, emulator: Emulator) -> None:
    emulator.inject(Fault.PROCESSING, on="create")
    accepted = api.post("/payments", payment_body(), key="k")
    assert accepted.status_code == 202
    assert (accepted.json()["type"], accepted.json()["retry_after"]) == ("processing", 100)
    assert emulator.payments == []
    assert api.post("/payments", payment_body(), key="k").status_code == 200
    assert len(emulator.payments) == 1


def test_too_many_requests_acts_not_at_all(api: Api, emulator: Emulator) -> None:
    emulator.faults.set_rate(Fault.TOO_MANY_REQUESTS, 1.0)
    answer = api.post("/payments", payment_body())
    assert (answer.status_code, answer.json()["code"]) == (429, "too_many_requests")
    assert emulator.payments == []


def test_a_duplicate_notification_asked_for_on_create(
    api: Api, emulator: Emulator, receiver: Receiver
) -> None:
    answer = api.post("/payments", payment_body(), fault="duplicate_notification")
    emulator.settle(answer.json()["id"], "succeeded")
    assert emulator.wait_idle()
    [(_, first), (_, second)] = receiver.received
    assert first == second


def test_a_stale_notification_follows_the_final_one(
    api: Api, emulator: Emulator, receiver: Receiver, held: dict[str, Any]
) -> None:
    emulator.inject(Fault.STALE_NOTIFICATION)
    api.post(f"/payments/{held['id']}/capture")
    emulator.wait_idle()
    old, final = "payment.waiting_for_capture", "payment.succeeded"
    assert receiver.events() == [old, final, old]
    assert [each.fault for each in emulator.deliveries] == [None, None, "stale"]


def test_forged_notifications_come_first(api: Api, emulator: Emulator, receiver: Receiver) -> None:
    payment = api.create(capture=False)
    emulator.inject(Fault.FORGED_NOTIFICATION)
    emulator.settle(payment["id"], "waiting_for_capture")
    emulator.wait_idle()
    (copy_sender, copy), (lie_sender, lie), (sender, genuine) = receiver.received
    assert (copy_sender, copy) == ("127.0.0.99", genuine)
    assert lie_sender == sender == "127.0.0.2"
    assert lie["event"] == "payment.succeeded"
    assert api.now(payment)["status"] == "waiting_for_capture"


def test_faults_are_checked_against_their_operations(emulator: Emulator) -> None:
    assert FAULT_OPERATIONS == ("create", "status", "capture", "cancel", "refund", "notification")
    with pytest.raises(ValueError, match="not a fault of"):
        emulator.inject(Fault.PROCESSING, on="status")
    with pytest.raises(ValueError, match="not a fault of"):
        emulator.inject(Fault.DUPLICATE_NOTIFICATION, on="create")
