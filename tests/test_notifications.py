"""Notifications and redirects from AliKassa: what verifies, what is refused.

The sandbox delivers each notification as a real signed GET to a real endpoint on loopback;
the tests then hand what the endpoint received to `parse_notification` in every shape a web
framework might offer it. One sandbox, shop endpoint and provider serve the whole module
(shutting a loopback server down costs half a second), and every payment is fresh.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, parse_qsl, urlencode

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

import paymux
from paymux import NotificationInput, NotificationKind, Payment, PaymentStatus
from paymux.providers.alikassa import AliKassaProvider, CertificateFolder, Signer, phpjson
from paymux.providers.alikassa.keys import load_private_key, read_password
from paymux.providers.alikassa.sandbox import Sandbox
from paymux.providers.alikassa.schemas import NOTIFICATION_FIELDS, NULLABLE_NOTIFICATION_FIELDS
from support import Receiver, payment_request

# -- the shop: one sandbox, one endpoint, one provider for the module ------------------------


@dataclass(frozen=True)
class Shop:
    sandbox: Sandbox
    receiver: Receiver
    provider: AliKassaProvider
    payment_certificate: CertificateFolder


@contextmanager
def running_shop(
    notification_certificate: CertificateFolder,
    payment_key: rsa.RSAPrivateKey,
    folder: Path,
    *,
    omit_empty_notification_fields: bool = False,
) -> Iterator[Shop]:
    with Sandbox(
        notification_certificate=notification_certificate.path,
        omit_empty_notification_fields=omit_empty_notification_fields,
    ) as sandbox:
        merchant = sandbox.create_merchant(folder / "payment", private_key=payment_key)
        receiver = Receiver()
        try:
            provider = paymux.connect(merchant.settings)
            assert isinstance(provider, AliKassaProvider)
            with provider:
                yield Shop(sandbox, receiver, provider, merchant.payment_certificate)
        finally:
            receiver.close()


@pytest.fixture(scope="module")
def shop(
    notification_certificate: CertificateFolder,
    payment_key: rsa.RSAPrivateKey,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Shop]:
    """A gateway that sends every field, an empty one as an empty string."""
    with running_shop(
        notification_certificate, payment_key, tmp_path_factory.mktemp("shop")
    ) as running:
        yield running


@pytest.fixture(scope="module")
def omitting_shop(
    notification_certificate: CertificateFolder,
    payment_key: rsa.RSAPrivateKey,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Shop]:
    """A gateway that leaves empty nullable fields out, as PHP signs them: null."""
    with running_shop(
        notification_certificate,
        payment_key,
        tmp_path_factory.mktemp("omitting-shop"),
        omit_empty_notification_fields=True,
    ) as running:
        yield running


def deliver(
    shop: Shop,
    status: str = "paid",
    *,
    description: str | None = "Order from the test shop",
    paid_amount: Decimal | None = None,
) -> str:
    """Create a payment, settle it, and return the path and query the shop's endpoint got."""
    created = shop.provider.create(
        payment_request(notification_url=shop.receiver.url, description=description)
    )
    before = len(shop.receiver.received)
    delivery = shop.sandbox.settle(created.id, status, paid_amount=paid_amount)
    assert delivery is not None
    assert delivery.http_status == 200, delivery.error
    assert len(shop.receiver.received) == before + 1
    return shop.receiver.received[before]


def query_of(path: str) -> str:
    return path.partition("?")[2]


def params_of(path: str) -> dict[str, str]:
    return dict(parse_qsl(query_of(path), keep_blank_values=True))


@pytest.fixture(scope="module")
def delivered(shop: Shop) -> dict[str, str]:
    """The parameters of one genuine paid notification, as delivered."""
    return params_of(deliver(shop))


@pytest.fixture(scope="module")
def gateway_signer(notification_certificate: CertificateFolder) -> Signer:
    """The gateway's own notification signer (the sandbox's notification certificate)."""
    key = load_private_key(
        notification_certificate.private_key.read_bytes(),
        read_password(notification_certificate.password_file),
    )
    return Signer(key, "sha1")


