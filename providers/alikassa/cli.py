"""AliKassa's `paymux` commands.

`keys` writes a certificate folder shaped like AliKassa's, `sandbox` runs the emulator (and can
write a configuration file for it), `demo` runs a whole payment on it.
"""

from __future__ import annotations

import argparse
import functools
import json
import shlex
from collections.abc import Callable
from pathlib import Path

from paymux import CertificateError
from paymux.providers.alikassa.demo import run_demo
from paymux.providers.alikassa.keys import DIGESTS, generate_certificate
from paymux.providers.alikassa.sandbox import Fault
from paymux.providers.alikassa.sandbox_command import (
    CERTIFICATE_FILES,
    fault_rate,
    run_sandbox,
    toml_string,
)
from paymux.providers.base.cli import Subcommands, command

Out = Callable[[str], None]


def add_commands(subcommands: Subcommands) -> None:
    demo = command(
        subcommands,
        "demo",
        help="pay once, end to end, on a local AliKassa sandbox (nothing leaves this machine)",
        description="Generates throw-away certificates, starts the AliKassa sandbox and a shop "
        "notification\nendpoint on loopback, creates a payment, pays it, verifies the signed "
        "notification and\nreads the final status.",
        epilog="Examples:\n  paymux demo\n  paymux demo --digest sha256",
    )
    demo.add_argument(
        "--digest",
        choices=sorted(DIGESTS),
        default="sha1",
        help="signature digest (default: sha1, as AliKassa's samples)",
    )
    demo.set_defaults(handler=lambda args: run_demo(print, digest=args.digest))

    sandbox = command(
        subcommands,
        "sandbox",
        help="run the AliKassa sandbox (emulator) until interrupted",
        description="Runs an emulator of AliKassa's merchant API on this machine, registers one "
        "merchant with\nits certificate, and prints its addresses, where its keys are and how "
        "to connect.\n--config-out writes a paymux configuration file for it, so that "
        "'paymux create',\n'status' and 'verify-notification' in another terminal talk to this "
        "sandbox.",
        epilog="Example, in two terminals:\n"
        "  paymux sandbox --state .sandbox --config-out sandbox.toml\n"
        "  PAYMUX_CONFIG=sandbox.toml paymux create --amount 500.00 --order-id 1001 \\\n"
        "      --service payment_card_rub_hpp --ip 203.0.113.7 --user-agent Mozilla/5.0",
    )
    sandbox.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)"
    )
    sandbox.add_argument(
        "--port", type=_port, default=8765, help="port (default: 8765; 0: any free port)"
    )
    sandbox.add_argument(
        "--digest",
        choices=sorted(DIGESTS),
        default="sha1",
        help="signature digest for requests and notifications (default: sha1)",
    )
    sandbox.add_argument(
        "--certificates",
        type=Path,
        default=None,
        metavar="DIR",
        help="the merchant's payment certificate folder: an existing one (e.g. from "
        "'paymux keys') is used as it is, an empty one gets a new certificate "
        "(default: the --state folder's, else a temporary folder)",
    )
    sandbox.add_argument(
        "--state",
        type=Path,
        default=None,
        metavar="DIR",
        help="keep the sandbox in DIR across restarts: its accounts, keys and payments "
        "(made if need be); a sandbox started again with it takes the same configuration",
    )
    sandbox.add_argument(
        "--config-out",
        type=Path,
        default=None,
        metavar="FILE",
        help="write a paymux configuration (TOML) for this sandbox: instance 'sandbox', "
        "the default",
    )
    sandbox.add_argument(
        "--fault",
        action="append",
        default=[],
        type=fault_rate,
        metavar="NAME=RATE",
        help="misbehave on this share of creates, e.g. internal_error=0.3, or of status "
        "calls, e.g. status:internal_error=0.2 (repeatable; "
        f"faults: {', '.join(fault.value for fault in Fault)})",
    )
    sandbox.add_argument(
        "--fault-seed", type=int, default=None, help="seed for --fault draws (repeatable runs)"
    )
    sandbox.add_argument(
        "--maintenance",
        action="store_true",
        help='answer every create with "Technical works." (maintenance mode)',
    )
    sandbox.add_argument(
        "--omit-empty-notification-fields",
        action="store_true",
        help="leave an empty payment_amount, commission_amount or desc out of notifications "
        "(signed as null, as the gateway may send them)",
    )
    sandbox.set_defaults(
        handler=lambda args: run_sandbox(functools.partial(print, flush=True), args)
    )

    keys = command(
        subcommands,
        "keys",
        help="make a certificate folder shaped like AliKassa's",
        description="Writes an RSA key pair the way AliKassa hands out its API certificates: "
        "private.pem\n(encrypted), password.txt (its password) and public.pem. Use it for the "
        "sandbox, for\ntests, or to see the format. An existing certificate is never replaced "
        "without --force.",
        epilog="Examples:\n"
        "  paymux keys certs/payment\n"
        "  paymux keys certs/payment --pkcs8 --key-size 4096\n"
        "  paymux sandbox --certificates certs/payment",
    )
    keys.add_argument(
        "folder", type=Path, metavar="DIR", help="the folder to write (made if need be)"
    )
    keys.add_argument(
        "--pkcs8",
        action="store_true",
        help="write the private key as PKCS#8 (BEGIN ENCRYPTED PRIVATE KEY) instead of legacy "
        "OpenSSL PEM (BEGIN RSA PRIVATE KEY, Proc-Type: 4,ENCRYPTED), the form of AliKassa's "
        "archives that its Go and Java samples need",
    )
    keys.add_argument(
        "--key-size", type=_key_size, default=2048, metavar="BITS", help="default: 2048"
    )
    keys.add_argument(
        "--force",
        action="store_true",
        help="replace a certificate already in DIR (its key is lost)",
    )
    keys.add_argument("--json", action="store_true", help="print JSON for scripts")
    keys.set_defaults(handler=lambda args: run_keys(print, args))


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: give a port from 0 to 65535")
    return port


