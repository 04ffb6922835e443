"""This repository's other distributions — YooKassa, the example provider — pip-installed into
the test environment like any third party's, when missing or older than their source.

Each is built from a copy, so that the build leaves nothing in the source folder.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def is_current(distribution: str, package: Path) -> bool:
    """Whether `distribution` is installed here with every file of `package` as it is now."""
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    for source in package.rglob("*"):
        if source.is_file() and "__pycache__" not in source.parts:
            installed = Path(str(dist.locate_file(source.relative_to(package.parent).as_posix())))
            if not installed.is_file() or installed.read_bytes() != source.read_bytes():
                return False
    return True


def ensure_installed(distribution: str, source: Path, package: Path) -> None:
    """pip-install `source` (the folder with its pyproject.toml) unless it is current."""
    if is_current(distribution, package):
        return
    with tempfile.TemporaryDirectory() as workspace:
        copy = Path(workspace) / source.name
        shutil.copytree(
            source, copy, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
        )
        pip = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
             "--no-build-isolation", "--no-index", "--force-reinstall",
             "--disable-pip-version-check", str(copy)],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
    if pip.returncode != 0:
        raise RuntimeError(f"pip could not install {source}: {pip.stderr}")
    importlib.invalidate_caches()
    if not is_current(distribution, package):
        raise RuntimeError(f"{distribution} is installed, but not from {source}")


YOOKASSA = ("paymux-yookassa", ROOT / "yookassa", ROOT / "yookassa" / "src" / "paymux_yookassa")
HMACPAY = (
    "paymux-hmacpay",
    ROOT / "docs" / "examples" / "hmacpay",
    ROOT / "docs" / "examples" / "hmacpay" / "src" / "paymux_hmacpay",
)
