"""The notice outbox: a notice is a row written in the transaction of the event that causes it, claimed by the
one sending job, and finished once (sent, sent by SMS, logged, failed, unreachable) or put back for later.

States: pending → sending (claimed: `claim` names the sender) → sent | sms | logged | failed | unreachable,
or back to pending with a later `next_attempt_at`. A row left 'sending' by a sender that died is claimed
again after SENDING_STALE; each finish is guarded by the claim, so a late sender cannot overwrite it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import typing

from ..lib import encoding
from ..lib import template_fields as tf
from ..store import db
from .notice_kinds import KINDS, Kind

# Longer than a sending round may last, shorter than WeChat's 10-minute client_msg_id window: a notice a
# dead sender held is sent again with the same client_msg_id, which WeChat turns into one message.
SENDING_STALE = dt.timedelta(seconds=120)

ENQUEUE_SQL = """
INSERT INTO notices (kind, user_id, event_key, data, campaign_id)
SELECT %(kind)s, %(user_id)s, %(event_key)s, %(data)s, %(campaign_id)s
WHERE COALESCE((SELECT enabled FROM notice_kinds WHERE kind = %(kind)s), true)
ON CONFLICT (event_key) DO NOTHING
RETURNING id
"""


def jsonable(data: typing.Mapping[str, typing.Any]) -> str:
    return encoding.dumps_str({k: v.isoformat() if isinstance(v, (dt.date, dt.datetime)) else v
                               for k, v in data.items()})


async def enqueue(cur: typing.Any, kind: str, user_id: int, event_key: str, data: typing.Mapping[str, typing.Any],
                  campaign_id: int | None = None) -> bool:
    """In the caller's transaction: a notice of `kind` about `event_key`, unless the kind is switched off or
    that event already has one. Whether a row was written."""
    assert kind in KINDS, kind
    await cur.execute(ENQUEUE_SQL, {"kind": kind, "user_id": user_id, "event_key": event_key,
                                    "data": jsonable(data), "campaign_id": campaign_id})
    return await cur.fetchone() is not None


def product_title(snap_items: typing.Any) -> str:
    """What was bought, from an order's snapshot (a list of one product view)."""
    if isinstance(snap_items, str):
        snap_items = encoding.loads(snap_items)
    first = snap_items[0] if isinstance(snap_items, list) and snap_items else {}
    return str(first.get("title") or "会员") if isinstance(first, dict) else "会员"


# -- reminders: rows written by the sending job's rounds, once per event key --------------------------------

MATCH_REMINDERS_SQL = """
INSERT INTO notices (kind, user_id, event_key, data)
SELECT 'match_reminder', a.user_id, 'match_reminder:' || c.id || ':' || a.user_id,
       jsonb_build_object('match', c.title, 'start', c.play_time, 'venue', c.venue)
FROM competitions c JOIN competition_applies a ON a.competition_id = c.id
WHERE c.status = 1 AND c.play_time > now() AND c.play_time <= now() + make_interval(hours => %(hours)s)
  AND COALESCE((SELECT enabled FROM notice_kinds WHERE kind = 'match_reminder'), true)
ON CONFLICT (event_key) DO NOTHING
"""
# Active members whose membership ends within 7 days but not today (today's is the last-day notice), and
# those whose last day is today; keyed by the end date, so a renewed membership is reminded again.
EXPIRY_SQL = """
INSERT INTO notices (kind, user_id, event_key, data)
SELECT %(kind)s, u.id, %(kind)s || ':' || u.id || ':' || (u.member_expire_time AT TIME ZONE %(tz)s)::date,
       jsonb_build_object('member', u.username, 'until', u.member_expire_time)
FROM users u
WHERE u.member_status = 1 AND NOT u.is_disabled AND u.member_expire_time > now()
  AND ((%(kind)s = 'membership_expiring' AND u.member_expire_time <= now() + interval '7 days'
        AND (u.member_expire_time AT TIME ZONE %(tz)s)::date > (now() AT TIME ZONE %(tz)s)::date)
    OR (%(kind)s = 'membership_last_day'
        AND (u.member_expire_time AT TIME ZONE %(tz)s)::date = (now() AT TIME ZONE %(tz)s)::date))
  AND COALESCE((SELECT enabled FROM notice_kinds WHERE kind = %(kind)s), true)
ON CONFLICT (event_key) DO NOTHING
"""


async def write_reminders(pool: typing.Any, reminder_hours: int, tz: str) -> int:
    """Reminders now due that were not written yet: match reminders, expiry in 7 days, last day. How many."""
    async with db.transaction(pool) as cur:
        await cur.execute(MATCH_REMINDERS_SQL, {"hours": reminder_hours})
        written = cur.rowcount
        for kind in ("membership_expiring", "membership_last_day"):
            await cur.execute(EXPIRY_SQL, {"kind": kind, "tz": tz})
            written += cur.rowcount
    return written


