"""Banned words of the live chat: a list the staff keep (config value chat_banned_words, one per line),
replaced by *** in a message's text when it is sent."""

from __future__ import annotations

import html
import re
import typing

import aiopg

from .. import db

CONFIG_CODE = "chat_banned_words"
MASK = "***"
MAX_WORDS = 2000
# Sanitised content is text (HTML-escaped) and emoji tags (protocol.sanitize): only the text is searched.
_TAG = re.compile(r"(<img\b[^>]*>)")


def parse_words(value: str) -> tuple[str, ...]:
    """The list as stored: one word or phrase per line (commas too), blanks dropped, longest first."""
    words = {w.strip() for w in re.split(r"[\n,，]", value) if w.strip()}
    return tuple(sorted(words, key=lambda w: (-len(w), w)))[:MAX_WORDS]


def pattern(words: typing.Iterable[str]) -> re.Pattern[str] | None:
    """One case-insensitive pattern of the words as they appear in escaped text (& < > " ' escaped)."""
    escaped = [re.escape(html.escape(w)) for w in words]
    return re.compile("|".join(escaped), re.IGNORECASE) if escaped else None


def censor(content: str, compiled: re.Pattern[str] | None) -> str:
    """Sanitised content with every banned word in its text replaced by ***; emoji tags are left alone."""
    if compiled is None:
        return content
    return "".join(part if i % 2 else compiled.sub(MASK, part) for i, part in enumerate(_TAG.split(content)))


class BannedWords:
    """The compiled list, read through the content cache (a config change drops it in every process)."""

    def __init__(self, pool: aiopg.Pool, cache: typing.Any) -> None:
        self.pool = pool
        self.cache = cache

    async def _load(self) -> re.Pattern[str] | None:
        value = await db.fetchval(self.pool, "SELECT value FROM config_values WHERE code = %s", (CONFIG_CODE,))
        return pattern(parse_words(value or ""))

    async def apply(self, content: str) -> str:
        return censor(content, await self.cache.get(("config", CONFIG_CODE), self._load))
