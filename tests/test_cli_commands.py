"""The `paymux` commands a newcomer types and a script calls: keys, create, status,
verify-notification, and `sandbox --config-out` that makes the others work against a sandbox.

Every command runs in its own process, as from a shell. create, status and verify-notification
reach a sandbox started in the test through a configuration file written by the test.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from paymux.cli import main
from paymux.providers.alikassa import (
    AliKassaProvider,
    CertificateFolder,
    Signer,
    generate_certificate,
)
from paymux.providers.alikassa.sandbox import Fault, Merchant, Sandbox
from support import Receiver, payment_request, payout_notification, unique_order_id

CUSTOMER = ("--ip", "203.0.113.7", "--user-agent", "Mozilla/5.0 (X11; Linux)")
RUB_CARD = ("--option", "service=payment_card_rub_hpp")
CREATE_150 = ("create", "--amount", "150", "--order-id", "1", *CUSTOMER)


def paymux(
    *args: str, env: Mapping[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `paymux ARGS...` with no paymux configuration but what `env` gives."""
    return subprocess.run(
        [sys.executable, "-m", "paymux.cli", *args],
        capture_output=True,
        text=True,
        input=stdin,
        env={**_without_paymux_settings(), **(env or {})},
        timeout=60,
        check=False,
    )


def _without_paymux_settings() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith("PAYMUX")}


