"""The staff password rule: long enough and not guessable (zxcvbn), with a reason in Chinese when refused."""

from __future__ import annotations

import typing

from zxcvbn import zxcvbn

PASSWORD_MIN = 8
PASSWORD_MAX = 128
# zxcvbn's score: 3 = about 10^8 guesses or more. Staff accounts can refund money; with sign-ins slowed
# down (services/login_throttle.py) that many guesses take years.
MIN_SCORE = 3
# Words anyone guessing a password of the club's staff tries first.
CLUB_WORDS = ("jiandong", "建东", "建东体育", "jiandongtiyu", "jd", "admin", "管理员", "houtai", "后台", "club")
# zxcvbn's time grows quickly with length; a password is scored on its first characters (a long one is not
# the guessable kind).
SCORED_LENGTH = 64

# What zxcvbn found, in the words staff read, most telling first.
REASONS = {
    "user_inputs": "包含用户名或俱乐部名称",
    "passwords": "是常见密码",
    "repeat": "是重复的字符",
    "sequence": "是连续的字符（如 12345678、abcdef）",
    "spatial": "是键盘上相邻的按键（如 qwerty）",
    "date": "是日期",
    "regex": "是年份等常见数字",
    "dictionary": "是常见的单词或姓名",
}


def weakness(password: str, username: str = "") -> str | None:
    """Why `password` may not be a staff password (a sentence in Chinese), or None if it may.

    CPU-bound for a few milliseconds: call it in a thread from the event loop.
    """
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        return f"密码长度须为 {PASSWORD_MIN}~{PASSWORD_MAX} 个字符"
    if not password.strip():
        return "密码不能全是空格"
    name = username.strip()
    inputs = [word for word in (name, *CLUB_WORDS) if word]
    # zxcvbn finds the name too, but a name with a few more characters can still score well.
    if len(name) >= 3 and name.lower() in password.lower():
        return "密码不能包含用户名"
    result = zxcvbn(password[:SCORED_LENGTH], user_inputs=inputs)
    if result["score"] >= MIN_SCORE:
        return None
    found = _reasons(result["sequence"])
    why = "、".join(found) if found else "太短或太简单"
    return f"密码太容易被猜到（{why}），请换一个：例如几个不相关的词加上数字或符号"


def _reasons(sequence: typing.Sequence[typing.Mapping[str, typing.Any]]) -> list[str]:
    kinds = set()
    for match in sequence:
        if match["pattern"] == "dictionary":
            kinds.add(match["dictionary_name"] if match["dictionary_name"] in ("user_inputs", "passwords")
                      else "dictionary")
        elif match["pattern"] in REASONS:
            kinds.add(match["pattern"])
    return [text for kind, text in REASONS.items() if kind in kinds]
