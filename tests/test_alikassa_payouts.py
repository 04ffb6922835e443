"""AliKassa payouts and balance over real loopback HTTP, against the sandbox: a payout is sent
once whatever happens to its answer, refusals are typed, its notifications are never taken for
payments, and the recipient's card number shows nowhere but in the body that carries it."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

import paymux
from paymux import InsufficientFunds, PayoutStatus
from paymux.providers.alikassa import AliKassaProvider
from paymux.providers.alikassa.keys import load_public_key
from paymux.providers.alikassa.sandbox import Fault, Merchant, Sandbox
from proxy import FAIL, LOST, NOT_FOUND, PAYOUT, PAYOUT_STATUS, Proxy
from support import Receiver, unique_order_id

CARD = "4111111111111111"
MASKED_CARD = "411111******1111"


@pytest.fixture(scope="session")
def payout_key() -> rsa.RSAPrivateKey:
    """The merchant's payout key, generated once per run."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def merchant(
    sandbox: Sandbox, tmp_path: Path, payment_key: rsa.RSAPrivateKey, payout_key: rsa.RSAPrivateKey
) -> Merchant:
    """A merchant with both certificates, and 10 000 on its balance."""
    registered = sandbox.create_merchant(
        tmp_path / "payment",
        private_key=payment_key,
        payout_folder=tmp_path / "payout",
        payout_private_key=payout_key,
    )
    sandbox.set_balance(registered.account, balance="10000")
    return registered


@pytest.fixture
def provider(merchant: Merchant) -> Iterator[AliKassaProvider]:
    """The merchant's provider; pauses between attempts are short."""
    with paymux.connect({**merchant.settings, "backoff": 0.01}) as connected:
        assert isinstance(connected, AliKassaProvider)
        yield connected


@pytest.fixture
def proxy(sandbox: Sandbox) -> Iterator[Proxy]:
    running = Proxy(sandbox.url)
    yield running
    running.close()


@pytest.fixture
def via_proxy(merchant: Merchant, proxy: Proxy) -> Iterator[AliKassaProvider]:
    settings = {**merchant.settings, "base_url": proxy.url, "backoff": 0.01}
    with paymux.connect(settings) as connected:
        assert isinstance(connected, AliKassaProvider)
        yield connected


def payout_request(**overrides: Any) -> paymux.PayoutRequest:
    """A valid card payout of 500 RUB; keyword arguments replace its fields."""
    values: dict[str, Any] = {
        "order_id": unique_order_id(),
        "amount": Decimal("500.00"),
        "number": CARD,
        "currency": "RUB",
        "recipient": {
            "first_name": "Ivan",
            "last_name": "Petrov",
            "card_exp_month": "07",
            "card_exp_year": "2030",
        },
        "options": {"service": "payment_card_rub"},
    }
    values.update(overrides)
    return paymux.PayoutRequest(**values)


def payouts_of(sandbox: Sandbox) -> int:
    return len(sandbox.payouts())


# -- a payout, its status, the balance it moves ------------------------------------------------


def test_a_payout_is_created_and_reported_by_id_and_by_order_id(
    provider: AliKassaProvider, sandbox: Sandbox
) -> None:
    request = payout_request()

    created = provider.payout(request)
    by_id = provider.payout_status(payout_id=created.id)
    by_order = provider.payout_status(order_id=request.order_id)

    stored = sandbox.payout(request.order_id)
    assert created.id == str(stored.id)
    assert (created.status, created.order_id, created.amount) == (
        PayoutStatus.PENDING,
        request.order_id,
        Decimal("500.00"),
    )
    assert by_id == by_order
    assert (by_id.id, by_id.amount, by_id.currency) == (created.id, Decimal("500"), "RUB")
    assert stored.request["number"] == CARD
    assert stored.request["customer_first_name"] == "Ivan"
    assert stored.request["extra"] == {"card_exp_month": "07", "card_exp_year": "2030"}


