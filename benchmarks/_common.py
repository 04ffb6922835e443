"""What the benchmark scripts share: the sandbox in its own process, statistics, the summary.

Only the standard library is imported at module level, so that `bench_startup.py` can use this
module without importing anything it measures.

Run as a script (`python benchmarks/_common.py serve --key-size 2048 --dir DIR`) it is the
sandbox process the HTTP benchmarks talk to: it starts `paymux.providers.alikassa.sandbox
.Sandbox` on a free loopback port, registers one merchant whose certificate folder it writes
under DIR, prints the merchant's connect settings as one JSON line, then answers each command
on stdin with one JSON line until `stop` or end of file: `cpu` (its own CPU seconds so far),
`latency SECONDS` (every API answer waits that long from now on), `pay-all` (every waiting
payment settled as paid, without notifying: the notification is lost). Options `--latency` and
`--max-connections` set the same at start.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

BENCHMARKS = Path(__file__).resolve().parent
RESULTS = BENCHMARKS / "results"

JSON = dict[str, Any]


# -- command line ----------------------------------------------------------------------------


def parser(description: str) -> argparse.ArgumentParser:
    """The options every benchmark script takes."""
    result = argparse.ArgumentParser(description=description)
    result.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes and one round: checks that the script runs, measures nothing useful",
    )
    result.add_argument(
        "--rounds", type=int, default=None, help="rounds to take the median over (default: 5)"
    )
    result.add_argument(
        "--results-dir",
        type=Path,
        default=RESULTS,
        help=f"where to write <name>.json (default: {RESULTS})",
    )
    return result


def rounds_for(args: argparse.Namespace, full: int = 5) -> int:
    rounds: int | None = args.rounds
    if rounds is not None:
        return max(1, rounds)
    return 1 if args.quick else full


# -- statistics --------------------------------------------------------------------------------


def median(values: Iterable[float]) -> float:
    return float(statistics.median(list(values)))


def ratio(numerator: float, denominator: float) -> float:
    """`numerator / denominator`, rounded for reading; `inf` when the denominator is 0."""
    if denominator == 0:
        return float("inf")
    return round(numerator / denominator, 3)


@dataclass(frozen=True)
class Target:
    """One target from the issue: `ratio` must be `op` (`<=` or `>=`) `limit`."""

    name: str
    ratio: float
    op: str
    limit: float
    meaning: str

    @property
    def met(self) -> bool:
        return self.ratio <= self.limit if self.op == "<=" else self.ratio >= self.limit

    def as_json(self) -> JSON:
        return {
            "name": self.name,
            "ratio": self.ratio,
            "op": self.op,
            "limit": self.limit,
            "met": self.met,
            "meaning": self.meaning,
        }


# -- output ------------------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain fixed-width table (numbers right-aligned)."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [
        max(len(str(header)), *(len(row[i]) for row in cells)) if cells else len(str(header))
        for i, header in enumerate(headers)
    ]
    lines = ["  ".join(f"{header:<{widths[i]}}" for i, header in enumerate(headers))]
    lines.append("  ".join("-" * width for width in widths))
    for row, raw in zip(cells, rows, strict=True):
        lines.append(
            "  ".join(
                f"{value:>{widths[i]}}"
                if isinstance(raw[i], (int, float))
                else f"{value:<{widths[i]}}"
                for i, value in enumerate(row)
            )
        )
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return str(value)
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"
    return str(value)


def targets_table(targets: Sequence[Target]) -> str:
    return table(
        ["target", "measured", "wanted", "met"],
        [(t.name, t.ratio, f"{t.op} {t.limit:g}", t.met) for t in targets],
    )


def finish(
    name: str,
    args: argparse.Namespace,
    results: JSON,
    ratios: dict[str, float],
    targets: Sequence[Target],
) -> int:
    """Write `<results-dir>/<name>.json` and print the one-line JSON summary, last."""
    directory: Path = args.results_dir
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}{'-quick' if args.quick else ''}.json"
    summary: JSON = {
        "benchmark": name,
        "quick": bool(args.quick),
        "ratios": ratios,
        "targets": [target.as_json() for target in targets],
        "results_file": str(path),
    }
    document = {"summary": summary, "machine": machine(), "results": results}
    path.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    if targets:
        print()
        print(targets_table(targets))
    print(f"\nfull results: {path}")
    print(json.dumps(summary, separators=(",", ":"), default=str), flush=True)
    return 0


def machine() -> JSON:
    """Where the numbers came from."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        usable = os.cpu_count() or 0
    return {
        "nproc": usable,
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "packages": {
            name: _version(name)
            for name in (
                "paymux",
                "cryptography",
                "requests",
                "urllib3",
                "marshmallow",
                "structlog",
                "pluggy",
            )
        },
        "openssl": _openssl(),
    }


