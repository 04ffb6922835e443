"""paymux's structured events.

paymux never configures logging for the host. When the host has configured structlog, events
go through the host's structlog pipeline; otherwise they go to the standard-library logger
"paymux", which stays silent until the host gives it a handler. Either way every event is
redacted before it leaves paymux.
"""

from __future__ import annotations

import logging
from typing import Any

import structlog

from paymux.redaction import redact

_STDLIB_FALLBACK = structlog.wrap_logger(
    logging.getLogger("paymux"),
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


def enabled(level: str) -> bool:
    """Whether an event at `level` could be shown; lets callers skip costly detail."""
    return structlog.is_configured() or logging.getLogger("paymux").isEnabledFor(_LEVELS[level])


def emit(level: str, event: str, **fields: Any) -> None:
    """Emit one redacted event at `level` ("debug", "info", "warning", "error")."""
    if not enabled(level):
        return
    logger = structlog.get_logger("paymux") if structlog.is_configured() else _STDLIB_FALLBACK
    getattr(logger, level)(event, **redact(fields))
