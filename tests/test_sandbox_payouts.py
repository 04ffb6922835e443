"""Payouts and the balance in the AliKassa sandbox, as a merchant's own code meets them.

Every request goes over real HTTP on loopback, in PHP `json_encode` form, signed with the
certificate the call needs: the payout certificate for `v1/payout` and `v1/payout/status`, the
payment certificate for `v1/payment` and `v1/account/balance`. Notifications are verified the
way the provider verifies them: the eleven fields, PHP `json_encode`, the notification key.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from paymux.providers.alikassa import CertificateFolder, Signer, Verifier, phpjson, schemas
from paymux.providers.alikassa.sandbox import Fault, Merchant, PayoutClosed, PayoutService, Sandbox
from support import Receiver, unique_order_id

CARD = "4111111111111111"


@pytest.fixture(scope="session")
def payout_key() -> rsa.RSAPrivateKey:
    """The merchant's payout key: a key apart from the payment key, generated once per run."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def shop(
    sandbox: Sandbox,
    tmp_path: Path,
    payment_key: rsa.RSAPrivateKey,
    payout_key: rsa.RSAPrivateKey,
    receiver: Receiver,
) -> Merchant:
    """A merchant with both certificates, 1000.00 to pay out, and payout notifications
    configured (as in the merchant cabinet) to go to the receiver."""
    sandbox.payout_notification_url = receiver.url
    merchant = sandbox.create_merchant(
        tmp_path / "payment",
        private_key=payment_key,
        payout_folder=tmp_path / "payout",
        payout_private_key=payout_key,
    )
    sandbox.set_balance(merchant.account, balance="1000.00")
    return merchant


def call(
    sandbox: Sandbox, shop: Merchant, method: str, body: Any, *, wrong_key: bool = False
) -> requests.Response:
    """POST `body` to `method` as the gateway's clients do, signed with the certificate the call
    needs (the other one, with `wrong_key`): the signed bytes are the sent ones."""
    payout_key = method.startswith("v1/payout") != wrong_key
    certificate = shop.payout_certificate if payout_key else shop.payment_certificate
    assert certificate is not None
    payload = phpjson.dumps_bytes(body)
    headers = {
        "Content-Type": "application/json",
        "Account": shop.account,
        "Sign": Signer.from_certificate_dir(certificate.path).sign(payload),
    }
    return requests.post(f"{sandbox.url}/{method}", data=payload, headers=headers, timeout=5)


def payout_body(**overrides: Any) -> dict[str, Any]:
    return {
        "amount": "300.00",
        "number": CARD,
        "order_id": unique_order_id(),
        "service": "payment_card_rub",
        **overrides,
    }


def payment_body() -> dict[str, Any]:
    return {
        "order_id": unique_order_id(),
        "amount": "500.00",
        "service": "payment_card_rub_hpp",
        "customer_ip": "203.0.113.7",
        "customer_browser_user_agent": "Mozilla/5.0",
    }


def balance_of(sandbox: Sandbox, shop: Merchant) -> dict[str, Any]:
    answer = call(sandbox, shop, "v1/account/balance", {})
    assert answer.status_code == 200, answer.text
    return dict(answer.json(parse_float=Decimal))


def verified(sandbox: Sandbox, path: str) -> dict[str, str]:
    """A received notification's parameters, once its signature checks out."""
    params = dict(parse_qsl(urlsplit(path).query, keep_blank_values=True))
    values = {name: params.get(name) for name in schemas.NOTIFICATION_FIELDS}
    message = phpjson.dumps_bytes({**values, "id": int(params["id"])})
    verifier = Verifier.from_file(sandbox.notification_certificate.public_key)
    verifier.verify(message, params["sign"])
    return params


# -- create and status ------------------------------------------------------------------------


def test_a_payout_is_created_waiting_and_its_status_is_answered_by_id_and_by_order_id(
    sandbox: Sandbox, shop: Merchant
) -> None:
    body = payout_body(extra={"card_exp_month": "07", "card_exp_year": "2030"})

    created = call(sandbox, shop, "v1/payout", body)

    assert created.status_code == 200, created.text
    assert created.json() == {"id": sandbox.payout(body["order_id"]).id, "payment_status": "wait"}
    by_id = call(sandbox, shop, "v1/payout/status", {"id": created.json()["id"]})
    by_order = call(sandbox, shop, "v1/payout/status", {"order_id": body["order_id"]})
    expected = {
        "id": created.json()["id"],
        "order_id": body["order_id"],
        "payment_status": "wait",
        "amount": "300.000000000",
        "commission_amount": "0.000000000",
        "currency": "RUB",
        "service_code": "payment_card_rub",
        "card_number": "411111******1111",
    }
    assert (by_id.status_code, by_id.json()) == (200, expected)
    assert (by_order.status_code, by_order.json()) == (200, expected)
    assert sandbox.payout(body["order_id"]).request == body


