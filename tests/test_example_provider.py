"""A third-party provider, for real: docs/examples/hmacpay, pip-installed next to paymux.

HmacPay is a separate distribution (`paymux-hmacpay`) that paymux knows nothing about: it is
installed into this environment with pip, found through its `paymux` entry point, passes the
same conformance kit as AliKassa, and serves a host next to AliKassa by configuration alone.
"""

from __future__ import annotations

import dataclasses
import http.client
import importlib
import importlib.metadata
import json
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

import pytest

import paymux
from paymux import Payment, PaymentStatus
from paymux.providers.alikassa.sandbox import Merchant, Sandbox
from paymux.providers.base import Provider, ProviderConformance
from paymux.providers.base.testing import CountPayments, LoseAnswers, NewRequest, Settle
from support import Receiver

if TYPE_CHECKING:
    from paymux_hmacpay.emulator import Emulator

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "hmacpay"
DISTRIBUTION = "paymux-hmacpay"
PACKAGE = EXAMPLE / "src" / "paymux_hmacpay"


def installed_copy_is_current() -> bool:
    """Whether pip installed `paymux-hmacpay` here, from the example's current source."""
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return False
    for source in PACKAGE.iterdir():
        if source.is_file():
            installed = Path(str(dist.locate_file(f"paymux_hmacpay/{source.name}")))
            if not installed.is_file() or installed.read_bytes() != source.read_bytes():
                return False
    return True


@pytest.fixture(scope="session", autouse=True)
def hmacpay_installed(tmp_path_factory: pytest.TempPathFactory) -> None:
    """pip-installs docs/examples/hmacpay into this environment, once, when it is missing.

    It is built from a copy so that the build leaves nothing in the source folder.
    """
    if not installed_copy_is_current():
        copy = tmp_path_factory.mktemp("hmacpay-source") / "hmacpay"
        shutil.copytree(
            EXAMPLE, copy, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
        )
        pip = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--no-build-isolation",
                "--no-index",
                "--force-reinstall",
                "--disable-pip-version-check",
                str(copy),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert pip.returncode == 0, pip.stderr
        importlib.invalidate_caches()
    assert installed_copy_is_current()


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    from paymux_hmacpay.emulator import Emulator

    with Emulator() as running:
        yield running


# -- the distribution, found like any other plugin --------------------------------------------


def test_the_registry_finds_hmacpay_through_its_entry_point() -> None:
    installed = {info.name: info for info in paymux.default_registry().installed()}

    assert installed["hmacpay"].module == "paymux_hmacpay"
    assert installed["hmacpay"].distribution is not None
    assert installed["hmacpay"].distribution.replace("_", "-").lower() == DISTRIBUTION
    assert installed["hmacpay"].version == "0.1.0"
    assert paymux.default_registry().provider_class("hmacpay").name == "hmacpay"