def signed(fields: Mapping[str, str], signer: Signer) -> dict[str, str]:
    """`fields` with a `sign` made the way AliKassa makes it (PHP json_encode, id an integer)."""
    values = {name: fields[name] for name in NOTIFICATION_FIELDS}
    message = phpjson.dumps_bytes({**values, "id": int(values["id"])})
    return {**values, "sign": signer.sign(message)}


class NotificationUpdates:
    """A host plugin that records every payment update published for a notification."""

    def __init__(self) -> None:
        self.payments: list[Payment] = []

    @paymux.hookimpl
    def paymux_payment_update(self, payment: Payment, source: str) -> None:
        if source == "notification":
            self.payments.append(payment)


@pytest.fixture
def published() -> Iterator[list[Payment]]:
    """Payments published to `paymux_payment_update` from notifications during the test."""
    updates = NotificationUpdates()
    paymux.register_plugin(updates)
    yield updates.payments
    paymux.unregister_plugin(updates)


# -- a delivered notification verifies, however the web framework hands it over -------------

Form = Callable[[str, str], NotificationInput]
"""Turns (path and query the endpoint got, endpoint URL) into what a framework would hand over."""

FORMS: dict[str, Form] = {
    "path and query": lambda path, url: path,
    "query string": lambda path, url: query_of(path),
    "full URL": lambda path, url: url.removesuffix("/notify") + path,
    "dict": lambda path, url: params_of(path),
    "dict of lists": lambda path, url: parse_qs(query_of(path), keep_blank_values=True),
    "bytes": lambda path, url: path.encode("ascii"),
}

EVERY_HARD_CHARACTER = 'Заказ №7/8 💳 "q" \\ \n\x7f <b>&\'+%=#?'


@pytest.mark.parametrize("form", FORMS.values(), ids=FORMS.keys())
def test_a_delivered_notification_verifies_in_every_form_a_framework_offers(
    shop: Shop, form: Form
) -> None:
    path = deliver(shop, description=EVERY_HARD_CHARACTER)
    params = params_of(path)

    notification = shop.provider.parse_notification(form(path, shop.receiver.url))

    assert notification.provider == "alikassa"
    assert notification.kind is NotificationKind.PAYMENT
    assert notification.fields["desc"] == EVERY_HARD_CHARACTER
    assert notification.payment.id == params["id"]
    assert notification.payment.order_id == params["order_id"]
    assert notification.payment.status is PaymentStatus.PAID
    assert notification.payment.amount == Decimal("500")
    assert notification.payment.is_partial is False


DESCRIPTIONS = {
    "cyrillic": "Оплата заказа №42 в магазине",
    "slash": "order 42/7, see https://shop.example/a/b",
    "emoji": "Card payment 💳 done 🎉",
    "quotes": 'He said "pay now"',
    "backslashes": "C:\\shop\\order\\42 and \\u0041",
    "newlines": "line one\nline two\r\n\tthe end",
    "DEL": "before\x7fafter",
    "html characters": "<b>Tom & Jerry's</b>",
    "empty": "",
}


@pytest.mark.parametrize("description", DESCRIPTIONS.values(), ids=DESCRIPTIONS.keys())
def test_the_description_survives_signing_and_delivery_unchanged(
    shop: Shop, description: str
) -> None:
    """The gateway signs PHP json_encode output; paymux must rebuild exactly those bytes."""
    path = deliver(shop, description=description)

    notification = shop.provider.parse_notification(path)

    assert notification.fields["desc"] == description
    assert notification.payment.raw["desc"] == description


def test_a_notification_signed_over_php_json_encode_bytes_verifies(
    shop: Shop, delivered: dict[str, str], gateway_signer: Signer
) -> None:
    """Signed over bytes written out by hand from PHP's rules, not by paymux's own encoder:
    `/` as `\\/`, DEL raw, non-ASCII as lowercase `\\uXXXX` (surrogate pairs above U+FFFF)."""
    description = 'a/b \x7f💳 Ж "q" \\ <&>\'\n'
    php_desc = 'a\\/b \x7f\\ud83d\\udcb3 \\u0416 \\"q\\" \\\\ <&>\'\\n'
    fields = {**delivered, "desc": description}
    message = (
        f'{{"type":"{fields["type"]}","id":{fields["id"]},"order_id":"{fields["order_id"]}",'
        f'"payment_status":"{fields["payment_status"]}","amount":"{fields["amount"]}",'
        f'"payment_amount":"{fields["payment_amount"]}",'
        f'"commission_amount":"{fields["commission_amount"]}",'
        f'"is_partial_payment":"{fields["is_partial_payment"]}","account":"{fields["account"]}",'
        f'"service":"{fields["service"]}","desc":"{php_desc}"}}'
    )
    notification = {**fields, "sign": gateway_signer.sign(message.encode("ascii"))}

    assert shop.provider.parse_notification(notification).fields["desc"] == description


