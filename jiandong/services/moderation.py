"""Chat moderation: a room's recent messages, deleting one, muting a user in a room or everywhere for a
time (with a reason), and the banned words. Mutes are rows (chat_mutes, the record) mirrored into Redis
keys that live as long as the mute (store/mutes.py), which the chat checks at every send."""

from __future__ import annotations

import typing

from aiohttp import web

from ..keys import content_cache_key, pg_key, realtime_key, redis_key, settings_key
from ..store import db
from ..store.mutes import set_mute_until
from . import audit
from .banned_words import CONFIG_CODE, parse_words

REASON_MAX = 200
# A mute lasts from a minute to a year.
MINUTES_MIN, MINUTES_MAX = 1, 366 * 24 * 60


class ModerationError(ValueError):
    """Refused (bad duration, no reason, unknown message); the message is for the console."""


async def recent_messages(app: web.Application, room_id: int, limit: int = 100) -> list[dict[str, typing.Any]]:
    """The room's newest messages, oldest first, as new viewers get them (deleted ones left out), with
    the `ref` a delete names and the sender's user id."""
    return await app[realtime_key].history.recent(room_id, limit)


async def delete_message(app: web.Application, actor: audit.Actor, room_id: int, ref: str) -> dict[str, typing.Any]:
    """Delete a message of a room (by the `ref` recent_messages gives it: the stream id, the `seq` of its frame,
    or the row id of a message that has none): gone from guest/:id and so from the pages of viewers who join
    afterwards. ModerationError when the room has no such message."""
    row = await app[realtime_key].history.delete(room_id, ref, actor.admin_id)
    if row is None:
        raise ModerationError("消息不存在")
    await audit.record_now(app[pg_key], actor, "chat.delete", f"room:{row['room_id']}",
                           f"用户 {row['user_id']} 的消息", before={"message": ref, "content": row["content"]})
    return row


MUTE_SQL = """
    INSERT INTO chat_mutes (user_id, room_id, reason, until, admin_id)
    VALUES (%(user_id)s, %(room_id)s, %(reason)s, now() + make_interval(mins => %(minutes)s), %(admin_id)s)
    RETURNING id, until
"""
# A mute of the same user and scope still running is extended, not doubled: one mute to read and to lift.
# Its end moves only later (a shorter term given again does not cut a longer one short: lift it for that).
RUNNING_SQL = """
    SELECT id, until, reason FROM chat_mutes
    WHERE user_id = %(user_id)s AND room_id IS NOT DISTINCT FROM %(room_id)s AND lifted_at IS NULL AND until > now()
    ORDER BY until DESC LIMIT 1
"""
EXTEND_SQL = """
    UPDATE chat_mutes SET until = greatest(until, now() + make_interval(mins => %(minutes)s)), reason = %(reason)s,
                          admin_id = %(admin_id)s
    WHERE id = %(id)s
    RETURNING id, until
"""
# The latest end among the user's mutes of one scope still running: what the Redis key must live for.
SCOPE_END_SQL = """
    SELECT ceil(extract(epoch FROM max(until) - now()))::bigint AS seconds FROM chat_mutes
    WHERE user_id = %(user_id)s AND room_id IS NOT DISTINCT FROM %(room_id)s AND lifted_at IS NULL AND until > now()
"""


async def _sync(app: web.Application, user_id: int, room_id: int | None) -> None:
    seconds = await db.fetchval(app[pg_key], SCOPE_END_SQL, {"user_id": user_id, "room_id": room_id})
    await set_mute_until(app[redis_key], app[settings_key], user_id, room_id, int(seconds or 0))