def machine_line() -> str:
    info = machine()
    return (
        f"{info['cpu_model']}, {info['nproc']} CPUs, Python {info['python']}, "
        f"cryptography {info['packages']['cryptography']} ({info['openssl']})"
    )


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _openssl() -> str:
    try:
        from cryptography.hazmat.backends.openssl import backend
    except ImportError:  # pragma: no cover
        return "unknown"
    return str(backend.openssl_version_text())


# -- the sandbox in its own process ------------------------------------------------------------


class SandboxProcess:
    """The AliKassa sandbox running in a child process, so that the client's CPU time
    (`time.process_time()` in the benchmark process) excludes everything the server does."""

    def __init__(
        self,
        folder: Path,
        *,
        key_size: int = 2048,
        digest: str = "sha1",
        latency: float = 0.0,
        max_connections: int | None = None,
    ) -> None:
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "serve",
            "--key-size",
            str(key_size),
            "--digest",
            digest,
            "--dir",
            str(folder),
        ]
        if latency:
            command += ["--latency", repr(latency)]
        if max_connections is not None:
            command += ["--max-connections", str(max_connections)]
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        ready = self._read()
        self.settings: JSON = ready["settings"]
        self.pid: int = ready["pid"]

    @property
    def account(self) -> str:
        return str(self.settings["account"])

    @property
    def certificate_dir(self) -> Path:
        return Path(self.settings["certificate_dir"])

    @property
    def base_url(self) -> str:
        return str(self.settings["base_url"])

    def cpu(self) -> float:
        """The sandbox process's CPU seconds so far (all its threads)."""
        self._send("cpu")
        return float(self._read()["cpu"])

    def set_latency(self, seconds: float) -> None:
        """Every API answer waits `seconds` from now on."""
        self._send(f"latency {seconds!r}")
        self._read()

    def pay_all(self) -> int:
        """Settle every waiting payment as paid, without notifying; how many there were."""
        self._send("pay-all")
        return int(self._read()["paid"])

    def close(self) -> None:
        if self._process.poll() is None:
            with contextlib.suppress(OSError):
                self._send("stop")
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        for stream in (self._process.stdin, self._process.stdout):
            if stream is not None:
                stream.close()

    def __enter__(self) -> SandboxProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _send(self, command: str) -> None:
        stdin = self._process.stdin
        assert stdin is not None
        stdin.write(command + "\n")
        stdin.flush()

    def _read(self) -> JSON:
        stdout = self._process.stdout
        assert stdout is not None
        line = stdout.readline()
        if not line:
            code = self._process.wait(timeout=10)
            raise RuntimeError(f"the sandbox process exited (code {code}) before answering")
        answer: JSON = json.loads(line)
        return answer


def _serve(argv: Sequence[str], stdin: TextIO, stdout: TextIO) -> int:
    options = argparse.ArgumentParser(prog="_common.py serve")
    options.add_argument("--key-size", type=int, default=2048)
    options.add_argument("--digest", default="sha1")
    options.add_argument("--dir", type=Path, required=True)
    options.add_argument("--latency", type=float, default=0.0)
    options.add_argument("--max-connections", type=int, default=None)
    args = options.parse_args(argv)

    from paymux.providers.alikassa.sandbox import Sandbox

    limits: JSON = {} if args.max_connections is None else {"max_connections": args.max_connections}
    with Sandbox(
        key_size=args.key_size, digest=args.digest, latency=args.latency, **limits
    ) as sandbox:
        merchant = sandbox.create_merchant(args.dir / "payment")
        print(json.dumps({"settings": merchant.settings, "pid": os.getpid()}), file=stdout)
        stdout.flush()
        for line in stdin:
            command = line.strip()
            if command == "cpu":
                print(json.dumps({"cpu": time.process_time()}), file=stdout)
                stdout.flush()
            elif command.startswith("latency "):
                sandbox.latency = float(command.split()[1])
                print(json.dumps({"latency": sandbox.latency}), file=stdout)
                stdout.flush()
            elif command == "pay-all":
                waiting = [payment for payment in sandbox.payments() if payment.status == "wait"]
                for payment in waiting:
                    sandbox.settle(payment.id, "paid", notify=False)
                print(json.dumps({"paid": len(waiting)}), file=stdout)
                stdout.flush()
            elif command == "stop":
                break
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] != ["serve"]:
        sys.exit("usage: python benchmarks/_common.py serve --dir DIR [--key-size N]")
    sys.exit(_serve(sys.argv[2:], sys.stdin, sys.stdout))
