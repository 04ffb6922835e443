"""Notifications signed by real PHP, exactly as the gateway's documented check rebuilds them.

PHP reads a parameter the notification left out as null, and `json_encode` writes `null`
there; paymux must verify such a notification when it was signed that way. PHP parses the
query string as it fills `$_GET`, reads the notification certificate as AliKassa's PHP sample
does (`password.txt` untrimmed) and signs with `openssl_sign` (SHA-1, its default). Without
`php` on PATH these checks skip, loudly.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator, Mapping
from urllib.parse import urlencode

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

import paymux
from paymux import PaymentStatus
from paymux.providers.alikassa import AliKassaProvider, CertificateFolder, generate_certificate

ACCOUNT = "93d5df06-996c-48c3-9847-348d6b580b80"

# The gateway's documented check, with a field that is not there read as null.
PHP_SIGN_NOTIFICATION = r"""
parse_str($argv[1], $_GET);
$message = json_encode([
    'type' => $_GET['type'] ?? null,
    'id' => (int) ($_GET['id'] ?? null),
    'order_id' => $_GET['order_id'] ?? null,
    'payment_status' => $_GET['payment_status'] ?? null,
    'amount' => $_GET['amount'] ?? null,
    'payment_amount' => $_GET['payment_amount'] ?? null,
    'commission_amount' => $_GET['commission_amount'] ?? null,
    'is_partial_payment' => $_GET['is_partial_payment'] ?? null,
    'account' => $_GET['account'] ?? null,
    'service' => $_GET['service'] ?? null,
    'desc' => $_GET['desc'] ?? null,
]);
$key = openssl_pkey_get_private(file_get_contents($argv[2]), file_get_contents($argv[3]));
if ($key === false || !openssl_sign($message, $signature, $key)) {
    fwrite(STDERR, 'cannot sign: ' . openssl_error_string() . "\n");
    exit(2);
}
echo base64_encode($signature);
"""

CANCELED = {
    "type": "payment",
    "id": "100000123",
    "order_id": "order-1001",
    "payment_status": "cancel",
    "amount": "500.000000000",
    "payment_amount": "",
    "commission_amount": "",
    "is_partial_payment": "0",
    "account": ACCOUNT,
    "service": "payment_card_rub_hpp",
    "desc": "",
}
"""A canceled payment's notification: nothing paid, no fee, no description."""

ABSENT = {
    "payment_amount": ("payment_amount",),
    "commission_amount": ("commission_amount",),
    "desc": ("desc",),
    "all three": ("payment_amount", "commission_amount", "desc"),
}
"""Which empty fields the notification leaves out."""


@pytest.fixture(scope="module")
def php() -> str:
    executable = shutil.which("php")
    if executable is None:
        pytest.skip(
            "PHP NOTIFICATION CHECK NOT RUN: no `php` on PATH, so notifications signed by PHP "
            "were NOT verified. Install php-cli (apt-get install php-cli) to run it."
        )
    probe = subprocess.run(
        [executable, "-r", "exit(function_exists('openssl_sign') ? 0 : 1);"], check=False
    )
    if probe.returncode != 0:
        pytest.skip("PHP NOTIFICATION CHECK NOT RUN: PHP has no openssl extension")
    return executable


@pytest.fixture(scope="module")
def shop_provider(
    notification_certificate: CertificateFolder,
    payment_key: rsa.RSAPrivateKey,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[AliKassaProvider]:
    """A provider that trusts the notification certificate PHP signs with."""
    payment = generate_certificate(tmp_path_factory.mktemp("payment"), private_key=payment_key)
    settings = {
        "provider": "alikassa",
        "account": ACCOUNT,
        "certificate_dir": str(payment.path),
        "notification_public_key": str(notification_certificate.public_key),
    }
    with paymux.connect(settings) as connected:
        assert isinstance(connected, AliKassaProvider)
        yield connected


def php_sign(php: str, certificate: CertificateFolder, fields: Mapping[str, str]) -> str:
    """The `sign` PHP makes for a notification carrying `fields` as its query string."""
    result = subprocess.run(
        [
            php,
            "-r",
            PHP_SIGN_NOTIFICATION,
            urlencode(fields),
            str(certificate.private_key),
            str(certificate.password_file),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if result.returncode != 0:
        pytest.fail(f"php failed ({result.returncode}): {result.stderr}")
    return result.stdout


def without(names: tuple[str, ...]) -> dict[str, str]:
    return {name: value for name, value in CANCELED.items() if name not in names}


@pytest.mark.parametrize("absent", ABSENT.values(), ids=ABSENT.keys())
def test_a_notification_php_signed_with_absent_fields_verifies(
    php: str,
    notification_certificate: CertificateFolder,
    shop_provider: AliKassaProvider,
    absent: tuple[str, ...],
) -> None:
    fields = without(absent)
    query = urlencode({**fields, "sign": php_sign(php, notification_certificate, fields)})

    notification = shop_provider.parse_notification(query)

    assert notification.payment.status is PaymentStatus.CANCELED
    assert notification.payment.order_id == "order-1001"
    assert notification.payment.paid_amount is None
    assert notification.payment.fee is None
    assert set(absent).isdisjoint(notification.fields)


@pytest.mark.parametrize("absent", ABSENT.values(), ids=ABSENT.keys())
@pytest.mark.parametrize(
    ("name", "forged"),
    [("payment_status", "paid"), ("amount", "5000.000000000"), ("order_id", "order-1002")],
)
def test_a_php_signed_notification_with_absent_fields_and_a_tampered_field_is_refused(
    php: str,
    notification_certificate: CertificateFolder,
    shop_provider: AliKassaProvider,
    absent: tuple[str, ...],
    name: str,
    forged: str,
) -> None:
    fields = without(absent)
    sign = php_sign(php, notification_certificate, fields)

    with pytest.raises(paymux.SignatureError, match="does not match"):
        shop_provider.parse_notification({**fields, name: forged, "sign": sign})


@pytest.mark.parametrize("name", ["payment_amount", "commission_amount", "desc"])
def test_php_signs_an_absent_field_and_an_empty_one_differently(
    php: str,
    notification_certificate: CertificateFolder,
    shop_provider: AliKassaProvider,
    name: str,
) -> None:
    """Null and "" are two values: each verifies only in the form it was signed in."""
    absent = without((name,))
    absent_sign = php_sign(php, notification_certificate, absent)
    empty_sign = php_sign(php, notification_certificate, CANCELED)
    assert absent_sign != empty_sign

    shop_provider.parse_notification({**absent, "sign": absent_sign})
    shop_provider.parse_notification({**CANCELED, "sign": empty_sign})
    with pytest.raises(paymux.SignatureError, match="does not match"):
        shop_provider.parse_notification({**absent, "sign": empty_sign})
    with pytest.raises(paymux.SignatureError, match="does not match"):
        shop_provider.parse_notification({**CANCELED, "sign": absent_sign})