def write_config(
    path: Path, instances: Mapping[str, Mapping[str, Any]], default: str | None = None
) -> Path:
    """A paymux TOML configuration file, as a host would write it."""
    lines = [f"default = {json.dumps(default)}"] if default else []
    for name, settings in instances.items():
        lines.append(f"[providers.{name}]")
        lines += [f"{key} = {json.dumps(str(value))}" for key, value in settings.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def shop_env(merchant: Merchant, tmp_path: Path) -> dict[str, str]:
    """PAYMUX_CONFIG pointing at a file whose default instance, "shop", is the merchant."""
    config = write_config(tmp_path / "paymux.toml", {"shop": merchant.settings}, default="shop")
    return {"PAYMUX_CONFIG": str(config)}


def create_payment(env: Mapping[str, str], *extra: str) -> tuple[str, dict[str, Any]]:
    """`paymux create --json` for 500.00 RUB; returns the order id and the printed payment."""
    order_id = unique_order_id()
    command = ("create", "--amount", "500.00", "--order-id", order_id, *RUB_CARD, *CUSTOMER)
    result = paymux(*command, "--json", *extra, env=env)
    assert result.returncode == 0, result.stderr
    created: dict[str, Any] = json.loads(result.stdout)
    return order_id, created


# -- keys -------------------------------------------------------------------------------------


def test_keys_writes_an_encrypted_legacy_pem_certificate_folder_that_loads(tmp_path: Path) -> None:
    folder = tmp_path / "payment"

    result = paymux("keys", str(folder))

    assert result.returncode == 0, result.stderr
    assert "Proc-Type: 4,ENCRYPTED" in (folder / "private.pem").read_text()
    assert not (folder / "password.txt").read_text().endswith("\n")
    assert "BEGIN PUBLIC KEY" in (folder / "public.pem").read_text()
    assert stat.S_IMODE((folder / "private.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE((folder / "password.txt").stat().st_mode) == 0o600
    assert "key_size=2048" in repr(Signer.from_certificate_dir(folder))
    assert f'certificate_dir = "{folder.resolve()}"' in result.stdout


def test_keys_pkcs8_writes_the_private_key_as_pkcs8(tmp_path: Path) -> None:
    result = paymux("keys", str(tmp_path), "--pkcs8")

    assert result.returncode == 0, result.stderr
    pem = (tmp_path / "private.pem").read_text()
    assert pem.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
    Signer.from_certificate_dir(tmp_path)


def test_keys_json_names_the_files_the_format_and_the_key_size(tmp_path: Path) -> None:
    result = paymux("keys", str(tmp_path / "cert"), "--key-size", "3072", "--json")

    assert result.returncode == 0, result.stderr
    written = json.loads(result.stdout)
    folder = (tmp_path / "cert").resolve()
    assert written == {
        "folder": str(folder),
        "private_key": str(folder / "private.pem"),
        "password_file": str(folder / "password.txt"),
        "public_key": str(folder / "public.pem"),
        "format": "legacy-pem",
        "key_size": 3072,
    }
    assert "key_size=3072" in repr(Signer.from_certificate_dir(folder))


def test_keys_never_replaces_an_existing_certificate_without_force(tmp_path: Path) -> None:
    generate_certificate(tmp_path)
    before = (tmp_path / "private.pem").read_bytes()

    refused = paymux("keys", str(tmp_path))

    assert refused.returncode == 1
    assert refused.stderr.startswith("paymux: CertificateError: ")
    assert "--force" in refused.stderr
    assert (tmp_path / "private.pem").read_bytes() == before

    forced = paymux("keys", str(tmp_path), "--force")

    assert forced.returncode == 0, forced.stderr
    assert (tmp_path / "private.pem").read_bytes() != before
    Signer.from_certificate_dir(tmp_path)


# -- create and status ------------------------------------------------------------------------


def test_create_for_a_service_that_needs_no_user_agent_takes_none(
    shop_env: dict[str, str], sandbox: Sandbox
) -> None:
    service = ("--option", "service=virtual_account_rub_hpp")
    command = ("create", "--amount", "500.00", "--order-id", "1002", *service, "--ip", "1.2.3.4")

    result = paymux(*command, env=shop_env)

    assert result.returncode == 0, result.stderr
    assert "customer_browser_user_agent" not in sandbox.payment("1002").request


def test_create_without_a_user_agent_for_a_service_that_needs_one_sends_nothing(
    shop_env: dict[str, str], sandbox: Sandbox
) -> None:
    command = ("create", "--amount", "500.00", "--order-id", "1003", *RUB_CARD, "--ip", "1.2.3.4")

    result = paymux(*command, env=shop_env)

    assert result.returncode == 1
    assert result.stderr.startswith("paymux: ValidationError: ")
    assert "user_agent" in result.stderr
    assert sandbox.requests == []


def test_create_prints_the_payment_and_where_the_customer_pays(
    shop_env: dict[str, str], sandbox: Sandbox
) -> None:
    result = paymux(
        "create", "--amount", "500.00", "--order-id", "1001", *RUB_CARD, *CUSTOMER, env=shop_env
    )

    assert result.returncode == 0, result.stderr
    stored = sandbox.payment("1001")
    assert stored.amount == Decimal("500.00")
    assert result.stdout.splitlines()[0] == (
        f"created payment {stored.id} for order 1001 at alikassa (instance shop)"
    )
    assert "  status:     pending (not final)" in result.stdout
    assert f"  pay at:     {stored.url}" in result.stdout
    assert f"paymux status --id {stored.id}" in result.stdout


def test_create_json_is_the_payment_with_amounts_as_strings(
    shop_env: dict[str, str], sandbox: Sandbox
) -> None:
    order_id, created = create_payment(shop_env)

    stored = sandbox.payment(order_id)
    assert created["id"] == str(stored.id)
    assert created["order_id"] == order_id
    assert created["status"] == "pending"
    assert created["final"] is False
    assert created["amount"] == "500.00"
    assert created["redirect_url"] == stored.url
    assert created["raw"]["payment_status"] == "wait"


def test_create_sends_the_optional_fields_and_provider_options(
    shop_env: dict[str, str], sandbox: Sandbox
) -> None:
    order_id, _ = create_payment(
        shop_env,
        "--description",
        "Order 1001 / 2 books",
        "--notification-url",
        "https://shop.example/notify",
        "--success-url",
        "https://shop.example/thanks",
        "--fail-url",
        "https://shop.example/sorry",
        "--email",
        "buyer@example.com",
        "--option",
        "success_redirect_id=7",
        "--option",
        "project_url=https://shop.example",
    )

    sent = sandbox.payment(order_id).request
    assert sent["desc"] == "Order 1001 / 2 books"
    assert sent["notification_endpoint_url"] == "https://shop.example/notify"
    assert sent["success_redirect_url"] == "https://shop.example/thanks"
    assert sent["fail_redirect_url"] == "https://shop.example/sorry"
    assert sent["customer_email"] == "buyer@example.com"
    assert sent["success_redirect_id"] == 7, "options ending in _id are sent as integers"
    assert sent["project_url"] == "https://shop.example"


def test_status_shows_a_paid_payment_by_order_id(
    shop_env: dict[str, str], sandbox: Sandbox
) -> None:
    order_id, created = create_payment(shop_env)
    sandbox.settle(order_id, "paid")

    result = paymux("status", "--order-id", order_id, env=shop_env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:5] == [
        f"payment {created['id']} for order {order_id} at alikassa (instance shop)",
        "  status:     paid (final)",
        "  amount:     500.00 RUB",
        "  paid:       500.00 RUB",
        "  fee:        15.00 RUB",
    ]


def test_status_json_by_id_reports_a_partial_payment(
    shop_env: dict[str, str], sandbox: Sandbox
) -> None:
    order_id, created = create_payment(shop_env)
    sandbox.settle(order_id, "paid", paid_amount=Decimal("200"))

    result = paymux("status", "--id", created["id"], "--json", env=shop_env)

    assert result.returncode == 0, result.stderr
    payment = json.loads(result.stdout)
    assert payment["status"] == "paid"
    assert payment["final"] is True
    assert payment["is_partial"] is True
    assert (payment["amount"], payment["paid_amount"], payment["fee"]) == (
        "500.00",
        "200.00",
        "6.00",
    )
    assert payment["currency"] == "RUB"
    assert payment["raw"]["amount"] == "500.000000000", "raw is the provider's answer as it came"


def test_config_flag_and_instance_name_pick_one_of_several_instances(
    merchant: Merchant, tmp_path: Path
) -> None:
    other = {**merchant.settings, "account": "00000000-0000-4000-8000-000000000000"}
    config = write_config(tmp_path / "two.toml", {"shop": merchant.settings, "other": other})

    unnamed = paymux("status", "--order-id", "1001", "--config", str(config))
    named = paymux("status", "--order-id", "1001", "--config", str(config), "--instance", "shop")

    assert unnamed.returncode == 1
    assert unnamed.stderr.startswith("paymux: ConfigurationError: name the provider instance")
    assert named.returncode == 1
    assert named.stderr.startswith("paymux: PaymentNotFound: "), "shop was asked, and answered"


def test_environment_variables_configure_an_instance_without_a_file(
    merchant: Merchant, sandbox: Sandbox
) -> None:
    env = {f"PAYMUX__SHOP__{key.upper()}": str(value) for key, value in merchant.settings.items()}

    _, created = create_payment(env)

    assert sandbox.payment(created["order_id"]).id == int(created["id"])


def test_without_any_configuration_the_error_says_how_to_get_one() -> None:
    result = paymux("status", "--order-id", "1001")

    assert result.returncode == 1
    assert result.stderr.startswith(
        "paymux: ConfigurationError: no provider instance is configured"
    )
    assert "'paymux providers' lists the gateways installed" in result.stderr


# -- errors -----------------------------------------------------------------------------------


def test_a_refusal_is_printed_as_its_type_and_message(shop_env: dict[str, str]) -> None:
    order_id, _ = create_payment(shop_env)

    again = paymux(
        "create", "--amount", "600.00", "--order-id", order_id, *RUB_CARD, *CUSTOMER, env=shop_env
    )

    assert again.returncode == 1
    assert again.stderr.startswith(f"paymux: OrderConflict: create: order_id {order_id!r}")
    assert again.stdout == ""


def test_a_conflict_shows_both_amounts_with_the_currencys_places(shop_env: dict[str, str]) -> None:
    order_id, _ = create_payment(shop_env)  # AliKassa holds it as 500.000000000

    again = paymux(
        "create", "--amount", "600.5", "--order-id", order_id, *RUB_CARD, *CUSTOMER, env=shop_env
    )

    assert again.returncode == 1
    assert "amount 500.00 RUB instead of 600.50)" in again.stderr


def test_invalid_input_is_refused_before_anything_is_sent(
    shop_env: dict[str, str], sandbox: Sandbox
) -> None:
    bad_ip = ("--ip", "not-an-ip", "--user-agent", "Mozilla/5.0")

    result = paymux(
        "create", "--amount", "500", "--order-id", "1", *RUB_CARD, *bad_ip, env=shop_env
    )

    assert result.returncode == 1
    assert result.stderr == (
        "paymux: ValidationError: invalid input: customer.ip: Not a valid IP address.\n"
    )
    assert sandbox.requests == []


def test_an_unknown_outcome_says_how_to_find_out(
    shop_env: dict[str, str], sandbox: Sandbox
) -> None:
    """With reconciliation off; by default create finds the stored payment by itself."""
    sandbox.inject(Fault.INTERNAL_ERROR)

    result = paymux(
        "create", "--amount", "500.00", "--order-id", "A 1", *RUB_CARD, *CUSTOMER,
        env={**shop_env, "PAYMUX__SHOP__RECONCILE": "false"},
    )  # fmt: skip

    assert result.returncode == 1
    first, hint = result.stderr.splitlines()
    assert first.startswith("paymux: OutcomeUnknown: ")
    assert hint == "paymux: it may have happened; find out with: paymux status --order-id 'A 1'"


def test_asking_for_an_unknown_payment_is_payment_not_found(shop_env: dict[str, str]) -> None:
    result = paymux("status", "--id", "999", env=shop_env)

    assert result.returncode == 1
    assert result.stderr.startswith("paymux: PaymentNotFound: status: Payment not found")


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("create", "--order-id", "1", *RUB_CARD, *CUSTOMER), id="no amount"),
        pytest.param(("create", "--amount", "5,00", "--order-id", "1", *CUSTOMER), id="bad amount"),
        pytest.param((*CREATE_150, "--option", "x"), id="option without ="),
        pytest.param(
            ("create", "--amount", "1e-999999999", "--order-id", "1", *CUSTOMER), id="1e-999999999"
        ),
        pytest.param(
            ("create", "--amount", "1e999999999999999999", "--order-id", "1", *CUSTOMER),
            id="1e999999999999999999",
        ),
        pytest.param(("sandbox", "--port", "99999"), id="port beyond 65535"),
        pytest.param(("sandbox", "--port", "-1"), id="negative port"),
        pytest.param((*CREATE_150, "--option", "service=a", "--option", "service=b"), id="twice"),
        pytest.param(("status", "--id", "1", "--order-id", "1"), id="status by both"),
        pytest.param(("status",), id="status by neither"),
        pytest.param(("keys",), id="keys without a folder"),
        pytest.param(("keys", "certs", "--key-size", "1024"), id="key too small"),
        pytest.param(("keys", "certs", "--key-size", "100000"), id="key too large to make"),
    ],
)
def test_bad_usage_exits_with_2_and_says_what_is_wrong(
    args: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    # argparse decides before anything runs, so in-process shows what a shell would get.
    with pytest.raises(SystemExit) as exited:
        main(list(args))

    assert exited.value.code == 2
    shown = capsys.readouterr().err
    assert shown.startswith(f"usage: paymux {args[0]} ")
    assert f"paymux {args[0]}: error: " in shown


@pytest.mark.parametrize("value", ["x", "²", "1.5"])
def test_an_option_the_provider_types_as_a_number_refuses_other_text_before_sending(
    shop_env: dict[str, str], sandbox: Sandbox, value: str
) -> None:
    result = paymux(*CREATE_150, *RUB_CARD, "--option", f"fail_redirect_id={value}", env=shop_env)

    assert result.returncode == 1
    assert result.stderr.startswith(
        f"paymux: ValidationError: invalid input: fail_redirect_id: cannot read {value!r} as "
    )
    assert sandbox.requests == []


def test_bad_usage_exits_with_2_in_the_shell_too() -> None:
    result = paymux(*CREATE_150, "--option", "x")

    assert result.returncode == 2
    assert "error: argument --option: expected KEY=VALUE, not 'x'" in result.stderr


def test_an_amount_too_long_to_write_out_is_bad_usage_not_a_crash(
    shop_env: dict[str, str],
) -> None:
    result = paymux(
        "create", "--amount", "1e-999999999", "--order-id", "1", *RUB_CARD, *CUSTOMER, env=shop_env
    )

    assert result.returncode == 2
    assert "argument --amount: '1e-999999999' is not an amount" in result.stderr
    assert "Traceback" not in result.stderr


# -- verify-notification ----------------------------------------------------------------------


@pytest.fixture
def notification_url(provider: AliKassaProvider, sandbox: Sandbox, receiver: Receiver) -> str:
    """The full URL of a genuine notification: a 500.00 RUB payment, paid."""
    payment = provider.create(payment_request(notification_url=receiver.url))
    sandbox.settle(payment.id, "paid")
    (target,) = receiver.wait_for(1)
    return f"{receiver.url}?{urlsplit(target).query}"


@pytest.mark.parametrize("form", ["url", "query string", "stdin"])
def test_verify_notification_shows_what_a_genuine_notification_says(
    shop_env: dict[str, str], notification_url: str, form: str
) -> None:
    query = urlsplit(notification_url).query
    argument, stdin = {
        "url": (notification_url, None),
        "query string": (query, None),
        "stdin": ("-", notification_url + "\n"),
    }[form]

    result = paymux("verify-notification", argument, env=shop_env, stdin=stdin)

    assert result.returncode == 0, result.stderr
    payment_id = dict(parse_qsl(query))["id"]
    assert result.stdout.splitlines() == [
        "verified payment notification from alikassa (instance shop) (by signature)",
        f"  payment:    {payment_id}",
        f"  order:      {dict(parse_qsl(query))['order_id']}",
        "  status:     paid (final)",
        "  amount:     500.00",
        "  paid:       500.00",
        "  fee:        15.00",
    ]


def test_verify_notification_json_gives_the_payment_and_the_signed_fields(
    shop_env: dict[str, str], notification_url: str
) -> None:
    result = paymux("verify-notification", notification_url, "--json", env=shop_env)

    assert result.returncode == 0, result.stderr
    verified = json.loads(result.stdout)
    assert verified["verified"] is True
    assert verified["kind"] == "payment"
    assert verified["payment"]["status"] == "paid"
    assert verified["payment"]["paid_amount"] == "500.00"
    assert verified["fields"]["payment_status"] == "paid"
    assert verified["fields"]["amount"] == "500.000000000"


def test_verify_notification_json_gives_a_payouts_amount_with_the_currencys_places(
    shop_env: dict[str, str], merchant: Merchant, notification_certificate: CertificateFolder
) -> None:
    fields = payout_notification(
        notification_certificate, account=merchant.account, order_id="payout-1", amount=Decimal(300)
    )

    result = paymux("verify-notification", urlencode(fields), "--json", env=shop_env)

    assert result.returncode == 0, result.stderr
    verified = json.loads(result.stdout)
    assert verified["fields"]["amount"] == "300.000000000", "as AliKassa signed it"
    assert verified["payout"]["amount"] == "300.00"


def test_a_forged_notification_is_rejected_with_the_reason(
    shop_env: dict[str, str], notification_url: str
) -> None:
    params = dict(parse_qsl(urlsplit(notification_url).query, keep_blank_values=True))
    forged = urlencode({**params, "amount": "5.000000000", "payment_amount": "5.000000000"})

    result = paymux("verify-notification", forged, env=shop_env)

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        "paymux: SignatureError: notification rejected: signature does not match\n"
    )


