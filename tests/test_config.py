"""Configuration: named provider instances from a TOML file and PAYMUX__* environment variables.

Every test passes `environ=` explicitly (or sets variables through monkeypatch), so the
developer's own environment never leaks in.
"""

from __future__ import annotations

import json
import os
import traceback
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

import paymux
from paymux.providers.alikassa import AliKassaProvider, CertificateFolder, generate_certificate
from paymux.providers.alikassa.sandbox import Merchant, Sandbox
from support import payment_request


def toml_table(name: str, settings: Mapping[str, str | float]) -> str:
    """One `[providers.<name>]` table (JSON string literals are valid TOML basic strings)."""
    lines = [f"[providers.{name}]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture
def config_dir(tmp_path: Path, sandbox: Sandbox) -> Path:
    """A configuration folder holding the sandbox's notification public key."""
    folder = tmp_path / "conf"
    folder.mkdir()
    (folder / "notification.pem").write_bytes(sandbox.notification_public_key_pem())
    return folder


def add_merchant(
    sandbox: Sandbox, config_dir: Path, name: str, payment_key: rsa.RSAPrivateKey
) -> tuple[Merchant, dict[str, str]]:
    """Register a merchant whose certificate lives in `config_dir/certs/<name>`, and the file
    settings for it (paths relative to `config_dir`)."""
    merchant = sandbox.create_merchant(config_dir / "certs" / name, private_key=payment_key)
    settings = {
        "provider": "alikassa",
        "account": merchant.account,
        "certificate_dir": f"certs/{name}",
        "notification_public_key": "notification.pem",
        "base_url": sandbox.url,
    }
    return merchant, settings


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The current directory is not the configuration folder."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


# -- from a TOML file ------------------------------------------------------------------------


def test_a_toml_file_names_the_default_instance_and_paths_are_relative_to_the_file(
    sandbox: Sandbox, config_dir: Path, payment_key: rsa.RSAPrivateKey, elsewhere: Path
) -> None:
    merchant, settings = add_merchant(sandbox, config_dir, "shop", payment_key)
    file = config_dir / "paymux.toml"
    file.write_text('default = "shop"\n\n' + toml_table("shop", settings))

    config = paymux.load_config(file, environ={})

    assert config.default == "shop"
    assert config.instance().base_dir == config_dir.resolve()
    with paymux.connect(config=config) as provider:
        assert isinstance(provider, AliKassaProvider)
        assert provider.instance == "shop"
        created = provider.create(payment_request())
        redirect = provider.verify_redirect(sandbox.redirect_form(created.id))
    assert sandbox.payment(created.id).account == merchant.account
    assert redirect.order_id == created.order_id


def test_paymux_config_names_the_file_when_no_path_is_given(tmp_path: Path) -> None:
    file = tmp_path / "paymux.toml"
    file.write_text(toml_table("shop", {"provider": "alikassa", "account": "a"}))

    config = paymux.load_config(environ={"PAYMUX_CONFIG": str(file)})

    assert config.instance("shop").settings == {"account": "a"}
    assert config.instance("shop").base_dir == tmp_path.resolve()


# -- from the environment --------------------------------------------------------------------


def test_environment_variables_alone_configure_an_instance(
    merchant: Merchant, sandbox: Sandbox
) -> None:
    """Values arrive as text; numbers such as timeouts are accepted as text too."""
    environ = {
        "PAYMUX__SHOP__PROVIDER": "alikassa",
        "PAYMUX__SHOP__ACCOUNT": merchant.account,
        "PAYMUX__SHOP__CERTIFICATE_DIR": str(merchant.payment_certificate.path),
        "PAYMUX__SHOP__BASE_URL": sandbox.url,
        "PAYMUX__SHOP__READ_TIMEOUT": "2.5",
        "UNRELATED": "ignored",
    }

    config = paymux.load_config(environ=environ)

    assert list(config.instances) == ["shop"]
    with paymux.connect(config=config) as provider:
        created = provider.create(payment_request())
    assert sandbox.payment(created.id).account == merchant.account


def test_environment_variable_names_are_case_insensitive() -> None:
    environ = {"paymux__Shop__Provider": "alikassa", "PAYMUX__SHOP__ACCOUNT": "a"}

    config = paymux.load_config(environ=environ)

    assert config.instance("shop").provider == "alikassa"
    assert config.instance("shop").settings == {"account": "a"}


def test_connect_by_name_reads_the_process_environment(
    merchant: Merchant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PAYMUX_CONFIG", raising=False)
    monkeypatch.delenv("PAYMUX_DEFAULT", raising=False)
    monkeypatch.setenv("PAYMUX__SHOP__PROVIDER", "alikassa")
    monkeypatch.setenv("PAYMUX__SHOP__ACCOUNT", merchant.account)
    monkeypatch.setenv("PAYMUX__SHOP__CERTIFICATE_DIR", str(merchant.payment_certificate.path))

    with paymux.connect("shop") as provider:
        assert isinstance(provider, AliKassaProvider)
        assert provider.account == merchant.account


def test_the_environment_overrides_the_file_one_setting_at_a_time(
    sandbox: Sandbox, config_dir: Path, payment_key: rsa.RSAPrivateKey
) -> None:
    """The file's account is not registered; the environment's is, and wins."""
    merchant, settings = add_merchant(sandbox, config_dir, "shop", payment_key)
    file = config_dir / "paymux.toml"
    file.write_text(
        'default = "other"\n\n'
        + toml_table("shop", {**settings, "account": str(uuid.uuid4())})
        + toml_table("other", {"provider": "alikassa"})
    )
    environ = {"PAYMUX__SHOP__ACCOUNT": merchant.account, "PAYMUX_DEFAULT": "shop"}

    config = paymux.load_config(file, environ=environ)

    assert config.default == "shop"
    shop = config.instance()
    assert shop.name == "shop"
    assert shop.provider == "alikassa"
    assert dict(shop.settings) == {
        "account": merchant.account,
        "certificate_dir": settings["certificate_dir"],
        "notification_public_key": settings["notification_public_key"],
        "base_url": settings["base_url"],
    }
    with paymux.connect(config=config) as provider:
        created = provider.create(payment_request())
    assert sandbox.payment(created.id).account == merchant.account


def test_the_environment_overrides_a_file_instance_whatever_its_case(tmp_path: Path) -> None:
    file = tmp_path / "paymux.toml"
    file.write_text(toml_table("EU_Shop", {"provider": "alikassa", "account": "from-file"}))

    config = paymux.load_config(file, environ={"PAYMUX__EU_SHOP__ACCOUNT": "from-env"})

    assert list(config.instances) == ["EU_Shop"]
    assert config.instance("EU_Shop").settings == {"account": "from-env"}


# -- several instances side by side ----------------------------------------------------------


def test_two_merchants_on_one_gateway_work_side_by_side(
    sandbox: Sandbox, config_dir: Path, payment_key: rsa.RSAPrivateKey
) -> None:
    first_merchant, first_settings = add_merchant(sandbox, config_dir, "first", payment_key)
    second_merchant, second_settings = add_merchant(sandbox, config_dir, "second", payment_key)
    file = config_dir / "paymux.toml"
    file.write_text(toml_table("first", first_settings) + toml_table("second", second_settings))
    config = paymux.load_config(file, environ={})
    order_id = payment_request().order_id

    with (
        paymux.connect("first", config=config) as first,
        paymux.connect("second", config=config) as second,
    ):
        first_payment = first.create(payment_request(order_id=order_id))
        second_payment = second.create(payment_request(order_id=order_id))
        first_status = first.status(order_id=order_id)
        second_status = second.status(order_id=order_id)
        sandbox.settle(first_payment.id, "paid")
        notification = sandbox.gateway.notification_params(sandbox.payment(first_payment.id))
        verified = first.parse_notification(notification)
        with pytest.raises(paymux.SignatureError, match="another AliKassa account"):
            second.parse_notification(notification)

    assert (first.instance, second.instance) == ("first", "second")
    assert first_payment.id != second_payment.id
    assert sandbox.payment(first_payment.id).account == first_merchant.account
    assert sandbox.payment(second_payment.id).account == second_merchant.account
    assert (first_status.id, second_status.id) == (first_payment.id, second_payment.id)
    assert verified.payment.id == first_payment.id


# -- configuration errors --------------------------------------------------------------------


def test_an_instance_without_a_provider_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "paymux.toml"
    file.write_text(toml_table("shop", {"account": "a"}))

    with pytest.raises(paymux.ConfigurationError, match="instance 'shop': 'provider'"):
        paymux.load_config(file, environ={})


def test_an_instance_from_the_environment_without_a_provider_is_refused() -> None:
    with pytest.raises(paymux.ConfigurationError, match="instance 'shop': 'provider'"):
        paymux.load_config(environ={"PAYMUX__SHOP__ACCOUNT": "a"})


def test_an_unknown_instance_is_refused_naming_the_configured_ones() -> None:
    config = paymux.load_config(environ={"PAYMUX__SHOP__PROVIDER": "alikassa"})

    with pytest.raises(paymux.ConfigurationError, match=r"'outlet'.*configured: shop"):
        config.instance("outlet")
    with pytest.raises(paymux.ConfigurationError, match="'outlet'"):
        paymux.connect("outlet", config=config)


def test_a_default_that_names_no_instance_is_refused() -> None:
    environ = {"PAYMUX__SHOP__PROVIDER": "alikassa", "PAYMUX_DEFAULT": "outlet"}

    with pytest.raises(paymux.ConfigurationError, match="'outlet'"):
        paymux.load_config(environ=environ).instance()


def test_without_a_default_two_instances_are_ambiguous() -> None:
    environ = {"PAYMUX__FIRST__PROVIDER": "alikassa", "PAYMUX__SECOND__PROVIDER": "alikassa"}
    config = paymux.load_config(environ=environ)

    with pytest.raises(paymux.ConfigurationError, match="configured: first, second"):
        config.instance()


def test_with_nothing_configured_there_is_no_instance_to_use() -> None:
    with pytest.raises(paymux.ConfigurationError, match="no provider instance is configured"):
        paymux.load_config(environ={}).instance()


def test_connect_without_configuration_says_how_to_get_one_as_the_cli_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [key for key in os.environ if key.startswith("PAYMUX")]:
        monkeypatch.delenv(name)

    with pytest.raises(paymux.ConfigurationError) as raised:
        paymux.connect()

    assert "PAYMUX_CONFIG" in str(raised.value)
    assert "'paymux providers' lists the gateways installed" in str(raised.value)


@pytest.mark.parametrize(
    "name", ["PAYMUX__SHOP", "PAYMUX____ACCOUNT", "PAYMUX__SHOP__", "PAYMUX__"]
)
def test_a_malformed_environment_variable_name_is_refused(name: str) -> None:
    with pytest.raises(paymux.ConfigurationError, match=f"{name} is not of the form"):
        paymux.load_config(environ={name: "x"})


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[providers.shop\nprovider = 'alikassa'\n", "not valid TOML"),
        ('providers = "alikassa"\n', "'providers' must be a table"),
        ('[providers]\nshop = "alikassa"\n', "providers.shop must be a table"),
        ("[providers]\nshop = ['ab', 'cd']\n", "providers.shop must be a table"),
        ("default = 3\n", "'default' must be an instance name"),
    ],
    ids=[
        "bad TOML",
        "providers not a table",
        "instance not a table",
        "instance a list",
        "default not a name",
    ],
)
def test_a_malformed_file_is_refused(tmp_path: Path, text: str, problem: str) -> None:
    file = tmp_path / "paymux.toml"
    file.write_text(text)

    with pytest.raises(paymux.ConfigurationError, match=problem):
        paymux.load_config(file, environ={})


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(paymux.ConfigurationError, match="cannot read"):
        paymux.load_config(tmp_path / "absent.toml", environ={})


# -- AliKassa's own settings -----------------------------------------------------------------

PASSWORD = "s3cret-Passw0rd-value"


@pytest.fixture(scope="module")
def certificate(
    tmp_path_factory: pytest.TempPathFactory, payment_key: rsa.RSAPrivateKey
) -> CertificateFolder:
    return generate_certificate(tmp_path_factory.mktemp("certificate"), private_key=payment_key)


def alikassa_settings(certificate: CertificateFolder, **changes: Any) -> dict[str, Any]:
    """Valid settings with an explicit private key and password, then `changes` applied
    (a value of None removes the setting)."""
    settings: dict[str, Any] = {
        "provider": "alikassa",
        "account": "93d5df06-996c-48c3-9847-348d6b580b80",
        "private_key": str(certificate.private_key),
        "password": certificate.password_file.read_text().strip(),
    }
    settings.update(changes)
    return {key: value for key, value in settings.items() if value is not None}


def test_valid_alikassa_settings_connect(certificate: CertificateFolder) -> None:
    with paymux.connect(alikassa_settings(certificate)) as provider:
        assert isinstance(provider, AliKassaProvider)


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"account": None}, "account"),
        ({"account": "not-a-uuid"}, "account"),
        ({"certificate_dir": "."}, "certificate_dir"),
        ({"private_key": None}, "certificate_dir"),
        ({"digest": "md5"}, "digest"),
        ({"notification_digest": "md5"}, "notification_digest"),
        ({"read_timeout": -1}, "read_timeout"),
        ({"connect_timeout": "0"}, "connect_timeout"),
        ({"base_url": "not a url"}, "base_url"),
        ({"pasword": PASSWORD}, "pasword"),
    ],
    ids=[
        "missing account",
        "account not a UUID",
        "certificate_dir and private_key",
        "neither certificate_dir nor private_key",
        "unknown digest",
        "unknown notification digest",
        "negative timeout",
        "zero timeout",
        "bad base URL",
        "misspelt setting holding the password",
    ],
)
def test_bad_alikassa_settings_are_refused_without_echoing_the_password(
    certificate: CertificateFolder, changes: dict[str, Any], problem: str
) -> None:
    settings = alikassa_settings(certificate, password=PASSWORD, **changes)

    with pytest.raises(paymux.ConfigurationError, match=problem) as caught:
        paymux.connect(settings)

    shown = "".join(traceback.format_exception(caught.value)) + repr(caught.value)
    assert PASSWORD not in shown


def test_certificate_dir_with_a_password_is_refused(certificate: CertificateFolder) -> None:
    """The folder brings its own password.txt; a second password is a mistake."""
    settings = alikassa_settings(
        certificate, private_key=None, certificate_dir=str(certificate.path), password=PASSWORD
    )

    with pytest.raises(paymux.ConfigurationError, match=r"password\.txt") as caught:
        paymux.connect(settings)

    assert PASSWORD not in "".join(traceback.format_exception(caught.value))


def test_a_wrong_password_is_a_certificate_error_that_never_shows_it(
    certificate: CertificateFolder,
) -> None:
    with pytest.raises(paymux.CertificateError, match="wrong password") as caught:
        paymux.connect(alikassa_settings(certificate, password=PASSWORD))

    assert PASSWORD not in "".join(traceback.format_exception(caught.value))


def test_a_missing_certificate_folder_is_a_certificate_error(tmp_path: Path) -> None:
    settings = {
        "provider": "alikassa",
        "account": "93d5df06-996c-48c3-9847-348d6b580b80",
        "certificate_dir": str(tmp_path / "absent"),
    }

    with pytest.raises(paymux.CertificateError, match=r"folder .*absent does not exist"):
        paymux.connect(settings)