def test_paymux_providers_lists_hmacpay_next_to_alikassa() -> None:
    listed = subprocess.run(
        [str(Path(sys.executable).parent / "paymux"), "providers", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert {"alikassa", "hmacpay"} <= set(rows)
    assert rows["hmacpay"]["module"] == "paymux_hmacpay"
    assert rows["hmacpay"]["problem"] is None


def test_bad_settings_are_one_configuration_error_that_never_echoes_the_secret() -> None:
    with pytest.raises(paymux.ConfigurationError) as raised:
        paymux.connect({"provider": "hmacpay", "merchant": "m-1", "secret": "too-short-secret"[:9]})

    assert "secret" in str(raised.value)
    assert "too-short" not in str(raised.value)


# -- the conformance kit ----------------------------------------------------------------------


class TestHmacPayConformance(ProviderConformance):
    statuses: ClassVar[Mapping[str, PaymentStatus]] = {
        "new": PaymentStatus.PENDING,
        "succeeded": PaymentStatus.PAID,
        "declined": PaymentStatus.FAILED,
        "expired": PaymentStatus.CANCELED,
    }
    initial_status = "new"
    final_statuses = frozenset({"succeeded", "declined", "expired"})
    unknown_payment_id = "hp_999999"

    @pytest.fixture
    def provider(self, emulator: Emulator) -> Iterator[Provider]:
        with paymux.connect(emulator.settings) as connected:
            yield connected

    @pytest.fixture
    def new_request(self, receiver: Receiver) -> NewRequest:
        return lambda: paymux.PaymentRequest(
            order_id=f"eu-{uuid.uuid4().hex[:12]}",
            amount=Decimal("25.00"),
            customer=paymux.Customer(ip="203.0.113.7", user_agent="Mozilla/5.0"),
            notification_url=receiver.url,
        )

    @pytest.fixture
    def settle(self, emulator: Emulator, receiver: Receiver) -> Settle:
        def settle(payment: Payment, provider_status: str) -> str:
            already = len(receiver.received)
            emulator.settle(payment.id, provider_status)
            arrived = receiver.wait_for(already + 1)
            assert len(arrived) > already, "the emulator sent no notification"
            return arrived[already]

        return settle

    @pytest.fixture
    def provider_secrets(self, emulator: Emulator) -> Collection[str]:
        return [emulator.secret]

    @pytest.fixture
    def refused_request(self, new_request: NewRequest) -> paymux.PaymentRequest:
        """Beyond HmacPay's maximum: valid here, refused there."""
        return dataclasses.replace(new_request(), amount=Decimal("20000.00"))

    @pytest.fixture
    def lose_answers(self, emulator: Emulator) -> LoseAnswers:
        return emulator.lose_answers

    @pytest.fixture
    def count_payments(self, emulator: Emulator) -> CountPayments:
        return emulator.count_payments


# -- one host, two providers, by configuration alone ------------------------------------------


def toml(config: Mapping[str, Mapping[str, str]], default: str) -> str:
    """A paymux configuration file with one [providers.<name>] table per instance."""
    lines = [f"default = {json.dumps(default)}"]
    for name, settings in config.items():
        lines += ["", f"[providers.{name}]"]
        lines += [f"{key} = {json.dumps(str(value))}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


class Shop:
    """A host application's payment code: it names instances, never providers."""

    def __init__(self, config: paymux.Config, notify_base: str) -> None:
        self.config = config
        self.notify_base = notify_base
        self.providers: dict[str, Provider] = {}

    def provider(self, instance: str) -> Provider:
        if instance not in self.providers:
            self.providers[instance] = paymux.connect(instance, config=self.config)
        return self.providers[instance]

    def checkout(self, instance: str, order_id: str, amount: Decimal) -> Payment:
        return self.provider(instance).create(
            paymux.PaymentRequest(
                order_id=order_id,
                amount=amount,
                customer=paymux.Customer(ip="203.0.113.7", user_agent="Mozilla/5.0"),
                notification_url=f"{self.notify_base}/{instance}",
            )
        )

    def on_notification(self, target: str) -> Payment:
        """The notification endpoint: `/notify/<instance>?...`."""
        instance = urlsplit(target).path.rsplit("/", 1)[-1]
        return self.provider(instance).parse_notification(target).payment

    def close(self) -> None:
        for provider in self.providers.values():
            provider.close()


@pytest.fixture
def shop(
    tmp_path: Path, merchant: Merchant, emulator: Emulator, receiver: Receiver
) -> Iterator[Shop]:
    config_file = tmp_path / "paymux.toml"
    config_file.write_text(
        toml(
            {
                "shop_ru": {**merchant.settings, "service": "payment_card_rub_hpp"},
                "shop_eu": emulator.settings,
            },
            default="shop_ru",
        )
    )
    running = Shop(paymux.load_config(config_file, environ={}), receiver.url)
    yield running
    running.close()


def test_the_same_host_code_runs_alikassa_and_hmacpay_side_by_side(
    shop: Shop, sandbox: Sandbox, emulator: Emulator, receiver: Receiver
) -> None:
    ru = shop.checkout("shop_ru", "ru-1001", Decimal("500.00"))
    eu = shop.checkout("shop_eu", "eu-1001", Decimal("25.00"))
    sandbox.settle(ru.id, "paid")
    emulator.settle(eu.id, "succeeded")
    notifications = receiver.wait_for(2)

    settled = sorted((shop.on_notification(target) for target in notifications), key=str)

    assert (ru.provider, eu.provider) == ("alikassa", "hmacpay")
    assert {(p.provider, p.order_id, p.status, p.amount) for p in settled} == {
        ("alikassa", "ru-1001", PaymentStatus.PAID, Decimal("500.00")),
        ("hmacpay", "eu-1001", PaymentStatus.PAID, Decimal("25.00")),
    }
    assert shop.provider("shop_ru").status(payment_id=ru.id).status is PaymentStatus.PAID
    assert shop.provider("shop_eu").status(payment_id=eu.id).status is PaymentStatus.PAID


def test_a_notification_sent_to_the_wrong_instance_is_rejected(
    shop: Shop, emulator: Emulator, receiver: Receiver
) -> None:
    eu = shop.checkout("shop_eu", "eu-2002", Decimal("25.00"))
    emulator.settle(eu.id, "succeeded")
    [target] = receiver.wait_for(1)

    with pytest.raises(paymux.SignatureError):
        shop.provider("shop_ru").parse_notification(target)


def test_switching_a_shop_to_another_provider_is_a_configuration_change(
    tmp_path: Path, merchant: Merchant, emulator: Emulator, receiver: Receiver
) -> None:
    seen: dict[str, Any] = {}
    for provider_settings in (
        {**merchant.settings, "service": "payment_card_rub_hpp"},
        emulator.settings,
    ):
        config_file = tmp_path / f"{provider_settings['provider']}.toml"
        config_file.write_text(toml({"shop": provider_settings}, default="shop"))
        shop = Shop(paymux.load_config(config_file, environ={}), receiver.url)
        try:
            payment = shop.checkout("shop", f"order-{uuid.uuid4().hex[:8]}", Decimal("500.00"))
        finally:
            shop.close()
        seen[payment.provider] = (payment.status, payment.amount)

    assert seen == {
        "alikassa": (PaymentStatus.PENDING, Decimal("500.00")),
        "hmacpay": (PaymentStatus.PENDING, Decimal("500.00")),
    }


# -- exactly once, by the idempotency key ------------------------------------------------------


def test_a_lost_create_answer_is_repeated_with_the_same_key_and_the_same_bytes(
    emulator: Emulator,
) -> None:
    emulator.lose_answers("create", 1)
    with paymux.connect(emulator.settings) as provider:
        payment = provider.create(new_payment_request())

    first, second = emulator.requests
    assert (first.path, first.idempotency_key, first.body) == (
        second.path,
        second.idempotency_key,
        second.body,
    )
    assert emulator.count_payments(str(payment.order_id)) == 1


def test_the_emulator_answers_a_repeated_key_as_it_did_first_and_refuses_it_with_another_body(
    emulator: Emulator,
) -> None:
    from paymux_hmacpay import protocol

    body = json.dumps({"order_id": "o-1", "amount": "25.00", "currency": "EUR"}).encode()
    other = body.replace(b"25.00", b"26.00")

    statuses = [
        post_to(emulator, "/payments", data, protocol.sign(emulator.secret, data), key="k-7")
        for data in (body, body, other)
    ]

    assert statuses == [201, 201, 422]
    assert emulator.count_payments("o-1") == 1


def test_the_emulator_forgets_a_key_after_its_lifetime_and_acts_again() -> None:
    from paymux_hmacpay import protocol
    from paymux_hmacpay.emulator import Emulator

    body = json.dumps({"order_id": "o-1", "amount": "25.00", "currency": "EUR"}).encode()
    with Emulator(key_lifetime=0.0) as forgetful:
        signature = protocol.sign(forgetful.secret, body)
        for _ in range(2):
            post_to(forgetful, "/payments", body, signature, key="k-7")

        assert forgetful.count_payments("o-1") == 2


def test_a_refund_is_made_once_and_a_second_one_beyond_the_payment_is_refused(
    emulator: Emulator,
) -> None:
    with paymux.connect(emulator.settings) as provider:
        payment = provider.create(new_payment_request())
        emulator.settle(payment.id, "succeeded")
        emulator.lose_answers("refund", 1)
        refund = provider.refund(paymux.RefundRequest(payment.id, Decimal("10.00")))
        with pytest.raises(paymux.ProviderError, match="not_refundable") as raised:
            provider.refund(paymux.RefundRequest(payment.id, Decimal("15.01")))
        after = provider.status(payment_id=payment.id)

    assert (refund.payment_id, refund.amount, refund.status) == (
        payment.id,
        Decimal("10.00"),
        paymux.RefundStatus.SUCCEEDED,
    )
    assert not isinstance(raised.value, paymux.OutcomeUnknown)
    assert after.refunded_amount == Decimal("10.00")


def test_hmacpay_finds_payments_by_id_only(emulator: Emulator) -> None:
    with paymux.connect(emulator.settings) as provider, pytest.raises(paymux.Unsupported):
        provider.status(order_id="eu-1")

    assert emulator.requests == []


# -- hostile input on every parse path: a typed error, never TypeError or ValueError ----------


@pytest.mark.parametrize(
    "signature",
    ["подпись", "é" * 64, "\uff41\uff42\uff43"],
    ids=["Cyrillic", "Latin-1", "full-width"],
)
def test_a_notification_signature_that_is_not_ascii_is_a_signature_error(
    emulator: Emulator, signature: str
) -> None:
    with paymux.connect(emulator.settings) as provider:
        payment = provider.create(new_payment_request())
        params = dict(parse_qsl(emulator.settle(payment.id, "succeeded")))

        with pytest.raises(paymux.SignatureError, match="does not verify"):
            provider.parse_notification({**params, "signature": signature})


def new_payment_request(**changes: Any) -> paymux.PaymentRequest:
    return paymux.PaymentRequest(
        order_id=f"eu-{uuid.uuid4().hex[:12]}",
        amount=Decimal("25.00"),
        customer=paymux.Customer(ip="203.0.113.7", user_agent="Mozilla/5.0"),
        **changes,
    )


def post_to(emulator: Emulator, path: str, body: bytes, signature: str, key: str = "k-1") -> int:
    """The emulator's HTTP status for one raw POST (http.client sends headers as Latin-1)."""
    connection = http.client.HTTPConnection(urlsplit(emulator.url).netloc, timeout=10)
    try:
        headers = {"X-Merchant": emulator.merchant, "X-Signature": signature}
        connection.request("POST", path, body, {**headers, "Idempotency-Key": key})
        return connection.getresponse().status
    finally:
        connection.close()


def test_the_emulator_answers_401_to_a_signature_header_that_is_not_ascii(
    emulator: Emulator,
) -> None:
    assert post_to(emulator, "/payments", b"{}", "é" * 64) == 401


@pytest.mark.parametrize("amount", ["NaN", "sNaN"])
def test_the_emulator_refuses_an_amount_that_is_not_a_finite_number(
    emulator: Emulator, amount: str
) -> None:
    from paymux_hmacpay import protocol

    body = json.dumps({"order_id": "o-1", "amount": amount, "currency": "EUR"}).encode()

    assert post_to(emulator, "/payments", body, protocol.sign(emulator.secret, body)) == 400


def test_a_malformed_base_url_is_a_configuration_error(emulator: Emulator) -> None:
    with pytest.raises(paymux.ConfigurationError, match="base_url"):
        paymux.connect({**emulator.settings, "base_url": "http://[::1"})


def test_a_malformed_notification_url_is_a_validation_error(emulator: Emulator) -> None:
    with (
        paymux.connect(emulator.settings) as provider,
        pytest.raises(paymux.ValidationError) as raised,
    ):
        provider.create(new_payment_request(notification_url="http://[::1/notify"))

    assert list(raised.value.fields) == ["notification_url"]
    assert emulator.requests == []


@pytest.mark.parametrize("merchant", ["m-1\r\nX-Evil: 1", "м-1", "m 1"])
def test_a_merchant_id_that_cannot_travel_in_a_header_is_a_configuration_error(
    emulator: Emulator, merchant: str
) -> None:
    with pytest.raises(paymux.ConfigurationError, match="merchant"):
        paymux.connect({**emulator.settings, "merchant": merchant})


PAYMENT_ANSWER = {
    "id": "hp_000001",
    "order_id": "o-1",
    "status": "succeeded",
    "amount": "25.00",
    "currency": "EUR",
    "pay_url": "http://127.0.0.1/pay/hp_000001",
}


class FixedAnswer(BaseHTTPRequestHandler):
    """A gateway that answers every call with `answer`, a 200 JSON payment of odd shape."""

    answer: ClassVar[dict[str, Any]] = {}

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps(self.answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent."""


@pytest.mark.parametrize(
    "changes",
    [{"amount": 25.0}, {"id": None}, {"order_id": 1}, {"pay_url": 7}],
    ids=["amount as a JSON number", "no id", "numeric order_id", "numeric pay_url"],
)
def test_a_payment_answer_with_a_field_of_the_wrong_shape_is_an_invalid_response(
    emulator: Emulator, changes: dict[str, Any]
) -> None:
    with (
        gateway_answering({**PAYMENT_ANSWER, **changes}) as base_url,
        paymux.connect({**emulator.settings, "base_url": base_url}) as provider,
        pytest.raises(paymux.InvalidResponse, match="unexpected HmacPay payment"),
    ):
        provider.status(payment_id="hp_000001")


@contextmanager
def gateway_answering(answer: dict[str, Any]) -> Iterator[str]:
    """A loopback gateway answering every call with `answer`; yields its base URL."""
    handler = type("Answer", (FixedAnswer,), {"answer": answer})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
