"""The chat protocol: client frames parsed and checked, server frames shaped, content sanitised."""

from __future__ import annotations

import html
import re
import typing
from urllib.parse import unquote, urlsplit

import nh3

from ..errors import ApiError, ParameterError
from ..lib import encoding
from ..store.room_channels import room_text

LOGIN, SEND_ALL, SEND_ONE, LOGOUT = "LOGIN", "SEND_ALL", "SEND_ONE", "LOGOUT"
ONLINE, ERROR, LIVE_STATUS = "OnLine", "ERROR", "LIVE_STATUS"
CLIENT_TYPES = frozenset((LOGIN, SEND_ALL, SEND_ONE, LOGOUT))
# The application heartbeat: browsers cannot send protocol pings, so the pages send this text.
HEARTBEAT = "@heart"
MAX_CONTENT = 500
# Connection ids: "<process id>-<n>"; the process id routes a SEND_ONE to the process holding it.
UUID_RE = re.compile(r"^([0-9a-f]{12})-([0-9]{1,18})$")
MAX_ROOM_ID = 2**63 - 1
# A message's position in its room's stream ("seq": "<ms>-<n>"), as a reconnecting client sends the last it saw.
SEQ_RE = re.compile(r"[0-9]{1,19}-[0-9]{1,19}")

_IMG = re.compile(r"<img\b[^>]*>")
_ATTR = re.compile(r'([a-z]+)="([^"]*)"')
# What may follow the emoji path: a plain file name. No directory part, no dot segment, no
# backslash, nothing left to decode; checked after HTML and percent decoding.
EMOJI_FILE_RE = re.compile(r"[0-9A-Za-z_-]{1,64}\.(?:gif|png|jpg|webp)")


# A client frame that breaks the protocol: answered with an error frame, the socket stays open.
FrameError = ParameterError


class Frame(typing.NamedTuple):
    type: str
    room_id: int | None
    # room_id as the client wrote it ("1" or 1): echoed back as sent, old pages compare it as is
    room_ref: str | int | None
    content: str
    token: str
    send_to_one: str
    # LOGIN only: the `seq` of the last message the client saw in the room ("": none), to recover what followed.
    since: str = ""


def _field(data: dict[str, typing.Any], name: str) -> str:
    value = data.get(name, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise FrameError(f"参数错误: {name} 应为字符串")
    return value


def parse_room(value: typing.Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise FrameError("参数错误: room_id 应为正整数")
    if isinstance(value, int):
        room = value
    elif isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        room = int(value)
    else:
        raise FrameError("参数错误: room_id 应为正整数")
    if not 1 <= room <= MAX_ROOM_ID:
        raise FrameError("参数错误: room_id 应为正整数")
    return room


def parse(text: str) -> Frame:
    """One client text frame, checked: the shape of every field, the type and the content length."""
    try:
        data = encoding.loads(text)
    except encoding.JSONDecodeError:
        raise FrameError("参数错误: 消息不是 JSON") from None
    if not isinstance(data, dict):
        raise FrameError("参数错误: 消息应为 JSON 对象")
    kind = data.get("type")
    if kind is None:
        raise FrameError("参数错误: 缺少 type")
    if not isinstance(kind, str):
        raise FrameError("参数错误: type 应为字符串")
    if kind not in CLIENT_TYPES:
        raise FrameError(f"参数错误: 未知的 type {kind[:32]}")
    room_ref = data.get("room_id")
    room_id = parse_room(room_ref)
    content = _field(data, "content")
    if len(content) > MAX_CONTENT:
        raise FrameError(f"参数错误: 消息内容不能超过 {MAX_CONTENT} 个字符")
    send_to_one = _field(data, "send_to_one")
    if kind == SEND_ALL and room_id is None:
        raise FrameError("参数错误: 缺少 room_id")
    if kind in (SEND_ALL, SEND_ONE) and not content.strip():
        raise FrameError("参数错误: 消息内容不能为空")
    if kind == SEND_ONE and not UUID_RE.match(send_to_one):
        raise FrameError("参数错误: send_to_one 不是有效的连接标识")
    since = _field(data, "seq") if kind == LOGIN else ""
    if since and not (SEQ_RE.fullmatch(since) and max(int(n) for n in since.split("-")) < 2**64):
        raise FrameError("参数错误: seq 不是有效的消息位置")
    return Frame(kind, room_id, room_ref if room_id is not None else None, content, _field(data, "token"), send_to_one,
                 since)


def emoji_src(src: str, emoji_path: str) -> str | None:
    """The canonical URL path of an emoji image, or None unless `src` names a plain file under `emoji_path`.

    `src` is the attribute's value as the page wrote it (HTML entities and percent escapes
    included). The answer is rebuilt from `emoji_path` and the checked file name, so what is kept
    is exactly what was checked, however the original was spelled.
    """
    url = urlsplit(html.unescape(src))
    # Paths on our own site only: an image on another host would tell it who reads the room.
    if url.scheme or url.netloc or url.query or url.fragment:
        return None
    path = unquote(url.path)
    if not path.startswith(emoji_path):
        return None
    name = path[len(emoji_path):]
    return emoji_path + name if EMOJI_FILE_RE.fullmatch(name) else None


def _emoji_tag(tag: str, emoji_path: str) -> str:
    attrs = dict(_ATTR.findall(tag))
    if attrs.get("class") != "emoji":
        return ""
    src = emoji_src(attrs.get("src", ""), emoji_path)
    return "" if src is None else f'<img class="emoji" src="{src}">'


def sanitize(content: str, emoji_path: str) -> str:
    """Untrusted HTML to text: everything escaped or dropped but `<img class="emoji" src="<emoji path><file>">`.

    The pages turn `[微笑]` into `<img class="emoji" src="/h5/images/emoji/1.gif"/>` before sending;
    such a tag comes out as `<img class="emoji" src="/h5/images/emoji/1.gif">`.
    """
    cleaned = nh3.clean(
        content,
        tags={"img"},
        clean_content_tags={"script", "style"},
        attributes={"img": {"class", "src"}},
        url_schemes={"http", "https"},
        link_rel=None,
    )
    # nh3 leaves well-formed tags with quoted attributes only, so a regex over its output is safe.
    return _IMG.sub(lambda m: _emoji_tag(m.group(0), emoji_path), cleaned)


def error_frame(exc: ApiError) -> str:
    return encoding.dumps_str({"type": ERROR, "error_code": exc.error_code, "msg": exc.msg})





def online_frame(room_id: int | None, count: int) -> bytes:
    if room_id is None:
        return encoding.dumps({"type": ONLINE, "ONLINE": count})
    return encoding.dumps({"type": ONLINE, "room_id": room_text(room_id), "ONLINE": count})