def test_payout_calls_are_signed_with_the_payout_key_and_the_balance_with_the_payment_key(
    provider: AliKassaProvider, sandbox: Sandbox, merchant: Merchant
) -> None:
    created = provider.payout(payout_request())
    provider.payout_status(payout_id=created.id)
    provider.balance()

    assert merchant.payout_certificate is not None
    keys = {
        "/v1/payout": merchant.payout_certificate,
        "/v1/payout/status": merchant.payout_certificate,
        "/v1/account/balance": merchant.payment_certificate,
    }
    assert [request.path for request in sandbox.requests] == list(keys)
    for request in sandbox.requests:
        public_key = load_public_key(keys[request.path].public_key.read_bytes())
        signature = base64.b64decode(request.headers["sign"], validate=True)
        public_key.verify(signature, request.body, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303
        assert request.headers["account"] == merchant.account


def test_the_balance_shows_what_a_payout_holds_and_what_settling_it_does(
    provider: AliKassaProvider, sandbox: Sandbox, merchant: Merchant
) -> None:
    sandbox.set_balance(merchant.account, balance="1000.50", rolling_reserve="25")
    before = provider.balance()

    kept = provider.payout(payout_request(amount=Decimal("300.00")))
    failed = provider.payout(payout_request(amount=Decimal("200.00")))
    held = provider.balance()
    sandbox.settle_payout(kept.id, "paid")
    sandbox.settle_payout(failed.id, "fail")
    after = provider.balance()

    assert (before.available, before.held, before.reserve) == (
        Decimal("1000.50"),
        Decimal("0"),
        Decimal("25"),
    )
    assert (held.available, held.held) == (Decimal("500.50"), Decimal("500.00"))
    assert (after.available, after.held, after.reserve) == (
        Decimal("700.50"),
        Decimal("0"),
        Decimal("25"),
    )
    assert all(isinstance(b.available, Decimal) for b in (before, held, after))
    assert after.instance == provider.instance


def test_a_payout_service_setting_is_used_when_the_request_names_none(
    merchant: Merchant, sandbox: Sandbox
) -> None:
    settings = {**merchant.settings, "payout_service": "payment_card_sbp_rub"}
    with paymux.connect(settings) as provider:
        created = provider.payout(payout_request(number="+79161234567", options={}))

    assert sandbox.payout(created.id).request["service"] == "payment_card_sbp_rub"


# -- exactly once ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [Fault.INTERNAL_ERROR, Fault.DROP_CONNECTION, Fault.HTML_ANSWER, Fault.TRUNCATED_JSON],
)
def test_a_payout_whose_answer_is_lost_is_found_and_never_sent_twice(
    provider: AliKassaProvider, sandbox: Sandbox, fault: Fault
) -> None:
    sandbox.inject(fault, on="payout")
    request = payout_request()

    payout = provider.payout(request)

    assert payout.id == str(sandbox.payout(request.order_id).id)
    assert payouts_of(sandbox) == 1
    assert [r.path for r in sandbox.requests] == ["/v1/payout", "/v1/payout/status"]


def test_a_payout_the_gateway_never_stored_is_sent_again_with_the_same_bytes(
    via_proxy: AliKassaProvider, proxy: Proxy, sandbox: Sandbox
) -> None:
    proxy.then(PAYOUT, FAIL)
    request = payout_request()

    payout = via_proxy.payout(request)

    sent = proxy.bodies(PAYOUT)
    assert len(sent) == 2
    assert sent[0] == sent[1]
    assert payout.id == str(sandbox.payout(request.order_id).id)
    assert payouts_of(sandbox) == 1


def test_a_payout_still_unknown_after_every_attempt_is_reconciled_later(
    via_proxy: AliKassaProvider, proxy: Proxy, sandbox: Sandbox
) -> None:
    proxy.then(PAYOUT, LOST).then(PAYOUT_STATUS, NOT_FOUND, NOT_FOUND)  # a lagging replica
    request = payout_request()

    with pytest.raises(paymux.OutcomeUnknown) as raised:
        via_proxy.payout(request)
    settled = via_proxy.reconcile(raised.value)

    assert raised.value.operation == "payout"
    assert raised.value.order_id == request.order_id
    assert isinstance(settled, paymux.Payout)
    assert settled.id == str(sandbox.payout(request.order_id).id)
    assert payouts_of(sandbox) == 1
    assert CARD not in str(raised.value) + repr(raised.value)


def test_a_repeated_payout_order_id_with_another_amount_is_an_order_conflict(
    provider: AliKassaProvider, sandbox: Sandbox
) -> None:
    first = provider.payout(payout_request())

    same = provider.payout(payout_request(order_id=first.order_id))
    with pytest.raises(paymux.OrderConflict, match="amount"):
        provider.payout(payout_request(order_id=first.order_id, amount=Decimal("600.00")))
    with pytest.raises(paymux.OrderConflict, match=r"card 411111\*+1111 instead of 555555\*+4444"):
        provider.payout(payout_request(order_id=first.order_id, number="5555555555554444"))

    assert same.id == first.id
    assert payouts_of(sandbox) == 1


# -- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        pytest.param({"amount": Decimal("50000")}, InsufficientFunds, id="insufficient-funds"),
        pytest.param({"amount": Decimal("50.00")}, paymux.AmountOutOfRange, id="below-minimum"),
        pytest.param(
            {"options": {"service": "payment_card_xyz"}, "currency": None},
            paymux.UnknownService,
            id="unknown-service",
        ),
    ],
)
def test_a_refused_payout_is_a_typed_error_and_moves_no_money(
    provider: AliKassaProvider, sandbox: Sandbox, changes: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error) as raised:
        provider.payout(payout_request(**changes))

    assert isinstance(raised.value, paymux.ProviderError)
    assert raised.value.http_status == 400
    assert payouts_of(sandbox) == 0
    assert provider.balance().available == Decimal("10000")


def test_a_payout_during_maintenance_is_provider_unavailable(
    provider: AliKassaProvider, sandbox: Sandbox
) -> None:
    sandbox.maintenance = True

    with pytest.raises(paymux.ProviderUnavailable):
        provider.payout(payout_request())

    assert payouts_of(sandbox) == 0


