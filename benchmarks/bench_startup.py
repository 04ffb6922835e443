"""Start-up cost (issue item 4): importing paymux and getting the AliKassa provider ready.

    python benchmarks/bench_startup.py            # full run, about half a minute
    python benchmarks/bench_startup.py --quick    # smoke run

Every sample is a fresh interpreter (`sys.executable -I -c ...`) that times its own imports with
`time.perf_counter()` and reports them; the parent also times each whole process. Variants,
interleaved in every round:

* `python`       - an interpreter that imports nothing (process start-up alone);
* `deps`         - the third-party modules paymux and the AliKassa provider import, alone:
                   pluggy, requests, marshmallow, structlog and the cryptography modules used;
* `paymux`       - `import paymux`;
* `provider`     - `import paymux` plus the registry lookup of "alikassa"
                   (`default_registry().provider_class("alikassa")`: entry-point scan, plugin
                   import, registration): the provider class is ready to configure;
* `connect`      - all of that plus `paymux.connect(settings)`: settings validation, decrypting
                   the 2048-bit payment key, reading the notification public key, the session.
                   Key loading is timed separately and compared with the raw
                   `load_pem_private_key` of the same file (`rawkey`), which the `deps`
                   baseline does not include.
* `listing`      - `import paymux` plus `default_registry().installed()`; reports whether the
                   AliKassa module got imported (it must not be).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import JSON, Target, finish, median, parser, ratio, rounds_for, table

DEPENDENCIES = (
    "import pluggy, requests, marshmallow, structlog\n"
    "import cryptography.exceptions\n"
    "import cryptography.hazmat.primitives.hashes\n"
    "import cryptography.hazmat.primitives.serialization\n"
    "import cryptography.hazmat.primitives.asymmetric.padding\n"
    "import cryptography.hazmat.primitives.asymmetric.rsa\n"
)

# What each child runs. `T()` is the clock; `out` collects seconds by step; stdout gets JSON.
CHILD = """
import sys, time
T = time.perf_counter
out = {}
mode = sys.argv[1]
start = T()
if mode == "deps":
    exec(DEPENDENCIES)
    out["import"] = T() - start
elif mode == "paymux":
    import paymux
    out["import"] = T() - start
elif mode == "provider":
    import paymux
    out["import_paymux"] = T() - start
    paymux.default_registry().provider_class("alikassa")
    out["import"] = T() - start
elif mode == "connect":
    import paymux
    paymux.default_registry().provider_class("alikassa")
    out["import"] = T() - start
    import json
    settings = json.loads(sys.argv[2])
    ready = T()
    provider = paymux.connect(settings)
    out["connect"] = T() - ready
    provider.close()
elif mode == "rawkey":
    exec(DEPENDENCIES)
    out["import"] = T() - start
    import pathlib
    from cryptography.hazmat.primitives import serialization
    folder = pathlib.Path(sys.argv[2])
    ready = T()
    password = (folder / "password.txt").read_bytes().strip()
    serialization.load_pem_private_key((folder / "private.pem").read_bytes(), password=password)
    out["key"] = T() - ready
elif mode == "listing":
    import paymux
    installed = [info.name for info in paymux.default_registry().installed()]
    out["import"] = T() - start
    out["installed"] = installed
    out["alikassa_imported"] = "paymux.providers.alikassa" in sys.modules
elif mode != "python":
    raise SystemExit("unknown mode " + mode)
