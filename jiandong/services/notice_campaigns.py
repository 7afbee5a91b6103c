"""Notices staff send (群发通知): to a match's sign-ups, a team, all active members or members whose membership
ends within N days. A preview says who receives it and by which channel; sending writes one outbox row per
member in one transaction (the sending job does the rest) and records it in the audit log.

Owners may send any number; an editor at most `notice_editor_daily_cap` a day (the club's calendar day).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import secrets
import typing

from aiohttp import web

from ..keys import pg_key, settings_key
from ..lib import template_fields as tf
from ..lib.cleaning import is_http_url
from ..store import db
from . import audit, notice_kinds, notices
from .admins import OWNER

TITLE_MAX, CONTENT_MAX, URL_MAX = 40, 200, 500
AUDIENCES = {"match": "报名某场比赛的会员", "team": "某支球队的球员", "active": "全部有效会员",
             "expiring": "N 天内到期的会员"}
EXPIRING_DAYS_MAX = 366
PREVIEW_NAMES = 50

_ACTIVE = "u.member_status = 1 AND u.member_expire_time > now() AND NOT u.is_disabled"
# The members an audience names (each once), as a subquery of user ids.
AUDIENCE_SQL = {
    "match": "SELECT a.user_id FROM competition_applies a WHERE a.competition_id = %(id)s",
    "team": """SELECT p.user_id FROM team_members m JOIN players p ON p.id = m.player_id
               WHERE m.team_id = %(id)s AND m.left_at IS NULL AND p.user_id IS NOT NULL""",
    "active": f"SELECT u.id FROM users u WHERE {_ACTIVE}",
    "expiring": f"""SELECT u.id FROM users u
                    WHERE {_ACTIVE} AND u.member_expire_time <= now() + make_interval(days => %(id)s)""",
}


class CampaignError(ValueError):
    """A notice staff may not send as asked; the message says why, for the console."""


@dataclasses.dataclass(frozen=True)
class Draft:
    audience: str
    audience_id: int | None
    title: str
    content: str
    url: str


def draft(audience: str, audience_id: str, title: str, content: str, url: str) -> Draft:
    """The form checked: CampaignError naming the first problem."""
    if audience not in AUDIENCES:
        raise CampaignError("请选择发给谁")
    number: int | None = None
    if audience in ("match", "team", "expiring"):
        if not audience_id.isdigit() or not audience_id.isascii() or int(audience_id) < 1:
            raise CampaignError({"match": "请选择比赛", "team": "请选择球队", "expiring": "请填写天数"}[audience])
        number = int(audience_id)
        if audience == "expiring" and number > EXPIRING_DAYS_MAX:
            raise CampaignError(f"天数最多 {EXPIRING_DAYS_MAX}")
    title, content, url = title.strip(), content.strip(), url.strip()
    if not 1 <= len(title) <= TITLE_MAX:
        raise CampaignError(f"标题为 1 到 {TITLE_MAX} 个字")
    if not 1 <= len(content) <= CONTENT_MAX:
        raise CampaignError(f"内容为 1 到 {CONTENT_MAX} 个字")
    if url and (len(url) > URL_MAX or not is_http_url(url)):
        raise CampaignError("链接应以 http:// 或 https:// 开头")
    return Draft(audience, number, title, content, url)


PREVIEW_SQL = """
SELECT u.id, u.username, u.mobile IS NOT NULL AS has_phone, u.openid <> '' AS has_openid
FROM users u WHERE u.id IN ({audience}) ORDER BY u.id
"""


@dataclasses.dataclass
class Preview:
    total: int
    wechat: int          # reached through the Official Account (SMS if they turned out not to follow it)
    sms: int             # no template message possible, an SMS template and a phone: by SMS
    unreachable: int
    names: list[str]     # the first PREVIEW_NAMES
    # What the template message shows, key by key, as sent (cut to each key's limit: thing 20 characters);
    # empty when the template's field settings do not fit.
    wechat_fields: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    sms_text: str = ""   # the notice as one line (the SMS template's variables, and the log in development)


async def preview(app: web.Application, d: Draft) -> Preview:
    """Who would receive `d` now, and by which channel, as the sending job would choose it."""
    pool = app[pg_key]
    rows = await db.fetchall(pool, PREVIEW_SQL.format(audience=AUDIENCE_SQL[d.audience]), {"id": d.audience_id})
    kind = (await notices.kind_settings(pool))["staff_notice"]
    dev = app[settings_key].dev_wechat
    wechat = sms = unreachable = 0
    for row in rows:
        if dev or (kind.template_id and row["has_openid"]):
            wechat += 1
        elif kind.sms_template_code and row["has_phone"]:
            sms += 1
        else:
            unreachable += 1
    tz = app[settings_key].tz
    data = {"title": d.title, "content": d.content, "time": dt.datetime.now(tz)}
    try:
        fields = list(notice_kinds.template_data(kind.kind, kind.mapping(), data, tz).items())
    except tf.FieldError:
        fields = []
    return Preview(len(rows), wechat, sms, unreachable, [r["username"] or f"#{r['id']}" for r in rows[:PREVIEW_NAMES]],
                   fields, notice_kinds.line(kind.kind, data, tz))


SENT_TODAY_SQL = """
SELECT count(*) AS n FROM notice_campaigns
WHERE created_by = %(admin)s AND created_at >= date_trunc('day', now() AT TIME ZONE %(tz)s) AT TIME ZONE %(tz)s
"""
CREATE_SQL = """
INSERT INTO notice_campaigns (audience, audience_id, title, content, url, created_by, send_key)
VALUES (%(audience)s, %(audience_id)s, %(title)s, %(content)s, %(url)s, %(admin)s, %(send_key)s)
ON CONFLICT (send_key) DO NOTHING RETURNING id
"""
SENT_SQL = "SELECT id FROM notice_campaigns WHERE send_key = %s"
SEND_KEY = re.compile(r"[0-9a-f]{32}")


def new_send_key() -> str:
    """The key a preview hands to its send button: 32 hex digits, one campaign per key."""
    return secrets.token_hex(16)


class AlreadySent(Exception):
    """This preview was sent before: `campaign` is what it wrote."""

    def __init__(self, campaign: int) -> None:
        super().__init__(campaign)
        self.campaign = campaign
ROWS_SQL = """
INSERT INTO notices (kind, user_id, event_key, data, campaign_id)
SELECT 'staff_notice', u.id, 'staff_notice:' || %(campaign)s || ':' || u.id,
       jsonb_build_object('title', %(title)s::text, 'content', %(content)s::text, 'time', now()), %(campaign)s