def test_a_verified_notification_is_published_once_as_a_notification_update(
    shop: Shop, published: list[Payment]
) -> None:
    notification = shop.provider.parse_notification(deliver(shop))

    assert published == [notification.payment]


def test_a_partial_payment_notification_says_so(shop: Shop) -> None:
    notification = shop.provider.parse_notification(deliver(shop, paid_amount=Decimal("200.00")))

    assert notification.payment.status is PaymentStatus.PAID
    assert notification.payment.is_partial is True
    assert notification.payment.amount == Decimal("500")
    assert notification.payment.paid_amount == Decimal("200")
    assert notification.fields["is_partial_payment"] == "1"


@pytest.mark.parametrize(
    ("alikassa_status", "status"),
    [
        ("paid", PaymentStatus.PAID),
        ("cancel", PaymentStatus.CANCELED),
        ("fail", PaymentStatus.FAILED),
    ],
)
def test_final_statuses_map_to_paymux_statuses(
    shop: Shop, alikassa_status: str, status: PaymentStatus
) -> None:
    notification = shop.provider.parse_notification(deliver(shop, alikassa_status))

    assert notification.payment.status is status
    assert notification.payment.status.is_final


def test_a_canceled_payment_has_no_paid_amount_or_fee(shop: Shop) -> None:
    notification = shop.provider.parse_notification(deliver(shop, "cancel"))

    assert notification.payment.paid_amount is None
    assert notification.payment.fee is None
    assert notification.payment.is_partial is False


# -- a gateway that leaves empty fields out, signed as null --------------------------------


@pytest.mark.parametrize("form", FORMS.values(), ids=FORMS.keys())
def test_a_notification_that_leaves_out_its_empty_fields_verifies_in_every_form(
    omitting_shop: Shop, form: Form, published: list[Payment]
) -> None:
    path = deliver(omitting_shop, "cancel", description=None)
    assert NULLABLE_NOTIFICATION_FIELDS.isdisjoint(params_of(path))

    notification = omitting_shop.provider.parse_notification(form(path, omitting_shop.receiver.url))

    assert notification.payment.status is PaymentStatus.CANCELED
    assert notification.payment.paid_amount is None
    assert notification.payment.fee is None
    assert NULLABLE_NOTIFICATION_FIELDS.isdisjoint(notification.fields)
    assert published == [notification.payment]


def test_a_paid_notification_that_leaves_out_only_an_empty_desc_verifies(
    omitting_shop: Shop,
) -> None:
    params = params_of(deliver(omitting_shop, paid_amount=Decimal("200.00"), description=""))
    assert "desc" not in params
    assert params["payment_amount"] == "200.000000000"

    notification = omitting_shop.provider.parse_notification(params)

    assert notification.payment.paid_amount == Decimal("200")
    assert notification.payment.fee == Decimal("6")
    assert "desc" not in notification.fields


def test_a_description_is_still_sent_by_a_gateway_that_leaves_out_empty_fields(
    omitting_shop: Shop,
) -> None:
    notification = omitting_shop.provider.parse_notification(
        deliver(omitting_shop, "cancel", description=EVERY_HARD_CHARACTER)
    )

    assert notification.fields["desc"] == EVERY_HARD_CHARACTER
    assert {"payment_amount", "commission_amount"}.isdisjoint(notification.fields)