# -- the sender's side ------------------------------------------------------------------------------------

CLAIM_SQL = """
WITH fresh AS (
    SELECT id, 'pending' AS was FROM notices
    WHERE state = 'pending' AND next_attempt_at <= now()
    ORDER BY next_attempt_at, id LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), stale AS (
    SELECT id, 'sending' AS was FROM notices
    WHERE state = 'sending' AND claimed_at < now() - %(stale)s
    ORDER BY claimed_at LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), due AS (
    SELECT * FROM fresh UNION ALL SELECT * FROM stale
)
UPDATE notices n SET state = 'sending', claim = %(claim)s, claimed_at = now(), attempts = n.attempts + 1
FROM due, users u
WHERE n.id = due.id AND u.id = n.user_id
RETURNING n.id, n.kind, n.user_id, n.data, n.channel, n.attempts, n.campaign_id, n.created_at,
          u.openid, u.mobile, u.username, due.was,
          COALESCE((SELECT url FROM notice_campaigns WHERE id = n.campaign_id), '') AS url
"""


@dataclasses.dataclass
class Claimed:
    id: int
    kind: Kind
    user_id: int
    data: dict[str, typing.Any]
    channel: str | None          # the channel a dead sender was trying, if it was
    attempts: int
    openid: str
    mobile: str | None
    resumed: bool                # claimed from a sender that stopped in the middle
    url: str                     # the page the message opens ('' for none)


async def claim(pool: typing.Any, claim_id: str, limit: int) -> list[Claimed]:
    """Notices due now (up to `limit` waiting ones, oldest first, and up to `limit` a dead sender left), marked as
    this sender's. Each half reads its own partial index."""
    rows = await db.fetchall(pool, CLAIM_SQL, {"claim": claim_id, "stale": SENDING_STALE, "limit": limit})
    return [Claimed(row["id"], KINDS[row["kind"]], row["user_id"], row["data"], row["channel"], row["attempts"],
                    row["openid"] or "", row["mobile"], row["was"] == "sending", row["url"])
            for row in sorted(rows, key=lambda r: r["id"])]


FINISH_SQL = """
UPDATE notices SET state = %(state)s, channel = %(channel)s, msgid = COALESCE(%(msgid)s, msgid),
       biz_id = COALESCE(%(biz_id)s, biz_id), error = %(error)s, text = %(text)s, claim = NULL,
       sent_at = CASE WHEN %(state)s IN ('sent', 'sms', 'logged') THEN now() END
WHERE id = %(id)s AND claim = %(claim)s AND state = 'sending'
"""
LATER_SQL = """
UPDATE notices SET state = 'pending', channel = %(channel)s, error = %(error)s, claim = NULL,
       next_attempt_at = %(at)s, attempts = attempts - %(uncounted)s
WHERE id = %(id)s AND claim = %(claim)s AND state = 'sending'
"""
TRYING_SQL = "UPDATE notices SET channel = %(channel)s WHERE id = %(id)s AND claim = %(claim)s AND state = 'sending'"


async def trying(pool: typing.Any, notice_id: int, claim_id: str, channel: str) -> bool:
    """Record the channel about to be tried, before the call: a sender taking over knows what may have gone out."""
    return await db.execute(pool, TRYING_SQL, {"id": notice_id, "claim": claim_id, "channel": channel}) == 1


async def finish(pool: typing.Any, notice_id: int, claim_id: str, state: str, channel: str | None, *,
                 text: str = "", error: str = "", msgid: str | None = None, biz_id: str | None = None) -> None:
    await db.execute(pool, FINISH_SQL, {"id": notice_id, "claim": claim_id, "state": state, "channel": channel,
                                        "msgid": msgid, "biz_id": biz_id, "error": error[:500], "text": text})


async def later(pool: typing.Any, notice_id: int, claim_id: str, at: dt.datetime, channel: str | None,
                error: str, *, counted: bool = True) -> None:
    """Back to pending until `at`; an uncounted postponement (a quota) does not use up an attempt."""
    await db.execute(pool, LATER_SQL, {"id": notice_id, "claim": claim_id, "at": at, "channel": channel,
                                       "error": error[:500], "uncounted": 0 if counted else 1})


# -- the kinds' settings ----------------------------------------------------------------------------------

@dataclasses.dataclass
class KindSettings:
    kind: Kind
    enabled: bool
    template_id: str
    fields: str
    sms_template_code: str

    def mapping(self) -> dict[str, str]:
        """The template key -> value name mapping (the kind's default when none was saved)."""
        return tf.parse_mapping(self.fields or self.kind.fields, self.kind.natures())