def test_a_notification_without_a_signature_is_rejected(shop_env: dict[str, str]) -> None:
    result = paymux("verify-notification", "type=payment&id=1", "--json", env=shop_env)

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("paymux: SignatureError: notification rejected: ")
    assert "missing" in result.stderr


# -- the sandbox as a separate process ----------------------------------------------------------


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class SandboxProcess:
    """`paymux sandbox --port 0 ...` running in the background, its first screen read."""

    def __init__(self, *args: str, started_with_sigint_ignored: bool = False) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "paymux.cli", "sandbox", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_without_paymux_settings(),
            # What `paymux sandbox &` in a script does: the shell starts it with SIGINT ignored.
            preexec_fn=_ignore_sigint if started_with_sigint_ignored else None,
        )
        self._watchdog = threading.Timer(60, self.process.kill)
        self._watchdog.start()
        assert self.process.stdout is not None
        self.screen: list[str] = []
        self.stderr = ""
        for line in self.process.stdout:
            self.screen.append(line.rstrip("\n"))
            if line.startswith("Ctrl-C stops it."):
                break
        else:
            self.stop()
            pytest.fail(f"paymux sandbox did not start:\n{self.stderr}")
        first = self.screen[0]
        assert first.startswith("AliKassa sandbox listening on http://127.0.0.1:"), first
        self.url = first.rsplit(" ", 1)[1]

    def line(self, start: str) -> str:
        """The first line on the screen that starts with `start`, without its indentation."""
        return next(line.strip() for line in self.screen if line.strip().startswith(start))

    def stop(self, how: signal.Signals = signal.SIGINT) -> tuple[int, str]:
        """Stop it as Ctrl-C (or SIGTERM) does; its exit code and the rest of its output."""
        if self.process.poll() is None:
            self.process.send_signal(how)
        rest, self.stderr = self.process.communicate(timeout=30)
        self._watchdog.cancel()
        return self.process.returncode, rest


