"""Dependencies point one way: provider → `paymux.providers.base` → `paymux`'s public names.

Every shipped provider and the example import nothing of paymux but the author API and their
own package; core imports no provider and names no gateway; the author API's `__all__` is
complete and every name in it is importable.
"""

from __future__ import annotations

import ast
import re
import types
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest

import paymux
import paymux.providers.base as base

ROOT = Path(__file__).resolve().parent.parent
PROVIDERS = {
    "paymux.providers.alikassa": ROOT / "providers" / "alikassa",
    "paymux_yookassa": ROOT / "yookassa" / "src" / "paymux_yookassa",
    "paymux_hmacpay": ROOT / "docs" / "examples" / "hmacpay" / "src" / "paymux_hmacpay",
}
AUTHOR_API = "paymux.providers.base"


def imports(path: Path) -> Iterator[tuple[int, str, list[str]]]:
    """(line, module, names) for every import in `path`, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                raise AssertionError(f"{path}:{node.lineno}: use absolute imports")
            yield node.lineno, node.module or "", [alias.name for alias in node.names]


def breaches(own: str, folder: Path) -> list[str]:
    found = []
    for path in sorted(folder.rglob("*.py")):
        for line, module, names in imports(path):
            where = f"{path.relative_to(ROOT)}:{line}"
            if module == "paymux":
                found += [
                    f"{where}: paymux.{n} is not public" for n in names if n not in paymux.__all__
                ]
            elif any(module == ok or module.startswith(f"{ok}.") for ok in (own, AUTHOR_API)):
                continue
            elif module.startswith("paymux"):
                found.append(f"{where}: imports {module}")
    return found


@pytest.mark.parametrize("own", sorted(PROVIDERS))
def test_a_provider_imports_only_the_author_api_and_its_own_package(own: str) -> None:
    folder = PROVIDERS[own]
    assert folder.is_dir(), f"{folder} is missing"
    assert breaches(own, folder) == []


def test_core_imports_no_provider_and_names_no_gateway() -> None:
    core = ROOT / "core"
    named = re.compile(r"alikassa|yookassa", re.IGNORECASE)
    for path in sorted(core.rglob("*.py")):
        assert not named.search(path.read_text(encoding="utf-8")), f"{path} names a gateway"
        for line, module, _ in imports(path):
            assert not module.startswith("paymux.providers"), f"{path}:{line} imports {module}"


@pytest.mark.parametrize("module", [paymux, base], ids=["paymux", AUTHOR_API])
def test_every_public_name_is_listed_and_importable(module: types.ModuleType) -> None:
    listed = set(module.__all__)
    for name in listed:
        assert getattr(module, name) is not None, name
    defined = {
        name
        for name in dir(module)
        if not name.startswith("_")
        and name not in dir(typing)
        and not isinstance(getattr(module, name, None), types.ModuleType)
    }
    assert defined - listed == set(), "public but not in __all__"
