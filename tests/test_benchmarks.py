"""Smoke test of `benchmarks/`: every script runs on a tiny size and ends with its JSON summary.

No timing is asserted here: the scripts measure, they do not judge (see docs/benchmarks.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
SCRIPTS = (
    "bench_http",
    "bench_crypto",
    "bench_startup",
    "bench_sweep",
    "bench_async",
    "bench_scale",
    "bench_yookassa",
    "bench_stacks",
    "run_all",
)
SUMMARY_KEYS = {"benchmark", "quick", "ratios", "targets", "results_file"}
TARGET_KEYS = {"name", "ratio", "op", "limit", "met", "meaning"}


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_runs_quick_and_ends_with_a_json_summary(script: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / f"{script}.py"), "--quick", "--results-dir", tmp_path],
        capture_output=True,
        text=True,
        timeout=300,  # run_all runs every script in turn
        check=False,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary.keys() >= SUMMARY_KEYS
    assert summary["quick"] is True
    assert summary["ratios"]
    assert all(isinstance(value, (int, float)) for value in summary["ratios"].values())
    assert summary["targets"]
    assert all(target.keys() >= TARGET_KEYS for target in summary["targets"])
    written = Path(summary["results_file"])
    assert written.parent == tmp_path
    assert json.loads(written.read_text(encoding="utf-8"))["summary"] == summary
