"""Users' feedback as the staff handle it: the list by type and state, marking one handled with a note."""

from __future__ import annotations

import typing

from aiohttp import web

from ..keys import pg_key
from ..store import db
from . import audit
from .editing import ListQuery, fetch_page, like_pattern

TYPE_LABELS = {1: "建议", 2: "投诉", 3: "其它"}
NOTE_MAX = 500


class FeedbackError(ValueError):
    """The feedback does not exist or was handled already; the message is for the console."""


async def list_feedback(pool: typing.Any, query: ListQuery, kind: int | None = None, handled: bool | None = None
                        ) -> tuple[list[db.Row], int]:
    """Feedback newest first, of one type and/or state; `query.search` matches title, content or phone."""
    clauses: list[str] = []
    args: dict[str, typing.Any] = {}
    if kind is not None:
        clauses.append("f.type = %(kind)s")
        args["kind"] = kind
    if handled is not None:
        clauses.append("f.handled_at IS NOT NULL" if handled else "f.handled_at IS NULL")
    if query.search:
        clauses.append("(f.title ILIKE %(s)s OR f.content ILIKE %(s)s OR f.phone ILIKE %(s)s)")
        args["s"] = like_pattern(query.search)
    rows, total = await fetch_page(
        pool, "f.id, f.user_id, u.username, f.type, f.phone, f.title, f.content, f.created_at, f.handled_at,"
              " f.handled_note, a.username AS handled_by_name",
        "feedback f LEFT JOIN users u ON u.id = f.user_id LEFT JOIN admins a ON a.id = f.handled_by",
        " AND ".join(clauses), args, "f.id DESC", query)
    return [{**r, "type_label": TYPE_LABELS.get(r["type"], str(r["type"]))} for r in rows], total


async def mark_handled(app: web.Application, actor: audit.Actor, feedback_id: int, note: str) -> None:
    """Handled, with the staff's note (what was done); FeedbackError when unknown or handled already."""
    note = note.strip()[:NOTE_MAX]
    async with db.transaction(app[pg_key]) as cur:
        await cur.execute("""
            UPDATE feedback SET handled_at = now(), handled_by = %s, handled_note = %s
            WHERE id = %s AND handled_at IS NULL RETURNING id, type, title""", (actor.admin_id, note, feedback_id))
        row = await cur.fetchone()
        if row is None:
            raise FeedbackError("反馈不存在或已处理")
        await audit.record(cur, actor, "feedback.handle", f"feedback:{feedback_id}", note,
                           before={"handled": False}, after={"handled": True, "note": note})
