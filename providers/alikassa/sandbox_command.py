"""`paymux sandbox`: the AliKassa sandbox served until interrupted, and the configuration
that connects to it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from paymux import CertificateError, ConfigurationError
from paymux.providers.alikassa.keys import PASSWORD_FILE, PRIVATE_KEY_FILE, PUBLIC_KEY_FILE
from paymux.providers.alikassa.sandbox import Fault, Merchant, Sandbox, Service, fault_plan

Out = Callable[[str], None]


def run_sandbox(out: Out, args: argparse.Namespace) -> int:
    """Serve the sandbox until Ctrl-C (or SIGTERM); print where everything is."""
    try:
        fault_plan(_rates(args, "create"), status_rates=_rates(args, "status"))
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


def fault_rate(text: str) -> _FaultRate:
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
        f"default = {toml_string(SANDBOX_INSTANCE)}",
        "",
        f"[providers.{SANDBOX_INSTANCE}]",
        *(f"{key} = {toml_string(str(value))}" for key, value in merchant.settings.items()),
        "# The sandbox's services (payment methods); name one with --service, or set a default:",
        *(f"#   {_service_text(service)}" for service in services),
        f"# service = {toml_string(services[0].code)}",
        "",
    ]
    return "\n".join(lines)


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


def toml_string(text: str) -> str:
    """A TOML basic string: JSON's escapes are all valid TOML escapes."""
    return json.dumps(text)


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