@pytest.mark.parametrize("name", sorted(NULLABLE_NOTIFICATION_FIELDS))
def test_a_left_out_field_is_null_not_an_empty_string(
    omitting_shop: Shop, published: list[Payment], name: str
) -> None:
    """Signed as null, the field verifies only while absent: given as "" it is another value."""
    params = params_of(deliver(omitting_shop, "fail", description=None))
    omitting_shop.provider.parse_notification(params)
    published.clear()

    for value in ("", "0"):
        with pytest.raises(paymux.SignatureError, match="does not match"):
            omitting_shop.provider.parse_notification({**params, name: value})
    assert published == []


def test_an_empty_field_sent_as_an_empty_string_stays_one(shop: Shop) -> None:
    """A gateway that sends every field signs an empty one as "": leaving it out breaks that."""
    params = params_of(deliver(shop, "cancel", description=""))
    assert all(params[name] == "" for name in NULLABLE_NOTIFICATION_FIELDS)
    notification = shop.provider.parse_notification(params)
    assert notification.fields["desc"] == ""

    for name in NULLABLE_NOTIFICATION_FIELDS:
        incomplete = {key: value for key, value in params.items() if key != name}
        with pytest.raises(paymux.SignatureError, match="does not match"):
            shop.provider.parse_notification(incomplete)


def test_paymux_sandbox_leaves_empty_fields_out_when_asked(
    tmp_path: Path, receiver: Receiver
) -> None:
    """`paymux sandbox --omit-empty-notification-fields`, run as a command, notifies that way."""
    config = tmp_path / "sandbox.toml"
    command = [sys.executable, "-m", "paymux.cli", "sandbox", "--port", "0"]
    options = ["--config-out", str(config), "--omit-empty-notification-fields"]
    environment = {name: value for name, value in os.environ.items() if "PAYMUX" not in name}
    with subprocess.Popen(
        [*command, *options], stdout=subprocess.PIPE, text=True, env=environment
    ) as running:
        try:
            assert running.stdout is not None
            url = running.stdout.readline().split()[-1]
            for line in running.stdout:
                if line.startswith("Ctrl-C stops it."):
                    break
            with paymux.connect(config=paymux.load_config(config, environ={})) as provider:
                created = provider.create(payment_request(notification_url=receiver.url))
                settle = f"{url}/sandbox/payments/{created.id}/settle"
                requests.post(settle, json={"status": "cancel"}, timeout=30).raise_for_status()
                path = receiver.wait_for(1)[0]
                notification = provider.parse_notification(path)
        finally:
            running.send_signal(signal.SIGINT)
            running.wait(timeout=30)
    assert NULLABLE_NOTIFICATION_FIELDS.isdisjoint(params_of(path))
    assert notification.payment.status is PaymentStatus.CANCELED


def test_a_payout_notification_is_of_kind_payout_and_no_payment(
    delivered: dict[str, str], gateway_signer: Signer, shop: Shop
) -> None:
    """A payment's fields signed as `type=payout`: a payout, never taken for the payment."""
    payout = signed({**delivered, "type": "payout"}, gateway_signer)

    notification = shop.provider.parse_notification(payout)

    assert notification.kind is NotificationKind.PAYOUT
    assert notification.payout.id == delivered["id"]
    assert notification.payout.status is paymux.PayoutStatus.PAID
    with pytest.raises(TypeError, match="not about a payment"):
        _ = notification.payment


def test_a_notification_signed_with_the_sha256_digest_verifies_when_so_configured(
    shop: Shop, delivered: dict[str, str], notification_certificate: CertificateFolder
) -> None:
    key = load_private_key(
        notification_certificate.private_key.read_bytes(),
        read_password(notification_certificate.password_file),
    )
    settings = {
        "provider": "alikassa",
        "account": shop.provider.account,
        "certificate_dir": str(shop.payment_certificate.path),
        "notification_public_key": str(notification_certificate.public_key),
        "notification_digest": "sha256",
    }
    with paymux.connect(settings) as sha256_provider:
        sha256_notification = signed(delivered, Signer(key, "sha256"))

        verified = sha256_provider.parse_notification(sha256_notification)
        assert verified.payment.id == delivered["id"]
        with pytest.raises(paymux.SignatureError):
            sha256_provider.parse_notification(delivered)
    with pytest.raises(paymux.SignatureError):
        shop.provider.parse_notification(sha256_notification)


