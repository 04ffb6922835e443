"""Validating a provider's configuration with a marshmallow schema."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import marshmallow

from paymux.errors import ConfigurationError


def validate_settings(
    schema: marshmallow.Schema, settings: Mapping[str, Any], *, instance: str
) -> dict[str, Any]:
    """Load `settings` through `schema`; any problem becomes one `ConfigurationError`.

    Messages name the offending settings but never echo their values (they may be secrets).
    """
    try:
        loaded: dict[str, Any] = schema.load(dict(settings))
    except marshmallow.ValidationError as error:
        problems = "; ".join(
            f"{name}: {' '.join(map(str, messages))}"
            for name, messages in _flat(error.messages).items()
        )
        raise ConfigurationError(f"instance {instance!r}: {problems}") from None
    return loaded


def resolve_path(value: str | Path, base_dir: Path | None) -> Path:
    """`value` as a path, relative ones taken from `base_dir` (else the current directory)."""
    path = Path(value).expanduser()
    return path if path.is_absolute() or base_dir is None else base_dir / path


def _flat(messages: Any) -> dict[str, list[str]]:
    if isinstance(messages, Mapping):
        return {
            str(key): value if isinstance(value, list) else [str(value)]
            for key, value in messages.items()
        }
    return {"_schema": list(messages)}
