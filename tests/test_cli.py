"""The `paymux` command line, run as a user runs it: in its own process."""

from __future__ import annotations

import json
import subprocess
import sys

import paymux


def run_paymux(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "paymux.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_demo_pays_one_payment_end_to_end_and_exits_zero() -> None:
    result = run_paymux("demo")

    assert result.returncode == 0, result.stderr
    assert "pending (AliKassa: wait)" in result.stdout
    assert "signature verified" in result.stdout
    assert "paid (AliKassa: paid)" in result.stdout
    assert result.stdout.rstrip().endswith(
        "done: wait -> paid, notification verified, decision fulfil, redirect verified"
    )


def test_demo_pays_through_the_payment_page_and_comes_back_to_the_shop() -> None:
    result = run_paymux("demo")

    assert result.returncode == 0, result.stderr
    assert "buttons Pay, Pay partially, Cancel, Fail" in result.stdout
    assert "(action=pay) -> HTTP 200" in result.stdout
    assert "/success (order_id, uuid, sign) -> HTTP 200" in result.stdout
    assert "redirect signature verified" in result.stdout


def test_demo_works_with_sha256_signatures() -> None:
    result = run_paymux("demo", "--digest", "sha256")

    assert result.returncode == 0, result.stderr
    assert "digest sha256" in result.stdout


def test_demo_output_holds_no_key_material() -> None:
    result = run_paymux("-vv", "demo")

    assert result.returncode == 0, result.stderr
    assert "PRIVATE KEY" not in result.stdout + result.stderr
    assert "paymux.http" in result.stderr, "debug events should be shown with -vv"


def test_providers_lists_alikassa_with_its_distribution() -> None:
    result = run_paymux("providers", "--json")

    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["alikassa"]["distribution"] == "paymux"
    assert rows["alikassa"]["version"] == paymux.__version__
    assert rows["alikassa"]["problem"] is None


def test_providers_lists_each_gateway_with_what_it_offers() -> None:
    result = run_paymux("providers", "--json")

    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["alikassa"]["capabilities"] == {
        "operations": ["balance", "create", "payout", "payout_status", "status"],
        "status_by": ["order_id", "payment_id"],
        "notifications": ["signature"],
        "summary": rows["alikassa"]["capabilities"]["summary"],
    }
    assert rows["yookassa"]["distribution"] == "paymux-yookassa"
    assert rows["yookassa"]["capabilities"]["operations"] == [
        "cancel",
        "capture",
        "create",
        "refund",
        "refund_status",
        "status",
    ]
    assert rows["yookassa"]["capabilities"]["status_by"] == ["payment_id"]
    assert rows["yookassa"]["capabilities"]["notifications"] == ["refetch", "sender"]
    shown = run_paymux("providers").stdout
    assert "offers:     balance, create, payout, payout_status, status; status by order_id" in (
        shown
    )


def test_help_names_every_command() -> None:
    result = run_paymux("--help")

    assert result.returncode == 0
    for command in ("providers", "sandbox", "demo"):
        assert command in result.stdout


def test_an_unknown_command_is_a_usage_error() -> None:
    assert run_paymux("pay-everything").returncode == 2


def test_public_api_lists_every_public_name() -> None:
    # "@py_builtins" and "@pytest_ar": pytest rewrites the asserts of a plugin's distribution.
    public = {name for name in dir(paymux) if not name.startswith(("_", "@"))}
    modules = {
        "aio",
        "capabilities",
        "celery_tasks",
        "cli",
        "config",
        "connection",
        "contrib",
        "decisions",
        "errors",
        "guards",
        "ledger",
        "hookspecs",
        "incoming",
        "models",
        "provider",
        "providers",
        "registry",
        "secrets",
        "statuses",
        "stores",
        "sweeper",
    }

    assert set(paymux.__all__) - {"__version__"} == public - modules
