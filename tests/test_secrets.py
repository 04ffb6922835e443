"""Secrets stay secret from the moment they are read: in reprs, and in tracebacks that print
every frame's locals (structlog's `dict_tracebacks`, Sentry, rich).

A real wrong-password `CertificateError`, from a generated key, is raised through every way a
password reaches the key loader and rendered with locals; the password appears nowhere.
"""

from __future__ import annotations

import copy
import io
import json
import logging
import pickle
import shutil
import traceback
from collections.abc import Callable
from pathlib import Path

import pytest
import structlog
from cryptography.hazmat.primitives.asymmetric import rsa
from structlog.tracebacks import ExceptionDictTransformer

import paymux
from paymux.providers.alikassa import CertificateFolder, Signer, generate_certificate
from paymux.providers.alikassa.settings import SETTINGS
from paymux.providers.base import Secret, SecretString, validate_settings

ACCOUNT = "93d5df06-996c-48c3-9847-348d6b580b80"

# -- the Secret type ---------------------------------------------------------------------------


def test_a_secret_shows_itself_masked_and_reveals_its_value_on_request() -> None:
    secret = Secret("hunter2-password")

    assert repr(secret) == "Secret([redacted])"
    assert str(secret) == f"{secret}" == "[redacted]"
    assert "hunter2" not in repr([secret, {"password": secret}])
    assert secret.reveal() == "hunter2-password"


def test_secrets_are_equal_by_value_without_showing_it() -> None:
    assert Secret("abc") == Secret("abc")
    assert Secret("abc") != Secret("abd")
    assert Secret(b"abc") != Secret("abc")
    assert Secret("abc") != "abc", "a secret never equals plain text"


def test_a_secret_is_never_pickled_by_accident_but_copies_of_settings_keep_it() -> None:
    secret = Secret("hunter2-password")

    with pytest.raises(TypeError, match="not pickled"):
        pickle.dumps({"password": secret})
    assert copy.deepcopy({"password": secret})["password"] is secret
    assert copy.copy(secret) is secret


def test_events_redact_a_secret_under_any_name() -> None:
    from paymux._redaction import loggable

    assert loggable({"note": Secret("hunter2"), "deep": [{"x": Secret(b"k")}]}) == {
        "note": "[redacted]",
        "deep": [{"x": "[redacted]"}],
    }


# -- configuration delivers Secrets ----------------------------------------------------------


def test_configuration_wraps_secret_settings_from_a_mapping_a_file_and_the_environment(
    tmp_path: Path,
) -> None:
    file = tmp_path / "paymux.toml"
    file.write_text(
        '[providers.shop]\nprovider = "alikassa"\npassword = "from-the-file"\n'
        'passphrase = "also-secret"\naccount = "not-secret"\n'
    )
    config = paymux.load_config(file, environ={"PAYMUX__SHOP__SECRET": "from-the-environment"})
    settings = config.instance("shop").settings
    direct = paymux.InstanceConfig.from_mapping("x", {"provider": "p", "Password": "given"})

    assert settings["password"] == Secret("from-the-file")
    assert settings["passphrase"] == Secret("also-secret")
    assert settings["secret"] == Secret("from-the-environment")
    assert settings["account"] == "not-secret"
    assert direct.settings["Password"] == Secret("given")
    assert "from-the" not in repr(settings) + repr(config)


def test_the_alikassa_password_setting_is_loaded_as_a_secret_from_text_or_a_secret() -> None:
    base = {"account": ACCOUNT, "private_key": "private.pem"}

    from_text = validate_settings(SETTINGS, {**base, "password": "text"}, instance="shop")
    from_secret = validate_settings(
        SETTINGS, {**base, "password": Secret("wrapped")}, instance="shop"
    )

    assert from_text["password"] == Secret("text")
    assert from_secret["password"] == Secret("wrapped")


def test_a_secret_setting_that_is_not_text_is_a_configuration_error() -> None:
    import marshmallow

    class Schema(marshmallow.Schema):
        secret = SecretString(required=True)

    with pytest.raises(paymux.ConfigurationError, match="secret: Not a valid string") as raised:
        validate_settings(Schema(), {"secret": 12345678901234}, instance="shop")
    assert "12345678901234" not in str(raised.value)


# -- a wrong password rendered with every frame's locals -------------------------------------


@pytest.fixture(scope="module")
def certificate(
    tmp_path_factory: pytest.TempPathFactory, payment_key: rsa.RSAPrivateKey
) -> CertificateFolder:
    return generate_certificate(tmp_path_factory.mktemp("secrets"), private_key=payment_key)


