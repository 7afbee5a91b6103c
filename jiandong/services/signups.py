"""Sign-ups (赛事报名): the rules a member's sign-up and cancellation follow (membership, start, deadline,
capacity), the staff's additions and removals with a reason, attendance, the sheet of a match and a member's
season.

Capacity under concurrency: a sign-up locks its match's row, then counts and inserts in the same transaction,
so sign-ups to one match queue on that row and the last place goes to one member only. The count is a
statement of its own, run after the lock is held: in READ COMMITTED it then sees every sign-up committed
before.

Caches: no cached H5 answer holds sign-up state. `competition/begins` reads the reader's `apply_status`
fresh, and the cached match detail (api/competitions.py DETAIL) carries neither sign-ups nor attendance;
capacity and deadline are match fields, saved through services/competitions.py, which drops the match
caches.
"""

from __future__ import annotations

import dataclasses
import typing

from aiohttp import web

from ..errors import ApplyNotFound, CompetitionNotFound, DuplicateApply, Forbidden, OperationError, ParameterError
from ..keys import pg_key
from ..store import db
from . import audit, membership, notices
from .members import STATUS_LABELS
from .verification import normalize_phone

REASON_MAX = 200
FULL = "报名人数已满"
CLOSED = "报名已截止"
STARTED = "赛事已开始，不能报名"
CANCEL_STARTED = "赛事已开始，不能取消报名"
ATTENDANCE_LABELS = {True: "到场", False: "缺席", None: "未登记"}


class SignupError(ValueError):
    """A change to the sheet the rules refuse; the message is for the console."""


# The match row, locked against other sign-ups to it until this transaction ends (FOR NO KEY UPDATE does not
# block the foreign-key checks of rows that refer to the match).
LOCK_SQL = """
    SELECT id, title, status, capacity, play_time, venue, play_time <= now() AS started,
           apply_deadline IS NOT NULL AND apply_deadline <= now() AS closed
    FROM competitions WHERE id = %s FOR NO KEY UPDATE
"""
MEMBER_SQL = f"SELECT u.username, {membership.MEMBER_STATUS_SQL} AS member_status FROM users u WHERE u.id = %s"
TAKEN_SQL = "SELECT count(*) AS n FROM competition_applies WHERE competition_id = %s"
INSERT_SQL = """
    INSERT INTO competition_applies (competition_id, user_id, added_by, note) VALUES (%s, %s, %s, %s)
    ON CONFLICT ON CONSTRAINT competition_applies_once DO NOTHING
    RETURNING id
"""
CANCEL_SQL = """
    WITH c AS (
        SELECT id, title, play_time, play_time <= now() AS started FROM competitions WHERE id = %(id)s AND status = 1
    ), del AS (
        DELETE FROM competition_applies a USING c
        WHERE a.competition_id = c.id AND a.user_id = %(user_id)s AND NOT c.started
        RETURNING a.id
    )
    SELECT c.title, c.play_time, c.started, (SELECT id FROM del) AS apply_id,
           (SELECT username FROM users WHERE id = %(user_id)s) AS username
    FROM c
"""


async def apply(app: web.Application, user_id: int, competition_id: int) -> int:
    """A member signs up for a published match; the sign-up's id.

    Checked in this order, each with the API's error: an unknown or unpublished match (30000), not an active
    member (10001), the match started, the deadline passed (10000), already signed up (30007), no place left
    (10000).
    """
    async with db.transaction(app[pg_key]) as cur:
        await cur.execute(LOCK_SQL, (competition_id,))
        match = await cur.fetchone()
        if match is None or match["status"] != 1:
            raise CompetitionNotFound()
        await cur.execute(MEMBER_SQL, (user_id,))
        member = await cur.fetchone()
        if member is None or member["member_status"] != membership.ACTIVE:
            raise Forbidden("仅限有效会员报名")
        if match["started"]:
            raise OperationError(STARTED)
        if match["closed"]:
            raise OperationError(CLOSED)
        await cur.execute("SELECT 1 FROM competition_applies WHERE competition_id = %s AND user_id = %s",
                          (competition_id, user_id))
        if await cur.fetchone() is not None:
            raise DuplicateApply()
        if match["capacity"] is not None:
            await cur.execute(TAKEN_SQL, (competition_id,))
            if (await cur.fetchone())["n"] >= match["capacity"]:
                raise OperationError(FULL)
        await cur.execute(INSERT_SQL, (competition_id, user_id, None, ""))
        row = await cur.fetchone()
        if row is None:
            raise DuplicateApply()
        await notices.enqueue(cur, "signup_confirmed", user_id, f"signup_confirmed:{row['id']}", {
            "match": match["title"], "start": match["play_time"], "venue": match["venue"],
            "member": member["username"]})
        return typing.cast(int, row["id"])