async def mute(app: web.Application, actor: audit.Actor, user_id: int, room_id: int | None, minutes: int,
               reason: str) -> int:
    """Mute the user in `room_id` (None: every room) for `minutes`; the mute's id. Their sends then get the
    error frame 10001 "你已被禁言". A mute of the same scope still running is extended (its end moved to
    now + minutes if that is later, its reason replaced) and its id returned."""
    reason = reason.strip()
    if not 1 <= len(reason) <= REASON_MAX:
        raise ModerationError(f"原因必填（不超过 {REASON_MAX} 个字）")
    if not MINUTES_MIN <= minutes <= MINUTES_MAX:
        raise ModerationError("时长须为 1 分钟到 1 年")
    async with db.transaction(app[pg_key]) as cur:
        # The user's row locked: two moderators muting at once find each other's mute, not two.
        await cur.execute("SELECT 1 FROM users WHERE id = %s FOR NO KEY UPDATE", (user_id,))
        if await cur.fetchone() is None:
            raise ModerationError("用户不存在")
        values = {"user_id": user_id, "room_id": room_id, "reason": reason, "minutes": minutes,
                  "admin_id": actor.admin_id}
        await cur.execute(RUNNING_SQL, values)
        running = await cur.fetchone()
        await cur.execute(MUTE_SQL if running is None else EXTEND_SQL, {**values, "id": running and running["id"]})
        row = await cur.fetchone()
        await audit.record(cur, actor, "chat.mute", f"user:{user_id}", reason,
                           before=running and {"room_id": room_id, "until": running["until"],
                                               "reason": running["reason"]},
                           after={"room_id": room_id, "minutes": minutes, "until": row["until"]})
    await _sync(app, user_id, room_id)
    return row["id"]


async def lift(app: web.Application, actor: audit.Actor, mute_id: int) -> None:
    async with db.transaction(app[pg_key]) as cur:
        await cur.execute("UPDATE chat_mutes SET lifted_at = now() WHERE id = %s AND lifted_at IS NULL"
                          " RETURNING user_id, room_id, reason, until", (mute_id,))
        row = await cur.fetchone()
        if row is None:
            raise ModerationError("禁言不存在或已解除")
        # The mute's reason, said as the mute's: lifting has no reason of its own.
        await audit.record(cur, actor, "chat.unmute", f"user:{row['user_id']}", f"禁言原因：{row['reason']}",
                           before={"room_id": row["room_id"], "until": row["until"]})
    await _sync(app, row["user_id"], row["room_id"])


MUTES_SQL = """
    SELECT m.id, m.user_id, u.username, m.room_id, l.title AS room_title, m.reason, m.until, m.lifted_at, m.created_at,
           a.username AS admin_name, m.lifted_at IS NULL AND m.until > now() AS active
    FROM chat_mutes m JOIN users u ON u.id = m.user_id LEFT JOIN lives l ON l.id = m.room_id
    LEFT JOIN admins a ON a.id = m.admin_id
"""


async def user_mutes(pool: typing.Any, user_id: int) -> list[db.Row]:
    return await db.fetchall(pool, MUTES_SQL + " WHERE m.user_id = %s ORDER BY m.id DESC LIMIT 100", (user_id,))


async def active_mutes(pool: typing.Any, room_id: int) -> list[db.Row]:
    """Mutes running now that concern the room: its own and those everywhere."""
    return await db.fetchall(pool, MUTES_SQL + " WHERE (m.room_id = %s OR m.room_id IS NULL)"
                                               " AND m.lifted_at IS NULL AND m.until > now() ORDER BY m.until",
                             (room_id,))


async def rooms(pool: typing.Any) -> list[db.Row]:
    """Live rooms (a live stream's id is its room), live ones first, with their messages of the last day."""
    return await db.fetchall(pool, """
        SELECT l.id, l.title, l.live_status, l.publish_time,
               (SELECT count(*) FROM chat_messages c WHERE c.room_id = l.id AND c.deleted_at IS NULL
                  AND c.msg_time > now() - interval '1 day') AS messages_today
        FROM lives l ORDER BY l.live_status = 1 DESC, l.publish_time DESC LIMIT 100""")


async def banned_words(pool: typing.Any) -> str:
    return await db.fetchval(pool, "SELECT value FROM config_values WHERE code = %s", (CONFIG_CODE,)) or ""


async def set_banned_words(app: web.Application, actor: audit.Actor, text: str) -> tuple[str, ...]:
    """Store the list (one per line), applied to messages sent from now on in every process."""
    words = parse_words(text)
    value = "\n".join(words)
    async with db.transaction(app[pg_key]) as cur:
        await cur.execute("SELECT value FROM config_values WHERE code = %s FOR UPDATE", (CONFIG_CODE,))
        before = await cur.fetchone()
        await cur.execute("""
            INSERT INTO config_values (code, name, value) VALUES (%s, '聊天屏蔽词', %s)
            ON CONFLICT (code) DO UPDATE SET value = EXCLUDED.value, updated_at = now()""", (CONFIG_CODE, value))
        await audit.record(cur, actor, "chat.banned_words", f"config:{CONFIG_CODE}", f"{len(words)} 个",
                           before={"value": before["value"] if before else ""}, after={"value": value})
    await app[content_cache_key].invalidate("config")
    return words