def password_of(certificate: CertificateFolder) -> str:
    return certificate.password_file.read_text().strip()


def wrong_password(certificate: CertificateFolder) -> str:
    return password_of(certificate)[::-1] + "-wrong"


def key_settings(certificate: CertificateFolder) -> dict[str, str]:
    return {"provider": "alikassa", "account": ACCOUNT, "private_key": str(certificate.private_key)}


def wrong_password_file(certificate: CertificateFolder, folder: Path) -> Path:
    """A copy of the certificate folder whose password.txt holds the wrong password."""
    shutil.copytree(certificate.path, folder)
    (folder / "password.txt").write_text(wrong_password(certificate) + "\n")
    return folder / "password.txt"


# Each flow passes the wrong password to paymux without keeping it in a local of its own: the
# frames checked are paymux's, from the configuration to the key loader.


def connect_with_settings(certificate: CertificateFolder, tmp_path: Path) -> object:
    return paymux.connect({**key_settings(certificate), "password": wrong_password(certificate)})


def connect_from_a_file(certificate: CertificateFolder, tmp_path: Path) -> object:
    file = tmp_path / "paymux.toml"
    settings = {**key_settings(certificate), "password": wrong_password(certificate)}
    file.write_text(
        "[providers.shop]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in settings.items())
    )
    del settings
    return paymux.connect("shop", config=paymux.load_config(file, environ={}))


def connect_from_the_environment(certificate: CertificateFolder, tmp_path: Path) -> object:
    environ = {
        f"PAYMUX__SHOP__{key.upper()}": value for key, value in key_settings(certificate).items()
    }
    environ["PAYMUX__SHOP__PASSWORD"] = wrong_password(certificate)
    config = paymux.load_config(environ=environ)
    del environ
    return paymux.connect("shop", config=config)


def connect_with_a_certificate_folder(certificate: CertificateFolder, tmp_path: Path) -> object:
    folder = wrong_password_file(certificate, tmp_path / "cert").parent
    settings = {"provider": "alikassa", "account": ACCOUNT, "certificate_dir": str(folder)}
    return paymux.connect(settings)


def signer_with_a_password(certificate: CertificateFolder, tmp_path: Path) -> object:
    return Signer.from_files(certificate.private_key, password=wrong_password(certificate))


def signer_with_a_password_file(certificate: CertificateFolder, tmp_path: Path) -> object:
    password_file = wrong_password_file(certificate, tmp_path / "cert")
    return Signer.from_files(certificate.private_key, password_file=password_file)


Flow = Callable[[CertificateFolder, Path], object]
FLOWS: dict[str, Flow] = {
    "connect with settings": connect_with_settings,
    "connect from a TOML file": connect_from_a_file,
    "connect from the environment": connect_from_the_environment,
    "connect with a certificate folder": connect_with_a_certificate_folder,
    "Signer.from_files with a password": signer_with_a_password,
    "Signer.from_files with a password file": signer_with_a_password_file,
}


def with_locals_shown(error: paymux.CertificateError) -> str:
    """The error as three renderers that print every frame's locals show it."""
    python = "".join(
        traceback.TracebackException.from_exception(error, capture_locals=True).format()
    )
    transformer = ExceptionDictTransformer(
        show_locals=True, locals_max_string=100_000, locals_max_length=10_000
    )
    structured = json.dumps(transformer((type(error), error, error.__traceback__)), default=repr)
    stream = io.StringIO()
    logger = structlog.wrap_logger(
        structlog.PrintLogger(stream),
        processors=[structlog.processors.dict_tracebacks, structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
    )
    logger.exception("connect failed")  # inside the caller's `except`: sys.exc_info() is set
    return python + structured + stream.getvalue()


@pytest.mark.parametrize("flow", FLOWS.values(), ids=FLOWS.keys())
def test_a_wrong_password_shows_in_no_frames_locals(
    certificate: CertificateFolder, tmp_path: Path, flow: Flow
) -> None:
    try:
        flow(certificate, tmp_path)
    except paymux.CertificateError as error:
        shown = with_locals_shown(error)
    else:
        pytest.fail("a wrong password must raise CertificateError")

    assert "wrong password" in shown
    assert "load_private_key" in shown, "the key loader's frame was rendered"
    assert "Secret([redacted])" in shown, "the password was in a local, masked"
    leaked = [p for p in (wrong_password(certificate), password_of(certificate)) if p in shown]
    assert leaked == []