async def cancel(app: web.Application, user_id: int, competition_id: int) -> None:
    """A member withdraws, until the match starts (past the deadline too: the place is freed, though after the
    deadline no one else can take it)."""
    async with db.transaction(app[pg_key]) as cur:
        await cur.execute(CANCEL_SQL, {"id": competition_id, "user_id": user_id})
        row = await cur.fetchone()
        if row is None:
            raise CompetitionNotFound()
        if row["started"]:
            raise OperationError(CANCEL_STARTED)
        if row["apply_id"] is None:
            raise ApplyNotFound()
        await notices.enqueue(cur, "signup_cancelled", user_id, f"signup_cancelled:{row['apply_id']}", {
            "match": row["title"], "start": row["play_time"], "member": row["username"]})


# -- the console -----------------------------------------------------------------------------------------


def _reason(reason: str | None) -> str:
    reason = (reason or "").strip()
    if not 1 <= len(reason) <= REASON_MAX:
        raise SignupError(f"原因必填（不超过 {REASON_MAX} 个字）")
    return reason


async def find_user(pool: typing.Any, who: str) -> db.Row:
    """The user a staff member means by `who`: a user id (#12 or 12) or a bound phone number (written as
    anywhere else: spaces, dashes, +86 allowed)."""
    who = (who or "").strip()
    if not who:
        raise SignupError("请填写用户 ID 或手机号")
    digits = who.removeprefix("#")
    if not who.startswith("#") and not (digits.isdigit() and len(digits) < 11):
        try:
            digits = normalize_phone(who)
        except ParameterError:
            raise SignupError(f"「{who[:30]}」既不是用户 ID 也不是有效的手机号") from None
    if not digits.isdigit():
        raise SignupError(f"「{who[:30]}」不是有效的用户 ID")
    if len(digits) == 11 and not who.startswith("#"):
        rows = await db.fetchall(pool, "SELECT id, username FROM users WHERE mobile = %s ORDER BY id LIMIT 2",
                                 (digits,))
        if len(rows) > 1:
            raise SignupError(f"手机号 {digits} 绑定了多个用户，请填写用户 ID")
        if rows:
            return rows[0]
        raise SignupError(f"没有绑定手机号 {digits} 的用户")
    row = None
    if len(digits) < 19:
        row = await db.fetchone(pool, "SELECT id, username FROM users WHERE id = %s", (int(digits),))
    if row is None:
        raise SignupError(f"用户 {digits} 不存在")
    return row


async def add(app: web.Application, actor: audit.Actor, competition_id: int, who: str, reason: str) -> db.Row:
    """Staff sign a user up (by id or phone), with a reason; the user (id, username).

    Staff may add past the capacity and the deadline, and after the start (a player who came without signing
    up): the rules bind the members' own sign-ups, the staff decide. The user need not be an active member;
    the sheet shows each one's membership state.
    """
    reason = _reason(reason)
    pool = app[pg_key]
    user = await find_user(pool, who)
    async with db.transaction(pool) as cur:
        await cur.execute(LOCK_SQL, (competition_id,))
        match = await cur.fetchone()
        if match is None:
            raise SignupError("赛事不存在")
        await cur.execute(INSERT_SQL, (competition_id, user["id"], actor.admin_id, reason))
        row = await cur.fetchone()
        if row is None:
            raise SignupError(f"{user['username'] or '该用户'}（ID {user['id']}）已经报名")
        await cur.execute(TAKEN_SQL, (competition_id,))
        taken = (await cur.fetchone())["n"]
        await audit.record(cur, actor, "signups.add", f"competitions:{competition_id}",
                           f"「{match['title'][:50]}」添加报名：{user['username'] or user['id']}，{reason}",
                           after={"user_id": user["id"], "username": user["username"], "reason": reason,
                                  "count": taken})
    return user


