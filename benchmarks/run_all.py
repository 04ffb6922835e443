"""Run every benchmark, one after another, each in its own fresh interpreter.

    python benchmarks/run_all.py            # full run, a few minutes on 2 cores
    python benchmarks/run_all.py --quick    # smoke run of every script

Each script's own output is shown as it runs; then every target from the issue in one table.
Writes `<results-dir>/all.json` (each script also writes its own `<name>.json`), and prints a
one-line JSON summary last.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from _common import BENCHMARKS, JSON, Target, finish, parser

SCRIPTS = (
    "bench_http",
    "bench_crypto",
    "bench_startup",
    "bench_sweep",
    "bench_async",
    "bench_scale",
    "bench_yookassa",
    "bench_stacks",
)


def main() -> int:
    options = parser(__doc__.split("\n\n")[0] if __doc__ else "")
    args = options.parse_args()
    forwarded = ["--results-dir", str(args.results_dir)]
    if args.quick:
        forwarded.append("--quick")
    if args.rounds is not None:
        forwarded += ["--rounds", str(args.rounds)]

    summaries: dict[str, JSON] = {}
    durations: dict[str, float] = {}
    for script in SCRIPTS:
        print(f"=== {script} ===", flush=True)
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, str(BENCHMARKS / f"{script}.py"), *forwarded],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        last = ""
        for line in process.stdout:
            print(line, end="", flush=True)
            if line.strip():
                last = line
        code = process.wait()
        durations[script] = time.perf_counter() - started
        if code != 0:
            print(f"run_all: {script} failed with exit code {code}", file=sys.stderr)
            return code
        summaries[script] = json.loads(last)
        print(flush=True)

    targets = [
        Target(
            f"{script}: {target['name']}",
            float(target["ratio"]),
            str(target["op"]),
            float(target["limit"]),
            str(target["meaning"]),
        )
        for script, summary in summaries.items()
        for target in summary["targets"]
    ]
    ratios = {
        f"{script}.{name}": value
        for script, summary in summaries.items()
        for name, value in summary["ratios"].items()
    }
    print("=== all targets ===")
    results: JSON = {"scripts": summaries, "seconds": durations}
    return finish("all", args, results, ratios, targets)


if __name__ == "__main__":
    raise SystemExit(main())
