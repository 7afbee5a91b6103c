"""Banned words of the live chat: a list the moderators keep (config value chat_banned_words, one per line),
replaced by *** in a message's text when it is sent, however the word is spelled.

Words and messages are compared as skeletons: each character folded to what it looks like. A message
spelling a word with full-width letters, look-alikes from other scripts (Cyrillic а for Latin a),
accents, invisible characters (zero-width joiners, soft hyphens), spaces or an emoji between its
letters still matches; the *** replaces the span of the original text the match covers.
"""

from __future__ import annotations

import html
import re
import typing
import unicodedata

import aiopg
from confusable_homoglyphs import confusables

from ..store import db
from .content_cache import shape

if typing.TYPE_CHECKING:
    from .content_cache import ContentCache

CONFIG_CODE = "chat_banned_words"
MASK = "***"
MAX_WORDS = 2000
# Sanitised content (protocol.sanitize) is HTML-escaped text and emoji tags. The tags are skipped (a word
# is found across one), the entities nh3 writes are read as the character they stand for.
_TAG = re.compile(r"<img\b[^>]*>")
_ENTITY = re.compile(r"&(?:amp|lt|gt|quot|apos|nbsp|#39|#x27);")
_TOKEN = re.compile(r"(<img\b[^>]*>)|(&(?:amp|lt|gt|quot|apos|nbsp|#39|#x27);)|(.)", re.DOTALL)
# Characters folded and remembered at most; past it a character is folded each time (junk text cannot
# make the table grow without end).
FOLD_CACHE_MAX = 50_000


def _lookalikes() -> dict[str, str]:
    """Each non-ASCII letter or digit that Unicode's confusables data says looks like an ASCII one, mapped
    to it (a letter rather than a digit when it looks like both: Cyrillic О is O, not 0)."""
    table = {}
    for char, homoglyphs in confusables.confusables_data.items():
        if len(char) != 1 or char.isascii():
            continue
        ascii_like = [h["c"] for h in homoglyphs if len(h["c"]) == 1 and h["c"].isascii() and h["c"].isalnum()]
        if ascii_like:
            table[char] = next((c for c in ascii_like if c.isalpha()), ascii_like[0])
    return table


LOOKALIKES = _lookalikes()


def fold_char(char: str) -> str:
    """What one character counts as when words are matched: compatibility forms decomposed (full-width
    ｂ is b), accents and other combining marks, invisible format characters, spaces and control
    characters dropped (""), look-alikes folded to the ASCII letter, case folded. May be several characters."""
    if char.isascii():
        return "" if char.isspace() or not char.isprintable() else char.lower()
    out = []
    for c in unicodedata.normalize("NFKD", char):
        category = unicodedata.category(c)
        # M*: combining marks; Cf: format (zero-width, soft hyphen, bidi controls, tags); Z*, C*: space, controls.
        if category[0] in "MZC" or c.isspace():
            continue
        out.append(LOOKALIKES.get(c, c).casefold())
    return "".join(out)


class _FoldTable(dict[int, str]):
    """A str.translate table folding every character (fold_char), filled as characters are met."""

    def __missing__(self, code: int) -> str:
        folded = fold_char(chr(code))
        if len(self) < FOLD_CACHE_MAX:
            self[code] = folded
        return folded


FOLD = _FoldTable()


def fold(text: str) -> str:
    """The skeleton of plain text: every character folded (fold_char)."""
    return text.translate(FOLD)


def parse_words(value: str) -> tuple[str, ...]:
    """The list as stored: one word or phrase per line (commas too), blanks dropped, longest first."""
    words = {w.strip() for w in re.split(r"[\n,，]", value) if w.strip()}
    return tuple(sorted(words, key=lambda w: (-len(w), w)))[:MAX_WORDS]


class Censor:
    """A banned-word list compiled once (per change of the list): `apply(content)` masks its words."""

    __slots__ = ("pattern",)

    def __init__(self, words: typing.Iterable[str]) -> None:
        # Longest first, so a phrase is masked whole rather than the shorter word inside it.
        skeletons = sorted({fold(w) for w in words} - {""}, key=lambda w: (-len(w), w))
        self.pattern = re.compile("|".join(map(re.escape, skeletons))) if skeletons else None

    def apply(self, content: str) -> str:
        """Sanitised content with every banned word in its text replaced by ***; emoji tags outside a
        word are left alone. Costs one translate and one search of the text when no word is in it."""
        if self.pattern is None:
            return content
        text = _ENTITY.sub(lambda m: html.unescape(m.group()), _TAG.sub("", content))
        if self.pattern.search(fold(text)) is None:
            return content
        return self._mask(content)

    def _mask(self, content: str) -> str:
        # The skeleton, and for each of its characters the span of the original it comes from.
        chars: list[str] = []
        starts: list[int] = []
        ends: list[int] = []
        for token in _TOKEN.finditer(content):
            if token.group(1):
                continue
            folded = fold(html.unescape(token.group(2)) if token.group(2) else token.group(3))
            chars.extend(folded)
            starts.extend([token.start()] * len(folded))
            ends.extend([token.end()] * len(folded))
        assert self.pattern is not None
        out: list[str] = []
        last = 0
        for match in self.pattern.finditer("".join(chars)):
            start, end = starts[match.start()], ends[match.end() - 1]
            if start < last:
                # Begins inside the original character that ended the previous match: one mask for both.
                last = max(last, end)
                continue
            out += [content[last:start], MASK]
            last = end
        out.append(content[last:])
        return "".join(out)


NO_WORDS = Censor(())
# The compiled list, of the "config" kind: any config change (the list's included) drops it everywhere.
CENSOR = shape("config", "chat_censor", Censor)


class BannedWords:
    """The compiled list, read through the content cache: compiled once per change, in each process."""

    def __init__(self, pool: aiopg.Pool, cache: ContentCache) -> None:
        self.pool = pool
        self.cache = cache

    async def _load(self) -> Censor:
        value = await db.fetchval(self.pool, "SELECT value FROM config_values WHERE code = %s", (CONFIG_CODE,))
        return Censor(parse_words(value or ""))

    async def apply(self, content: str) -> str:
        return (await self.cache.get(CENSOR(), self._load)).apply(content)
