"""AliKassa's RSA certificates: loading, signing, verifying, and making throw-away ones.

AliKassa hands out each "API certificate" as a folder: `private.pem` (legacy OpenSSL PEM,
`Proc-Type: 4,ENCRYPTED`), `password.txt` (its passphrase, no trailing newline) and `public.pem`
(the only part AliKassa keeps). Reading is more tolerant than the gateway's samples: PKCS#8
encrypted PEM loads too, and whitespace around the password is trimmed.

Signatures are RSA PKCS#1 v1.5 over the exact bytes, base64-encoded; the digest is SHA-1 in
AliKassa's samples and SHA-256 in some newer ones, so it is a setting.

A password is held in a `Secret` from the moment it is read, and revealed only inside the call
that decrypts the key, so no frame's locals (printed by some traceback renderers) hold it.
Key files are written as new files moved into place: a symlink planted where one goes is
replaced, never written through.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from paymux import CertificateError, Secret, SignatureError

Digest = Literal["sha1", "sha256"]
DIGESTS: dict[str, type[hashes.HashAlgorithm]] = {"sha1": hashes.SHA1, "sha256": hashes.SHA256}

PRIVATE_KEY_FILE = "private.pem"
PASSWORD_FILE = "password.txt"  # noqa: S105 - a file name, not a password
PUBLIC_KEY_FILE = "public.pem"

PASSWORD_ALPHABET = string.ascii_letters + string.digits
"""Characters every sample reads alike, whether it trims, decodes or passes raw bytes."""
PASSWORD_LENGTH = 32

Password = Secret[str | bytes]


def _hash(digest: str) -> hashes.HashAlgorithm:
    try:
        return DIGESTS[digest]()
    except KeyError:
        raise CertificateError(f"digest must be one of {sorted(DIGESTS)}, not {digest!r}") from None


def read_password(path: Path) -> Secret[bytes]:
    """The passphrase in a `password.txt`, without surrounding whitespace.

    AliKassa's files have none, but one saved by an editor often ends with a newline.
    """
    try:
        return Secret(path.read_bytes().strip())
    except OSError as error:
        raise CertificateError(f"cannot read password file {path}: {error.strerror}") from None


def _passphrase(password: Password | None) -> bytes | None:
    """The bytes that decrypt the key; None for no password or an empty one."""
    if password is None:
        return None
    value = password.reveal()
    return (value.encode("utf-8") if isinstance(value, str) else value) or None


def load_private_key(pem: bytes, password: Password | None) -> rsa.RSAPrivateKey:
    """Decrypt and check an RSA private key. The password never appears in an error."""
    try:
        key = serialization.load_pem_private_key(pem, password=_passphrase(password))
    except TypeError:
        if _passphrase(password) is not None:
            raise CertificateError(
                "the private key is not encrypted, but a password was given"
            ) from None
        raise CertificateError("the private key is encrypted: a password is required") from None
    except (ValueError, UnsupportedAlgorithm):
        raise CertificateError(
            "cannot load the private key: wrong password, or not an RSA key in PEM form"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CertificateError("the private key is not an RSA key")
    return key


def load_public_key(pem: bytes) -> rsa.RSAPublicKey:
    """An RSA public key from PEM (`BEGIN PUBLIC KEY` or `BEGIN RSA PUBLIC KEY`)."""
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm):
        raise CertificateError("cannot load the public key: not a PEM public key") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise CertificateError("the public key is not an RSA key")
    return key


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise CertificateError(f"cannot read {what} {path}: {error.strerror}") from None


class Signer:
    """Signs request bodies with a private key that was loaded and checked once."""

    def __init__(self, private_key: rsa.RSAPrivateKey, digest: str = "sha1") -> None:
        self._key = private_key
        self._hash = _hash(digest)
        self.digest = digest

    @classmethod
    def from_files(
        cls,
        private_key: Path,
        *,
        password: Password | str | bytes | None = None,
        password_file: Path | None = None,
        digest: str = "sha1",
    ) -> Signer:
        """From a `private.pem`, with its password given or read from a `password.txt`."""
        if isinstance(password, (str, bytes)):
            password = Secret(password)  # the plain text leaves this frame's locals at once
        elif password is None and password_file is not None:
            password = read_password(password_file)
        return cls(load_private_key(_read(private_key, "private key"), password), digest)

    @classmethod
    def from_certificate_dir(cls, folder: Path, *, digest: str = "sha1") -> Signer:
        """From an unpacked AliKassa certificate folder."""
        if not folder.is_dir():
            raise CertificateError(
                f"certificate folder {folder} does not exist (a sandbox removes its temporary "
                f"folders when it stops; `paymux sandbox --state DIR` keeps them)"
            )
        return cls.from_files(
            folder / PRIVATE_KEY_FILE, password_file=folder / PASSWORD_FILE, digest=digest
        )

    def sign(self, data: bytes) -> str:
        """The base64 signature of `data`, as the `Sign` header carries it."""
        signature = self._key.sign(data, padding.PKCS1v15(), self._hash)
        return base64.b64encode(signature).decode("ascii")

    def __repr__(self) -> str:
        return f"Signer(digest={self.digest!r}, key_size={self._key.key_size})"


class Verifier:
    """Checks signatures made with the matching private key."""

    def __init__(self, public_key: rsa.RSAPublicKey, digest: str = "sha1") -> None:
        self._key = public_key
        self._hash = _hash(digest)
        self.digest = digest

    @classmethod
    def from_file(cls, public_key: Path, *, digest: str = "sha1") -> Verifier:
        return cls(load_public_key(_read(public_key, "public key")), digest)

    def verify(self, data: bytes, signature: str) -> None:
        """Raise `SignatureError` unless `signature` (base64) signs `data`."""
        try:
            raw = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError):
            raise SignatureError("signature is not valid base64") from None
        if base64.b64encode(raw).decode("ascii") != signature:
            raise SignatureError("signature is not in canonical base64")
        try:
            self._key.verify(raw, data, padding.PKCS1v15(), self._hash)
        except InvalidSignature:
            raise SignatureError("signature does not match") from None

    def __repr__(self) -> str:
        return f"Verifier(digest={self.digest!r}, key_size={self._key.key_size})"


@dataclass(frozen=True)
class CertificateFolder:
    """Where a generated certificate's three files are."""

    path: Path

    @property
    def private_key(self) -> Path:
        return self.path / PRIVATE_KEY_FILE

    @property
    def password_file(self) -> Path:
        return self.path / PASSWORD_FILE

    @property
    def public_key(self) -> Path:
        return self.path / PUBLIC_KEY_FILE