def test_an_unknown_payout_is_payout_not_found(provider: AliKassaProvider) -> None:
    with pytest.raises(paymux.PayoutNotFound):
        provider.payout_status(order_id="no-such-payout")
    with pytest.raises(paymux.PayoutNotFound):
        provider.payout_status(payout_id="1")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param({"number": "4111 1111"}, "number", id="card-number"),
        pytest.param({"amount": 500.0}, "amount", id="float-amount"),
        pytest.param({"currency": "EUR"}, "currency", id="currency-of-another-service"),
        pytest.param({"options": {}}, "options.service", id="no-service"),
        pytest.param({"options": {"speed": "fast"}}, "options.speed", id="unknown-option"),
        pytest.param({"recipient": {"nickname": "x"}}, "recipient.nickname", id="unknown-key"),
        pytest.param(
            {"recipient": {"card_exp_month": "13"}}, "recipient.card_exp_month", id="bad-month"
        ),
        pytest.param({"recipient": {"email": "not-an-email"}}, "recipient.email", id="bad-email"),
    ],
)
def test_a_bad_payout_request_is_a_validation_error_before_anything_is_sent(
    provider: AliKassaProvider, sandbox: Sandbox, changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(paymux.ValidationError) as raised:
        provider.payout(payout_request(**changes))

    assert field in raised.value.fields
    assert sandbox.requests == []


def test_payouts_without_a_payout_certificate_are_a_configuration_error_before_sending(
    sandbox: Sandbox, tmp_path: Path, payment_key: rsa.RSAPrivateKey
) -> None:
    merchant = sandbox.create_merchant(tmp_path / "payment", private_key=payment_key)

    with paymux.connect(merchant.settings) as provider:
        with pytest.raises(paymux.ConfigurationError, match="payout_certificate_dir"):
            provider.payout(payout_request())
        with pytest.raises(paymux.ConfigurationError, match="payout_certificate_dir"):
            provider.payout_status(order_id="any")

    assert sandbox.requests == []


def test_the_payout_key_may_be_given_as_a_private_key_and_its_password(
    merchant: Merchant, sandbox: Sandbox
) -> None:
    assert merchant.payout_certificate is not None
    folder = merchant.payout_certificate
    settings = {
        key: value for key, value in merchant.settings.items() if key != "payout_certificate_dir"
    }
    settings |= {
        "payout_private_key": str(folder.private_key),
        "payout_password": folder.password_file.read_text(),
    }

    request = payout_request()
    with paymux.connect(settings) as provider:
        created = provider.payout(request)

    assert created.id == str(sandbox.payout(request.order_id).id)


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        pytest.param({"payout_password": "x"}, r"password\.txt", id="folder-and-password"),
        pytest.param({"payout_private_key": "key.pem"}, "not both", id="folder-and-private-key"),
    ],
)
def test_contradictory_payout_key_settings_are_a_configuration_error(
    merchant: Merchant, changes: dict[str, str], problem: str
) -> None:
    with pytest.raises(paymux.ConfigurationError, match=problem):
        paymux.connect({**merchant.settings, **changes})


# -- notifications -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settled", "status"),
    [("paid", PayoutStatus.PAID), ("fail", PayoutStatus.FAILED), ("cancel", PayoutStatus.CANCELED)],
)
def test_a_payout_notification_is_a_verified_payout_never_a_payment(
    provider: AliKassaProvider,
    sandbox: Sandbox,
    receiver: Receiver,
    settled: str,
    status: PayoutStatus,
) -> None:
    request = payout_request(notification_url=receiver.url)
    created = provider.payout(request)
    delivery = sandbox.settle_payout(created.id, settled)

    assert delivery is not None
    assert delivery.http_status == 200
    notification = provider.parse_notification(receiver.received[0])
    decision = paymux.decide(notification, order_id=request.order_id, amount=request.amount)

    assert notification.kind is paymux.NotificationKind.PAYOUT
    assert notification.verified_by == (paymux.Authentication.SIGNATURE,)
    assert (notification.payout.id, notification.payout.status) == (created.id, status)
    assert notification.payout.amount == Decimal("500")
    with pytest.raises(TypeError):
        _ = notification.payment
    assert decision.action is paymux.Action.IGNORE
    assert decision.payment is None


# -- the card number stays hidden --------------------------------------------------------------


def test_the_card_number_shows_in_no_repr_and_no_debug_log(
    provider: AliKassaProvider, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="paymux")
    sandbox.inject(Fault.INTERNAL_ERROR, on="payout")
    request = payout_request()

    payout = provider.payout(request)
    reported = provider.payout_status(payout_id=payout.id)

    shown = repr(request) + repr(payout) + repr(reported) + caplog.text
    assert CARD not in shown
    assert reported.raw["card_number"] == MASKED_CARD
    assert "event='paymux.payout'" in caplog.text