async def kind_settings(pool: typing.Any) -> dict[str, KindSettings]:
    rows = {row["kind"]: row for row in await db.fetchall(pool, "SELECT * FROM notice_kinds")}
    out = {}
    for name, kind in KINDS.items():
        row = rows.get(name)
        out[name] = KindSettings(kind, row["enabled"] if row else True, row["template_id"] if row else "",
                                 row["fields"] if row else "", row["sms_template_code"] if row else "")
    return out


SAVE_KIND_SQL = """
INSERT INTO notice_kinds (kind, enabled, template_id, fields, sms_template_code)
VALUES (%(kind)s, %(enabled)s, %(template_id)s, %(fields)s, %(sms_template_code)s)
ON CONFLICT (kind) DO UPDATE SET enabled = EXCLUDED.enabled, template_id = EXCLUDED.template_id,
    fields = EXCLUDED.fields, sms_template_code = EXCLUDED.sms_template_code, updated_at = now()
"""


async def save_kind(cur: typing.Any, kind: str, enabled: bool, template_id: str, fields: str,
                    sms_template_code: str) -> None:
    """Save a kind's settings; tf.FieldError if the mapping would make WeChat refuse (47003)."""
    tf.parse_mapping(fields or KINDS[kind].fields, KINDS[kind].natures())
    await cur.execute(SAVE_KIND_SQL, {"kind": kind, "enabled": enabled, "template_id": template_id,
                                      "fields": fields, "sms_template_code": sms_template_code})


# -- what the console shows -------------------------------------------------------------------------------

STATE_LABELS = {"pending": "待发送", "sending": "发送中", "sent": "已发送（公众号）", "sms": "已发送（短信）",
                "logged": "已记录（开发模式）", "failed": "失败", "unreachable": "无法送达"}
CHANNEL_LABELS = {"wechat": "公众号", "sms": "短信", "log": "日志"}

DELIVERY_SQL = """
SELECT kind, count(*) FILTER (WHERE state = 'sent') AS sent, count(*) FILTER (WHERE state = 'sms') AS sms,
       count(*) FILTER (WHERE state = 'logged') AS logged, count(*) FILTER (WHERE state = 'failed') AS failed,
       count(*) FILTER (WHERE state = 'unreachable') AS unreachable,
       count(*) FILTER (WHERE state IN ('pending', 'sending')) AS waiting
FROM notices WHERE created_at >= now() - make_interval(days => %(days)s)
GROUP BY kind
"""
REASONS_SQL = """
SELECT kind, state, error, count(*) AS n FROM notices
WHERE created_at >= now() - make_interval(days => %(days)s) AND error <> ''
GROUP BY kind, state, error ORDER BY n DESC LIMIT 50
"""


async def delivery(pool: typing.Any, days: int) -> tuple[list[db.Row], list[db.Row]]:
    """Per kind over the last `days` days: counts by outcome (every kind, zeros too); the commonest reasons."""
    counts = {row["kind"]: row for row in await db.fetchall(pool, DELIVERY_SQL, {"days": days})}
    zero = {"sent": 0, "sms": 0, "logged": 0, "failed": 0, "unreachable": 0, "waiting": 0}
    rows = [{"kind": name, "label": kind.label, **zero, **{k: v for k, v in counts.get(name, {}).items()
                                                           if k != "kind"}}
            for name, kind in KINDS.items()]
    return rows, await db.fetchall(pool, REASONS_SQL, {"days": days})


LIST_SQL = """
SELECT n.id, n.kind, n.state, n.channel, n.error, n.text, n.data, n.attempts, n.created_at, n.sent_at,
       n.msgid, n.biz_id, n.user_id, u.username, n.campaign_id
FROM notices n JOIN users u ON u.id = n.user_id
WHERE (%(user_id)s::bigint IS NULL OR n.user_id = %(user_id)s)
  AND (%(state)s::text IS NULL OR n.state = %(state)s)
  AND (%(kind)s::text IS NULL OR n.kind = %(kind)s)
  AND (%(campaign_id)s::bigint IS NULL OR n.campaign_id = %(campaign_id)s)
ORDER BY n.id DESC LIMIT %(limit)s
"""


async def recent(pool: typing.Any, *, user_id: int | None = None, state: str | None = None,
                 kind: str | None = None, campaign_id: int | None = None, limit: int = 50) -> list[db.Row]:
    """Notices newest first, each with `label` (its kind's name)."""
    rows = await db.fetchall(pool, LIST_SQL, {"user_id": user_id, "state": state, "kind": kind,
                                              "campaign_id": campaign_id, "limit": limit})
    return [{**row, "label": KINDS[row["kind"]].label} for row in rows]