def test_an_sbp_payout_goes_to_a_phone_number_and_shows_no_card(
    sandbox: Sandbox, shop: Merchant
) -> None:
    body = payout_body(service="payment_card_sbp_rub", number="+79991234567", customer_code="1")

    created = call(sandbox, shop, "v1/payout", body)

    status = call(sandbox, shop, "v1/payout/status", {"id": created.json()["id"]})
    assert status.json()["card_number"] is None


def test_a_status_call_about_no_payout_of_the_account_is_not_found(
    sandbox: Sandbox, shop: Merchant, tmp_path: Path
) -> None:
    other = sandbox.create_merchant(tmp_path / "other", payout_folder=tmp_path / "other-payout")
    sandbox.set_balance(other.account, balance="1000")
    theirs = call(sandbox, other, "v1/payout", payout_body()).json()["id"]

    for query in ({"id": theirs}, {"id": "12345"}, {"order_id": "never-sent"}):
        answer = call(sandbox, shop, "v1/payout/status", query)

        assert (answer.status_code, answer.json()) == (404, {"message": "Payout not found"})


# -- which certificate signs what -----------------------------------------------------------------


@pytest.mark.parametrize(
    "method",
    ["v1/payout", "v1/payout/status", "v1/payment", "v1/payment/status", "v1/account/balance"],
)
def test_a_call_signed_with_the_other_certificate_is_refused(
    sandbox: Sandbox, shop: Merchant, method: str
) -> None:
    body = {**payment_body(), **payout_body()}

    answer = call(sandbox, shop, method, body, wrong_key=True)

    assert (answer.status_code, answer.json()) == (401, {"message": "Wrong sign"})
    assert (sandbox.payouts(), sandbox.payments()) == ([], [])


def test_the_settings_name_a_payout_certificate_only_when_there_is_one(
    sandbox: Sandbox, shop: Merchant, tmp_path: Path
) -> None:
    plain = sandbox.create_merchant(tmp_path / "plain")

    answer = call(sandbox, plain, "v1/payout", payout_body(), wrong_key=True)

    assert answer.status_code == 401
    assert plain.payout_certificate is None
    assert "payout_certificate_dir" not in plain.settings
    assert shop.payout_certificate is not None
    assert shop.settings["payout_certificate_dir"] == str(shop.payout_certificate.path)


# -- refusals ---------------------------------------------------------------------------------


def test_a_second_payout_with_the_same_order_id_is_refused_and_holds_nothing_more(
    sandbox: Sandbox, shop: Merchant
) -> None:
    body = payout_body()
    call(sandbox, shop, "v1/payout", body)

    again = call(sandbox, shop, "v1/payout", {**body, "amount": "150.00"})

    assert (again.status_code, again.json()) == (400, {"message": "order_id exists"})
    assert balance_of(sandbox, shop) == {"balance": 700, "hold": 300, "rolling_reserve": 0}


def test_a_payout_beyond_the_balance_is_refused_and_not_stored(
    sandbox: Sandbox, shop: Merchant
) -> None:
    answer = call(sandbox, shop, "v1/payout", payout_body(amount="1000.01"))

    assert (answer.status_code, answer.json()) == (400, {"message": "Insufficient funds"})
    assert sandbox.payouts() == []
    assert balance_of(sandbox, shop)["balance"] == 1000


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"service": "payment_card_eur"}, "Not exists service / No found service"),
        ({"amount": "99.99"}, "Minimum amount 100"),
        ({"service": "payment_card_kzt", "amount": "2000000.01"}, "Maximum amount 2000000"),
    ],
)
def test_a_payout_the_service_does_not_take_is_refused(
    sandbox: Sandbox, shop: Merchant, changes: dict[str, str], message: str
) -> None:
    sandbox.set_balance(shop.account, balance="5000000")

    answer = call(sandbox, shop, "v1/payout", payout_body(**changes))

    assert (answer.status_code, answer.json()) == (400, {"message": message})


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"amount": "10.001"}, "amount"),
        ({"amount": "0"}, "amount"),
        ({"number": "41111111"}, "number"),
        ({"number": "+7999"}, "number"),
        ({"service": "payment_card_sbp_rub", "number": CARD + "0000"}, "number"),
        ({"order_id": "x" * 129}, "order_id"),
        ({"customer_email": "not-an-email"}, "customer_email"),
        ({"extra": {"card_exp_month": "13"}}, "extra"),
    ],
)
def test_invalid_payout_fields_are_refused_in_laravels_format(
    sandbox: Sandbox, shop: Merchant, changes: dict[str, Any], field: str
) -> None:
    answer = call(sandbox, shop, "v1/payout", payout_body(**changes))

    assert answer.status_code == 400
    assert answer.json()["message"] == "The given data was invalid."
    assert list(answer.json()["errors"]) == [field]