@pytest.fixture
def start_sandbox() -> Iterator[Callable[..., SandboxProcess]]:
    """Starts `paymux sandbox` processes; stops those still running after the test."""
    started: list[SandboxProcess] = []

    def start(*args: str, started_with_sigint_ignored: bool = False) -> SandboxProcess:
        started.append(
            SandboxProcess(*args, started_with_sigint_ignored=started_with_sigint_ignored)
        )
        return started[-1]

    yield start
    for running in started:
        if running.process.poll() is None:
            running.stop()


def test_a_newcomer_runs_the_sandbox_and_pays_from_another_terminal(
    start_sandbox: Callable[..., SandboxProcess], tmp_path: Path
) -> None:
    config = tmp_path / "sandbox.toml"
    running = start_sandbox("--config-out", str(config))
    env = {"PAYMUX_CONFIG": str(config)}

    order_id, created = create_payment(env)
    status = paymux("status", "--order-id", order_id, "--json", env=env)

    assert created["redirect_url"].startswith(f"{running.url}/pay/")
    assert json.loads(status.stdout)["status"] == "pending"
    assert running.line("config:").startswith(f"config: wrote {config} (instance 'sandbox'")
    assert running.line("export PAYMUX_CONFIG=") == f"export PAYMUX_CONFIG={config}"
    assert 'default = "sandbox"' in config.read_text().splitlines()
    assert running.stop() == (0, "sandbox stopped\n")


