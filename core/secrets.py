"""`Secret`: a password or key that shows itself as `[redacted]` from the moment it is read.

Tracebacks that print frame locals (structlog's `dict_tracebacks`, Sentry, rich), log lines and
error messages all go through `repr` or `str`, so a secret held in a `Secret` never appears in
them. The code that needs the value calls `reveal()` inline, in the call that uses it, and keeps
no plain copy in a local.
"""

from __future__ import annotations

import hmac
from typing import Generic, NoReturn, TypeVar

REDACTED = "[redacted]"

Value = TypeVar("Value", bound=str | bytes, covariant=True)


class Secret(Generic[Value]):
    """A secret value, masked in `repr` and `str`, compared in constant time, never pickled."""

    __slots__ = ("_value",)
    _value: Value

    def __init__(self, value: Value) -> None:
        self._value = value

    def reveal(self) -> Value:
        """The value itself; pass it straight to the call that needs it."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({REDACTED})"

    def __str__(self) -> str:
        return REDACTED

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        mine, theirs = self._value, other._value
        if type(mine) is not type(theirs):
            return False
        return hmac.compare_digest(_bytes(mine), _bytes(theirs))

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret is not pickled: store secret.reveal() on purpose if you must")

    def __copy__(self) -> Secret[Value]:
        return self

    def __deepcopy__(self, memo: object) -> Secret[Value]:
        return self


def _bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value