# -- what is refused: always SignatureError, and nothing is published ------------------------

FORGERIES: dict[str, Callable[[str], str]] = {
    "type": lambda value: "payout",
    "id": lambda value: str(int(value) + 1),
    "order_id": lambda value: value + "-2",
    "payment_status": lambda value: "cancel",
    "amount": lambda value: "5000.000000000",
    "payment_amount": lambda value: "5000.000000000",
    "commission_amount": lambda value: "0.000000000",
    "is_partial_payment": lambda value: "1",
    "account": lambda value: "00000000-0000-4000-8000-000000000000",
    "service": lambda value: "payment_card_eur_card",
    "desc": lambda value: value + " (forged)",
}


@pytest.mark.parametrize("name", NOTIFICATION_FIELDS)
def test_changing_any_signed_field_breaks_the_signature(
    shop: Shop, delivered: dict[str, str], published: list[Payment], name: str
) -> None:
    forged_value = FORGERIES[name](delivered[name])
    assert forged_value != delivered[name]

    with pytest.raises(paymux.SignatureError):
        shop.provider.parse_notification({**delivered, name: forged_value})
    assert published == []


def test_a_notification_signed_with_another_key_is_refused(
    shop: Shop, delivered: dict[str, str], payment_key: rsa.RSAPrivateKey, published: list[Payment]
) -> None:
    """The merchant's own payment key is a key, but not the gateway's notification key."""
    forged = signed(delivered, Signer(payment_key, "sha1"))

    with pytest.raises(paymux.SignatureError, match="does not match"):
        shop.provider.parse_notification(forged)
    assert published == []


@pytest.mark.parametrize(
    "sign",
    ["not base64!", "AAAA", "", "QUJD\nREVG"],
    ids=["not base64", "valid base64 of garbage", "empty", "base64 with a newline"],
)
def test_a_malformed_sign_is_refused(
    shop: Shop, delivered: dict[str, str], published: list[Payment], sign: str
) -> None:
    with pytest.raises(paymux.SignatureError):
        shop.provider.parse_notification({**delivered, "sign": sign})
    assert published == []


REQUIRED_FIELDS = [name for name in NOTIFICATION_FIELDS if name not in NULLABLE_NOTIFICATION_FIELDS]


@pytest.mark.parametrize("name", [*REQUIRED_FIELDS, "sign"])
def test_a_notification_missing_a_field_that_cannot_be_null_is_refused(
    shop: Shop, delivered: dict[str, str], published: list[Payment], name: str
) -> None:
    incomplete = {key: value for key, value in delivered.items() if key != name}

    with pytest.raises(paymux.SignatureError, match=f"missing {name}"):
        shop.provider.parse_notification(incomplete)
    assert published == []


@pytest.mark.parametrize("name", sorted(NULLABLE_NOTIFICATION_FIELDS))
def test_leaving_out_a_nullable_field_that_was_signed_with_a_value_breaks_the_signature(
    shop: Shop, delivered: dict[str, str], published: list[Payment], name: str
) -> None:
    """An absent field is rebuilt as null, never as the value that was signed."""
    assert delivered[name] != ""
    incomplete = {key: value for key, value in delivered.items() if key != name}

    with pytest.raises(paymux.SignatureError, match="does not match"):
        shop.provider.parse_notification(incomplete)
    assert published == []


def test_non_utf8_percent_encoding_is_refused(
    shop: Shop, delivered: dict[str, str], published: list[Payment]
) -> None:
    query = urlencode({**delivered, "desc": ""}).replace("desc=", "desc=%FF", 1)

    with pytest.raises(paymux.SignatureError, match="UTF-8"):
        shop.provider.parse_notification(query)
    assert published == []


def test_non_utf8_bytes_are_refused(
    shop: Shop, delivered: dict[str, str], published: list[Payment]
) -> None:
    raw = urlencode({**delivered, "desc": ""}).encode("ascii").replace(b"desc=", b"desc=\xff", 1)

    with pytest.raises(paymux.SignatureError, match="UTF-8"):
        shop.provider.parse_notification(raw)
    assert published == []


