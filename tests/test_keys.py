"""AliKassa certificates and signatures: folders as AliKassa hands them out, keys in both PEM
forms, RSA PKCS#1 v1.5 signatures checked by an independent OpenSSL, and the SHA-256 mode end to
end through the sandbox.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import subprocess
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

import paymux
from paymux import PaymentStatus
from paymux.providers.alikassa import (
    AliKassaProvider,
    CertificateFolder,
    Signer,
    Verifier,
    generate_certificate,
    phpjson,
)
from paymux.providers.alikassa.sandbox import Merchant, Sandbox
from support import Receiver, payment_request

MESSAGE = phpjson.dumps_bytes({"amount": "500.00", "order_id": "order/1", "desc": "Оплата 💳"})
"""A request body as paymux signs it."""

posix_only = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")


def password_of(certificate: CertificateFolder) -> str:
    return certificate.password_file.read_text().strip()


def pem_body_lines(path: Path) -> list[str]:
    """The base64 lines of a PEM file, without its armour and headers."""
    lines = path.read_text().splitlines()
    return [line for line in lines if line and not line.startswith("-----") and ":" not in line]


def raises_certificate_error(call: Callable[[], object]) -> paymux.CertificateError:
    """Call `call()` and return the CertificateError it must raise."""
    with pytest.raises(paymux.CertificateError) as caught:
        call()
    return caught.value


# -- certificate folders -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(
    tmp_path_factory: pytest.TempPathFactory, payment_key: rsa.RSAPrivateKey
) -> CertificateFolder:
    """A certificate folder for the session's payment key, in the default (AliKassa's) form."""
    return generate_certificate(tmp_path_factory.mktemp("legacy"), private_key=payment_key)


@pytest.fixture(scope="module")
def pkcs8_certificate(
    tmp_path_factory: pytest.TempPathFactory, payment_key: rsa.RSAPrivateKey
) -> CertificateFolder:
    """The same key with its private key as PKCS#8 encrypted PEM."""
    return generate_certificate(
        tmp_path_factory.mktemp("pkcs8"), private_key=payment_key, pkcs8=True
    )


@pytest.fixture(params=["legacy", "pkcs8"])
def any_certificate(
    request: pytest.FixtureRequest,
    certificate: CertificateFolder,
    pkcs8_certificate: CertificateFolder,
) -> CertificateFolder:
    """Each of the two private key formats paymux reads."""
    return certificate if request.param == "legacy" else pkcs8_certificate


@pytest.fixture(scope="module")
def signer(certificate: CertificateFolder) -> Signer:
    return Signer.from_certificate_dir(certificate.path)


@pytest.fixture(scope="module")
def verifier(certificate: CertificateFolder) -> Verifier:
    return Verifier.from_file(certificate.public_key)


def test_private_key_is_legacy_openssl_encrypted_pem_by_default(
    certificate: CertificateFolder,
) -> None:
    """AliKassa's form, the only one its Go and Java samples decode."""
    pem = certificate.private_key.read_text()
    assert pem.startswith(
        "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,"
    )
    assert pem.rstrip().endswith("-----END RSA PRIVATE KEY-----")


def test_pkcs8_private_key_is_encrypted_pkcs8_pem(pkcs8_certificate: CertificateFolder) -> None:
    pem = pkcs8_certificate.private_key.read_text()
    assert pem.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
    assert pem.rstrip().endswith("-----END ENCRYPTED PRIVATE KEY-----")
    assert "Proc-Type" not in pem


def test_password_file_holds_the_password_alone_without_a_newline(
    any_certificate: CertificateFolder,
) -> None:
    content = any_certificate.password_file.read_bytes()
    assert len(content) == 32
    assert content.strip() == content


def test_password_is_made_of_ascii_letters_and_digits_only(
    tmp_path: Path, payment_key: rsa.RSAPrivateKey
) -> None:
    """Characters every sample reads alike; checked over many passwords, not one."""
    passwords = [
        generate_certificate(
            tmp_path / str(number), private_key=payment_key
        ).password_file.read_text(encoding="ascii")
        for number in range(20)
    ]
    assert all(password.isascii() and password.isalnum() for password in passwords)