SIGNUP_SQL = """
    SELECT a.id, a.user_id, u.username, a.created_at, a.attended, a.added_by, a.note
    FROM competition_applies a JOIN users u ON u.id = a.user_id
    WHERE a.id = %s AND a.competition_id = %s
"""


async def remove(app: web.Application, actor: audit.Actor, competition_id: int, signup_id: int, reason: str
                 ) -> db.Row:
    """Staff remove a sign-up, with a reason: the row goes, the audit entry keeps who it was and why; the
    removed row. SignupError if it is not (or no longer) on the match's sheet."""
    reason = _reason(reason)
    async with db.transaction(app[pg_key]) as cur:
        await cur.execute(LOCK_SQL, (competition_id,))
        match = await cur.fetchone()
        await cur.execute(SIGNUP_SQL + " FOR UPDATE OF a", (signup_id, competition_id))
        row = await cur.fetchone()
        if match is None or row is None:
            raise SignupError("该报名不存在或已被移除")
        await cur.execute("DELETE FROM competition_applies WHERE id = %s", (signup_id,))
        await audit.record(cur, actor, "signups.remove", f"competitions:{competition_id}",
                           f"「{match['title'][:50]}」移除报名：{row['username'] or row['user_id']}，{reason}",
                           before={"user_id": row["user_id"], "username": row["username"],
                                   "created_at": row["created_at"], "attended": row["attended"]},
                           after={"reason": reason})
    return row


def _attendance_open(match: db.Row | None) -> db.Row:
    if match is None:
        raise SignupError("赛事不存在")
    if not match["started"]:
        raise SignupError("比赛开始后才能登记到场")
    return match


async def mark(app: web.Application, actor: audit.Actor, competition_id: int, signup_id: int,
               attended: bool) -> db.Row:
    """Mark one sign-up came (True) or did not come (False), once the match has started; the row as it was."""
    async with db.transaction(app[pg_key]) as cur:
        await cur.execute(LOCK_SQL, (competition_id,))
        match = _attendance_open(await cur.fetchone())
        await cur.execute(SIGNUP_SQL + " FOR UPDATE OF a", (signup_id, competition_id))
        row = await cur.fetchone()
        if row is None:
            raise SignupError("该报名不存在或已被移除")
        await cur.execute("UPDATE competition_applies SET attended = %s, attended_at = now(), marked_by = %s"
                          " WHERE id = %s", (attended, actor.admin_id, signup_id))
        if row["attended"] is not attended:
            await audit.record(cur, actor, "signups.attendance", f"competitions:{competition_id}",
                               f"「{match['title'][:50]}」{row['username'] or row['user_id']}："
                               f"{ATTENDANCE_LABELS[attended]}",
                               before={"user_id": row["user_id"], "attended": row["attended"]},
                               after={"user_id": row["user_id"], "attended": attended})
    return row


async def mark_rest_came(app: web.Application, actor: audit.Actor, competition_id: int) -> int:
    """Mark every sign-up not yet marked as came; how many."""
    async with db.transaction(app[pg_key]) as cur:
        await cur.execute(LOCK_SQL, (competition_id,))
        match = _attendance_open(await cur.fetchone())
        await cur.execute("UPDATE competition_applies SET attended = true, attended_at = now(), marked_by = %s"
                          " WHERE competition_id = %s AND attended IS NULL", (actor.admin_id, competition_id))
        count = cur.rowcount
        if count:
            await audit.record(cur, actor, "signups.attendance", f"competitions:{competition_id}",
                               f"「{match['title'][:50]}」其余 {count} 人登记为到场",
                               after={"attended": True, "count": count})
    return count