def test_the_sandbox_says_where_its_keys_are(start_sandbox: Callable[..., SandboxProcess]) -> None:
    running = start_sandbox()

    payment_line = running.line("payment certificate:")
    folder = Path(payment_line.split()[2])
    public_key = Path(running.line("notification public key:").split()[3])
    assert {path.name for path in folder.iterdir()} == {"private.pem", "password.txt", "public.pem"}
    assert public_key.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert running.line("account:")
    assert running.line("services:").startswith("services:      payment_card_rub_hpp (RUB ")
    assert running.stop(signal.SIGTERM) == (0, "sandbox stopped\n")
    assert not public_key.exists(), "its temporary keys are removed when it stops"


def test_ctrl_c_stops_a_sandbox_started_in_the_background_of_a_script(
    start_sandbox: Callable[..., SandboxProcess],
) -> None:
    running = start_sandbox(started_with_sigint_ignored=True)

    assert running.stop(signal.SIGINT) == (0, "sandbox stopped\n")


def test_the_sandbox_uses_an_existing_certificate_folder_as_it_is(
    start_sandbox: Callable[..., SandboxProcess], tmp_path: Path
) -> None:
    certificate = generate_certificate(tmp_path / "mine", pkcs8=True)
    files = {path.name: path.read_bytes() for path in certificate.path.iterdir()}
    config = tmp_path / "sandbox.toml"

    running = start_sandbox("--certificates", str(certificate.path), "--config-out", str(config))
    create_payment({"PAYMUX_CONFIG": str(config)})
    running.stop()

    assert running.line("payment certificate:").endswith("public.pem; yours)")
    assert {path.name: path.read_bytes() for path in certificate.path.iterdir()} == files