def test_fields_without_a_rule_are_ignored_and_kept(sandbox: Sandbox, shop: Merchant) -> None:
    body = payout_body(customer_user_id=7, extra={"card_holder": "IVAN PETROV", "cvv": "1"})

    answer = call(sandbox, shop, "v1/payout", body)

    assert answer.status_code == 200, answer.text
    assert sandbox.payout(body["order_id"]).request == body


# -- settling, notifications and the balance --------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "paid_amount", "balance"),
    [("paid", "300.000000000", 700), ("fail", "", 1000), ("cancel", "", 1000)],
)
def test_each_outcome_is_notified_signed_and_settles_the_hold(
    sandbox: Sandbox,
    shop: Merchant,
    receiver: Receiver,
    outcome: str,
    paid_amount: str,
    balance: int,
) -> None:
    body = payout_body()
    created = call(sandbox, shop, "v1/payout", body).json()
    assert balance_of(sandbox, shop) == {"balance": 700, "hold": 300, "rolling_reserve": 0}

    delivery = sandbox.settle_payout(created["id"], outcome)

    assert delivery is not None
    assert (delivery.delivered, delivery.kind) == (True, "payout")
    params = verified(sandbox, receiver.wait_for(1)[0])
    assert params == {
        **params,
        "type": "payout",
        "id": str(created["id"]),
        "order_id": body["order_id"],
        "payment_status": outcome,
        "amount": "300.000000000",
        "payment_amount": paid_amount,
        "account": shop.account,
        "service": "payment_card_rub",
    }
    assert balance_of(sandbox, shop) == {"balance": balance, "hold": 0, "rolling_reserve": 0}


def test_the_notification_url_of_the_request_wins_over_the_configured_one(
    sandbox: Sandbox, shop: Merchant
) -> None:
    with Receiver() as own:
        body = payout_body(notification_endpoint_url=own.url)
        created = call(sandbox, shop, "v1/payout", body).json()

        sandbox.settle_payout(created["id"], "paid")

        assert verified(sandbox, own.wait_for(1)[0])["order_id"] == body["order_id"]


def test_the_control_api_lists_and_settles_payouts_once(
    sandbox: Sandbox, shop: Merchant, receiver: Receiver
) -> None:
    body = payout_body()
    created = call(sandbox, shop, "v1/payout", body).json()
    settle = f"{sandbox.url}/sandbox/payouts/{created['id']}/settle"

    settled = requests.post(settle, json={"status": "paid"}, timeout=5)
    again = requests.post(settle, json={"status": "fail"}, timeout=5)
    listed = requests.get(f"{sandbox.url}/sandbox/payouts", timeout=5).json()["payouts"]

    assert settled.status_code == 200
    assert settled.json()["payout"]["payment_status"] == "paid"
    assert settled.json()["notification"]["http_status"] == 200
    assert again.status_code == 400
    with pytest.raises(PayoutClosed):
        sandbox.settle_payout(created["id"], "cancel")
    assert [(row["id"], row["payment_status"], row["request"]) for row in listed] == [
        (created["id"], "paid", body)
    ]
    assert verified(sandbox, receiver.wait_for(1)[0])["payment_status"] == "paid"
    assert balance_of(sandbox, shop) == {"balance": 700, "hold": 0, "rolling_reserve": 0}


def test_a_paid_payment_credits_what_it_brings_less_commission_for_payouts(
    sandbox: Sandbox, shop: Merchant
) -> None:
    payment = payment_body()
    payment_id = call(sandbox, shop, "v1/payment", payment).json()["id"]

    sandbox.settle(payment["order_id"], "paid", paid_amount="250.50")

    assert sandbox.payment(payment_id).commission_amount == Decimal("7.52")  # 3 %, to the cent
    assert balance_of(sandbox, shop)["balance"] == Decimal("1242.98")
    payout = call(sandbox, shop, "v1/payout", payout_body(amount="1242.98"))
    assert payout.status_code == 200
    assert payout.json()["id"] > payment_id  # one id counter for payments and payouts


