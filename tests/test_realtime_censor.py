"""The banned-word censor on sanitised content: what is found, and which span of the original the *** replaces.
(The chat's own tests send these through the websocket; tests/attacks/test_chat.py has the look-alikes.)"""

from __future__ import annotations

import pytest

from jiandong.realtime.protocol import sanitize
from jiandong.services.banned_words import Censor, fold, parse_words

EMOJI = '<img class="emoji" src="/h5/images/emoji/1.gif">'


def masked(words: str, content: str) -> str:
    return Censor(parse_words(words)).apply(sanitize(content, "/h5/images/emoji/"))


@pytest.mark.parametrize("content, expected", [
    # Only the span of the word is replaced; what is around it stays as it was written.
    ("前面 ｂ a\u200bd 后面", "前面 *** 后面"),
    (f"{EMOJI}傻瓜{EMOJI}", f"{EMOJI}***{EMOJI}"),
    (f"傻{EMOJI}瓜", "***"),
    # Two words next to each other, and a phrase that holds a shorter word: the phrase whole.
    ("傻瓜bad", "******"),
    ("you bad guy", "you ***"),
    ("BAD Guy!", "***!"),
    # No word: the content comes back as it was, spaces, marks and all.
    ("b ａ\u200b ú t", "b ａ\u200b ú t"),
    ("", ""),
])
def test_the_mask_covers_the_word_as_written(content, expected):
    assert masked("傻瓜\nbad\nbad guy", content) == expected


def test_words_are_folded_like_messages():
    assert fold("Ｂ\u0430Ｄ\u00ad \u0301") == "bad"
    assert fold("傻\u3000瓜\u200d") == "傻瓜"
    # A word that folds to nothing (spaces, invisible characters) matches nothing.
    assert Censor(["\u200b", " "]).pattern is None
    assert masked("\u200b\n \n", "你好") == "你好"


def test_an_empty_list_changes_nothing():
    assert Censor(()).apply("傻瓜") == "傻瓜"
