"""For a provider's own `paymux` subcommands (the `paymux_cli_commands` hook): the same help
layout and output as paymux's commands."""

from paymux._cli_output import Subcommands, command, decimal_text, payment_json, print_json

__all__ = ["Subcommands", "command", "decimal_text", "payment_json", "print_json"]