def test_the_balance_is_answered_in_exact_json_numbers(sandbox: Sandbox, shop: Merchant) -> None:
    parts = {"balance": "1234.50", "hold": "0.10", "rolling_reserve": 7}
    control = f"{sandbox.url}/sandbox/accounts/{shop.account}/balance"
    set_over_http = requests.post(control, json=parts, timeout=5)

    answer = call(sandbox, shop, "v1/account/balance", {})
    from_php = call(sandbox, shop, "v1/account/balance", [])  # PHP's json_encode([])

    assert answer.content == b'{"balance":1234.5,"hold":0.1,"rolling_reserve":7}'
    assert from_php.content == set_over_http.content == answer.content


def test_a_payout_service_with_a_commission_holds_it_with_the_amount(
    notification_certificate: CertificateFolder, tmp_path: Path
) -> None:
    service = PayoutService("payment_card_uah", "UAH", commission_rate=Decimal("0.015"))
    with Sandbox(
        notification_certificate=notification_certificate.path, payout_services=(service,)
    ) as sandbox:
        shop = sandbox.create_merchant(tmp_path / "payment", payout_folder=tmp_path / "payout")
        sandbox.set_balance(shop.account, balance="1000")

        created = call(sandbox, shop, "v1/payout", payout_body(service=service.code))

        status = call(sandbox, shop, "v1/payout/status", {"id": created.json()["id"]})
        assert status.json()["commission_amount"] == "4.500000000"
        held = {"balance": Decimal("695.5"), "hold": Decimal("304.5"), "rolling_reserve": 0}
        assert balance_of(sandbox, shop) == held


# -- faults and restarts ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "heard"), [(Fault.INTERNAL_ERROR, 500), (Fault.DROP_CONNECTION, "dropped")]
)
def test_a_payout_fault_comes_after_the_payout_is_stored(
    sandbox: Sandbox, shop: Merchant, fault: Fault, heard: int | str
) -> None:
    body = payout_body()
    sandbox.inject(fault, on="payout")

    try:
        outcome: int | str = call(sandbox, shop, "v1/payout", body).status_code
    except requests.ConnectionError:
        outcome = "dropped"

    assert outcome == heard
    status = call(sandbox, shop, "v1/payout/status", {"order_id": body["order_id"]})
    assert status.json()["payment_status"] == "wait"
    assert balance_of(sandbox, shop)["hold"] == 300


def test_a_payout_status_fault_spoils_one_answer(sandbox: Sandbox, shop: Merchant) -> None:
    body = payout_body()
    call(sandbox, shop, "v1/payout", body)
    sandbox.inject(Fault.TRUNCATED_JSON, on="payout_status")

    spoiled = call(sandbox, shop, "v1/payout/status", {"order_id": body["order_id"]})
    whole = call(sandbox, shop, "v1/payout/status", {"order_id": body["order_id"]})

    with pytest.raises(requests.JSONDecodeError):
        spoiled.json()
    assert whole.json()["order_id"] == body["order_id"]


def test_a_restarted_sandbox_keeps_payouts_balances_and_the_payout_key(
    tmp_path: Path, receiver: Receiver
) -> None:
    state = tmp_path / "state"
    with Sandbox(state_dir=state, payout_notification_url=receiver.url) as first:
        shop = first.merchant(state / "payment", payout_folder=state / "payout")
        first.set_balance(shop.account, balance="1000", rolling_reserve="50")
        kept = call(first, shop, "v1/payout", payout_body()).json()
        paid = call(first, shop, "v1/payout", payout_body(amount="200.00")).json()
        first.settle_payout(paid["id"], "paid")

    with Sandbox(state_dir=state, payout_notification_url=receiver.url) as again:
        known = again.merchant(state / "payment", payout_folder=state / "payout")
        assert (known.account, known.payout_certificate) == (shop.account, shop.payout_certificate)
        status = call(again, shop, "v1/payout/status", {"id": kept["id"]})
        assert status.json()["payment_status"] == "wait"
        assert balance_of(again, shop) == {"balance": 500, "hold": 300, "rolling_reserve": 50}
        again.settle_payout(kept["id"], "cancel")
        assert balance_of(again, shop) == {"balance": 800, "hold": 0, "rolling_reserve": 50}
        newer = call(again, shop, "v1/payout", payout_body()).json()
        assert newer["id"] > paid["id"]
    notified = [verified(again, path)["payment_status"] for path in receiver.wait_for(2)]
    assert notified == ["paid", "cancel"]
