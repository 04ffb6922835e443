"""Turning what a web framework hands over into plain, single-valued notification parameters."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from paymux.errors import SignatureError
from paymux.incoming import NotificationInput

_SURROGATE = re.compile("[\ud800-\udfff]")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://|/")
"""How a URL starts: a scheme and `://`, or the `/` of a path. A query string starts `name=`."""


def notification_params(data: NotificationInput) -> dict[str, str]:
    """Query parameters from a mapping, a raw query string, a path with a query or a full URL.

    A `?` inside a value (gateways send it unencoded) never makes a query string a URL.

    Rejects (with `SignatureError`) anything a signature check could be fooled by: a parameter
    given twice, a value that is not text, and text that is not valid UTF-8.
    """
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise SignatureError("notification is not valid UTF-8") from None
    if isinstance(data, str):
        return _from_query(_query_of(data))
    if isinstance(data, Mapping):
        return _from_mapping(data)
    raise SignatureError(f"cannot read a notification from {type(data).__name__}")


def _query_of(text: str) -> str:
    if not _URL.match(text):
        return text.removeprefix("?")
    try:
        return urlsplit(text).query
    except ValueError as error:  # e.g. an unclosed `[` of an IPv6 host
        raise SignatureError(f"notification URL is malformed: {error}") from None


def _from_query(query: str) -> dict[str, str]:
    try:
        pairs = parse_qsl(query, keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise SignatureError("notification is not valid UTF-8") from None
    except ValueError as error:
        raise SignatureError(f"notification query string is malformed: {error}") from None
    params: dict[str, str] = {}
    for key, value in pairs:
        if key in params:
            raise SignatureError(f"notification parameter {key!r} is given more than once")
        params[key] = _checked_text(key, value)
    return params


def _from_mapping(data: Mapping[Any, Any]) -> dict[str, str]:
    params: dict[str, str] = {}
    for key, value in data.items():
        if not isinstance(key, str):
            raise SignatureError("notification parameter names must be text")
        if type(value) is not str:
            if isinstance(value, (list, tuple)):
                if len(value) != 1:
                    raise SignatureError(f"notification parameter {key!r} is given more than once")
                value = value[0]
            if not isinstance(value, str):
                raise SignatureError(f"notification parameter {key!r} is not text")
        if not (key.isascii() and value.isascii()):  # only non-ASCII text can be malformed
            _checked_text("parameter name", key)
            _checked_text(key, value)
        params[key] = value
    return params


def _checked_text(name: str, value: str) -> str:
    if not value.isascii() and _SURROGATE.search(value):
        raise SignatureError(f"notification parameter {name!r} is not valid UTF-8")
    return value
