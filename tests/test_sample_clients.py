"""AliKassa's own sample clients, rewritten per language, create and query payments on the sandbox.

Each client in `tests/sample_clients/` does what the gateway's published sample in its language
does (see that folder's README): it reads the certificate folder the sandbox generated, exactly as
the sample reads AliKassa's archive, and talks to the sandbox over loopback HTTP with its
language's own HTTP client. A missing toolchain skips its test and says which package brings it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from paymux.providers.alikassa.sandbox import Sandbox

CLIENTS = Path(__file__).parent / "sample_clients"
JAVA_JARS = (
    "bcprov",
    "bcpkix",
    "bcutil",
    "jackson-databind",
    "jackson-core",
    "jackson-annotations",
)

Command = Callable[[Path], list[str]]
"""Builds the command line of one client; given a scratch folder for build output."""


def _need(tool: str, package: str) -> str:
    found = shutil.which(tool)
    if found is None:
        pytest.skip(f"SAMPLE CLIENT NOT RUN: no `{tool}` on PATH (apt-get install {package})")
    return found


def php(_: Path) -> list[str]:
    binary = _need("php", "php-cli php-curl")
    probe = subprocess.run(
        [binary, "-r", "exit(function_exists('curl_init') ? 0 : 1);"], check=False
    )
    if probe.returncode != 0:
        pytest.skip("SAMPLE CLIENT NOT RUN: PHP has no curl extension (apt-get install php-curl)")
    return [binary, str(CLIENTS / "client.php")]


def node(_: Path) -> list[str]:
    return [_need("node", "nodejs"), str(CLIENTS / "client.mjs")]


def python(_: Path) -> list[str]:
    # This interpreter: it has requests and cryptography, which the sample imports.
    return [sys.executable, str(CLIENTS / "client.py")]


def go(scratch: Path) -> list[str]:
    binary = _need("go", "golang")
    output = scratch / "client-go"
    environment = {
        **os.environ,
        "GOCACHE": str(scratch / "gocache"),
        "GOPATH": str(scratch / "gopath"),
        "GO111MODULE": "off",
    }
    subprocess.run(
        [binary, "build", "-o", str(output), str(CLIENTS / "client.go")],
        check=True,
        env=environment,
        timeout=300,
    )
    return [str(output)]


def java(_: Path) -> list[str]:
    binary = _need("java", "default-jdk-headless")
    jars = [Path("/usr/share/java") / f"{name}.jar" for name in JAVA_JARS]
    missing = [jar.name for jar in jars if not jar.exists()]
    if missing:
        pytest.skip(
            f"SAMPLE CLIENT NOT RUN: no {', '.join(missing)} (apt-get install libbcprov-java "
            "libbcpkix-java libjackson2-databind-java)"
        )
    return [binary, "-cp", os.pathsep.join(map(str, jars)), str(CLIENTS / "Client.java")]


@pytest.mark.parametrize("command", [php, node, python, go, java])
def test_the_sample_client_creates_a_payment_and_reads_its_status(
    command: Command, sandbox: Sandbox, tmp_path: Path
) -> None:
    argv = command(tmp_path)
    merchant = sandbox.create_merchant(tmp_path / "cert" / "payment")
    order_id = str(time.time_ns())

    finished = subprocess.run(
        [*argv, sandbox.url, merchant.account, order_id],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert finished.returncode == 0, finished.stderr
    created, status = (json.loads(line) for line in finished.stdout.splitlines()[-2:])
    assert created["payment_status"] == "wait"
    assert status["payment_status"] == "wait"
    assert str(status["id"]) == str(created["id"])
    assert str(status["order_id"]) == order_id
    stored = sandbox.payment(int(created["id"]))
    assert stored.order_id == order_id