def test_a_surrogate_escaped_value_from_a_wsgi_server_is_refused(
    shop: Shop, delivered: dict[str, str], published: list[Payment]
) -> None:
    """WSGI servers decode undecodable bytes as lone surrogates; those are not text."""
    with pytest.raises(paymux.SignatureError, match="UTF-8"):
        shop.provider.parse_notification({**delivered, "desc": "\udcff"})
    assert published == []


def _id_variants(genuine: str) -> dict[str, str]:
    return {
        "decimal point": f"{genuine}.0",
        "leading space": f" {genuine}",
        "trailing space": f"{genuine} ",
        "plus sign": f"+{genuine}",
        "trailing letters": f"{genuine}abc",
        "underscore": f"{genuine[:3]}_{genuine[3:]}",
        "arabic-indic digits": genuine.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")),
        "not a number": "abc",
        "empty": "",
    }


@pytest.mark.parametrize("variant", list(_id_variants("100000001")))
def test_an_id_that_is_not_a_plain_integer_is_refused_even_with_the_genuine_sign(
    shop: Shop, delivered: dict[str, str], published: list[Payment], variant: str
) -> None:
    """PHP's `(int)` and Python's `int()` would turn each of these into the signed id."""
    forged_id = _id_variants(delivered["id"])[variant]

    with pytest.raises(paymux.SignatureError, match="not an integer"):
        shop.provider.parse_notification({**delivered, "id": forged_id})
    assert published == []


@pytest.mark.parametrize(
    ("repeat", "form"),
    [
        ("another value", "query string"),
        ("the same value", "query string"),
        ("another value", "dict of lists"),
        ("the same value", "dict of lists"),
    ],
)
def test_a_parameter_given_twice_is_refused(
    shop: Shop, delivered: dict[str, str], published: list[Payment], repeat: str, form: str
) -> None:
    second = "order-forged" if repeat == "another value" else delivered["order_id"]
    query = f"{urlencode(delivered)}&{urlencode({'order_id': second})}"
    data: NotificationInput = (
        query if form == "query string" else parse_qs(query, keep_blank_values=True)
    )

    with pytest.raises(paymux.SignatureError, match="more than once"):
        shop.provider.parse_notification(data)
    assert published == []


def test_a_genuine_notification_for_another_account_is_refused(
    shop: Shop, tmp_path: Path, payment_key: rsa.RSAPrivateKey, published: list[Payment]
) -> None:
    other = shop.sandbox.create_merchant(tmp_path / "other", private_key=payment_key)
    with paymux.connect(other.settings) as other_provider:
        created = other_provider.create(payment_request(notification_url=shop.receiver.url))
        before = len(shop.receiver.received)
        shop.sandbox.settle(created.id, "paid")
        path = shop.receiver.received[before]
        assert other_provider.parse_notification(path).payment.id == created.id
        published.clear()

    with pytest.raises(paymux.SignatureError, match="another AliKassa account"):
        shop.provider.parse_notification(path)
    assert published == []


def test_parsing_notifications_needs_the_notification_public_key(
    shop: Shop, delivered: dict[str, str]
) -> None:
    settings = {
        "provider": "alikassa",
        "account": shop.provider.account,
        "certificate_dir": str(shop.payment_certificate.path),
    }
    with paymux.connect(settings) as provider:
        assert isinstance(provider, AliKassaProvider)
        with pytest.raises(paymux.ConfigurationError, match="notification_public_key"):
            provider.parse_notification(delivered)
        with pytest.raises(paymux.ConfigurationError, match="notification_public_key"):
            provider.verify_redirect({"order_id": "order-1", "uuid": "u", "sign": "AAAA"})


# -- the customer's redirect back to the shop ------------------------------------------------


@pytest.fixture
def redirect_form(shop: Shop) -> dict[str, str]:
    """The signed form AliKassa's payment page posts to the shop's success URL."""
    created = shop.provider.create(payment_request())
    return shop.sandbox.redirect_form(created.id)


def test_a_signed_redirect_form_verifies(shop: Shop, redirect_form: dict[str, str]) -> None:
    stored = shop.sandbox.payment(redirect_form["order_id"])

    redirect = shop.provider.verify_redirect(redirect_form)

    assert redirect == paymux.Redirect(
        provider="alikassa", order_id=stored.order_id, payment_uuid=stored.uuid
    )


