"""PHP `json_encode` (default flags), byte for byte.

AliKassa's side is PHP: it signs `json_encode(...)` of notification fields, and may re-encode a
request body before checking its signature. Python's `json.dumps` differs from PHP in three
places: PHP escapes `/` as `\\/`, writes DEL (U+007F) raw, and has no separator spaces.
Everything else (lowercase `\\uXXXX` for non-ASCII, surrogate pairs above U+FFFF, the short
escapes `\\b \\f \\n \\r \\t`) matches Python's ASCII-only encoder, which does the work here.
"""

from __future__ import annotations

import json
import json.encoder
import re
from collections.abc import Mapping, Sequence
from typing import Any

_encode_ascii = json.encoder.encode_basestring_ascii
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class PHPJSONError(ValueError):
    """The value cannot be encoded the way PHP's `json_encode` would (PHP would fail too)."""


def encode_string(text: str) -> str:
    """One JSON string literal, as PHP writes it."""
    if not text.isascii() and _LONE_SURROGATE.search(text):
        raise PHPJSONError("text is not valid UTF-8 (lone surrogate)")
    if "\x7f" in text:
        encoded = "\x7f".join(_encode_ascii(part)[1:-1] for part in text.split("\x7f"))
        return '"' + encoded.replace("/", "\\/") + '"'
    return _encode_ascii(text).replace("/", "\\/")


def dumps(value: Any) -> str:
    """`value` as PHP's `json_encode($value)` writes it.

    Accepts str, int, bool, None, mappings with str keys (PHP associative arrays: an empty one
    is written `[]`) and sequences. Floats are refused: money travels as strings.
    """
    if type(value) is dict and value and _flat(value):
        # What every request and notification is: json's C encoder writes it as PHP does, but
        # for `/` (a `/` in JSON output can only stand inside a string literal).
        return json.dumps(value, separators=(",", ":")).replace("/", "\\/")
    if isinstance(value, str):
        return encode_string(value)
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, (dict, Mapping)):  # dict first: an ABC check is slow
        if not value:
            return "[]"
        members = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise PHPJSONError(f"object keys must be text, not {type(key).__name__}")
            members.append(f"{encode_string(key)}:{dumps(item)}")
        return "{" + ",".join(members) + "}"
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        return "[" + ",".join(dumps(item) for item in value) + "]"
    raise PHPJSONError(f"cannot encode {type(value).__name__} (send money as a string)")


def _flat(value: dict[Any, Any]) -> bool:
    """Whether `value` is one level of text keys and text, whole-number, boolean or null values,
    with no DEL and no lone surrogate (where PHP and Python's encoder part ways)."""
    texts: list[str] = []
    for key, item in value.items():
        if type(key) is not str:
            return False
        texts.append(key)
        if type(item) is str:
            texts.append(item)
        elif item is not None and type(item) is not int and type(item) is not bool:
            return False
    text = "".join(texts)  # Python never pairs surrogates across the joins
    return "\x7f" not in text and (text.isascii() or not _LONE_SURROGATE.search(text))


def dumps_bytes(value: Any) -> bytes:
    """`dumps(value)` as the bytes that are signed and sent (pure ASCII)."""
    return dumps(value).encode("ascii")
