"""Text from outside (WeChat, WeChat Pay, stream servers) made safe to store, log and show.

PostgreSQL refuses NUL in text, a line break in a logged value forges a log line, and a name or
URL is shown to other users: every field taken from an outside service goes through here.
"""

from __future__ import annotations

import re
import typing
from urllib.parse import urlsplit

# C0 and C1 controls, DEL, the Unicode line and paragraph separators and lone surrogates (which
# no UTF-8 encoder takes): none belongs in a one-line value.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
# Characters that would end an attribute or a tag where a URL is put into HTML.
_URL_UNSAFE = re.compile(r"[\s\"'<>`\\]")


# A name is plain text, shown to everyone (a live room, a match's score): no markup, no control characters.
NOT_IN_NAMES = re.compile(r'[\x00-\x1f\x7f-\x9f<>"\u2028\u2029]')


def is_plain_name(value: str) -> bool:
    """Whether a name holds none of < > " and no control character (NOT_IN_NAMES)."""
    return NOT_IN_NAMES.search(value) is None


def clean_text(value: typing.Any, max_len: int | None = None) -> str:
    """`value` as one line of text: "" for a non-string, control characters removed, at most `max_len` characters."""
    if not isinstance(value, str):
        return ""
    text = _UNPRINTABLE.sub("", value)
    return text[:max_len] if max_len is not None else text


def is_http_url(value: str, max_len: int = 500) -> bool:
    """Whether `value` is an absolute http(s) URL with a host, safe to put into an HTML attribute as is."""
    if not value or len(value) > max_len or _UNPRINTABLE.search(value) or _URL_UNSAFE.search(value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
