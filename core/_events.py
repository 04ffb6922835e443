"""paymux's structured events.

paymux never configures logging for the host. When the host has configured structlog, events
go through the host's structlog pipeline; otherwise they go to the standard-library logger
"paymux", which stays silent until the host gives it a handler (its `NullHandler` keeps the
standard library's last-resort handler from printing warnings to stderr). Either way every event is
redacted, and every value in it escaped (`paymux._redaction.loggable`), before it leaves
paymux: no secret leaves, and no CR, LF or other control character from a notification or a
gateway's answer reaches a renderer, so no value can forge a log line.
"""

from __future__ import annotations

import logging
from typing import Any

import structlog

from paymux._redaction import escape_control, loggable

_STDLIB_LOGGER = logging.getLogger("paymux")
_STDLIB_LOGGER.addHandler(logging.NullHandler())
_STDLIB_FALLBACK = structlog.wrap_logger(
    _STDLIB_LOGGER,
    processors=[
        structlog.stdlib.filter_by_level,
        structlog.processors.add_log_level,
        structlog.processors.KeyValueRenderer(key_order=["event"], sort_keys=True),
    ],
    wrapper_class=structlog.stdlib.BoundLogger,
)

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def _logger() -> Any:
    """The host's structlog logger when structlog is configured, else the stdlib fallback."""
    return structlog.get_logger("paymux").bind() if structlog.is_configured() else _STDLIB_FALLBACK


def _is_enabled(logger: Any, level: str) -> bool:
    if logger is _STDLIB_FALLBACK:
        return _STDLIB_LOGGER.isEnabledFor(_LEVELS[level])
    check = getattr(logger, "is_enabled_for", None) or getattr(logger, "isEnabledFor", None)
    return bool(check(_LEVELS[level])) if check is not None else True


def enabled(level: str) -> bool:
    """Whether an event at `level` would be shown; lets callers skip building costly detail."""
    return _is_enabled(_logger(), level)


def emit(level: str, event: str, **fields: Any) -> None:
    """Emit one redacted, escaped event at `level` ("debug", "info", "warning", "error")."""
    logger = _logger()
    if _is_enabled(logger, level):
        getattr(logger, level)(escape_control(event), **loggable(fields))