def test_the_sandbox_will_not_overwrite_a_config_file_it_did_not_write(tmp_path: Path) -> None:
    config = write_config(tmp_path / "paymux.toml", {"live": {"provider": "alikassa"}})
    before = config.read_text()

    result = paymux("sandbox", "--port", "0", "--config-out", str(config))

    assert result.returncode == 1
    assert result.stderr.startswith(f"paymux: ConfigurationError: {config} exists and was not")
    assert config.read_text() == before


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port something else already listens on."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


def test_a_sandbox_on_a_busy_port_says_so_in_one_line(busy_port: int) -> None:
    result = paymux("sandbox", "--port", str(busy_port))

    assert result.returncode == 1
    assert result.stderr.startswith(
        f"paymux: ConfigurationError: cannot listen on 127.0.0.1:{busy_port}: "
        "Address already in use (choose another --host or --port"
    )
    assert len(result.stderr.splitlines()) == 1


def test_a_sandbox_that_cannot_write_its_config_file_says_so_in_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "no such folder" / "sandbox.toml"

    result = paymux("sandbox", "--port", "0", "--config-out", str(missing))

    assert result.returncode == 1
    assert result.stderr == (
        f"paymux: ConfigurationError: cannot write {missing} for --config-out: "
        "No such file or directory\n"
    )


