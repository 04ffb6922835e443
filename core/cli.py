"""The `paymux` command line. Provider plugins add their own commands (AliKassa: sandbox, demo)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

import structlog

from paymux import __version__
from paymux.errors import PaymuxError, PluginLoadError
from paymux.registry import Registry, default_registry


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 1 failed, 2 bad usage)."""
    registry = default_registry()
    problems = registry.load_all()
    parser = _parser(registry, problems)
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    try:
        code: int = args.handler(args)
    except PaymuxError as error:
        print(f"paymux: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code


def _parser(
    registry: Registry, problems: dict[str, PluginLoadError | None]
) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="paymux",
        description="One interface to many payment gateways. "
        "Start with 'paymux demo': a whole payment on a local AliKassa sandbox.",
    )
    parser.add_argument("--version", action="version", version=f"paymux {__version__}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log paymux's events to stderr (-v: info, -vv: debug, always redacted)",
    )
    subcommands = parser.add_subparsers(title="commands", metavar="COMMAND")
    providers = subcommands.add_parser(
        "providers", help="list installed providers and any that fail to load"
    )
    providers.add_argument("--json", action="store_true", help="print JSON for scripts")
    providers.set_defaults(handler=lambda args: _providers(registry, problems, args.json))
    registry.plugin_manager.hook.paymux_cli_commands(subcommands=subcommands)
    return parser


def _providers(
    registry: Registry, problems: dict[str, PluginLoadError | None], as_json: bool
) -> int:
    rows = [
        {
            "name": info.name,
            "distribution": info.distribution,
            "version": info.version,
            "module": info.module,
            "problem": str(problems[info.name]) if problems.get(info.name) else None,
        }
        for info in registry.installed()
    ]
    if as_json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            state = f"FAILED: {row['problem']}" if row["problem"] else "ok"
            print(
                f"{row['name']:<12} {row['distribution']} {row['version']:<10} "
                f"{row['module']:<32} {state}"
            )
    return 1 if any(row["problem"] for row in rows) else 0


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="%H:%M:%S"),
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )


if __name__ == "__main__":
    sys.exit(main())