# -- reading ---------------------------------------------------------------------------------------------

# The member's current team: through their player card, the team they are in now.
SHEET_COLUMNS = f"""
    a.id, a.user_id, u.username, u.mobile, {membership.MEMBER_STATUS_SQL} AS member_status, a.created_at,
    a.attended, a.attended_at, a.note, ad.username AS added_by_name,
    (SELECT t.name FROM players p JOIN team_members tm ON tm.player_id = p.id AND tm.left_at IS NULL
       JOIN teams t ON t.id = tm.team_id
     WHERE p.user_id = a.user_id ORDER BY tm.joined_at DESC LIMIT 1) AS team
"""
SHEET_SOURCE = """
    competition_applies a JOIN users u ON u.id = a.user_id LEFT JOIN admins ad ON ad.id = a.added_by
    WHERE a.competition_id = %(id)s
"""


def _labelled(row: db.Row) -> db.Row:
    return {**row, "status_label": STATUS_LABELS.get(row["member_status"], str(row["member_status"])),
            "attendance_label": ATTENDANCE_LABELS[row["attended"]]}


@dataclasses.dataclass(frozen=True)
class Tally:
    """A match's sheet in figures."""

    total: int
    came: int
    missed: int

    @property
    def unmarked(self) -> int:
        return self.total - self.came - self.missed


async def tally(pool: typing.Any, competition_id: int) -> Tally:
    row = await db.fetchone(pool, """
        SELECT count(*) AS total, count(*) FILTER (WHERE attended) AS came,
               count(*) FILTER (WHERE NOT attended) AS missed
        FROM competition_applies WHERE competition_id = %s""", (competition_id,))
    assert row is not None
    return Tally(row["total"], row["came"], row["missed"])


async def sheet_page(pool: typing.Any, competition_id: int, page: int, size: int) -> list[db.Row]:
    """One page of the match's sign-ups, in sign-up order."""
    rows = await db.fetchall(pool, f"SELECT {SHEET_COLUMNS} FROM {SHEET_SOURCE}"
                                   " ORDER BY a.created_at, a.id LIMIT %(limit)s OFFSET %(offset)s",
                             {"id": competition_id, "limit": size, "offset": (page - 1) * size})
    return [_labelled(r) for r in rows]


async def sheet(pool: typing.Any, competition_id: int) -> list[db.Row]:
    """Every sign-up of the match, in sign-up order (the export)."""
    rows = await db.fetchall(pool, f"SELECT {SHEET_COLUMNS} FROM {SHEET_SOURCE} ORDER BY a.created_at, a.id",
                             {"id": competition_id})
    return [_labelled(r) for r in rows]


# A season is a calendar year of play times in the club's time zone (connections run in it).
SEASON_SQL = """
    SELECT c.id, c.title, c.play_time, a.created_at, a.attended, c.play_time <= now() AS played
    FROM competition_applies a JOIN competitions c ON c.id = a.competition_id
    WHERE a.user_id = %s AND c.play_time >= date_trunc('year', now())
      AND c.play_time < date_trunc('year', now()) + interval '1 year'
    ORDER BY c.play_time DESC, c.id DESC
"""


async def season(pool: typing.Any, user_id: int) -> dict[str, typing.Any]:
    """The user's sign-ups to this season's matches (this calendar year's) with their attendance, and the
    counts: signed up, came, did not come."""
    rows = [{**r, "attendance_label": ATTENDANCE_LABELS[r["attended"]]}
            for r in await db.fetchall(pool, SEASON_SQL, (user_id,))]
    year = await db.fetchval(pool, "SELECT extract(year FROM now())::int")
    return {"year": year, "rows": rows, "total": len(rows), "came": sum(r["attended"] is True for r in rows),
            "missed": sum(r["attended"] is False for r in rows)}
