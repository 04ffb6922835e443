"""The documentation is tested: its Python runs, and its reference pages list everything.

Snippet convention (CONTRIBUTING.md explains it to authors): every ```python block in
docs/*.md and README.md is executed, each in a fresh namespace, in an empty temporary
working directory, with no PAYMUX_* variables set. The HTML comment on the nearest non-blank
line before a block's opening fence changes that:

    <!-- run: sandbox -->       run with an AliKassa sandbox started and these names defined:
                                `sandbox` (a running Sandbox), `merchant` (a Merchant registered
                                with it), `settings` (its connect settings, a dict), `provider`
                                (connected with them) and `notifications` (a running
                                NotificationReceiver: a shop endpoint that records each GET)
    <!-- no-run: REASON -->     not run (nor compiled): for fragments; the reason is required

```pyi blocks (signatures) must parse; ```toml blocks must be valid TOML.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import io
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import structlog
from marshmallow import missing

import paymux
from paymux import cli, hookspecs
from paymux.config import ENV_CONFIG_FILE, ENV_DEFAULT, ENV_PREFIX
from paymux.providers.alikassa.sandbox import Merchant, NotificationReceiver, Sandbox
from paymux.providers.alikassa.settings import SettingsSchema

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = [*sorted(DOCS.glob("*.md")), ROOT / "README.md"]

_FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w+-]*)[ \t]*$")
_MARKER = re.compile(r"^\s*<!--\s*(?P<kind>[\w-]+)\s*:\s*(?P<value>.*?)\s*-->\s*$")
MODES = {"run": {"sandbox"}, "no-run": None}


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: Path
    line: int
    lang: str
    code: str
    marker: tuple[str, str] | None

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The page's fenced code blocks, each with the marker comment just before it, if any."""
    found: list[Block] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    previous = ""
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if not opening:
            if lines[index].strip():
                previous = lines[index]
            index += 1
            continue
        indent = len(opening["indent"])
        end = index + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        code = "\n".join(line[indent:] for line in lines[index + 1 : end]) + "\n"
        marker = _MARKER.match(previous)
        found.append(
            Block(
                page=page,
                line=index + 1,
                lang=opening["lang"],
                code=code,
                marker=(marker["kind"], marker["value"]) if marker else None,
            )
        )
        previous = ""
        index = end + 1
    return found


ALL_BLOCKS = [block for page in PAGES for block in blocks(page)]
PYTHON = [block for block in ALL_BLOCKS if block.lang == "python"]
RUNNABLE = [block for block in PYTHON if not block.marker or block.marker[0] != "no-run"]


# -- every Python snippet runs ---------------------------------------------------------------


