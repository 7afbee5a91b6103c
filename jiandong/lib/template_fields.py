"""WeChat template-message values made to fit their key's type, so that WeChat never answers 47003.

Since 2023-05-04 a 类目模板's keys are typed like subscription-notification keys (`thing1`, `time2`,
`phrase3`, `amount4`, `character_string5`…) and a value breaking its type's rule is refused with 47003
instead of being folded; a 历史模板's `keyword1`… values are cut to 20 characters; `first` and `remark`
are dropped (wechat-notify.md §1, §2 "Value rules per key type").

A value has a nature (what it is: a text, a moment, a date, money in fen, a short status phrase, an
ASCII code); `fits(key_type, nature)` says whether a key may carry it, `value_for` writes it for that key.
"""

from __future__ import annotations

import datetime as dt
import re
import typing

# Natures of a notice's values.
TEXT, TIME, DATE, MONEY, STATUS, CODE = "text", "time", "date", "money", "status", "code"

# Key types and the natures each can carry (wechat-notify.md §2's table). `thing` and the legacy
# `keyword` take anything written as text; `enum`/`const` need one of the template's own values, which
# only the OA's back office knows, so no value is mapped to them.
ACCEPTS: dict[str, frozenset[str]] = {
    "thing": frozenset({TEXT, TIME, DATE, MONEY, STATUS, CODE}),
    "keyword": frozenset({TEXT, TIME, DATE, MONEY, STATUS, CODE}),
    "name": frozenset({TEXT}),
    "time": frozenset({TIME}),
    "date": frozenset({TIME, DATE}),
    "amount": frozenset({MONEY}),
    "phrase": frozenset({STATUS}),
    "character_string": frozenset({CODE}),
    "number": frozenset({CODE}),
}
# Keys WeChat drops since 2023-05-04: mapping a value to one would silently lose it.
DROPPED = frozenset({"first", "remark"})

THING_MAX = 20        # thing: ≤ 20 characters
KEYWORD_MAX = 20      # 历史模板 keyword values are cut to 20 characters
NAME_MAX_CJK, NAME_MAX_LATIN = 10, 20
PHRASE_MAX = 5        # phrase: ≤ 5 Chinese characters only
CODE_MAX = 32         # character_string / number: ≤ 32
ELLIPSIS = "…"

_KEY = re.compile(r"^([a-z_]+?)(\d*)$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")
_CJK_ONLY = re.compile(r"^[\u4e00-\u9fff]+$")
_ASCII_PRINTABLE = re.compile(r"[^\x21-\x7e]")


class FieldError(ValueError):
    """A mapping WeChat would refuse; the message says why, in the console's words."""


def key_type(key: str) -> str:
    """`thing01` -> `thing`; FieldError for a key WeChat has no rule for (or drops)."""
    if key in DROPPED:
        raise FieldError(f"{key} 已被微信停用（2023 年 5 月起不再显示），请选用模板里的其他字段")
    match = _KEY.match(key)
    if match is None or match.group(1) not in ACCEPTS:
        raise FieldError(f"{key} 不是可用的模板字段（应为 thing1、time2、amount3、phrase4 这样的名字）")
    return match.group(1)


def is_phrase(value: str) -> bool:
    """Whether a status may go into a `phrase` key: 1 to 5 Chinese characters and nothing else."""
    return bool(_CJK_ONLY.match(value)) and len(value) <= PHRASE_MAX


def cut(text: str, limit: int) -> str:
    """At most `limit` characters, an ellipsis marking what was cut; control characters become spaces."""
    text = _CONTROL.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def written(nature: str, value: typing.Any, tz: dt.tzinfo) -> str:
    """A value as a member reads it: `2026年12月6日 15:01`, `88.00元`, the text itself."""
    if nature == TIME:
        moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
        moment = moment.astimezone(tz)
        return f"{moment.year}年{moment.month}月{moment.day}日 {moment:%H:%M}"
    if nature == DATE:
        day = value
        if isinstance(day, str):
            day = dt.datetime.fromisoformat(day) if len(day) > 10 else dt.date.fromisoformat(day)
        if isinstance(day, dt.datetime):
            day = day.astimezone(tz).date()
        return f"{day.year}年{day.month}月{day.day}日"
    if nature == MONEY:
        fen = int(value)
        return f"{fen // 100}.{fen % 100:02d}元"
    return str(value)


def value_for(key: str, nature: str, value: typing.Any, tz: dt.tzinfo) -> str:
    """The value for template key `key`, inside its type's rule. FieldError if the nature does not fit."""
    kind = key_type(key)
    if nature not in ACCEPTS[kind]:
        raise FieldError(f"{key} 不能填这一项")
    if kind == "date":
        # A moment in a date key is written as its date: the time part is optional there.
        return written(DATE, value, tz)
    text = written(nature, value, tz)
    if kind == "thing":
        return cut(text, THING_MAX)
    if kind == "keyword":
        return cut(text, KEYWORD_MAX)
    if kind == "name":
        text = cut(text, NAME_MAX_LATIN)
        return text if text.isascii() else cut(text, NAME_MAX_CJK)
    if kind == "phrase":
        if not is_phrase(text):
            raise FieldError(f"{key} 只能是 5 个以内的汉字")
        return text
    if kind in ("character_string", "number"):
        text = _ASCII_PRINTABLE.sub("", text)
        if kind == "number" and not text.isdigit():
            raise FieldError(f"{key} 只能是数字")
        return text[:CODE_MAX]
    return text


def parse_mapping(text: str, natures: typing.Mapping[str, str]) -> dict[str, str]:
    """`thing1=match` lines -> {"thing1": "match"}, each checked against the value's nature.

    `natures` maps the kind's value names to their natures. FieldError names the first bad line.
    """
    mapping: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        key, sep, name = (part.strip() for part in line.partition("="))
        if not sep or not key or not name:
            raise FieldError(f"第 {number} 行应写成「模板字段=内容」，如 thing1=match")
        kind = key_type(key)
        if name not in natures:
            raise FieldError(f"第 {number} 行：没有「{name}」这一项，可用：{', '.join(natures)}")
        if natures[name] not in ACCEPTS[kind]:
            raise FieldError(f"第 {number} 行：{key} 不能填「{name}」")
        if key in mapping:
            raise FieldError(f"第 {number} 行：{key} 写了两次")
        mapping[key] = name
    return mapping