def generate_certificate(
    folder: str | os.PathLike[str],
    *,
    key_size: int = 2048,
    pkcs8: bool = False,
    private_key: rsa.RSAPrivateKey | None = None,
) -> CertificateFolder:
    """Write a certificate folder shaped like AliKassa's, so the gateway's own samples read it:
    `private.pem` as legacy encrypted PEM (`BEGIN RSA PRIVATE KEY`, `Proc-Type: 4,ENCRYPTED`;
    the Go and Java samples read no other form), `password.txt` without a trailing newline (the
    PHP, Java and Go samples do not trim it) and `public.pem`.

    `pkcs8` writes `BEGIN ENCRYPTED PRIVATE KEY` instead, for tools that want PKCS#8.
    """
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    key = private_key or rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    password = Secret(_new_password())
    private_format = (
        serialization.PrivateFormat.PKCS8
        if pkcs8
        else serialization.PrivateFormat.TraditionalOpenSSL
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        private_format,
        serialization.BestAvailableEncryption(password.reveal().encode("ascii")),
    )
    created = CertificateFolder(path)
    _write_new(created.private_key, pem, 0o600)
    _write_new(created.password_file, password.reveal().encode("ascii"), 0o600)
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _write_new(created.public_key, public_pem, 0o644)
    return created


def _new_password() -> str:
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(PASSWORD_LENGTH))


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Write `data` to a new file beside `path`, then move it over `path`.

    Whatever was at `path` (an old file with looser modes, a symlink to a file elsewhere) is
    replaced, never written through. `O_EXCL` refuses to follow a link at the temporary name.
    """
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