FROM users u WHERE u.id IN ({audience})
"""


async def send(app: web.Application, actor: audit.Actor, role: str, d: Draft, send_key: str) -> int:
    """Write the campaign and its notices in one transaction; its id.

    `send_key` is the preview's (new_send_key): CampaignError when it is not one, AlreadySent when a campaign
    was written with it (a double click, a resubmitted page: members are told once). CampaignError past the
    editor's cap or when nobody would receive it.
    """
    if not SEND_KEY.fullmatch(send_key):
        raise CampaignError("请先预览，再从预览页发送")
    settings = app[settings_key]
    async with db.transaction(app[pg_key]) as cur:
        if role != OWNER:
            # Serialised per account, so two sends at once cannot both pass the cap.
            await cur.execute("SELECT id FROM admins WHERE id = %s FOR UPDATE", (actor.admin_id,))
        await cur.execute(SENT_SQL, (send_key,))
        if sent := await cur.fetchone():
            raise AlreadySent(sent["id"])
        if role != OWNER:
            await cur.execute(SENT_TODAY_SQL, {"admin": actor.admin_id, "tz": settings.timezone})
            if (await cur.fetchone())["n"] >= settings.notice_editor_daily_cap:
                raise CampaignError(f"编辑每天最多群发 {settings.notice_editor_daily_cap} 次，今天已用完；"
                                    "如需再发，请联系所有者")
        await cur.execute(CREATE_SQL, {**dataclasses.asdict(d), "admin": actor.admin_id, "send_key": send_key})
        if (created := await cur.fetchone()) is None:
            # Another request with this key committed while this one waited on the key's index entry.
            await cur.execute(SENT_SQL, (send_key,))
            raise AlreadySent((await cur.fetchone())["id"])
        campaign = created["id"]
        await cur.execute(ROWS_SQL.format(audience=AUDIENCE_SQL[d.audience]),
                          {"campaign": campaign, "title": d.title, "content": d.content, "id": d.audience_id})
        count = cur.rowcount
        if count == 0:
            raise CampaignError("没有会员会收到这条通知，请换一个发送对象")
        await cur.execute("UPDATE notice_campaigns SET recipients = %s WHERE id = %s", (count, campaign))
        await audit.record(cur, actor, "notice.send", f"campaign:{campaign}",
                           f"{AUDIENCES[d.audience]}：{d.title}（{count} 人）",
                           after={"audience": d.audience, "audience_id": d.audience_id, "title": d.title,
                                  "content": d.content, "url": d.url, "recipients": count})
    return typing.cast(int, campaign)


PROGRESS_SQL = """
SELECT c.*, a.username AS admin_name,
       count(n.id) FILTER (WHERE n.state IN ('pending', 'sending')) AS waiting,
       count(n.id) FILTER (WHERE n.state = 'sent') AS sent, count(n.id) FILTER (WHERE n.state = 'sms') AS sms,
       count(n.id) FILTER (WHERE n.state = 'logged') AS logged,
       count(n.id) FILTER (WHERE n.state = 'failed') AS failed,
       count(n.id) FILTER (WHERE n.state = 'unreachable') AS unreachable
FROM notice_campaigns c LEFT JOIN admins a ON a.id = c.created_by LEFT JOIN notices n ON n.campaign_id = c.id
WHERE {where}
GROUP BY c.id, a.username ORDER BY c.id DESC LIMIT %(limit)s
"""


async def progress(pool: typing.Any, campaign_id: int) -> db.Row | None:
    """A campaign with its counts by outcome (`waiting` = not finished yet)."""
    rows = await db.fetchall(pool, PROGRESS_SQL.format(where="c.id = %(id)s"), {"id": campaign_id, "limit": 1})
    return rows[0] if rows else None


async def recent(pool: typing.Any, limit: int = 20) -> list[db.Row]:
    return await db.fetchall(pool, PROGRESS_SQL.format(where="true"), {"limit": limit})