def run_keys(out: Out, args: argparse.Namespace) -> int:
    """Write an AliKassa-shaped certificate folder; never over an existing one without --force."""
    folder: Path = args.folder
    existing = [name for name in CERTIFICATE_FILES if (folder / name).exists()]
    if existing and not args.force:
        raise CertificateError(
            f"{folder} already holds {', '.join(existing)}: --force replaces them "
            "(the old key is lost)"
        )
    try:
        made = generate_certificate(folder, key_size=args.key_size, pkcs8=args.pkcs8)
    except OSError as error:
        raise CertificateError(
            f"cannot write the certificate to {folder}: {error.strerror or error}"
        ) from None
    form = "pkcs8" if args.pkcs8 else "legacy-pem"
    if args.json:
        print(
            json.dumps(
                {
                    "folder": str(made.path.resolve()),
                    "private_key": str(made.private_key.resolve()),
                    "password_file": str(made.password_file.resolve()),
                    "public_key": str(made.public_key.resolve()),
                    "format": form,
                    "key_size": args.key_size,
                },
                indent=2,
            )
        )
        return 0
    described = "PKCS#8 PEM" if args.pkcs8 else "legacy OpenSSL PEM (Proc-Type: 4,ENCRYPTED)"
    out(f"wrote an AliKassa-style certificate (RSA {args.key_size}, {described}) to {folder}:")
    out("  private.pem   the private key, encrypted with the password in password.txt (mode 0600)")
    out("  password.txt  its password (mode 0600)")
    out("  public.pem    the public key: the only part the gateway keeps")
    shown = shlex.quote(str(folder))
    out(f"use it as certificate_dir = {toml_string(str(made.path.resolve()))}")
    out(f"or with the sandbox: paymux sandbox --certificates {shown}")
    return 0


def _key_size(text: str) -> int:
    try:
        bits = int(text)
    except ValueError:
        bits = 0
    if not 2048 <= bits <= 8192:  # beyond 8192 bits generating a key takes minutes to hours
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of bits from 2048 to 8192")
    return bits
