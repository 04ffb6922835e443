"""Throw-away database servers for the tests: a PostgreSQL cluster and a Redis server.

Each runs on a free loopback port in a temporary folder and is gone when its `with` ends.
Without the server's binaries the test skips, naming the Debian package to install.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from functools import partial
from pathlib import Path

import pytest


def free_port() -> int:
    """A loopback TCP port nothing listens on (now)."""
    with closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for(ready: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start within {timeout} s")
        time.sleep(0.05)


def _postgres_binaries() -> Path:
    """The folder of initdb and pg_ctl: on PATH, or where Debian's packages put them."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    pytest.skip("no PostgreSQL server (pg_ctl, initdb): apt-get install postgresql")


@contextmanager
def postgres() -> Iterator[str]:
    """A PostgreSQL cluster on a free loopback port; yields the DSN of a database in it.

    PostgreSQL refuses to run as root, so under root the cluster belongs to the `postgres`
    user (Debian's package creates it), in a folder of its own under the system's temp folder
    (pytest's are root's only).
    """
    binaries = _postgres_binaries()
    as_owner: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("runuser") is None or not _user_exists("postgres"):
            pytest.skip("as root, needs runuser and a `postgres` user: apt-get install postgresql")
        as_owner = ["runuser", "-u", "postgres", "--"]
    folder = Path(tempfile.mkdtemp(prefix="paymux-postgres-"))
    try:
        if as_owner:
            shutil.chown(folder, "postgres")
        data, port = str(folder / "data"), free_port()
        run = partial(subprocess.run, check=True, capture_output=True)
        run([*as_owner, f"{binaries}/initdb", "-D", data, "-A", "trust", "-U", "postgres"])
        with open(f"{data}/postgresql.conf", "a") as settings:
            settings.write(
                f"port = {port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{folder}'\nfsync = off\n"
            )
        pg_ctl = [*as_owner, f"{binaries}/pg_ctl", "-D", data, "-w"]
        run([*pg_ctl, "-l", f"{folder}/log", "start"])
        try:
            createdb = [f"{binaries}/createdb", "-h", "127.0.0.1", "-p", str(port)]
            run([*createdb, "-U", "postgres", "paymux"])
            yield f"host=127.0.0.1 port={port} user=postgres dbname=paymux"
        finally:
            run([*pg_ctl, "-m", "fast", "stop"])
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@contextmanager
def redis() -> Iterator[str]:
    """A Redis server on a free loopback port, keeping nothing on disk; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("no Redis server (redis-server): apt-get install redis-server")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="paymux-redis-") as folder:
        settings = ["--bind", "127.0.0.1", "--dir", folder, "--save", "", "--appendonly", "no"]
        server = subprocess.Popen(
            [binary, "--port", str(port), *settings], stdout=subprocess.DEVNULL
        )
        try:
            wait_for(lambda: _pong(port), "redis-server")
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            server.terminate()
            server.wait(timeout=30)


def _pong(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False