def test_a_sandbox_given_a_file_for_its_certificate_folder_says_so_in_one_line(
    tmp_path: Path,
) -> None:
    not_a_folder = tmp_path / "certs"
    not_a_folder.write_text("not a folder")

    result = paymux("sandbox", "--port", "0", "--certificates", str(not_a_folder))

    assert result.returncode == 1
    assert result.stderr.startswith(
        f"paymux: CertificateError: cannot use {not_a_folder} as the certificate folder: "
    )
    assert len(result.stderr.splitlines()) == 1


# -- help -------------------------------------------------------------------------------------

COMMANDS = (
    "providers",
    "create",
    "status",
    "capture",
    "cancel",
    "refund",
    "balance",
    "verify-notification",
    "keys",
    "sandbox",
    "demo",
)


def test_the_overview_lists_every_command_and_a_first_thing_to_try(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])

    assert exited.value.code == 0
    shown = capsys.readouterr().out
    for name in COMMANDS:
        assert re.search(rf"^    {name}\b", shown, re.MULTILINE), name
    assert "Start here:\n  paymux providers" in shown, "core names no gateway: it points at them"


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_explains_itself_with_an_example(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([name, "--help"])

    assert exited.value.code == 0
    shown = capsys.readouterr().out
    assert shown.startswith(f"usage: paymux {name} ")
    example = shown.split("\nExample", 1)[1]
    assert f"paymux {name}" in example


def test_sandbox_faults_from_the_command_line_spoil_creates_as_asked(
    start_sandbox: Callable[..., SandboxProcess], tmp_path: Path
) -> None:
    config = tmp_path / "sandbox.toml"
    running = start_sandbox("--config-out", str(config), "--fault", "internal_error=1")
    env = {"PAYMUX_CONFIG": str(config)}

    result = paymux(
        "create", "--amount", "500.00", "--order-id", "o-1", *RUB_CARD, *CUSTOMER, env=env
    )
    status = paymux("status", "--order-id", "o-1", "--json", env=env)

    assert running.line("faults:") == "faults:        internal_error=1.0"
    assert result.returncode == 0, "the 500 came after storing: create found the payment"
    assert json.loads(status.stdout)["status"] == "pending"


def test_sandbox_maintenance_from_the_command_line_refuses_creates(
    start_sandbox: Callable[..., SandboxProcess], tmp_path: Path
) -> None:
    config = tmp_path / "sandbox.toml"
    start_sandbox("--config-out", str(config), "--maintenance")

    result = paymux(*CREATE_150, *RUB_CARD, env={"PAYMUX_CONFIG": str(config)})

    assert result.returncode == 1
    assert "ProviderUnavailable" in result.stderr


def test_fault_rates_adding_up_to_more_than_one_are_a_usage_error() -> None:
    result = paymux(
        "sandbox", "--port", "0", "--fault", "internal_error=0.7", "--fault", "stall=0.5"
    )

    assert result.returncode == 2
    assert "at most 1" in result.stderr


def test_an_unknown_fault_is_a_usage_error() -> None:
    result = paymux("sandbox", "--fault", "gremlins=0.5")

    assert result.returncode == 2
    assert "internal_error" in result.stderr


def test_sandbox_status_faults_from_the_command_line_spoil_status_calls_only(
    start_sandbox: Callable[..., SandboxProcess], tmp_path: Path
) -> None:
    config = tmp_path / "sandbox.toml"
    running = start_sandbox("--config-out", str(config), "--fault", "status:internal_error=1")
    env = {"PAYMUX_CONFIG": str(config), "PAYMUX__SANDBOX__MAX_ATTEMPTS": "1"}

    order_id, _ = create_payment(env)
    status = paymux("status", "--order-id", order_id, env=env)

    assert running.line("faults:") == "faults:        status:internal_error=1.0"
    assert status.returncode == 1
    assert status.stderr.startswith("paymux: ProviderServerError: ")


@pytest.mark.parametrize(
    ("fault", "said"),
    [
        pytest.param("payout:internal_error=0.5", "create, status", id="an unknown operation"),
        pytest.param("status:duplicate_notification=0.5", "not a fault of status", id="misplaced"),
        pytest.param("status:stall=0.7", "at most 1", id="status rates above one"),
    ],
)
def test_a_fault_the_sandbox_cannot_show_on_that_operation_is_a_usage_error(
    fault: str, said: str
) -> None:
    result = paymux(
        "sandbox", "--port", "0", "--fault", "status:internal_error=0.5", "--fault", fault
    )

    assert result.returncode == 2
    assert said in result.stderr


# -- a sandbox that outlives its process ------------------------------------------------------


def test_a_sandbox_restarted_with_its_state_folder_serves_the_same_configuration(
    start_sandbox: Callable[..., SandboxProcess], tmp_path: Path
) -> None:
    state = tmp_path / "state"
    config = tmp_path / "sandbox.toml"
    running = start_sandbox("--state", str(state), "--config-out", str(config))
    env = {"PAYMUX_CONFIG": str(config)}
    order_id, created = create_payment(env)
    running.stop()
    written = config.read_text()

    port = running.url.rsplit(":", 1)[1]
    again = start_sandbox("--state", str(state), "--config-out", str(config), "--port", port)
    status = paymux("status", "--order-id", order_id, "--json", env=env)
    _, next_one = create_payment(env)

    assert again.line("account:") == running.line("account:")
    assert config.read_text() == written
    assert f"certificate_dir = {json.dumps(str(state.resolve() / 'payment'))}" in written
    assert again.line("payment certificate:").endswith("; kept in the state folder)")
    assert running.line("payment certificate:").endswith("; new, kept in the state folder)")
    assert json.loads(status.stdout)["id"] == created["id"]
    assert int(next_one["id"]) > int(created["id"])


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(("status", "--order-id", "1001"), id="status"),
        pytest.param(
            ("create", "--amount", "500.00", "--order-id", "1001", *RUB_CARD, *CUSTOMER),
            id="create",
        ),
    ],
)
def test_a_command_against_a_sandbox_that_is_not_running_says_nothing_answers_there(
    tmp_path: Path, command: tuple[str, ...], notification_certificate: CertificateFolder
) -> None:
    with Sandbox(notification_certificate=notification_certificate.path) as stopped:
        merchant = stopped.create_merchant(tmp_path / "payment")
    config = write_config(tmp_path / "paymux.toml", {"shop": merchant.settings}, default="shop")

    result = paymux(*command, env={"PAYMUX_CONFIG": str(config)})

    assert result.returncode == 1
    assert result.stderr.startswith("paymux: TransportError: ")
    assert f"could not connect: nothing answers at {stopped.url} " in result.stderr
    assert len(result.stderr.splitlines()) == 1