def test_a_redirect_form_verifies_as_an_urlencoded_body(
    shop: Shop, redirect_form: dict[str, str]
) -> None:
    redirect = shop.provider.verify_redirect(urlencode(redirect_form))

    assert redirect.order_id == redirect_form["order_id"]
    assert redirect.payment_uuid == redirect_form["uuid"]


@pytest.mark.parametrize("name", ["uuid", "order_id"])
def test_a_redirect_with_a_changed_field_is_refused(
    shop: Shop, redirect_form: dict[str, str], name: str
) -> None:
    forged = {**redirect_form, name: redirect_form[name][:-1] + "0"}
    if forged[name] == redirect_form[name]:
        forged[name] = redirect_form[name][:-1] + "1"

    with pytest.raises(paymux.SignatureError):
        shop.provider.verify_redirect(forged)


@pytest.mark.parametrize("name", ["uuid", "order_id", "sign"])
def test_a_redirect_missing_a_field_is_refused(
    shop: Shop, redirect_form: dict[str, str], name: str
) -> None:
    incomplete = {key: value for key, value in redirect_form.items() if key != name}

    with pytest.raises(paymux.SignatureError, match=f"missing {name}"):
        shop.provider.verify_redirect(incomplete)


def test_a_redirect_for_the_order_and_payment_expected_verifies(
    shop: Shop, redirect_form: dict[str, str]
) -> None:
    redirect = shop.provider.verify_redirect(
        redirect_form, order_id=redirect_form["order_id"], payment_uuid=redirect_form["uuid"]
    )

    assert (redirect.order_id, redirect.payment_uuid) == (
        redirect_form["order_id"],
        redirect_form["uuid"],
    )


def test_a_genuine_redirect_for_another_order_is_refused_when_the_order_is_given(
    shop: Shop, redirect_form: dict[str, str]
) -> None:
    ours = shop.provider.create(payment_request())

    with pytest.raises(paymux.SignatureError, match="another order"):
        shop.provider.verify_redirect(redirect_form, order_id=str(ours.order_id))


def test_another_merchants_redirect_for_the_same_order_id_is_refused_by_its_uuid(
    shop: Shop, tmp_path: Path, payment_key: rsa.RSAPrivateKey
) -> None:
    """The gateway signs every merchant's return forms with one key: only the uuid binds it."""
    ours = shop.provider.create(payment_request())
    other = shop.sandbox.create_merchant(tmp_path / "other", private_key=payment_key)
    with paymux.connect(other.settings) as other_provider:
        theirs = other_provider.create(payment_request(order_id=ours.order_id))
    their_form = shop.sandbox.redirect_form(theirs.id)

    assert shop.provider.verify_redirect(their_form, order_id=ours.order_id).order_id == (
        ours.order_id
    )
    with pytest.raises(paymux.SignatureError, match="another payment"):
        shop.provider.verify_redirect(
            their_form, order_id=ours.order_id, payment_uuid=ours.raw["uuid"]
        )


# -- telling a URL from a query string ---------------------------------------------------------

QUESTION_MARKS = "Paid? See https://shop.example/faq?q=1"


@pytest.mark.parametrize("shape", ["query string", "path and query", "full URL"])
def test_a_value_with_an_unencoded_question_mark_verifies_in_every_string_shape(
    shop: Shop, shape: str
) -> None:
    """Gateways may leave `?` unencoded in a query value; it must not split the query."""
    params = params_of(deliver(shop, description=QUESTION_MARKS))
    query = urlencode(params, safe="?/:")
    assert "?" in query
    data = {
        "query string": query,
        "path and query": f"/notify?{query}",
        "full URL": f"https://shop.example/notify?{query}",
    }[shape]

    notification = shop.provider.parse_notification(data)

    assert notification.fields["desc"] == QUESTION_MARKS
    assert notification.payment.id == params["id"]


def test_a_url_with_a_malformed_host_is_a_signature_error(
    shop: Shop, delivered: dict[str, str]
) -> None:
    with pytest.raises(paymux.SignatureError, match="malformed"):
        shop.provider.parse_notification(f"https://[::1/notify?{urlencode(delivered)}")