@pytest.fixture
def docs_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory and no paymux configuration from the environment."""
    for name in list(os.environ):
        if name.upper().startswith(("PAYMUX_", ENV_PREFIX)):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("block", RUNNABLE, ids=[block.where for block in RUNNABLE])
def test_python_snippet_runs(
    block: Block, docs_environment: Path, request: pytest.FixtureRequest
) -> None:
    namespace: dict[str, Any] = {"__name__": "__docs__"}
    with contextlib.ExitStack() as stack:
        if block.marker == ("run", "sandbox"):
            sandbox: Sandbox = request.getfixturevalue("sandbox")
            merchant: Merchant = request.getfixturevalue("merchant")
            notifications = stack.enter_context(NotificationReceiver())
            provider = stack.enter_context(paymux.connect(merchant.settings))
            namespace.update(
                sandbox=sandbox,
                merchant=merchant,
                settings=dict(merchant.settings),
                provider=provider,
                notifications=notifications,
            )
        code = compile(block.code, block.where, "exec")
        stack.callback(structlog.reset_defaults)  # `paymux.cli.main` configures structlog
        with contextlib.redirect_stdout(io.StringIO()):
            exec(code, namespace)  # noqa: S102 - the documentation's own examples


def test_every_marker_is_known_and_belongs_to_a_python_block() -> None:
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        attached = {block.line for block in ALL_BLOCKS if block.page == page and block.marker}
        for number, line in enumerate(text.splitlines(), start=1):
            marker = _MARKER.match(line)
            if not marker or marker["kind"] not in MODES:
                continue
            kind, value = marker["kind"], marker["value"]
            allowed = MODES[kind]
            if allowed is None:
                assert value, f"{page.name}:{number}: say why the block does not run"
            else:
                assert value in allowed, f"{page.name}:{number}: unknown mode {kind}: {value}"
            following = [b for b in ALL_BLOCKS if b.page == page and b.line > number]
            assert following, f"{page.name}:{number}: the marker precedes no code block"
            message = f"{page.name}:{number}: the marker must stand just before a ```python block"
            assert following[0].line in attached, message
            assert following[0].lang == "python", message


@pytest.mark.parametrize(
    "block",
    [block for block in ALL_BLOCKS if block.lang == "toml"],
    ids=lambda block: block.where,
)
def test_toml_snippet_parses(block: Block) -> None:
    tomllib.loads(block.code)


def test_some_snippets_run_against_the_sandbox() -> None:
    """Guards the collector itself: it must find the blocks the pages are known to have."""
    sandboxed = [block for block in PYTHON if block.marker == ("run", "sandbox")]
    assert len(sandboxed) >= 3
    assert any(block.page.name == "README.md" for block in PYTHON)


# -- the reference pages are complete ----------------------------------------------------------


def page_text(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def table_row(text: str, key: str) -> str:
    """The table row whose first cell names `key` (among others, as in `` `a`, `b` ``)."""
    for line in text.splitlines():
        if line.startswith("|"):
            first = line.split("|")[1]
            if f"`{key}`" in first:
                return line
    raise AssertionError(f"no table row for `{key}`")


def test_every_alikassa_setting_is_in_the_configuration_reference() -> None:
    text = page_text("configuration.md")
    for name, field in SettingsSchema().fields.items():
        row = table_row(text, name)
        if field.load_default is not missing:
            default = field.load_default
            shown = f"{default:g}" if isinstance(default, float) else str(default).lower()
            assert f"`{shown}`" in row, f"{name}: the default {shown} is not in {row!r}"
        if field.required:
            assert "required" in row, row


def test_the_configuration_reference_names_every_variable() -> None:
    text = page_text("configuration.md")
    for name in (ENV_CONFIG_FILE, ENV_DEFAULT, f"{ENV_PREFIX}<INSTANCE>__<SETTING>"):
        assert f"`{name}" in text, name


def paymux_errors() -> list[type[paymux.PaymuxError]]:
    """Every PaymuxError subclass that paymux itself defines."""
    seen: list[type[paymux.PaymuxError]] = []
    todo: list[type[paymux.PaymuxError]] = [paymux.PaymuxError]
    while todo:
        cls = todo.pop()
        if cls.__module__.startswith("paymux.") and cls not in seen:
            seen.append(cls)
            todo.extend(cls.__subclasses__())
    return sorted(seen, key=lambda cls: cls.__name__)


def test_every_error_is_exported() -> None:
    for cls in paymux_errors():
        assert getattr(paymux, cls.__name__, None) is cls, cls
        assert cls.__name__ in paymux.__all__


@pytest.mark.parametrize("error", paymux_errors(), ids=lambda cls: cls.__name__)
def test_every_error_is_in_the_error_reference(error: type[paymux.PaymuxError]) -> None:
    sections = re.split(r"^### ", page_text("errors.md"), flags=re.MULTILINE)
    section = next((s for s in sections if s.startswith(f"`{error.__name__}`")), None)
    assert section is not None, f"no '### `{error.__name__}`' section in docs/errors.md"
    if error is not paymux.PaymuxError:
        parent = error.__mro__[1].__name__
        assert f"`{parent}`" in section.split("\n\n")[1], f"{error.__name__}: say its parent"
    assert "raised" in section.lower(), f"{error.__name__}: say when it is raised"


def hook_signature(function: Any) -> str:
    """`def name(arg: Type, ...) -> None` as written in core/hookspecs.py."""
    signature = inspect.signature(function)
    parameters = ", ".join(f"{p.name}: {p.annotation}" for p in signature.parameters.values())
    return f"def {function.__name__}({parameters}) -> {signature.return_annotation}"


HOOKS = [
    function
    for name, function in inspect.getmembers(hookspecs, inspect.isfunction)
    if hasattr(function, "paymux_spec")
]


def test_the_hooks_are_found() -> None:
    assert {function.__name__ for function in HOOKS} >= {
        "paymux_register_providers",
        "paymux_exchange",
        "paymux_payment_update",
        "paymux_cli_commands",
    }


def one_line(code: str) -> str:
    """Code with its line breaks undone, as ruff may wrap a long signature."""
    return re.sub(r",?\s*\)", ")", re.sub(r"\(\s+", "(", re.sub(r"\s+", " ", code)))


@pytest.mark.parametrize("hook", HOOKS, ids=lambda function: function.__name__)
def test_every_hook_is_in_the_hooks_reference(hook: Any) -> None:
    sections = re.split(r"^## ", page_text("hooks.md"), flags=re.MULTILINE)
    section = next((s for s in sections if s.startswith(f"`{hook.__name__}`")), None)
    assert section is not None, f"no '## `{hook.__name__}`' section in docs/hooks.md"
    assert hook_signature(hook) in one_line(section), f"write {hook_signature(hook)}"


@pytest.mark.parametrize(
    "block",
    [block for block in ALL_BLOCKS if block.lang == "pyi"],
    ids=lambda block: block.where,
)
def test_signature_block_parses(block: Block) -> None:
    compile(block.code, block.where, "exec", flags=ast.PyCF_ONLY_AST)


def cli_help(*args: str) -> str:
    output = io.StringIO()
    with contextlib.redirect_stdout(output), pytest.raises(SystemExit):
        cli.main([*args, "--help"])
    return output.getvalue()


def subcommands() -> list[str]:
    section = cli_help().split("commands:\n", 1)[1].split("\n\n", 1)[0]
    return re.findall(r"^    (\S+)", section, flags=re.MULTILINE)


def test_the_subcommands_are_found() -> None:
    assert {"providers", "create", "status", "verify-notification"} <= set(subcommands())


def test_the_main_options_are_in_the_cli_reference() -> None:
    text = page_text("cli.md").split("\n## ", 1)[0]
    options = cli_help().split("\ncommands:", 1)[0]
    for option in set(re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", options)) - {"-h", "--help"}:
        assert f"`{option}" in text, option


@pytest.mark.parametrize("command", subcommands())
def test_every_command_and_option_is_in_the_cli_reference(command: str) -> None:
    sections = re.split(r"^## ", page_text("cli.md"), flags=re.MULTILINE)
    section = next((s for s in sections if s.startswith(f"`paymux {command}`")), None)
    assert section is not None, f"no '## `paymux {command}`' section in docs/cli.md"
    usage = cli_help(command).split("\n\n", 1)[0]
    options = set(re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", usage)) - {"-h"}
    without_options = re.sub(r"--?[a-z][\w-]*(?:\s+[A-Z][A-Z_=]*|\s+\{[^}]*\})?", "", usage)
    positionals = re.findall(r"\b([A-Z][A-Z_]+)\b", without_options)
    for word in sorted(options) + positionals:
        assert f"`{word}" in section, f"paymux {command}: document {word}"


# -- the site's navigation ---------------------------------------------------------------------


def nav_pages() -> list[str]:
    text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    nav = text.split("\nnav:\n", 1)[1]
    return re.findall(r"^\s+- (?:[^:\n]+: )?([\w/.-]+\.md)\s*$", nav, flags=re.MULTILINE)


def test_the_navigation_lists_every_page() -> None:
    listed = nav_pages()
    assert len(listed) == len(set(listed))
    assert sorted(listed) == sorted(page.name for page in DOCS.glob("*.md"))