def test_private_key_decrypts_with_the_password_file_as_it_is(
    any_certificate: CertificateFolder,
) -> None:
    """The PHP, Java and Go samples pass the bytes of password.txt untrimmed to the decoder."""
    pem = any_certificate.private_key.read_bytes()
    content = any_certificate.password_file.read_bytes()
    assert isinstance(serialization.load_pem_private_key(pem, password=content), rsa.RSAPrivateKey)


def test_public_pem_is_the_public_half_of_the_private_key(
    any_certificate: CertificateFolder, payment_key: rsa.RSAPrivateKey
) -> None:
    pem = any_certificate.public_key.read_bytes()
    assert pem.startswith(b"-----BEGIN PUBLIC KEY-----\n")
    public = serialization.load_pem_public_key(pem)
    assert isinstance(public, rsa.RSAPublicKey)
    assert public.public_numbers() == payment_key.public_key().public_numbers()


def test_every_certificate_gets_its_own_password(
    tmp_path: Path, payment_key: rsa.RSAPrivateKey
) -> None:
    first = generate_certificate(tmp_path / "first", private_key=payment_key)
    second = generate_certificate(tmp_path / "second", private_key=payment_key)
    assert password_of(first) != password_of(second)
    assert first.private_key.read_bytes() != second.private_key.read_bytes()


def test_generate_certificate_creates_missing_folders(
    tmp_path: Path, payment_key: rsa.RSAPrivateKey
) -> None:
    folder = tmp_path / "archive" / "payments"
    created = generate_certificate(folder, private_key=payment_key)
    assert created.path == folder
    assert {path.name for path in folder.iterdir()} == {
        "private.pem",
        "password.txt",
        "public.pem",
    }


def test_generate_certificate_makes_a_fresh_key_when_none_is_given(tmp_path: Path) -> None:
    created = generate_certificate(tmp_path, key_size=1024)
    signer = Signer.from_certificate_dir(created.path)
    assert repr(signer) == "Signer(digest='sha1', key_size=1024)"
    Verifier.from_file(created.public_key).verify(MESSAGE, signer.sign(MESSAGE))


@posix_only
@pytest.mark.parametrize("pkcs8", [False, True], ids=["legacy", "pkcs8"])
def test_private_files_are_readable_by_the_owner_only(
    tmp_path: Path, payment_key: rsa.RSAPrivateKey, pkcs8: bool
) -> None:
    created = generate_certificate(tmp_path, private_key=payment_key, pkcs8=pkcs8)
    assert stat.S_IMODE(created.private_key.stat().st_mode) == 0o600
    assert stat.S_IMODE(created.password_file.stat().st_mode) == 0o600


@posix_only
def test_regenerating_over_world_readable_files_makes_them_private(
    tmp_path: Path, payment_key: rsa.RSAPrivateKey
) -> None:
    """A new secret must not inherit the loose mode of the file it replaces."""
    for name in ("private.pem", "password.txt"):
        (tmp_path / name).write_text("old")
        (tmp_path / name).chmod(0o644)
    created = generate_certificate(tmp_path, private_key=payment_key)
    assert stat.S_IMODE(created.private_key.stat().st_mode) == 0o600
    assert stat.S_IMODE(created.password_file.stat().st_mode) == 0o600
    assert password_of(created) != "old"


@posix_only
@pytest.mark.parametrize("target_exists", [True, False], ids=["to a file", "dangling"])
def test_keys_force_replaces_symlinked_key_files_and_never_writes_through_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], target_exists: bool
) -> None:
    """A link planted in the folder must not make `paymux keys --force` write key material to
    (or create) a file elsewhere."""
    from paymux.cli import main

    folder, elsewhere = tmp_path / "certs", tmp_path / "elsewhere"
    folder.mkdir()
    elsewhere.mkdir()
    targets = {name: elsewhere / f"{name}.target" for name in ("private.pem", "password.txt")}
    targets["public.pem"] = elsewhere / "public.pem.target"
    for name, target in targets.items():
        if target_exists:
            target.write_text(f"precious {name}")
        (folder / name).symlink_to(target)

    assert main(["keys", str(folder), "--force"]) == 0
    capsys.readouterr()

    for name, target in targets.items():
        assert not (folder / name).is_symlink()
        if target_exists:
            assert target.read_text() == f"precious {name}"
        else:
            assert not target.exists()
    assert sorted(path.name for path in folder.iterdir()) == sorted(targets)
    signer = Signer.from_certificate_dir(folder)
    Verifier.from_file(folder / "public.pem").verify(MESSAGE, signer.sign(MESSAGE))
    assert stat.S_IMODE((folder / "private.pem").stat().st_mode) == 0o600