out["modules"] = len(sys.modules)
print(__import__("json").dumps(out))
"""

MODES = ("python", "deps", "paymux", "provider", "connect", "rawkey", "listing")


def run_child(mode: str, *extra: str) -> JSON:
    code = f"DEPENDENCIES = {DEPENDENCIES!r}\n{CHILD}"
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-I", "-c", code, mode, *extra],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"start-up child {mode!r} failed:\n{done.stderr}")
    result: JSON = json.loads(done.stdout.strip().splitlines()[-1])
    result["process"] = wall
    return result


def main() -> int:
    options = parser(__doc__.split("\n\n")[0] if __doc__ else "")
    args = options.parse_args()
    rounds = rounds_for(args, full=25)
    print(f"bench_startup: {rounds} round(s) of fresh interpreters per variant")

    from paymux.providers.alikassa import generate_certificate

    with tempfile.TemporaryDirectory(prefix="paymux-bench-") as folder:
        payment = generate_certificate(Path(folder) / "payment", key_size=2048)
        notification = generate_certificate(Path(folder) / "notification", key_size=2048)
        settings = {
            "provider": "alikassa",
            "account": "93d5df06-996c-48c3-9847-348d6b580b80",
            "certificate_dir": str(payment.path),
            "notification_public_key": str(notification.public_key),
            "base_url": "http://127.0.0.1:9",
        }
        extra: dict[str, tuple[str, ...]] = {
            "connect": (json.dumps(settings),),
            "rawkey": (str(payment.path),),
        }
        if not args.quick:
            for mode in MODES:  # warm the page cache and the bytecode caches
                run_child(mode, *extra.get(mode, ()))
        samples: dict[str, list[JSON]] = {mode: [] for mode in MODES}
        for number in range(rounds):
            shift = number % len(MODES)
            for mode in MODES[shift:] + MODES[:shift]:
                samples[mode].append(run_child(mode, *extra.get(mode, ())))

    def med(mode: str, key: str) -> float:
        return median(float(sample[key]) for sample in samples[mode])

    results: JSON = {
        "rounds": rounds,
        "dependencies_imported": DEPENDENCIES.split("\n"),
        "variants": {
            mode: {
                **{
                    f"{key}_ms": med(mode, key) * 1000
                    for key in ("import", "import_paymux", "connect", "key", "process")
                    if key in samples[mode][0]
                },
                "modules": samples[mode][0]["modules"],
            }
            for mode in MODES
        },
    }
    listing: dict[str, Any] = samples["listing"][0]
    listing_clean = not any(sample["alikassa_imported"] for sample in samples["listing"])
    results["listing"] = {
        "installed": listing["installed"],
        "alikassa_imported_by_listing": not listing_clean,
    }

    rows = [
        (
            mode,
            results["variants"][mode].get("import_ms", 0.0),
            results["variants"][mode]["process_ms"],
            results["variants"][mode]["modules"],
        )
        for mode in MODES
    ]
    print()
    print("Fresh interpreters (medians over rounds)")
    print(table(["variant", "import ms (in child)", "whole process ms", "modules"], rows))
    print()
    print(
        f"connect (settings + key + session): {med('connect', 'connect') * 1000:.1f} ms; "
        f"raw load_pem_private_key of the same file: {med('rawkey', 'key') * 1000:.1f} ms"
    )
    print(f"listing providers imports the AliKassa module: {'YES' if not listing_clean else 'no'}")

    python_process = med("python", "process")
    ratios = {
        "import_paymux_over_deps": ratio(med("paymux", "import"), med("deps", "import")),
        "import_provider_ready_over_deps": ratio(med("provider", "import"), med("deps", "import")),
        "process_provider_ready_over_deps": ratio(
            med("provider", "process"), med("deps", "process")
        ),
        "process_net_of_interpreter_provider_over_deps": ratio(
            med("provider", "process") - python_process, med("deps", "process") - python_process
        ),
        "connect_over_raw_key_load": ratio(med("connect", "connect"), med("rawkey", "key")),
    }
    targets = [
        Target(
            "import paymux + AliKassa provider class ready / dependencies alone",
            ratios["import_provider_ready_over_deps"],
            "<=",
            1.1,
            "import time inside fresh interpreters; key loading excluded (see connect)",
        ),
        Target(
            "listing providers imports none of them (1 = true)",
            1.0 if listing_clean else 0.0,
            ">=",
            1,
            "paymux.default_registry().installed() leaves paymux.providers.alikassa unimported",
        ),
    ]
    return finish("startup", args, results, ratios, targets)


if __name__ == "__main__":
    raise SystemExit(main())
