"""AliKassa's `paymux` commands.

`keys` writes a certificate folder shaped like AliKassa's, `sandbox` runs the emulator (and can
write a configuration file for it), `demo` runs a whole payment on it.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import shlex
import signal
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import FrameType

import requests

import paymux
from paymux.cli import command, print_json
from paymux.errors import CertificateError, ConfigurationError
from paymux.providers.alikassa.keys import (
    DIGESTS,
    PASSWORD_FILE,
    PRIVATE_KEY_FILE,
    PUBLIC_KEY_FILE,
    generate_certificate,
)
from paymux.providers.alikassa.provider import AliKassaProvider
from paymux.providers.alikassa.sandbox import (
    Fault,
    FaultPlan,
    Merchant,
    NotificationReceiver,
    Sandbox,
    Service,
    button_form,
    read_forms,
)

Out = Callable[[str], None]


def add_commands(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
        type=_fault_rate,
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


def run_demo(out: Out, *, digest: str = "sha1") -> int:
    """Create a payment, pay it on the sandbox's payment page, verify what the shop gets.

    The customer is played by plain HTTP: it opens the page, posts the Pay button's form and
    follows the signed form back to the shop, as a browser would. Each step is printed.
    """
    out("paymux demo: one AliKassa payment, end to end, on a local sandbox\n")
    with (
        tempfile.TemporaryDirectory(prefix="paymux-demo-") as workdir,
        Sandbox(digest=digest) as sandbox,
        NotificationReceiver() as shop,
        requests.Session() as browser,
    ):
        merchant = sandbox.create_merchant(Path(workdir) / "payment")
        _step(
            out,
            1,
            "certificates",
            f"payment: {merchant.payment_certificate.path} "
            "(private.pem encrypted, password.txt, public.pem)",
            f"notification public key: {sandbox.notification_certificate.public_key}",
        )
        _step(out, 2, "sandbox", f"{sandbox.url}  (account {merchant.account}, digest {digest})")
        _step(
            out,
            3,
            "shop",
            f"notifications to {shop.url}",
            f"customers come back to {shop.success_url} (or {shop.fail_url})",
        )

        with paymux.connect(merchant.settings) as provider:
            if not isinstance(provider, AliKassaProvider):
                raise TypeError(f"expected the AliKassa provider, got {provider!r}")
            _step(out, 4, "connected", repr(provider))
            order_id = f"demo-{uuid.uuid4().hex[:8]}"
            created = provider.create(
                paymux.PaymentRequest(
                    order_id=order_id,
                    amount=DEMO_AMOUNT,
                    currency="RUB",
                    description="Order #1 / demo",
                    customer=paymux.Customer(ip="203.0.113.7", user_agent="Mozilla/5.0 (demo)"),
                    notification_url=shop.url,
                    success_url=shop.success_url,
                    fail_url=shop.fail_url,
                    options={"service": "payment_card_rub_hpp"},
                )
            )
            _step(
                out,
                5,
                "create",
                f"order {order_id}: payment {created.id} is {_state(created)}",
                f"the shop sends the customer to {created.redirect_url}",
            )
            _step(out, 6, "status", _state(provider.status(order_id=order_id)))

            if created.redirect_url is None:
                out("   the gateway gave no payment page")
                return 1
            page = browser.get(created.redirect_url, timeout=10)
            forms = read_forms(page.text, page.url)
            buttons = ", ".join(button.text for form in forms for button in form.buttons)
            _step(
                out,
                7,
                "payment page",
                f"GET {created.redirect_url} -> HTTP {page.status_code}",
                f"the customer sees the amount and the buttons {buttons}",
            )

            pay = button_form(forms, "Pay")
            sent = pay.submission("Pay")
            answer = browser.post(pay.action, data=sent, timeout=10)
            back = read_forms(answer.text, answer.url)
            _step(
                out,
                8,
                "customer pays",
                f"POST {pay.action} ({_form_text(sent)}) -> HTTP {answer.status_code}",
                "the page answers with a signed form back to the shop",
            )
            if answer.status_code != 200 or not back:
                out("   the payment page did not send the customer back to the shop")
                return 1

            returned = back[0]
            fields = returned.submission()
            landed = browser.post(returned.action, data=fields, timeout=10)
            posted = shop.wait_for_forms(1)
            if landed.status_code != 200 or not posted:
                out("   the shop did not receive the customer's return")
                return 1
            redirect = provider.verify_redirect(posted[0].fields, order_id=order_id)
            _step(
                out,
                9,
                "back at shop",
                f"POST {returned.action} ({', '.join(fields)}) -> HTTP {landed.status_code}",
                f"redirect signature verified: order {redirect.order_id}, "
                f"payment uuid {redirect.payment_uuid}",
            )

            received = shop.wait_for(1, timeout=10)
            if not received:
                out("   no notification arrived")
                return 1
            notification = provider.parse_notification(received[0])
            decision = paymux.decide(notification, order_id=order_id, amount=DEMO_AMOUNT)
            paid = notification.payment
            _step(
                out,
                10,
                "notification",
                f"GET {shop.url}?... arrived from the sandbox",
                f"signature verified: payment {paid.id} is {_state(paid)}, "
                f"paid {_money(paid.paid_amount)}, fee {_money(paid.fee)}",
                f"decision: {decision.action} ({'; '.join(decision.reasons)})",
            )

            final = provider.status(payment_id=created.id)
            _step(
                out, 11, "status", f"{_state(final)}, {_money(final.paid_amount)} {final.currency}"
            )
            ok = (
                created.status is paymux.PaymentStatus.PENDING
                and final.status is paymux.PaymentStatus.PAID
                and decision.fulfil
            )
            out(
                f"\n{'done' if ok else 'FAILED'}: {created.raw['payment_status']} -> "
                f"{final.raw['payment_status']}, notification verified, "
                f"decision {decision.action}, redirect verified"
            )
            return 0 if ok else 1


DEMO_AMOUNT = Decimal("500.00")


def _step(out: Out, number: int, name: str, text: str, *more: str) -> None:
    """One numbered step, and its further lines indented under its text."""
    out(f"{number:>2}. {name:<14} {text}")
    for line in more:
        out(f"{'':>19}{line}")


def _form_text(fields: dict[str, str]) -> str:
    return "&".join(f"{name}={value}" for name, value in fields.items())


def _state(payment: paymux.Payment) -> str:
    """paymux's status with AliKassa's own word for it."""
    return f"{payment.status} (AliKassa: {payment.raw.get('payment_status')})"


def _money(amount: Decimal | None) -> str:
    return "-" if amount is None else str(amount.quantize(Decimal("0.01")))


def run_sandbox(out: Out, args: argparse.Namespace) -> int:
    """Serve the sandbox until Ctrl-C (or SIGTERM); print where everything is."""
    try:
        FaultPlan(_rates(args, "create"), status_rates=_rates(args, "status"))
    except ValueError as error:
        print(f"paymux sandbox: --fault: {error}", file=sys.stderr)
        return 2
    config_out: Path | None = args.config_out
    if config_out is not None:
        _check_replaceable(config_out)
    with _sigterm_stops(), contextlib.suppress(KeyboardInterrupt, _Stopped):
        _serve_sandbox(out, args, config_out)
    out("sandbox stopped")
    return 0


def _serve_sandbox(out: Out, args: argparse.Namespace, config_out: Path | None) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="paymux-sandbox-") as workdir,
        _listening_sandbox(args) as sandbox,
    ):
        sandbox.maintenance = args.maintenance
        merchant, whose = _merchant_of(sandbox, args.certificates, Path(workdir))
        if config_out is not None:
            _write_config(config_out, sandbox_config(sandbox, merchant))
        url = sandbox.url
        out(f"AliKassa sandbox listening on {url}")
        out(f"  merchant API:  POST {url}/v1/payment, POST {url}/v1/payment/status")
        out(f"  control API:   GET {url}/sandbox/payments, POST {url}/sandbox/payments/<id>/settle")
        out(f"  account:       {merchant.account}")
        out(f"  digest:        {sandbox.gateway.digest}")
        out(f"  services:      {', '.join(_service_text(s) for s in _services(sandbox))}")
        if args.fault or args.maintenance:
            faults = [str(rate) for rate in args.fault]
            out(f"  faults:        {', '.join(faults + ['maintenance'] * args.maintenance)}")
        out("keys:")
        out(
            f"  payment certificate:     {merchant.payment_certificate.path} "
            f"(private.pem, password.txt, public.pem; {whose})"
        )
        out(
            f"  notification public key: {sandbox.notification_certificate.public_key} "
            "(verifies the sandbox's notifications)"
        )
        if sandbox.state is not None:
            out(
                f"state:           {sandbox.state.file} ({len(sandbox.payments())} payments "
                "kept; the accounts, keys and payments outlive this sandbox)"
            )
        if config_out is None:
            out("settings for paymux.connect():")
            for key, value in merchant.settings.items():
                out(f"  {key} = {value!r}")
            out("--config-out sandbox.toml writes them as a file for 'paymux create' and 'status'.")
        else:
            shown = shlex.quote(str(config_out.resolve()))
            out(
                f"config: wrote {config_out} (instance {SANDBOX_INSTANCE!r}, "
                f"{_validity(sandbox)}). In another terminal:"
            )
            out(f"  export PAYMUX_CONFIG={shown}")
            out(
                "  paymux create --amount 500.00 --order-id order-1 "
                "--service payment_card_rub_hpp --ip 203.0.113.7 --user-agent Mozilla/5.0"
            )
            out("  paymux status --order-id order-1")
            out(
                "  pay it: open its 'pay at' address in a browser, or "
                f'curl -d \'{{"status": "paid"}}\' {url}/sandbox/payments/<id>/settle'
            )
        out("Ctrl-C stops it.")
        threading.Event().wait()


def _listening_sandbox(args: argparse.Namespace) -> Sandbox:
    """The sandbox bound to --host and --port; a port in use or an unknown host is a plain error."""
    try:
        return Sandbox(
            host=args.host,
            port=args.port,
            digest=args.digest,
            state_dir=args.state,
            fault_rates=_rates(args, "create"),
            status_fault_rates=_rates(args, "status"),
            fault_seed=args.fault_seed,
            omit_empty_notification_fields=args.omit_empty_notification_fields,
        )
    except OSError as error:
        raise ConfigurationError(
            f"cannot listen on {args.host}:{args.port}: {error.strerror or error} "
            "(choose another --host or --port; --port 0 takes any free port)"
        ) from None


def _merchant_of(
    sandbox: Sandbox, certificates: Path | None, workdir: Path
) -> tuple[Merchant, str]:
    """The merchant of --certificates, else of the state folder, else a temporary one; and
    whose its certificate is."""
    if certificates is not None:
        folder, kept = certificates, "yours"
    elif sandbox.state is not None:
        folder, kept = sandbox.state.payment_folder, "kept in the state folder"
    else:
        return sandbox.create_merchant(workdir / "payment"), "new, removed when the sandbox stops"
    try:
        new = not any((folder / name).exists() for name in CERTIFICATE_FILES)
        merchant = sandbox.merchant(folder.resolve())
    except OSError as error:
        raise CertificateError(
            f"cannot use {folder} as the certificate folder: {error.strerror or error}"
        ) from None
    if not new:
        return merchant, kept
    return merchant, "new" if certificates is not None else f"new, {kept}"


def _write_config(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as error:
        raise ConfigurationError(
            f"cannot write {path} for --config-out: {error.strerror or error}"
        ) from None


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: give a port from 0 to 65535")
    return port


@dataclass(frozen=True)
class _FaultRate:
    """One `--fault`: the operation it spoils, the fault and the share of requests."""

    on: str
    fault: Fault
    rate: float

    def __str__(self) -> str:
        where = "" if self.on == "create" else f"{self.on}:"
        return f"{where}{self.fault.value}={self.rate}"


FAULT_OPERATIONS = ("create", "status")
"""What `--fault` can spoil, named before the fault (`status:`); create by default."""


def _fault_rate(text: str) -> _FaultRate:
    """`--fault [OPERATION:]NAME=RATE`: a sandbox fault and the share of requests it spoils."""
    target, _, rate = text.partition("=")
    on, _, name = target.rpartition(":")
    try:
        fault = Fault(name.strip().replace("-", "_"))
        share = float(rate or "1")
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected [status:]NAME=RATE with NAME one of {', '.join(f.value for f in Fault)} "
            "and RATE from 0 to 1"
        ) from None
    if on.strip() not in ("", *FAULT_OPERATIONS):
        raise argparse.ArgumentTypeError(
            f"{on!r}: a fault spoils one of {', '.join(FAULT_OPERATIONS)}"
        )
    if not 0 <= share <= 1:
        raise argparse.ArgumentTypeError("RATE must be from 0 to 1")
    return _FaultRate(on.strip() or "create", fault, share)


def _rates(args: argparse.Namespace, on: str) -> dict[Fault, float]:
    """The `--fault` rates for operation `on`."""
    return {each.fault: each.rate for each in args.fault if each.on == on}


SANDBOX_INSTANCE = "sandbox"
_CONFIG_MARK = "# paymux configuration for a running AliKassa sandbox"


def sandbox_config(sandbox: Sandbox, merchant: Merchant) -> str:
    """A paymux TOML configuration with one instance, `sandbox`, the default: the merchant."""
    services = _services(sandbox)
    lines = [
        f"{_CONFIG_MARK} at {sandbox.url},",
        f"# written by `paymux sandbox`: {_validity(sandbox)}.",
        "# Use it with: PAYMUX_CONFIG=<this file> paymux create ... / paymux status ...",
        f"default = {_toml_string(SANDBOX_INSTANCE)}",
        "",
        f"[providers.{SANDBOX_INSTANCE}]",
        *(f"{key} = {_toml_string(str(value))}" for key, value in merchant.settings.items()),
        "# The sandbox's services (payment methods); name one with --service, or set a default:",
        *(f"#   {_service_text(service)}" for service in services),
        f"# service = {_toml_string(services[0].code)}",
        "",
    ]
    return "\n".join(lines)


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
        print_json(
            {
                "folder": str(made.path.resolve()),
                "private_key": str(made.private_key.resolve()),
                "password_file": str(made.password_file.resolve()),
                "public_key": str(made.public_key.resolve()),
                "format": form,
                "key_size": args.key_size,
            }
        )
        return 0
    described = "PKCS#8 PEM" if args.pkcs8 else "legacy OpenSSL PEM (Proc-Type: 4,ENCRYPTED)"
    out(f"wrote an AliKassa-style certificate (RSA {args.key_size}, {described}) to {folder}:")
    out("  private.pem   the private key, encrypted with the password in password.txt (mode 0600)")
    out("  password.txt  its password (mode 0600)")
    out("  public.pem    the public key: the only part the gateway keeps")
    shown = shlex.quote(str(folder))
    out(f"use it as certificate_dir = {_toml_string(str(made.path.resolve()))}")
    out(f"or with the sandbox: paymux sandbox --certificates {shown}")
    return 0


CERTIFICATE_FILES = (PRIVATE_KEY_FILE, PASSWORD_FILE, PUBLIC_KEY_FILE)


def _validity(sandbox: Sandbox) -> str:
    """How long a configuration written for `sandbox` holds."""
    if sandbox.state is None:
        return "valid while this sandbox runs"
    return f"valid whenever a sandbox runs on this address with --state {sandbox.state.path}"


def _check_replaceable(path: Path) -> None:
    """Refuse to overwrite a file `paymux sandbox` did not write (it may be a real config)."""
    try:
        with path.open(encoding="utf-8") as file:
            first = file.readline()
    except FileNotFoundError:
        return
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigurationError(f"cannot use {path} for --config-out: {error}") from None
    if not first.startswith(_CONFIG_MARK):
        raise ConfigurationError(
            f"{path} exists and was not written by 'paymux sandbox': "
            "give --config-out another name, or remove it"
        )


def _services(sandbox: Sandbox) -> list[Service]:
    return list(sandbox.gateway.services.values())


def _service_text(service: Service) -> str:
    return f"{service.code} ({service.currency} {service.minimum}-{service.maximum})"


def _toml_string(text: str) -> str:
    """A TOML basic string: JSON's escapes are all valid TOML escapes."""
    return json.dumps(text)


def _key_size(text: str) -> int:
    try:
        bits = int(text)
    except ValueError:
        bits = 0
    if not 2048 <= bits <= 8192:  # beyond 8192 bits generating a key takes minutes to hours
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of bits from 2048 to 8192")
    return bits


class _Stopped(Exception):
    """SIGTERM arrived."""


@contextlib.contextmanager
def _sigterm_stops() -> Iterator[None]:
    """Within, SIGTERM and SIGINT raise `_Stopped` (on the main thread; signals go nowhere else).

    SIGINT is set explicitly: a shell starts background jobs with it ignored, and the
    sandbox says "Ctrl-C stops it" wherever it was started from.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        raise _Stopped

    previous = {number: signal.signal(number, stop) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
