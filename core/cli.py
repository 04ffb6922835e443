"""The `paymux` command line.

Generic commands work with any installed provider through the contract and read what each
provider declares (its capabilities and option types): `providers`, `create`, `status`,
`capture`, `cancel`, `refund`, `balance`, `verify-notification`. Provider plugins add their own
through the `paymux_cli_commands` hook.

Output is for people by default and JSON with `--json` (amounts as strings). A paymux error is
printed as `paymux: <Type>: <message>` and exits with 1; bad usage exits with 2.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from collections.abc import Sequence

import structlog

from paymux import __version__
from paymux._cli_operations import add_operations
from paymux._cli_output import (
    Subcommands,
    amount_json,
    command,
    decimal_text,
    payment_json,
    print_json,
)
from paymux.errors import OutcomeUnknown, PaymuxError, PluginLoadError
from paymux.registry import Registry, default_registry

__all__ = ["amount_json", "command", "decimal_text", "main", "payment_json", "print_json"]


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
        if isinstance(error, OutcomeUnknown):
            print(f"paymux: {_how_to_settle(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code


# -- the parser -------------------------------------------------------------------------------

MAIN_EPILOG = """\
Start here:
  paymux providers       the gateways installed, what each offers, the commands they add
                         (a gateway's sandbox command runs it all on this machine)

'paymux COMMAND --help' explains a command.
Exit status: 0 done, 1 failed (the message says why), 2 bad usage."""


def _parser(
    registry: Registry, problems: dict[str, PluginLoadError | None]
) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="paymux",
        description="One interface to many payment gateways: create a payment, ask its "
        "status, verify\nits notifications, refund, capture. Which gateway answers is "
        "configuration.",
        epilog=MAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
    _add_providers(subcommands, registry, problems)
    add_operations(subcommands)
    registry.plugin_manager.hook.paymux_cli_commands(subcommands=subcommands)
    return parser


def _add_providers(
    subcommands: Subcommands, registry: Registry, problems: dict[str, PluginLoadError | None]
) -> None:
    providers = command(
        subcommands,
        "providers",
        help="list installed providers, what each offers, and any that fail to load",
        description="Lists the payment providers installed in this Python environment (the "
        "'paymux'\nentry points), with their distribution, version, module and capabilities. "
        "A provider\nthat fails to load is shown with its problem, and the command exits "
        "with 1.",
        epilog="Example:\n  paymux providers\n  paymux providers --json",
    )
    providers.add_argument("--json", action="store_true", help="print JSON for scripts")
    providers.set_defaults(handler=lambda args: _providers(registry, problems, args.json))


def _providers(
    registry: Registry, problems: dict[str, PluginLoadError | None], as_json: bool
) -> int:
    rows = []
    for info in registry.installed():
        problem = problems.get(info.name)
        capabilities = None
        if problem is None and not info.blocked:
            offered = registry.provider_class(info.name).capabilities
            capabilities = {
                "operations": sorted(op.value for op in offered.operations),
                "status_by": sorted(lookup.value for lookup in offered.status_by),
                "notifications": sorted(auth.value for auth in offered.notifications),
                "summary": offered.describe(),
            }
        rows.append(
            {
                "name": info.name,
                "distribution": info.distribution,
                "version": info.version,
                "module": info.module,
                "blocked": info.blocked,
                "problem": str(problem) if problem else None,
                "capabilities": capabilities,
            }
        )
    if as_json:
        print_json(rows)
    else:
        for row in rows:
            state = "blocked" if row["blocked"] else "ok"
            state = f"FAILED: {row['problem']}" if row["problem"] else state
            print(f"{row['name']:<12} {row['distribution']} {row['version']:<10} {state}")
            print(f"  module:     {row['module']}")
            if row["capabilities"]:
                print(f"  offers:     {row['capabilities']['summary']}")  # type: ignore[index]
    return 1 if any(row["problem"] for row in rows) else 0


def _how_to_settle(error: OutcomeUnknown) -> str:
    """The next command that settles an unknown outcome, in the words of what it carries."""
    if error.idempotency_key is not None:
        return (
            f"it may have happened; repeat the same command with --idempotency-key "
            f"{shlex.quote(error.idempotency_key)} (the gateway then answers with the first "
            f"result instead of acting twice)"
        )
    if error.order_id is not None:
        return (
            "it may have happened; find out with: "
            f"paymux status --order-id {shlex.quote(error.order_id)}"
        )
    return "it may have happened; ask its status before trying again"


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