def assert_shaped_like_alikassas_archive(certificate: CertificateFolder) -> None:
    """Legacy encrypted PEM that the untrimmed bytes of password.txt decrypt."""
    pem = certificate.private_key.read_bytes()
    assert pem.startswith(b"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n")
    password = certificate.password_file.read_bytes()
    assert not password.endswith(b"\n")
    assert isinstance(serialization.load_pem_private_key(pem, password=password), rsa.RSAPrivateKey)


def test_the_sandbox_hands_out_certificate_folders_shaped_like_alikassas_archive(
    tmp_path: Path,
) -> None:
    with Sandbox(key_size=1024) as sandbox:
        merchant = sandbox.create_merchant(tmp_path / "payment")
        assert_shaped_like_alikassas_archive(merchant.payment_certificate)
        assert_shaped_like_alikassas_archive(sandbox.notification_certificate)
        pkcs8 = sandbox.create_merchant(tmp_path / "pkcs8", pkcs8=True)
    assert pkcs8.payment_certificate.private_key.read_bytes().startswith(
        b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
    )


def test_paymux_keys_writes_alikassas_form_unless_asked_for_pkcs8(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from paymux.cli import main

    assert main(["keys", str(tmp_path / "default"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["format"] == "legacy-pem"
    assert_shaped_like_alikassas_archive(CertificateFolder(tmp_path / "default"))

    assert main(["keys", str(tmp_path / "pkcs8"), "--pkcs8", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["format"] == "pkcs8"
    pem = (tmp_path / "pkcs8" / "private.pem").read_bytes()
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
    Signer.from_certificate_dir(tmp_path / "pkcs8")


# -- loading a Signer ----------------------------------------------------------------------------


def test_signer_loads_a_certificate_folder_in_either_format(
    any_certificate: CertificateFolder, verifier: Verifier
) -> None:
    signer = Signer.from_certificate_dir(any_certificate.path)
    verifier.verify(MESSAGE, signer.sign(MESSAGE))


def test_a_certificate_folder_that_is_gone_says_so_and_how_a_sandbox_keeps_one(
    tmp_path: Path,
) -> None:
    with pytest.raises(paymux.CertificateError, match=r"does not exist .*--state DIR"):
        Signer.from_certificate_dir(tmp_path / "stopped-sandbox" / "payment")


def test_both_formats_hold_the_same_key_and_sign_identically(
    certificate: CertificateFolder, pkcs8_certificate: CertificateFolder
) -> None:
    """PKCS#1 v1.5 signatures are deterministic: the same key gives the same bytes."""
    pkcs8 = Signer.from_certificate_dir(pkcs8_certificate.path)
    legacy = Signer.from_certificate_dir(certificate.path)
    assert pkcs8.sign(MESSAGE) == legacy.sign(MESSAGE)


@pytest.mark.parametrize("form", ["str", "bytes"])
def test_from_files_takes_the_password_as_text_or_bytes(
    any_certificate: CertificateFolder, verifier: Verifier, form: str
) -> None:
    text = password_of(any_certificate)
    password: str | bytes = text if form == "str" else text.encode("ascii")
    signer = Signer.from_files(any_certificate.private_key, password=password)
    verifier.verify(MESSAGE, signer.sign(MESSAGE))


@pytest.mark.parametrize("ending", ["\n", "\r\n", "", "  \n\n"], ids=repr)
def test_from_files_trims_the_password_file(
    any_certificate: CertificateFolder, verifier: Verifier, tmp_path: Path, ending: str
) -> None:
    """A password.txt saved by an editor often ends with a newline; it still opens the key."""
    password_file = tmp_path / "password.txt"
    password_file.write_bytes((password_of(any_certificate) + ending).encode("ascii"))
    signer = Signer.from_files(any_certificate.private_key, password_file=password_file)
    verifier.verify(MESSAGE, signer.sign(MESSAGE))


def test_an_unencrypted_private_key_loads_without_a_password(
    tmp_path: Path, payment_key: rsa.RSAPrivateKey, verifier: Verifier
) -> None:
    key_file = tmp_path / "private.pem"
    key_file.write_bytes(
        payment_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    signer = Signer.from_files(key_file)
    verifier.verify(MESSAGE, signer.sign(MESSAGE))
    error = raises_certificate_error(lambda: Signer.from_files(key_file, password="secret"))
    assert "not encrypted" in str(error)


@pytest.mark.parametrize("source", ["argument", "file"])
def test_wrong_password_is_a_certificate_error_that_never_shows_the_password(
    any_certificate: CertificateFolder, tmp_path: Path, source: str
) -> None:
    wrong = "Wr0ng-Passw0rd-Canary-7f3a"
    password_file = tmp_path / "password.txt"
    password_file.write_text(wrong + "\n")
    error = raises_certificate_error(
        lambda: (
            Signer.from_files(any_certificate.private_key, password=wrong)
            if source == "argument"
            else Signer.from_files(any_certificate.private_key, password_file=password_file)
        )
    )
    assert "wrong password" in str(error)
    shown = [
        str(error),
        repr(error),
        "".join(traceback.format_exception(error)),
        repr(error.args),
    ]
    for text in shown:
        assert wrong not in text
        assert password_of(any_certificate) not in text


def test_encrypted_key_without_a_password_is_a_certificate_error(
    any_certificate: CertificateFolder,
) -> None:
    error = raises_certificate_error(lambda: Signer.from_files(any_certificate.private_key))
    assert "password is required" in str(error)


def test_an_empty_password_file_counts_as_no_password(
    certificate: CertificateFolder, tmp_path: Path
) -> None:
    empty = tmp_path / "password.txt"
    empty.write_text("\n")
    error = raises_certificate_error(
        lambda: Signer.from_files(certificate.private_key, password_file=empty)
    )
    assert "password is required" in str(error)


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"this is not a key\n", id="text"),
        pytest.param(b"", id="empty"),
        pytest.param(os.urandom(64), id="random-bytes"),
        pytest.param(
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
            id="damaged-pem",
        ),
    ],
)
def test_a_garbage_private_key_file_is_a_certificate_error(tmp_path: Path, content: bytes) -> None:
    key_file = tmp_path / "private.pem"
    key_file.write_bytes(content)
    raises_certificate_error(lambda: Signer.from_files(key_file, password="secret"))


def test_a_public_key_given_as_the_private_key_is_a_certificate_error(
    certificate: CertificateFolder,
) -> None:
    raises_certificate_error(lambda: Signer.from_files(certificate.public_key, password="x"))


def test_a_non_rsa_private_key_is_a_certificate_error(tmp_path: Path) -> None:
    key_file = tmp_path / "private.pem"
    key_file.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    error = raises_certificate_error(lambda: Signer.from_files(key_file, password="secret"))
    assert "not an RSA key" in str(error)


def test_a_missing_private_key_file_is_a_certificate_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "private.pem"
    error = raises_certificate_error(lambda: Signer.from_files(missing, password="secret"))
    assert str(missing) in str(error)


def test_a_missing_password_file_is_a_certificate_error(
    certificate: CertificateFolder, tmp_path: Path
) -> None:
    missing = tmp_path / "password.txt"
    error = raises_certificate_error(
        lambda: Signer.from_files(certificate.private_key, password_file=missing)
    )
    assert str(missing) in str(error)


def test_a_certificate_folder_without_password_txt_is_a_certificate_error(
    certificate: CertificateFolder, tmp_path: Path
) -> None:
    shutil.copy(certificate.private_key, tmp_path / "private.pem")
    raises_certificate_error(lambda: Signer.from_certificate_dir(tmp_path))


def test_a_missing_certificate_folder_is_a_certificate_error(tmp_path: Path) -> None:
    raises_certificate_error(lambda: Signer.from_certificate_dir(tmp_path / "absent"))


def test_a_missing_or_garbage_public_key_is_a_certificate_error(tmp_path: Path) -> None:
    raises_certificate_error(lambda: Verifier.from_file(tmp_path / "public.pem"))
    (tmp_path / "public.pem").write_text("-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n")
    raises_certificate_error(lambda: Verifier.from_file(tmp_path / "public.pem"))


def test_certificate_error_is_a_configuration_error() -> None:
    assert issubclass(paymux.CertificateError, paymux.ConfigurationError)


@pytest.mark.parametrize("digest", ["md5", "sha512", "", "SHA-1"])
def test_an_unknown_digest_is_a_certificate_error(
    payment_key: rsa.RSAPrivateKey, certificate: CertificateFolder, digest: str
) -> None:
    raises_certificate_error(lambda: Signer(payment_key, digest))
    raises_certificate_error(lambda: Verifier(payment_key.public_key(), digest))
    raises_certificate_error(lambda: Signer.from_certificate_dir(certificate.path, digest=digest))
    raises_certificate_error(lambda: Verifier.from_file(certificate.public_key, digest=digest))


def test_reprs_show_the_digest_and_key_size_but_no_key_material(
    any_certificate: CertificateFolder, payment_key: rsa.RSAPrivateKey
) -> None:
    signer = Signer.from_certificate_dir(any_certificate.path, digest="sha256")
    verifier = Verifier.from_file(any_certificate.public_key, digest="sha256")
    assert repr(signer) == "Signer(digest='sha256', key_size=2048)"
    assert repr(verifier) == "Verifier(digest='sha256', key_size=2048)"
    numbers = payment_key.private_numbers()
    secrets_and_material = [
        password_of(any_certificate),
        *pem_body_lines(any_certificate.private_key)[:2],
        *pem_body_lines(any_certificate.public_key)[:2],
        str(numbers.public_numbers.n)[:40],
        format(numbers.public_numbers.n, "x")[:40],
        str(numbers.d)[:40],
    ]
    for shown in (repr(signer), str(signer), repr(verifier), str(verifier)):
        assert "-----" not in shown
        for material in secrets_and_material:
            assert material not in shown


# -- signatures, checked by an independent OpenSSL ---------------------------------------------


@pytest.fixture(scope="module")
def openssl() -> str:
    executable = shutil.which("openssl")
    if executable is None:
        pytest.skip(
            "OPENSSL CROSS-CHECK NOT RUN: no `openssl` on PATH, so signatures were NOT checked "
            "by an independent implementation. Install openssl to run it."
        )
    return executable


def openssl_verify(
    openssl: str, public_key: Path, digest: str, data: bytes, signature: str, folder: Path
) -> subprocess.CompletedProcess[bytes]:
    """`openssl dgst -<digest> -verify public.pem -signature sig.bin data.bin`."""
    (folder / "data.bin").write_bytes(data)
    (folder / "sig.bin").write_bytes(base64.b64decode(signature))
    return subprocess.run(
        [
            openssl,
            "dgst",
            f"-{digest}",
            "-verify",
            str(public_key),
            "-signature",
            str(folder / "sig.bin"),
            str(folder / "data.bin"),
        ],
        capture_output=True,
        check=False,
        timeout=60,
    )


@pytest.mark.parametrize("digest", ["sha1", "sha256"])
def test_openssl_verifies_a_signature_made_by_signer(
    openssl: str, certificate: CertificateFolder, tmp_path: Path, digest: str
) -> None:
    signer = Signer.from_certificate_dir(certificate.path, digest=digest)
    result = openssl_verify(
        openssl, certificate.public_key, digest, MESSAGE, signer.sign(MESSAGE), tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == b"Verified OK"


def test_openssl_rejects_a_sha1_signature_checked_as_sha256(
    openssl: str, certificate: CertificateFolder, signer: Signer, tmp_path: Path
) -> None:
    assert signer.digest == "sha1"
    result = openssl_verify(
        openssl, certificate.public_key, "sha256", MESSAGE, signer.sign(MESSAGE), tmp_path
    )
    assert result.returncode != 0
    assert b"Verification failure" in result.stdout + result.stderr


def test_openssl_rejects_a_signature_over_other_bytes(
    openssl: str, certificate: CertificateFolder, signer: Signer, tmp_path: Path
) -> None:
    result = openssl_verify(
        openssl, certificate.public_key, "sha1", MESSAGE + b" ", signer.sign(MESSAGE), tmp_path
    )
    assert result.returncode != 0


@pytest.mark.parametrize("digest", ["sha1", "sha256"])
def test_verifier_accepts_a_signature_openssl_made_from_the_certificate_folder(
    openssl: str, any_certificate: CertificateFolder, tmp_path: Path, digest: str
) -> None:
    """OpenSSL reads private.pem with password.txt as they are, in either format."""
    (tmp_path / "data.bin").write_bytes(MESSAGE)
    result = subprocess.run(
        [
            openssl,
            "dgst",
            f"-{digest}",
            "-sign",
            str(any_certificate.private_key),
            "-passin",
            f"file:{any_certificate.password_file}",
            str(tmp_path / "data.bin"),
        ],
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    signature = base64.b64encode(result.stdout).decode("ascii")
    Verifier.from_file(any_certificate.public_key, digest=digest).verify(MESSAGE, signature)


# -- Verifier ------------------------------------------------------------------------------------


@pytest.mark.parametrize("digest", ["sha1", "sha256"])
def test_verifier_accepts_a_good_signature(
    payment_key: rsa.RSAPrivateKey, certificate: CertificateFolder, digest: str
) -> None:
    signature = Signer(payment_key, digest).sign(MESSAGE)
    Verifier.from_file(certificate.public_key, digest=digest).verify(MESSAGE, signature)


def test_signature_is_base64_of_a_pkcs1_v15_signature_over_the_exact_bytes(
    payment_key: rsa.RSAPrivateKey, signer: Signer
) -> None:
    """Checked with cryptography directly, not through Verifier."""
    raw = base64.b64decode(signer.sign(MESSAGE), validate=True)
    assert len(raw) == 256
    payment_key.public_key().verify(raw, MESSAGE, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303


@pytest.mark.parametrize(
    "tampered",
    [
        pytest.param(MESSAGE + b" ", id="appended-space"),
        pytest.param(MESSAGE.replace(b"500.00", b"900.00"), id="changed-amount"),
        pytest.param(MESSAGE[:-1], id="truncated"),
        pytest.param(b"", id="empty"),
    ],
)
def test_verifier_rejects_a_tampered_message(
    signer: Signer, verifier: Verifier, tampered: bytes
) -> None:
    assert tampered != MESSAGE
    with pytest.raises(paymux.SignatureError, match="does not match"):
        verifier.verify(tampered, signer.sign(MESSAGE))


def test_verifier_rejects_a_signature_made_with_another_key(
    notification_certificate: CertificateFolder, verifier: Verifier
) -> None:
    other = Signer.from_certificate_dir(notification_certificate.path)
    with pytest.raises(paymux.SignatureError, match="does not match"):
        verifier.verify(MESSAGE, other.sign(MESSAGE))


def test_verifier_rejects_a_signature_made_with_the_other_digest(
    payment_key: rsa.RSAPrivateKey, certificate: CertificateFolder
) -> None:
    sha256 = Verifier.from_file(certificate.public_key, digest="sha256")
    with pytest.raises(paymux.SignatureError):
        sha256.verify(MESSAGE, Signer(payment_key, "sha1").sign(MESSAGE))
    sha1 = Verifier.from_file(certificate.public_key, digest="sha1")
    with pytest.raises(paymux.SignatureError):
        sha1.verify(MESSAGE, Signer(payment_key, "sha256").sign(MESSAGE))


@pytest.mark.parametrize(
    "signature",
    [
        pytest.param("not base64!", id="punctuation"),
        pytest.param("AAA", id="bad-padding"),
        pytest.param("Подпись", id="non-ascii"),
        pytest.param(" AAAA", id="leading-space"),
    ],
)
def test_verifier_rejects_bad_base64(verifier: Verifier, signature: str) -> None:
    with pytest.raises(paymux.SignatureError, match="not valid base64"):
        verifier.verify(MESSAGE, signature)


def test_verifier_rejects_a_base64_signature_with_a_line_break_inside(
    signer: Signer, verifier: Verifier
) -> None:
    signature = signer.sign(MESSAGE)
    with pytest.raises(paymux.SignatureError):
        verifier.verify(MESSAGE, signature[:64] + "\n" + signature[64:])


@pytest.mark.parametrize(
    "signature",
    [
        pytest.param("", id="empty"),
        pytest.param(base64.b64encode(b"\0" * 256).decode("ascii"), id="zeros"),
        pytest.param(base64.b64encode(b"\xff" * 300).decode("ascii"), id="too-long"),
    ],
)
def test_verifier_rejects_an_empty_or_meaningless_signature(
    verifier: Verifier, signature: str
) -> None:
    with pytest.raises(paymux.SignatureError, match="does not match"):
        verifier.verify(MESSAGE, signature)


def test_verifier_rejects_a_truncated_signature(signer: Signer, verifier: Verifier) -> None:
    raw = base64.b64decode(signer.sign(MESSAGE))
    with pytest.raises(paymux.SignatureError):
        verifier.verify(MESSAGE, base64.b64encode(raw[:-1]).decode("ascii"))


# -- SHA-256 mode end to end through the sandbox -------------------------------------------------


@dataclass(frozen=True)
class Sha256Shop:
    sandbox: Sandbox
    merchant: Merchant
    provider: AliKassaProvider
    receiver: Receiver


@pytest.fixture(scope="module")
def sha256_shop(
    notification_certificate: CertificateFolder,
    payment_key: rsa.RSAPrivateKey,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Sha256Shop]:
    """A sandbox gateway in SHA-256 mode, a merchant connected to it, and the shop's endpoint."""
    with Sandbox(digest="sha256", notification_certificate=notification_certificate.path) as box:
        merchant = box.create_merchant(
            tmp_path_factory.mktemp("sha256") / "payment", private_key=payment_key
        )
        with Receiver() as receiver:
            provider = paymux.connect(merchant.settings)
            assert isinstance(provider, AliKassaProvider)
            with provider:
                yield Sha256Shop(box, merchant, provider, receiver)


def test_sha256_sandbox_hands_out_sha256_settings(sha256_shop: Sha256Shop) -> None:
    assert sha256_shop.merchant.settings["digest"] == "sha256"


def test_sha256_mode_creates_a_payment_and_reads_its_status(sha256_shop: Sha256Shop) -> None:
    request = payment_request()
    created = sha256_shop.provider.create(request)
    assert created.status is PaymentStatus.PENDING
    status = sha256_shop.provider.status(order_id=request.order_id)
    assert status.id == created.id
    assert status.status is PaymentStatus.PENDING


def test_sha256_mode_signs_requests_with_sha256(sha256_shop: Sha256Shop) -> None:
    """The header is a SHA-256 signature, not a SHA-1 one the gateway happens to accept."""
    sha256_shop.provider.create(payment_request())
    sent = sha256_shop.sandbox.requests[-1]
    public_key = sha256_shop.merchant.payment_certificate.public_key
    Verifier.from_file(public_key, digest="sha256").verify(sent.body, sent.headers["sign"])
    with pytest.raises(paymux.SignatureError):
        Verifier.from_file(public_key, digest="sha1").verify(sent.body, sent.headers["sign"])


def test_sha256_mode_parses_a_sha256_signed_notification(
    sha256_shop: Sha256Shop, notification_certificate: CertificateFolder
) -> None:
    shop = sha256_shop
    request = payment_request(notification_url=shop.receiver.url, description="Оплата / №7")
    created = shop.provider.create(request)
    before = len(shop.receiver.received)
    delivery = shop.sandbox.settle(created.id, "paid")
    assert delivery is not None
    assert delivery.http_status == 200, delivery.error
    received = shop.receiver.wait_for(before + 1)[before]
    query = urlsplit(received).query

    notification = shop.provider.parse_notification(query)
    assert notification.payment.id == created.id
    assert notification.payment.order_id == request.order_id
    assert notification.payment.status is PaymentStatus.PAID
    assert notification.fields["desc"] == "Оплата / №7"

    signed = phpjson.dumps_bytes({**notification.fields, "id": int(notification.fields["id"])})
    public_key = notification_certificate.public_key
    Verifier.from_file(public_key, digest="sha256").verify(signed, delivery.params["sign"])
    with pytest.raises(paymux.SignatureError):
        Verifier.from_file(public_key, digest="sha1").verify(signed, delivery.params["sign"])


def test_sha1_provider_is_refused_by_a_sha256_gateway(sha256_shop: Sha256Shop) -> None:
    settings = {**sha256_shop.merchant.settings, "digest": "sha1"}
    with paymux.connect(settings) as sha1_provider, pytest.raises(paymux.AuthenticationError):
        sha1_provider.create(payment_request())


def test_sha1_provider_cannot_verify_a_sha256_notification(sha256_shop: Sha256Shop) -> None:
    shop = sha256_shop
    created = shop.provider.create(payment_request(notification_url=shop.receiver.url))
    before = len(shop.receiver.received)
    assert shop.sandbox.settle(created.id, "cancel") is not None
    query = urlsplit(shop.receiver.wait_for(before + 1)[before]).query
    settings = {**shop.merchant.settings, "digest": "sha1"}
    with paymux.connect(settings) as sha1_provider, pytest.raises(paymux.SignatureError):
        sha1_provider.parse_notification(query)
    assert shop.provider.parse_notification(query).payment.status is PaymentStatus.CANCELED
